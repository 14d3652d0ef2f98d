// A minimal QMP client (QEMU's JSON control socket) for the harness: one command at a time, events kept
// for waitEvent(). Only what re-plugging a device needs; no AF_VSOCK, only the guest folder's Unix socket.
import { connect as netConnect, type Socket } from "node:net";

type Json = Record<string, unknown>;

export class Qmp {
  private buf = "";
  private events: Json[] = [];
  private pending?: { resolve: (v: Json) => void; reject: (e: Error) => void };
  private wake?: () => void;

  private constructor(private sock: Socket) {
    sock.setEncoding("utf8");
    sock.on("data", (s: string) => {
      this.buf += s;
      for (let nl = this.buf.indexOf("\n"); nl >= 0; nl = this.buf.indexOf("\n")) {
        const line = this.buf.slice(0, nl).trim();
        this.buf = this.buf.slice(nl + 1);
        if (line) this.take(JSON.parse(line) as Json);
      }
    });
    sock.on("error", () => {});
    sock.on("close", () => this.pending?.reject(new Error("QMP socket closed")));
  }

  /** Connects, reads the greeting and leaves capabilities negotiation mode. */
  static async open(path: string): Promise<Qmp> {
    const sock = netConnect({ path });
    await new Promise<void>((res, rej) => sock.once("connect", () => res()).once("error", rej));
    const q = new Qmp(sock);
    await q.waitFor(() => q.greeted, 10_000, "QMP greeting");
    await q.execute("qmp_capabilities");
    return q;
  }

  private greeted = false;

  private take(msg: Json) {
    if ("QMP" in msg) this.greeted = true;
    else if ("event" in msg) this.events.push(msg);
    else if ("return" in msg) this.pending?.resolve(msg.return as Json);
    else if ("error" in msg) this.pending?.reject(new Error(`QMP: ${JSON.stringify(msg.error)}`));
    this.wake?.();
  }

  /** Runs one command; rejects with QEMU's error. */
  execute(command: string, args?: Json): Promise<Json> {
    if (this.pending) throw new Error("QMP: one command at a time");
    return new Promise<Json>((resolve, reject) => {
      this.pending = { resolve, reject };
      this.sock.write(`${JSON.stringify(args ? { execute: command, arguments: args } : { execute: command })}\n`);
    }).finally(() => (this.pending = undefined));
  }

  /** Waits for an event named `name` (and matching `data`), taking it out of the queue. */
  async waitEvent(name: string, match: (data: Json) => boolean, timeoutMs: number): Promise<Json> {
    let found: Json | undefined;
    await this.waitFor(() => {
      const i = this.events.findIndex((e) => e.event === name && match((e.data ?? {}) as Json));
      if (i >= 0) found = this.events.splice(i, 1)[0];
      return found !== undefined;
    }, timeoutMs, `QMP event ${name}`);
    return found!;
  }

  private async waitFor(ok: () => boolean, timeoutMs: number, what: string) {
    const until = Date.now() + timeoutMs;
    while (!ok()) {
      if (Date.now() > until) throw new Error(`${what}: not within ${timeoutMs} ms`);
      await new Promise<void>((res) => {
        this.wake = res;
        setTimeout(res, 100);
      });
    }
  }

  close(): void {
    this.sock.destroy();
  }
}
