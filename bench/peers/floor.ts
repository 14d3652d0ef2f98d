// The C floor (floor.c): the same exec round trip with no JavaScript in the agent (a C server that
// posix_spawns, reads stdout to EOF, waits, answers in one write), and with none anywhere (a C client too),
// through the same kind of socket in the same run. Each exec and sequential target the agent misses is
// stated against these rows (targets.ts): what is the design's floor, and what is ours.
import type { Socket } from "bun";
import { join } from "node:path";
import { run, start, waitUnix } from "../_procs.ts";

const SRC = join(import.meta.dir, "floor.c");

/** Compiles floor.c into `dir`; undefined (with the reason) when there is no C compiler. */
export async function buildFloor(dir: string): Promise<{ bin?: string; why?: string }> {
  const cc = Bun.which("gcc") ?? Bun.which("cc");
  if (!cc) return { why: "no C compiler (bash bench/deps.sh installs gcc)" };
  const bin = join(dir, "floor");
  await run([cc, "-O2", "-o", bin, SRC], 60_000);
  return { bin };
}

export async function startFloor(bin: string, dir: string, lifeMs: number) {
  const sock = join(dir, `floor-${Math.random().toString(36).slice(2, 8)}.sock`);
  const proc = start([bin, "serve", sock], { timeoutMs: lifeMs, stderr: "inherit" });
  await waitUnix(sock, 10_000, 5);
  return { proc, sock };
}

/** `floor client` or `floor local`: n round trips timed in C, in ms. */
export async function floorTimes(bin: string, args: string[]): Promise<number[]> {
  const out = await run([bin, ...args], 120_000);
  return out.trim().split("\n").map((l) => Number(l) / 1000);
}

/** A Bun socket speaking floor.c's framing: the C server seen from JavaScript, without the host library. */
export class FloorClient {
  private sock!: Socket<undefined>;
  private buf = new Uint8Array(0);
  private waiting?: (r: { status: number; stdout: string }) => void;

  static async connect(path: string): Promise<FloorClient> {
    const c = new FloorClient();
    c.sock = await Bun.connect({ unix: path, socket: { data: (_s, d) => c.onData(d) } });
    return c;
  }

  private onData(d: Uint8Array): void {
    const b = new Uint8Array(this.buf.byteLength + d.byteLength);
    b.set(this.buf);
    b.set(d, this.buf.byteLength);
    this.buf = b;
    if (b.byteLength < 8) return;
    const v = new DataView(b.buffer, b.byteOffset);
    const len = v.getUint32(4, true);
    if (b.byteLength < 8 + len) return;
    const status = v.getUint32(0, true);
    const stdout = new TextDecoder().decode(b.subarray(8, 8 + len));
    this.buf = b.slice(8 + len);
    this.waiting?.({ status, stdout });
  }

  run(argv: string[]): Promise<{ status: number; stdout: string }> {
    const body = new TextEncoder().encode(argv.map((a) => `${a}\0`).join(""));
    const req = new Uint8Array(4 + body.byteLength);
    new DataView(req.buffer).setUint32(0, body.byteLength, true);
    req.set(body, 4);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error("floor: no answer in 10 s")), 10_000);
      this.waiting = (r) => {
        clearTimeout(t);
        resolve(r);
      };
      if (this.sock.write(req) !== req.byteLength) reject(new Error("floor: short write"));
    });
  }

  close(): void {
    this.sock.end();
  }
}
