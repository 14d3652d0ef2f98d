// Failures of the connection or the protocol, from a scripted fake agent: each rejects everything pending
// on that connection with one clear error.
import { afterAll, expect, test } from "bun:test";
import { createServer } from "node:net";
import { T, encodeFrame, encodeJson } from "../../src/protocol/index.ts";
import { connect, GuestError } from "../../src/host/index.ts";
import { tempDir } from "./_fixtures.ts";
import { hostileAgents, type HostileOptions } from "./_hostile.ts";

const dir = tempDir("vge-err-");
afterAll(() => dir.remove());
const WELCOME = { version: 2, agent: "fake", capabilities: ["exec"], hostname: "fake", kernel: "0", arch: "x64", initrd: false, pid: 1, maxPayload: 262144, window: 262144 };

const agent = hostileAgents(dir);

/** A fake agent (./_hostile.ts): answers HELLO (unless told not to) and hands later frames to `script`. */
async function fakeAgent(script: NonNullable<HostileOptions["onFrame"]>, opts: { welcome?: boolean } = {}): Promise<string> {
  return (await agent({ welcome: opts.welcome === false ? null : WELCOME, onFrame: script })).addr;
}

test("an ERROR frame rejects every pending exec and ping with the agent's code", async () => {
  let execs = 0;
  const addr = await fakeAgent((f, sock) => {
    if (f.type === T.EXEC && ++execs === 2) sock.end(encodeJson(T.ERROR, 0, { code: "EFLOW", message: "credit overrun on id 2" }));
  });
  const g = await connect(addr);
  const p1 = g.exec(["a"]);
  const p2 = g.exec(["b"]);
  const ping = g.ping();
  const errs = await Promise.all([p1.exited.catch((e) => e), p2.exited.catch((e) => e), ping.catch((e) => e)]);
  for (const e of errs) {
    expect(e).toBeInstanceOf(GuestError);
    expect(e.code).toBe("EFLOW");
    expect(e.message).toBe(`guest ${addr}: the agent reported EFLOW: credit overrun on id 2`);
  }
  expect(await new Response(p1.stdout).text().catch((e) => e.code)).toBe("EFLOW");
  expect(() => g.exec(["c"])).toThrow(/EFLOW/);
});

test("a malformed frame from the agent: EPROTO for all, connection closed", async () => {
  const addr = await fakeAgent((f, sock) => {
    if (f.type === T.EXEC) {
      sock.write(encodeFrame(T.STDOUT, f.id, new TextEncoder().encode("partial ")));
      // Type 0x55 does not exist. (Later, in its own read: the codec refuses a whole chunk at once.)
      setTimeout(() => sock.write(new Uint8Array([5, 0, 0, 0, 0x55, 1, 0, 0, 0])), 50);
    }
  });
  const g = await connect(addr);
  const p = g.exec(["x"]);
  const reader = p.stdout.getReader();
  expect(new TextDecoder().decode((await reader.read()).value)).toBe("partial ");
  const err = await p.exited.catch((e) => e);
  expect(err.code).toBe("EPROTO");
  expect(err.message).toMatch(/malformed frame from the agent: unknown frame type 0x55/);
  expect(await p.result.catch((e) => e)).toBe(err);
  expect((await reader.read().catch((e) => e)).code).toBe("EPROTO");
  await g.closed;
});

test("a frame the host never expects (EXIT with a bad status) is a protocol error too", async () => {
  const addr = await fakeAgent((f, sock) => {
    if (f.type === T.EXEC) sock.write(encodeJson(T.EXIT, f.id, { status: "vanished" }));
  });
  const g = await connect(addr);
  const err = await g.exec(["x"]).exited.catch((e) => e);
  expect(err.code).toBe("EPROTO");
  expect(err.message).toMatch(/EXIT frame: unknown status "vanished"/);
});

