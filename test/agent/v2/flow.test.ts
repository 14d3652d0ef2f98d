// Flow control (PROTOCOL.md §7): an execution without credit stops, others go on; credit given back lets
// it resume; the agent never sends more than it was given. Both hosts: our TS one and the Python one.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { v2Fixture } from "./_fixture.ts";
import { T, V2Host, json } from "./_host.ts";
import { groupMembers, isAlive } from "../../helpers/proc.ts";
import { pyHost } from "./_pyhost.ts";

const WINDOW = 262144;
const fx = v2Fixture("vge-v2f-");

/** Waits until `id`'s byte count has not moved for `quietMs`; returns it. */
async function settled(h: V2Host, id: number, quietMs = 300): Promise<number> {
  let last = -1;
  for (let i = 0; i < 50; i++) {
    const n = h.outputBytes(id);
    if (n === last) return n;
    last = n;
    await Bun.sleep(quietMs);
  }
  throw new Error(`output of ${id} never settled`);
}

const state = (pid: number) => {
  const s = readFileSync(`/proc/${pid}/stat`, "utf8");
  return s.slice(s.lastIndexOf(")") + 2)[0];
};

describe("TS host", () => {
  test("an execution without credit stops at one window; another completes meanwhile; then it resumes", async () => {
    const a = fx.id();
    const b = fx.id();
    fx.host.held.add(a);
    await fx.host.sendJson(T.EXEC, a, { shell: "head -c 4000000 /dev/zero; echo done >&2" });
    const pidA = json(await fx.host.until((f) => f.id === a && f.type === T.STARTED)).pid as number;
    expect(await settled(fx.host, a)).toBe(WINDOW);
    // A is blocked writing to its pipe, not finished and not killed.
    expect(isAlive(pidA)).toBe(true);
    expect(fx.host.of(a).some((f) => f.type === T.EXIT)).toBe(false);

    const rb = await fx.host.run(b, { shell: "seq 1 100000" });
    expect(rb.stdout).toBe(Array.from({ length: 100000 }, (_, i) => `${i + 1}\n`).join(""));
    expect(fx.host.outputBytes(a)).toBe(WINDOW);

    // Partial credit: exactly that much more, no byte over.
    await fx.host.grant(a, 1000);
    expect(await settled(fx.host, a)).toBe(WINDOW + 1000);

    await fx.host.release(a);
    const ra = await fx.host.exit(a, 10_000);
    expect(ra.frames.filter((f) => f.type === T.STDOUT).reduce((n, f) => n + f.payload.byteLength, 0)).toBe(4_000_000);
    expect(ra.stderr).toBe("done\n");
    expect(ra.exit).toEqual({ status: "exited", code: 0 });
  }, 20_000);

  test("a terminal without credit is left unread: the job blocks in write (not stopped) and goes on when credit comes", async () => {
    const a = fx.id();
    fx.host.held.add(a);
    await fx.host.sendJson(T.EXEC, a, { shell: "seq 1 400000", pty: { cols: 80, rows: 24 } });
    const pidA = json(await fx.host.until((f) => f.id === a && f.type === T.STARTED)).pid as number;
    expect(await settled(fx.host, a)).toBeLessThanOrEqual(WINDOW);
    // Sleeping in write(2) on a full terminal, as on a full pipe; no signal was needed.
    const blocked = groupMembers(pidA).map(state);
    expect(blocked.length).toBeGreaterThan(0);
    expect(blocked.every((s) => s === "S")).toBe(true);

    // Another execution meanwhile is not affected.
    expect((await fx.host.run(fx.id(), { argv: ["echo", "unaffected"] })).stdout).toBe("unaffected\n");

    await fx.host.release(a);
    const r = await fx.host.exit(a, 15_000);
    expect(r.stdout.replace(/\r\n/g, "\n")).toBe(Array.from({ length: 400000 }, (_, i) => `${i + 1}\n`).join(""));
    expect(r.exit).toEqual({ status: "exited", code: 0 });
  }, 30_000);

  test("a GET without credit stops at one window while an exec completes", async () => {
    const path = fx.dir.file("big.bin");
    const data = new Uint8Array(1_000_000).map((_, i) => i % 251);
    await Bun.write(path, data);
    const g = fx.id();
    fx.host.held.add(g);
    await fx.host.sendJson(T.GET, g, { path });
    expect(await settled(fx.host, g)).toBe(WINDOW);
    expect((await fx.host.run(fx.id(), { argv: ["echo", "ok"] })).stdout).toBe("ok\n");
    await fx.host.release(g);
    const result = await fx.host.until((f) => f.id === g && f.type === T.RESULT, 10_000);
    expect(json(result)).toMatchObject({ ok: true, size: 1_000_000 });
    const got = Buffer.concat(fx.host.of(g).filter((f) => f.type === T.FILE_DATA).map((f) => f.payload));
    expect(got.equals(Buffer.from(data))).toBe(true);
  }, 20_000);

  test("stdin credit: the agent gives credit back as it writes; a host may send far more than one window", async () => {
    const n = fx.id();
    const data = new Uint8Array(3 * WINDOW + 12345).fill(0x61);
    const r = await fx.host.run(n, { argv: ["wc", "-c"] }, { stdin: data, eof: true });
    expect(r.stdout.trim()).toBe(String(data.byteLength));
    const returned = r.frames.filter((f) => f.type === T.WINDOW).reduce((s, f) => s + Buffer.from(f.payload).readUInt32LE(0), 0);
    expect(returned).toBe(data.byteLength);
  });
});

test("Python host: exec 1 gets no credit until exec 2 is done; 2 is unaffected, then 1 resumes and completes", async () => {
  const path = fx.sock;
  const py = pyHost("connect", path, {
    timeout_s: 20,
    ops: [
      { op: "exec", id: 1, req: { shell: "head -c 2000000 /dev/zero" }, credit: { hold_until_done: [2] } },
      // Starts once 1 has filled its window, so 1 is certainly stalled while 2 runs.
      { op: "exec", id: 2, delay_ms: 300, req: { shell: "sleep 0.3; seq 1 50000" } },
    ],
  });
  const rep = await py.report;
  expect(rep.ok).toBe(true);
  const [one, two] = [rep.ops["1"], rep.ops["2"]];
  expect(two.exit).toEqual({ status: "exited", code: 0 });
  expect(two.stdout.sha256).toBe(new Bun.CryptoHasher("sha256").update(Array.from({ length: 50000 }, (_, i) => `${i + 1}\n`).join("")).digest("hex"));
  expect(one.exit).toEqual({ status: "exited", code: 0 });
  expect(one.stdout.bytes).toBe(2_000_000);
  // Never more outstanding than the window, and 1 could only finish after 2.
  expect(one.max_outstanding).toBe(WINDOW);
  expect(one.t_exit_ms).toBeGreaterThan(two.t_exit_ms);
}, 30_000);
