// Malformed input (PROTOCOL.md §9): ERROR {code, message}, then the agent closes that connection and
// kills its executions, while it goes on serving its other connections and later ones (listen mode).
import { beforeAll, describe, expect, test } from "bun:test";
import { v2Fixture } from "./_fixture.ts";
import { T, V2Host, json } from "./_host.ts";
import { groupGone, groupMembers } from "../../helpers/proc.ts";
import { pyHost } from "./_pyhost.ts";
import { MAGIC, encodeFrame, encodeJson } from "../../../src/protocol/v2/frame.ts";

/** fx.host is the bystander: a connection that behaves, open across every malformed one, with an execution waiting for input throughout. */
const fx = v2Fixture("vge-v2m-");
const BYSTANDER_EXEC = 1;

beforeAll(async () => {
  await fx.host.sendJson(T.EXEC, BYSTANDER_EXEC, { shell: 'read x; echo "survived $x"' });
  await fx.host.until((f) => f.id === BYSTANDER_EXEC && f.type === T.STARTED);
});

const hex = (h: string) => new Uint8Array(Buffer.from(h, "hex"));
const utf8 = (s: string) => new TextEncoder().encode(s);
const EXEC_SLEEP = encodeJson(T.EXEC, 5, { argv: ["sleep", "100"] });

// [name, bytes after a good HELLO (or instead of it), expected code, say HELLO first]
const cases: [string, Uint8Array[], string, boolean][] = [
  ["length below 5", [hex("040000001001000000")], "EPROTO", true],
  ["length above the maximum", [hex("060004001401000000")], "EPROTO", true],
  ["length 0xFFFFFFFF", [hex("ffffffff1001000000")], "EPROTO", true],
  ["unknown type 0x55", [hex("050000005501000000")], "EPROTO", true],
  ["EXEC with invalid JSON", [encodeFrame(T.EXEC, 1, utf8('{"argv": ['))], "EPROTO", true],
  ["EXEC with a JSON array", [encodeFrame(T.EXEC, 1, utf8("[1]"))], "EPROTO", true],
  ["EXEC with payload that is not UTF-8", [encodeFrame(T.EXEC, 1, hex("7bff7d"))], "EPROTO", true],
  ["EXEC without argv or shell", [encodeJson(T.EXEC, 1, { cwd: "/" })], "EPROTO", true],
  ["EXEC with both argv and shell", [encodeJson(T.EXEC, 1, { argv: ["true"], shell: "true" })], "EPROTO", true],
  ["EXEC with argv of a number", [encodeJson(T.EXEC, 1, { argv: [1] })], "EPROTO", true],
  ["EXEC with id 0", [encodeJson(T.EXEC, 0, { argv: ["true"] })], "EPROTO", true],
  ["EXEC reusing an open id", [EXEC_SLEEP, EXEC_SLEEP], "EPROTO", true],
  ["PUT reusing an open exec id", [EXEC_SLEEP, encodeJson(T.PUT, 5, { path: "/tmp/x", size: 1 })], "EPROTO", true],
  ["a frame only the agent sends (STDOUT)", [encodeFrame(T.STDOUT, 1, utf8("x"))], "EPROTO", true],
  ["WINDOW of 3 bytes", [EXEC_SLEEP, encodeFrame(T.WINDOW, 5, new Uint8Array(3))], "EPROTO", true],
  ["PING over 64 bytes", [encodeFrame(T.PING, 1, new Uint8Array(65))], "EPROTO", true],
  ["SIGNAL with an unknown name", [EXEC_SLEEP, encodeJson(T.SIGNAL, 5, { signal: "SIGNOPE" })], "EPROTO", true],
  ["EXEC before HELLO", [MAGIC, EXEC_SLEEP], "EPROTO", false],
  ["HELLO with invalid JSON", [MAGIC, encodeFrame(T.HELLO, 0, utf8("{"))], "EPROTO", false],
];

