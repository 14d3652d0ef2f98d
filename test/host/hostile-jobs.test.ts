// The host's side of job control against a hand-made hostile agent (./_hostile.ts): LISTING, ATTACHED and
// DETACHED are validated field by field, a LIST answered without end is cut off at MAX_LIST_ENTRIES, and
// `vge ps` prints a guest's command line with its control characters escaped.
import { afterAll, expect, test } from "bun:test";
import { T, encodeJson, encodeWindow } from "../../src/protocol/index.ts";
import { MAX_LIST_ENTRIES } from "../../src/protocol/v2/jobs.ts";
import { GuestError, connect } from "../../src/host/index.ts";
import { vge, vgeLines } from "../cli/_vge.ts";
import { hostileAgents, type HostileOptions } from "./_hostile.ts";
import { tempDir } from "./_fixtures.ts";

const dir = tempDir("vge-hostile-jobs-");
afterAll(() => dir.remove());
const agents = hostileAgents(dir);
const agent = (onFrame: NonNullable<HostileOptions["onFrame"]>) => agents({ onFrame });

const job = (over: Record<string, unknown> = {}) => ({ job: 1, tag: "t", pid: 5, argv: ["sleep", "9"], startedAt: 1, state: "running", attached: false, stdout: { total: 0, kept: 0 }, stderr: { total: 0, kept: 0 }, ...over });

test.each([
  ["a tag with an escape sequence", { jobs: [job({ tag: "x\u001b[2J" })], more: false }],
  ["argv of 100 000 characters", { jobs: [job({ argv: ["x".repeat(100_000)] })], more: false }],
  ["a negative total", { jobs: [job({ stdout: { total: -1, kept: 0 } })], more: false }],
  ["an unknown state", { jobs: [job({ state: "zombie" })], more: false }],
  ["an exit with a bad signal name", { jobs: [job({ state: "exited", exit: { status: "signaled", signal: "\u001b", signo: 9 } })], more: false }],
  ["more not a boolean", { jobs: [], more: "yes" }],
])("list(): a LISTING with %s is EPROTO", async (_name, body) => {
  const a = await agent((f, sock) => {
    if (f.type === T.LIST) sock.write(encodeJson(T.LISTING, f.id, body));
  });
  const g = await connect(a.addr);
  const err = await g.list().catch((e) => e);
  expect(err).toBeInstanceOf(GuestError);
  expect(err.code).toBe("EPROTO");
  g.close();
});

test(`list(): LISTING frames with more:true without end are cut off after ${MAX_LIST_ENTRIES} entries`, async () => {
  let pages = 0;
  const a = await agent((f, sock) => {
    if (f.type !== T.LIST) return;
    const flood = () => {
      if (sock.destroyed || pages > 10_000) return;
      pages++;
      sock.write(encodeJson(T.LISTING, f.id, { jobs: Array.from({ length: 100 }, (_, i) => job({ job: i + 1 })), more: true }), () => setImmediate(flood));
    };
    flood();
  });
  const g = await connect(a.addr);
  const err = await g.list().catch((e) => e);
  expect(err.code).toBe("EPROTO");
  expect(err.message).toContain(`more than ${MAX_LIST_ENTRIES}`);
  expect(pages).toBeLessThan(MAX_LIST_ENTRIES / 100 + 20);
});

test("attach(): an ATTACHED with a negative dropped count is EPROTO; a DETACHED's message is escaped", async () => {
  const a = await agent((f, sock) => {
    if (f.type !== T.ATTACH) return;
    const body = JSON.parse(new TextDecoder().decode(f.payload));
    if (body.tag === "bad") sock.write(encodeJson(T.ATTACHED, f.id, { job: 1, tag: "bad", pid: 2, state: "running", stdout: { from: 0, dropped: -5 }, stderr: { from: 0, dropped: 0 } }));
    else sock.write(encodeJson(T.DETACHED, f.id, { errno: "ENOENT", message: "no job \u001b]0;pwned\u0007" }));
  });
  const g = await connect(a.addr);
  const e1 = await g.attach("other").exited.catch((e) => e);
  expect(e1.code).toBe("ENOENT");
  expect(e1.message).not.toContain("\u001b");
  expect(e1.message).toContain("\\e]0;pwned");
  const e2 = await g.attach("bad").exited.catch((e) => e);
  expect(e2.code).toBe("EPROTO");
});

test("vge ps escapes a guest's command line: no control character reaches the terminal", async () => {
  const a = await agent((f, sock) => {
    if (f.type === T.LIST) sock.write(encodeJson(T.LISTING, f.id, { jobs: [job({ argv: ["sh", "-c", "\u001b[2J\u001b]0;pwned\u0007 rm"] })], more: false }));
  });
  const r = await vge(["ps", a.addr]);
  expect(r.code).toBe(0);
  expect(r.stdout).not.toContain("\u001b");
  expect(r.stdout).toContain("\\e[2J");
  expect(vgeLines(r.stderr)).toEqual([]);
});

test("attach(): stdin waits for ATTACHED and sends no more than its `stdin` credit until a WINDOW; a bad `stdin` is EPROTO", async () => {
  let stdinBytes = 0;
  let attachId = 0;
  let sock: import("node:net").Socket | undefined;
  const a = await agent((f, s) => {
    sock = s;
    if (f.type === T.STDIN) stdinBytes += f.payload.byteLength;
    if (f.type !== T.ATTACH) return;
    const body = JSON.parse(new TextDecoder().decode(f.payload));
    const attached = { job: 1, tag: body.tag, pid: 2, state: "running", stdout: { from: 0, dropped: 0 }, stderr: { from: 0, dropped: 0 } };
    if (body.tag === "bad") return void s.write(encodeJson(T.ATTACHED, f.id, { ...attached, stdin: -1 }));
    attachId = f.id;
    // ATTACHED only after a while: stdin written meanwhile must wait for it.
    setTimeout(() => s.write(encodeJson(T.ATTACHED, f.id, { ...attached, stdin: 1000 })), 200);
  });
  const g = await connect(a.addr);
  const q = g.attach("small");
  const w = q.stdin!.getWriter();
  const written = w.write(new Uint8Array(5000));
  await Bun.sleep(100);
  expect(stdinBytes).toBe(0);
  await q.started;
  await Bun.sleep(200);
  expect(stdinBytes).toBe(1000);
  sock!.write(encodeWindow(attachId, 4000));
  await written;
  await Bun.sleep(100);
  expect(stdinBytes).toBe(5000);
  const e = await g.attach("bad").exited.catch((e) => e);
  expect(e.code).toBe("EPROTO");
  g.close();
});
