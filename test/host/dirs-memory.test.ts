// A hostile guest answers getDir with DIR_ENTRY{dir} over and over (20,000 times one 4 KiB path, or 20,000
// distinct ones), within the window, so that only the receiver's own bookkeeping could grow. The host
// library runs in a child process whose RSS is read from /proc/PID/status: it must stay bounded (before:
// a fix-up entry per DIR_ENTRY, +118 MiB for 20,000 repeats).
import { afterAll, expect, test } from "bun:test";
import type { Socket } from "node:net";
import { join } from "node:path";
import { T, decodeWindow, encodeFrame, encodeJson } from "../../src/protocol/index.ts";
import { ROOT } from "../helpers/build.ts";
import { lowestRss, vmRssKiB } from "../helpers/proc.ts";
import { tempDir } from "./_fixtures.ts";
import { hostileAgents } from "./_hostile.ts";

const dir = tempDir("vge-dirmem-");
afterAll(() => dir.remove());
const agent = hostileAgents(dir);
const WINDOW = 262144;
const WELCOME = { version: 2, agent: "fake", capabilities: ["exec", "files", "dirs"], hostname: "fake", kernel: "0", arch: "x64", initrd: false, pid: 1, maxPayload: 262144, window: WINDOW };
const N = 20_000;
/** 19 components of 200 bytes: a path of 3,818 bytes, so that every entry is a big one. */
const DEEP = Array.from({ length: 19 }, (_, i) => String.fromCharCode(97 + i).repeat(200)).join("/");

const CHILD = `
import { connect } from ${JSON.stringify(join(ROOT, "src/host/index.ts"))};
const [addr, target] = process.argv.slice(2);
const g = await connect(addr);
const r = await g.getDir("/remote", target).catch((e) => ({ code: e.code, message: e.message }));
g.close();
console.log(JSON.stringify(r));
`;

/** The fake's side of one GETDIR: sends entries within the credit the host gives back. */
class Flood {
  private credit = WINDOW;
  private wake: (() => void) | undefined;
  constructor(
    private readonly sock: Socket,
    readonly id: number,
  ) {}
  windowed(n: number): void {
    this.credit += n;
    this.wake?.();
  }
  private until(cond: () => boolean): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no credit back (${this.credit} of ${WINDOW})`)), 60_000);
      const check = () => {
        if (!cond()) return void (this.wake = check);
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
      check();
    });
  }
  /** Sends `n` entries, then waits until the host has written all of them (all credit back). */
  async entries(n: number, path: (i: number) => string): Promise<void> {
    for (let i = 0; i < n; i++) {
      const frame = encodeJson(T.DIR_ENTRY, this.id, { type: "dir", path: path(i), mode: 0o755, mtime: 1.7e12 });
      const cost = frame.byteLength - 9;
      await this.until(() => this.credit >= cost);
      this.credit -= cost;
      this.sock.write(frame);
    }
    await this.until(() => this.credit === WINDOW);
  }
  end(dirs: number): void {
    this.sock.write(encodeFrame(T.DIR_END, this.id));
    this.sock.write(encodeJson(T.RESULT, this.id, { ok: true, files: 0, dirs, symlinks: 0, bytes: 0, skipped: 0 }));
  }
}

test.each([
  ["one directory repeated", (_i: number) => `${DEEP}/x`],
  ["distinct directories", (i: number) => `${DEEP}/d${i}`],
])(`getDir, ${N} DIR_ENTRY{dir} of ~3.8 KiB paths (%s): the host's RSS stays bounded`, async (what, path) => {
  let started!: (f: Flood) => void;
  const flooding = new Promise<Flood>((r) => (started = r));
  let flood: Flood | undefined;
  const fake = await agent({
    welcome: WELCOME,
    onFrame: (f, sock) => {
      if (f.type === T.GETDIR) started((flood = new Flood(sock, f.id)));
      else if (f.type === T.WINDOW && flood) flood.windowed(decodeWindow(f));
    },
  });
  const script = dir.file(`child-${what.split(" ")[0]}.mjs`);
  await Bun.write(script, CHILD);
  const target = dir.file(`target-${what.split(" ")[0]}`);
  const child = Bun.spawn(["bun", script, fake.addr, target], { stdout: "pipe", stderr: "pipe", timeout: 180_000, killSignal: "SIGKILL" });
  try {
    const fl = await flooding;
    // Warm: the first entries make the deep directories and bring the heaps to their working size.
    await fl.entries(1000, path);
    const before = await lowestRss(child.pid, 1000);
    await fl.entries(N, (i) => path(i + 1000));
    // Measured with the stream still open: whatever the receiver keeps for DIR_END is held now.
    const after = await lowestRss(child.pid, 1000);
    const peak = vmRssKiB(child.pid);
    fl.end(N + 1000);
    const out = await new Response(child.stdout).text();
    expect(await child.exited).toBe(0);
    expect(JSON.parse(out)).toEqual({ files: 0, dirs: N + 1000, symlinks: 0, bytes: 0, skipped: 0 });
    const grew = (after - before) / 1024;
    console.log(`${what}: host RSS ${(before / 1024).toFixed(1)} MiB after 1,000 entries, ${(after / 1024).toFixed(1)} MiB after ${N} more (${grew >= 0 ? "+" : ""}${grew.toFixed(1)} MiB; last sample ${((peak ?? 0) / 1024).toFixed(1)} MiB)`);
    // ~78 MiB of headers went through; a receiver that kept anything per entry would grow by tens of MiB.
    expect(grew).toBeLessThan(16);
  } finally {
    child.kill("SIGKILL");
    // rm(1) works by directory fds; rmSync resolves each 3.8 KiB path anew and takes ~40 s for this tree.
    Bun.spawnSync(["rm", "-rf", target]);
  }
}, 240_000);