test("the connection dropping rejects pending work with ECLOSED, the streams error", async () => {
  const addr = await fakeAgent((f, sock) => {
    if (f.type === T.EXEC) {
      sock.write(encodeJson(T.STARTED, f.id, { pid: 4242 }));
      setTimeout(() => sock.destroy(), 50);
    }
  });
  const g = await connect(addr);
  const p = g.exec(["x"]);
  expect(await p.started).toBe(4242);
  expect(p.pid).toBe(4242);
  const err = await p.exited.catch((e) => e);
  expect(err.code).toBe("ECLOSED");
  expect(err.message).toBe(`guest ${addr}: the agent closed the connection`);
  expect((await new Response(p.stderr).text().catch((e) => e)).code).toBe("ECLOSED");
  expect((await p.stdin!.getWriter().write("x").catch((e) => e)).code).toBe("ECLOSED");
});

test("an agent that closes without a WELCOME (an original-format agent) is EHELLO, not a hang", async () => {
  const addr = await fakeAgent(() => {}, { welcome: false });
  const path = addr.slice("unix:".length);
  // Close right after the hello, as an original persistent agent does when the frame is too long.
  const closing = createServer((s) => s.once("data", () => s.destroy()));
  const p2 = `${path}.closing`;
  await new Promise<void>((r) => closing.listen(p2, r));
  const err = await connect(`unix:${p2}`).catch((e) => e);
  expect(err.code).toBe("EHELLO");
  expect(err.message).toMatch(/closed the connection without answering the hello; an agent older than 0.2.0/);
  closing.close();

  const t0 = performance.now();
  const silent = await connect(addr, { helloTimeoutMs: 300 }).catch((e) => e);
  expect(silent.code).toBe("EHELLO");
  expect(silent.message).toMatch(/no WELCOME within 0.3 s/);
  expect(performance.now() - t0).toBeLessThan(2000);
});

test("close() by the host rejects what is pending with a message saying so", async () => {
  const addr = await fakeAgent(() => {});
  const g = await connect(addr);
  const p = g.exec(["x"]);
  g.close();
  const err = await p.exited.catch((e) => e);
  expect(err.code).toBe("ECLOSED");
  expect(err.message).toMatch(/connection closed by the host/);
});

test("stdin respects the credit the agent grants", async () => {
  const got: number[] = [];
  let grant: ((n: number) => void) | undefined;
  const addr = await fakeAgent((f, sock) => {
    if (f.type === T.STDIN) got.push(f.payload.byteLength);
    grant = (n) => {
      const p = new Uint8Array(4);
      new DataView(p.buffer).setUint32(0, n, true);
      sock.write(encodeFrame(T.WINDOW, f.id, p));
    };
  });
  const g = await connect(addr);
  const p = g.exec(["cat"]);
  const w = p.stdin!.getWriter();
  const writing = w.write(new Uint8Array(262144 + 100_000));
  await Bun.sleep(200);
  const sum = () => got.reduce((a, b) => a + b, 0);
  expect(sum()).toBe(262144);
  expect(Math.max(...got)).toBeLessThanOrEqual(65536);
  grant!(50_000);
  await Bun.sleep(100);
  expect(sum()).toBe(262144 + 50_000);
  grant!(60_000);
  await writing;
  for (let i = 0; i < 50 && sum() < 262144 + 100_000; i++) await Bun.sleep(10);
  expect(sum()).toBe(262144 + 100_000);
  g.close();
});

test("refusals and aborts carry a string code too: a listen address to connect(), an aborted connect", async () => {
  const wrong = await connect(`unix-listen:${dir.file("nobody.sock")}`).catch((e) => e);
  expect(wrong).toBeInstanceOf(GuestError);
  expect(wrong.code).toBe("EINVAL");
  // Retrying a missing socket until the abort: the DOMException's numeric code is not passed on.
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 200);
  const aborted = await connect(`unix:${dir.file("never.sock")}`, { retryMs: 10_000, signal: ac.signal }).catch((e) => e);
  expect(aborted).toBeInstanceOf(GuestError);
  expect(aborted.code).toBe("ABORT_ERR");
});
