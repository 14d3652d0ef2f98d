// One binary, old and new hosts: the agent started in persistent mode serves an original-format host
// exactly as before (u16 LE length + command, never a byte back), and a v2 host on the same binary.
import { afterEach, beforeEach, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { createServer, type Socket } from "node:net";
import { tempDir, type TempDir } from "../../helpers/tmp.ts";
import { dialingAgent } from "./_agent.ts";
import { pyHost } from "./_pyhost.ts";

let dir: TempDir;
beforeEach(() => void (dir = tempDir("vge-v2o-")));
afterEach(() => dir.remove());

/** Listens on `path`; for the first connection, runs `play` and collects every byte the agent sends. */
async function originalHost(path: string, play: (s: Socket) => Promise<void>): Promise<{ received: Promise<Buffer>; close(): void }> {
  let done!: (b: Buffer) => void;
  const received = new Promise<Buffer>((r) => (done = r));
  const server = createServer({ allowHalfOpen: true }, (sock) => {
    const got: Buffer[] = [];
    sock.on("data", (d: Buffer) => got.push(d));
    sock.on("close", () => done(Buffer.concat(got)));
    sock.on("error", () => {});
    void play(sock);
  });
  await new Promise<void>((r) => server.listen(path, () => r()));
  return { received, close: () => server.close() };
}

const frame = (cmd: string | Buffer) => {
  const body = typeof cmd === "string" ? Buffer.from(cmd) : cmd;
  const len = Buffer.alloc(2);
  len.writeUInt16LE(body.byteLength);
  return Buffer.concat([len, body]);
};

test("persistent: length-prefixed commands run in order; the agent never writes a byte", async () => {
  const log = dir.file("log");
  // 255 bytes: the first byte on the wire is FF, as in the v2 magic; the second (00) is not.
  const first = `echo first >> ${log}; :`.padEnd(255, " ");
  expect(Buffer.from(first).byteLength).toBe(255);
  const host = await originalHost(dir.file("host.sock"), async (s) => {
    s.write(frame(first));
    await Bun.sleep(50);
    s.write(frame(`echo second >> ${log}`));
    s.write(frame("")); // length 0: nothing runs
    s.write(frame("x".repeat(2049))); // over 2048: dropped, the stream stays in sync
    s.write(Buffer.concat([frame(`echo third >> ${log}`), frame(`echo fourth >> ${log}`)]));
    await Bun.sleep(300);
    s.end();
  });
  const agent = dialingAgent(dir.file("host.sock"), ["persistent"]);
  const code = await agent.exited;
  host.close();
  expect(code).toBe(0);
  expect(readFileSync(log, "utf8")).toBe("first\nsecond\nthird\nfourth\n");
  expect((await host.received).byteLength).toBe(0);
  expect(agent.log()).not.toContain("speaks protocol v2");
}, 20_000);

test("disposable: a raw command runs with the connection as its stdio; the agent writes nothing itself", async () => {
  const marker = dir.file("marker");
  const host = await originalHost(dir.file("host.sock"), async (s) => {
    s.write(`echo ran > ${marker}; exit 5`);
    s.end();
  });
  const agent = dialingAgent(dir.file("host.sock"));
  expect(await agent.exited).toBe(5);
  host.close();
  expect(readFileSync(marker, "utf8")).toBe("ran\n");
  expect((await host.received).byteLength).toBe(0);
}, 20_000);

test("the same binary in persistent mode speaks v2 to a host that sends the magic (Python host)", async () => {
  const path = dir.file("py.sock");
  const py = pyHost("listen", path, {
    timeout_s: 15,
    ops: [
      { op: "exec", id: 1, req: { argv: ["sh", "-c", "echo out; echo err >&2; exit 3"] } },
      { op: "exec", id: 2, req: { argv: ["cat"] }, stdin: "through stdin\n", eof: true },
      { op: "ping", id: 3, data_hex: "00ff" },
    ],
  });
  await py.ready;
  const agent = dialingAgent(path, ["persistent"]);
  const rep = await py.report;
  expect(await agent.exited).toBe(0);
  expect(rep.ok).toBe(true);
  expect(rep.welcome.version).toBe(2);
  expect(rep.ops["1"]).toMatchObject({ exit: { status: "exited", code: 3 }, stdout: { text: "out\n" }, stderr: { text: "err\n" }, after_exit: 0 });
  expect(rep.ops["1"].order.at(-1)).toBe("EXIT");
  expect(rep.ops["2"].stdout.text).toBe("through stdin\n");
  expect(rep.ops["3"].echo_ok).toBe(true);
  expect(existsSync(path)).toBe(false);
}, 20_000);
