// QEMU's guest agent as a peer: `qemu-ga -m unix-listen -p SOCK` on this machine, spoken to in QMP JSON
// the way its users do: guest-exec (capture-output) returns a pid, then guest-exec-status is polled until
// it says exited. We poll back to back, with no sleep: the best case for qemu-ga (real clients, libvirt
// or Proxmox, sleep between polls).
import type { Socket } from "bun";
import { join } from "node:path";
import { start, waitUnix } from "../_procs.ts";

export const QGA = "/usr/sbin/qemu-ga";

export async function startQga(dir: string, lifeMs: number) {
  const sock = join(dir, "qga.sock");
  const state = join(dir, "qga-state");
  await Bun.write(join(state, ".keep"), "");
  const proc = start([QGA, "-m", "unix-listen", "-p", sock, "-t", state, "-f", join(dir, "qga.pid")], { timeoutMs: lifeMs, stderr: "ignore" });
  await waitUnix(sock, 10_000, 5).catch(() => {});
  return { proc, sock };
}

export class QgaClient {
  private sock!: Socket<undefined>;
  private buf = "";
  private waiting: ((v: any) => void)[] = [];

  static async connect(path: string): Promise<QgaClient> {
    const c = new QgaClient();
    c.sock = await Bun.connect({ unix: path, socket: { data: (_s, d) => c.onData(d) } });
    // guest-sync flushes whatever a previous client left half-read, as the QGA docs ask.
    const id = Math.floor(Math.random() * 1e9);
    const r = await c.call("guest-sync", { id });
    if (r !== id) throw new Error(`qemu-ga guest-sync answered ${JSON.stringify(r)}`);
    return c;
  }

  private onData(d: Uint8Array): void {
    this.buf += new TextDecoder().decode(d);
    for (let nl = this.buf.indexOf("\n"); nl >= 0; nl = this.buf.indexOf("\n")) {
      const line = this.buf.slice(0, nl).trim();
      this.buf = this.buf.slice(nl + 1);
      if (line) this.waiting.shift()?.(JSON.parse(line));
    }
  }

  call(execute: string, args?: object): Promise<any> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`qemu-ga: no answer to ${execute}`)), 10_000);
      this.waiting.push((m) => {
        clearTimeout(t);
        if (m.error) reject(new Error(`qemu-ga ${execute}: ${JSON.stringify(m.error)}`));
        else resolve(m.return);
      });
      this.sock.write(`${JSON.stringify(args ? { execute, arguments: args } : { execute })}\n`);
    });
  }

  /** guest-exec, then guest-exec-status until exited; returns the exit code and stdout. */
  async exec(path: string, args: string[] = []): Promise<{ code: number; stdout: string }> {
    const { pid } = await this.call("guest-exec", { path, arg: args, "capture-output": true });
    for (;;) {
      const st = await this.call("guest-exec-status", { pid });
      if (st.exited) return { code: st.exitcode, stdout: st["out-data"] ? Buffer.from(st["out-data"], "base64").toString() : "" };
    }
  }

  close(): void {
    this.sock.end();
  }
}
