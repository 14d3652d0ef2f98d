// The hybrid-vsock CONNECT handshake against a fake muxer standing in for Firecracker / Cloud Hypervisor:
// it listens on `uds_path`, reads `CONNECT P\n`, answers, and joins the stream to the real agent.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { connect as netConnect, createServer, type Server, type Socket } from "node:net";
import { T, encodeJson } from "../../src/protocol/index.ts";
import { connect, GuestError } from "../../src/host/index.ts";
import type { RunningAgent } from "../helpers/agent.ts";
import { listeningAgent, stop, tempDir } from "./_fixtures.ts";

type Answer = "ok" | "refuse" | "garbage" | "silent" | "eager";

const dir = tempDir("vge-fc-");
const UDS = dir.file("v.sock");
let agent: RunningAgent;
let muxer: Server;
let answer: Answer = "ok";
const requested: string[] = [];

/** Reads up to the first newline; hands back the line and whatever came after it. */
function readLine(sock: Socket): Promise<[string, Buffer]> {
  return new Promise((resolve) => {
    let buf = Buffer.alloc(0);
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const nl = buf.indexOf(10);
      if (nl < 0) return;
      sock.off("data", onData);
      sock.pause();
      resolve([buf.subarray(0, nl).toString(), buf.subarray(nl + 1)]);
    };
    sock.on("data", onData);
  });
}

beforeAll(async () => {
  agent = await listeningAgent(dir.file("agent.sock"), 120_000);
  muxer = createServer({ allowHalfOpen: true }, async (host) => {
    const [line, rest] = await readLine(host);
    requested.push(line);
    if (answer === "refuse") return void host.destroy();
    if (answer === "garbage") return void host.end("ERR no listener\n");
    if (answer === "silent") return;
    if (answer === "eager") {
      // OK and the guest's first frame in one write: the host must not swallow the frame with the line.
      const welcome = encodeJson(T.WELCOME, 0, { version: 2, agent: "fake", capabilities: [], hostname: "eager", kernel: "", arch: "x64", initrd: false, pid: 1, maxPayload: 262144, window: 262144 });
      return void host.write(Buffer.concat([Buffer.from("OK 1073741824\n"), welcome]));
    }
    const guest = netConnect({ path: dir.file("agent.sock"), allowHalfOpen: true }, () => {
      host.write("OK 1073741824\n");
      if (rest.length) guest.write(rest);
      host.pipe(guest);
      guest.pipe(host);
      host.resume();
    });
    guest.on("error", () => host.destroy());
    host.on("error", () => guest.destroy());
  });
  await new Promise<void>((r) => muxer.listen(UDS, r));
});

afterAll(() => {
  muxer?.close();
  stop(agent);
  dir.remove();
});

test("fc:UDS_PATH:PORT: CONNECT PORT, OK, then v2 to the agent", async () => {
  answer = "ok";
  const guest = await connect(`fc:${UDS}:1024`);
  expect(requested.at(-1)).toBe("CONNECT 1024");
  expect(guest.info.pid).toBe(agent.proc.pid);
  const r = await guest.run(["sh", "-c", "cat; echo err >&2; exit 3"], { input: "through the muxer\n" });
  expect(r).toMatchObject({ code: 3, stdoutText: "through the muxer\n", stderrText: "err\n" });
  guest.close();
});

test("bytes right after the OK line belong to the guest", async () => {
  answer = "eager";
  const guest = await connect(`fc:${UDS}:52`);
  expect(guest.info.hostname).toBe("eager");
  guest.close();
});

test.each([
  ["refuse", /the VMM closed the connection after CONNECT 7 \(is the agent listening on guest port 7\?\)/],
  ["garbage", /expected "OK <port>" after CONNECT 7, got "ERR no listener"/],
] as const)("a muxer that answers %s: one clear error", async (mode, why) => {
  answer = mode;
  const err = await connect(`fc:${UDS}:7`).catch((e) => e);
  expect(err).toBeInstanceOf(GuestError);
  expect(err.code).toBe("EHANDSHAKE");
  expect(err.message).toMatch(why);
  expect(err.message).toStartWith(`fc:${UDS}:7: `);
});

test("a muxer that never answers times out", async () => {
  answer = "silent";
  const t0 = performance.now();
  const err = await connect(`fc:${UDS}:9`, { connectTimeoutMs: 300 }).catch((e) => e);
  expect(err.code).toBe("EHANDSHAKE");
  expect(err.message).toMatch(/no answer to CONNECT 9 within 0.3 s/);
  expect(performance.now() - t0).toBeLessThan(2000);
});

test("retrying: a port refused at first is connected once the muxer accepts it", async () => {
  answer = "refuse";
  setTimeout(() => (answer = "ok"), 400);
  const retries: string[] = [];
  const guest = await connect(`fc:${UDS}:1024`, { retryMs: 5000, onRetry: (e) => retries.push(e.message) });
  expect(retries.length).toBeGreaterThan(0);
  expect((await guest.run(["true"])).code).toBe(0);
  guest.close();
});