describe("malformed input: ERROR, then the connection closes", () => {
  test.each(cases)("%s", async (_name, chunks, code, greet) => {
    const h = await V2Host.connect(fx.sock);
    if (greet) await h.hello();
    for (const c of chunks) await h.write(c).catch(() => {});
    const err = await h.until((f) => f.type === T.ERROR, 5000, "ERROR");
    expect(err.id).toBe(0);
    expect(json(err).code).toBe(code);
    expect(typeof json(err).message).toBe("string");
    expect(await h.closedWithin(2000)).toBe(true);
    // ERROR is the last frame.
    expect(h.frames.at(-1)).toBe(err);
    // Whatever this connection started is killed with it.
    for (const f of h.frames.filter((f) => f.type === T.STARTED)) expect(await groupGone(json(f).pid, 2000)).toEqual([]);
  }, 15_000);
});

// A host that ignores its credit. How much the agent has passed on (and so given back) when the excess
// arrives depends on timing, so the host streams without regard to WINDOW until the agent objects. The
// Python host does this: it goes on reading after its writes fail, so the ERROR is seen even when the
// agent closes while the host is still writing.
describe("credit overrun: ERROR EFLOW (Python host)", () => {
  test.each([
    ["STDIN to a process that never reads", { op: "exec", id: 5, req: { argv: ["sleep", "100"] }, stdin_gen: { size: 64 << 20, seed: 1 }, ignore_credit: true }],
    ["FILE_DATA of a PUT", { op: "put", id: 6, req: { path: "/tmp/vge-v2m-never-written" }, gen: { size: 64 << 20, seed: 1 }, chunk: 262144, ignore_credit: true }],
  ])("%s", async (_name, op) => {
    const rep = await pyHost("connect", fx.sock, { timeout_s: 10, ops: [op] }).report;
    expect(rep.error?.code).toBe("EFLOW");
    expect(rep.closed_by_agent).toBe(true);
    const pid = rep.ops[String(op.id)].started?.pid;
    if (pid) expect(await groupGone(pid, 2000)).toEqual([]);
  }, 15_000);
});

test("an ERROR kills the executions of that connection only", async () => {
  const bad = await V2Host.connect(fx.sock);
  await bad.hello();
  await bad.sendJson(T.EXEC, 1, { shell: "sleep 100 & sleep 100 & wait" });
  const pgid = json(await bad.until((f) => f.type === T.STARTED)).pid as number;
  for (let t = 0; groupMembers(pgid).length < 3 && t < 100; t++) await Bun.sleep(20);
  await bad.write(hex("050000005501000000"));
  await bad.until((f) => f.type === T.ERROR);
  expect(await groupGone(pgid, 2000)).toEqual([]);
  // The bystander's execution is still running.
  expect(fx.host.of(BYSTANDER_EXEC).filter((f) => f.type === T.EXIT).map((f) => json(f))).toEqual([]);
}, 15_000);

test("Python host: a malformed frame gets ERROR and a close", async () => {
  const py = pyHost("connect", fx.sock, { timeout_s: 10, linger_ms: 3000, ops: [{ op: "ping", id: 1, data_hex: "01" }, { op: "raw", id: 2, after: [1], hex: "050000005501000000" }] });
  const rep = await py.report;
  expect(rep.ops["1"].echo_ok).toBe(true);
  expect(rep.error.code).toBe("EPROTO");
  expect(rep.closed_by_agent).toBe(true);
}, 15_000);

test("a connection that sends no magic is the original format: nothing is ever written to it", async () => {
  const h = await V2Host.connect(fx.sock);
  // An original persistent frame in a disposable agent: served as a disposable command, no reply.
  await h.write(utf8("true"));
  (h as unknown as { sock: { end(): void } }).sock.end();
  expect(await h.closedWithin(3000)).toBe(true);
  expect(h.frames).toEqual([]);
  expect(h.decodeError).toBeUndefined();
});

test("after all of that, the other connection and its execution were unaffected, and new ones are served", async () => {
  // It has been waiting for a line all along; it gets one only now.
  await fx.host.send(T.STDIN, BYSTANDER_EXEC, new TextEncoder().encode("ok\n"));
  const r = await fx.host.exit(BYSTANDER_EXEC, 10_000);
  expect(r.stdout).toBe("survived ok\n");
  expect(r.exit).toEqual({ status: "exited", code: 0 });
  expect((await fx.host.run(2, { argv: ["echo", "still"] })).stdout).toBe("still\n");
  const later = await V2Host.connect(fx.sock);
  await later.hello();
  expect((await later.run(1, { argv: ["echo", "later"] })).stdout).toBe("later\n");
  later.close();
  expect(fx.agent.proc.exitCode).toBeNull();
}, 15_000);
