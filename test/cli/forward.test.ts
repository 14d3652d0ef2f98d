// `vge forward` as a user runs it, against the compiled agent listening on a Unix socket; "the guest" is
// this machine, so its 127.0.0.1 servers are ones this test runs. 50 connections at once, 100 MiB each way,
// half-closes, a refused target that leaves the forward serving, Ctrl-C.
import { expect, test } from "bun:test";
import { connect as tcpConnect, createServer } from "node:net";
import { startForward, vge, vgeAgent } from "./_vge.ts";
import { vmRssKiB } from "../helpers/proc.ts";
import { MiB, bigData, digestAnswer, sendAll, tcpServers } from "../helpers/tcp.ts";
import { listeningAgent, sha256, stop } from "../host/_fixtures.ts";

const fx = vgeAgent("vge-fwd-");
const servers = tcpServers();
const tcpServer = servers.listen;

/** `vge forward` to this file's agent (or `addr`) with SPEC. */
const forward = (spec: string, addr = fx.addr) => startForward(addr, spec);

/** One client connection: sends `data`, half-closes, returns everything the far side sent until its end. */
function exchange(port: number, data: Uint8Array | Iterable<Uint8Array>): Promise<{ bytes: number; sha: string; text: string }> {
  return new Promise((resolve, reject) => {
    const h = new Bun.CryptoHasher("sha256");
    let bytes = 0;
    let head = "";
    const s = tcpConnect({ host: "127.0.0.1", port, allowHalfOpen: true }, async () => {
      for (const chunk of data instanceof Uint8Array ? [data] : data) if (!s.write(chunk)) await new Promise((r) => s.once("drain", r));
      s.end();
    });
    s.on("data", (d: Buffer) => {
      h.update(d);
      bytes += d.length;
      if (head.length < 200) head += d.toString("latin1");
    });
    s.on("end", () => resolve({ bytes, sha: h.digest("hex"), text: head }));
    s.on("error", reject);
  });
}


test("50 connections at once through one forward, each echoed back intact", async () => {
  const echo = await tcpServer((s) => s.pipe(s));
  const f = await forward(`0:127.0.0.1:${echo}`);
  try {
    const datas = Array.from({ length: 50 }, (_, k) => new Uint8Array(256 * 1024).map((_, i) => (i * (k + 1)) & 255));
    const got = await Promise.all(datas.map((d) => exchange(f.port, d)));
    got.forEach((g, k) => expect(g.sha).toBe(sha256(datas[k]!)));
  } finally {
    f.proc.kill("SIGINT");
    await f.proc.exited;
  }
  expect(f.proc.exitCode).toBe(0);
}, 60_000);

test("100 MiB each way: host → guest answered after our half-close, guest → host ended by the server's", async () => {
  const digest = await tcpServer(digestAnswer());
  const wantUp = new Bun.CryptoHasher("sha256");
  const up = [...bigData(100)];
  for (const b of up) wantUp.update(b);
  const f = await forward(`0:127.0.0.1:${digest}`);
  try {
    const r = await exchange(f.port, up);
    expect(r.text).toBe(`${100 * MiB} ${wantUp.digest("hex")}`);
  } finally {
    f.proc.kill("SIGINT");
    await f.proc.exited;
  }

  const down = [...bigData(100)];
  const wantDown = new Bun.CryptoHasher("sha256");
  for (const b of down) wantDown.update(b);
  let clientSaid = "";
  const source = await tcpServer((s) => {
    s.on("data", (d) => (clientSaid += d));
    void sendAll(down)(s);
  });
  const g = await forward(`0:127.0.0.1:${source}`);
  try {
    const r = await exchange(g.port, new TextEncoder().encode("client bytes after the server's FIN"));
    expect(r.bytes).toBe(100 * MiB);
    expect(r.sha).toBe(wantDown.digest("hex"));
    expect(clientSaid).toBe("client bytes after the server's FIN");
  } finally {
    g.proc.kill("SIGINT");
    await g.proc.exited;
  }
}, 120_000);

test("a refused target: one line for that connection, and the forward keeps serving", async () => {
  const port = await tcpServer(() => {});
  await servers.closeLast();
  const f = await forward(`0:127.0.0.1:${port}`);
  try {
    const closed = await new Promise<string>((resolve) => {
      const s = tcpConnect({ host: "127.0.0.1", port: f.port }, () => {});
      s.on("error", (e) => resolve(`error ${(e as { code?: string }).code}`));
      s.on("close", () => resolve("closed"));
      s.resume();
    });
    expect(closed).toMatch(/closed|error ECONNRESET/);
    for (let i = 0; i < 50 && !/ECONNREFUSED/.test(f.stderr()); i++) await Bun.sleep(20);
    const lines = f.stderr().split("\n").filter((l) => l.includes("ECONNREFUSED"));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^vge: warning: 127\\.0\\.0\\.1:\\d+: guest 127\\.0\\.0\\.1:${port}: ECONNREFUSED$`));
    // Now something listens there: the same forward serves it.
    const srv = createServer((s) => s.end("now it answers"));
    await new Promise<void>((r) => srv.listen(port, "127.0.0.1", () => r()));
    servers.keep(srv);
    expect((await exchange(f.port, new Uint8Array(0))).text).toBe("now it answers");
    expect(f.proc.exitCode).toBeNull();
  } finally {
    f.proc.kill("SIGINT");
    await f.proc.exited;
  }
  expect(f.proc.exitCode).toBe(0);
  expect(f.stderr()).toContain("vge: forward stopped");
}, 30_000);

test("Ctrl-C ends the forward cleanly: exit 0 and the local port is closed", async () => {
  const echo = await tcpServer((s) => s.pipe(s));
  const f = await forward(`127.0.0.1:0:127.0.0.1:${echo}`);
  f.proc.kill("SIGINT");
  await f.proc.exited;
  expect(f.proc.exitCode).toBe(0);
  const refused = await new Promise<string>((resolve) => {
    const s = tcpConnect({ host: "127.0.0.1", port: f.port }, () => resolve("connected"));
    s.on("error", (e) => resolve((e as { code?: string }).code ?? "error"));
  });
  expect(refused).toBe("ECONNREFUSED");
}, 30_000);

test.each([
  ["8080:127.0.0.1", "the forward spec is"],
  ["x:127.0.0.1:80", "LOCAL_PORT must be a port number"],
  ["8080:127.0.0.1:0", "GUEST_PORT must be a port number"],
  ["8080:bad host:80", 'guest host "bad host" is not a hostname'],
  ["8080:[::1:80", "cannot read the forward spec"],
])("bad spec %s: exit 2 with one line", async (spec, msg) => {
  const r = await vge(["forward", fx.addr, spec]);
  expect(r.code).toBe(2);
  expect(r.stderr).toContain(msg);
  expect(r.stderr.trim().split("\n")).toHaveLength(1);
});

test("100 MiB to a slow local reader: vge and the agent each stay within a bounded amount of memory", async () => {
  const want = new Bun.CryptoHasher("sha256");
  const source = await tcpServer(sendAll(bigData(100), want));
  const f = await forward(`0:127.0.0.1:${source}`);
  const pids = { vge: f.proc.pid, agent: fx.agent.proc.pid };
  const base = { vge: vmRssKiB(pids.vge)!, agent: vmRssKiB(pids.agent)! };
  const peak = { ...base };
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      peak.vge = Math.max(peak.vge, vmRssKiB(pids.vge) ?? 0);
      peak.agent = Math.max(peak.agent, vmRssKiB(pids.agent) ?? 0);
      await Bun.sleep(50);
    }
  })();
  try {
    // The client reads at about 40 MiB/s (paused between reads); the server could send far faster.
    const got = await new Promise<{ bytes: number; sha: string }>((resolve, reject) => {
      const h = new Bun.CryptoHasher("sha256");
      let bytes = 0;
      const s = tcpConnect({ host: "127.0.0.1", port: f.port, allowHalfOpen: true }, () => s.end());
      s.on("data", (d: Buffer) => {
        h.update(d);
        bytes += d.length;
        s.pause();
        setTimeout(() => s.resume(), Math.ceil(d.length / (40 * 1024)));
      });
      s.on("end", () => resolve({ bytes, sha: h.digest("hex") }));
      s.on("error", reject);
    });
    expect(got.bytes).toBe(100 * MiB);
    expect(got.sha).toBe(want.digest("hex"));
  } finally {
    sampling = false;
    await sampler;
    f.proc.kill("SIGINT");
    await f.proc.exited;
  }
  console.log(`vge forward 100 MiB, slow reader: vge RSS ${base.vge} → peak ${peak.vge} KiB, agent ${base.agent} → peak ${peak.agent} KiB`);
  expect(peak.vge - base.vge).toBeLessThan(48 * 1024);
  expect(peak.agent - base.agent).toBeLessThan(48 * 1024);
}, 120_000);

test("losing the guest connection ends the forward with one error line and exit 255", async () => {
  const sock = fx.dir.file("lost.sock");
  const agent = await listeningAgent(sock, 60_000);
  try {
    const f = await forward("0:127.0.0.1:9", `unix:${sock}`);
    stop(agent);
    await f.proc.exited;
    expect(f.proc.exitCode).toBe(255);
    const errors = f.stderr().split("\n").filter((l) => l.startsWith("vge: error:"));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain("the guest connection ended");
  } finally {
    stop(agent);
  }
}, 30_000);

test("parseForward: ssh -L forms, brackets for IPv6", async () => {
  const { parseForward } = await import("../../src/cli/vge/forward.ts");
  expect(parseForward("8080:127.0.0.1:80")).toEqual({ bindHost: "127.0.0.1", localPort: 8080, guestHost: "127.0.0.1", guestPort: 80 });
  expect(parseForward("0.0.0.0:0:localhost:22")).toEqual({ bindHost: "0.0.0.0", localPort: 0, guestHost: "localhost", guestPort: 22 });
  expect(parseForward("[::1]:5432:[fe80::1]:5432")).toEqual({ bindHost: "::1", localPort: 5432, guestHost: "fe80::1", guestPort: 5432 });
  expect(() => parseForward("8080:::1:80")).toThrow(/forward spec/);
  expect(() => parseForward(":8080:h:80")).toThrow(/bind address is empty/);
});

test("an agent without the tcp capability: one error line at start, exit 255", async () => {
  const path = fx.dir.file("old.sock");
  const { encodeJson, T } = await import("../../src/protocol/v2/frame.ts");
  const { FrameDecoder } = await import("../../src/protocol/v2/decoder.ts");
  // An older agent: greets with capabilities that lack "tcp".
  const old = createServer((s) => {
    const dec = new FrameDecoder();
    let skip = 8;
    s.on("error", () => {});
    s.on("data", (d: Buffer) => {
      const n = Math.min(skip, d.length);
      skip -= n;
      for (const f of dec.push(new Uint8Array(d.subarray(n)))) {
        if (f.type === T.HELLO) s.write(encodeJson(T.WELCOME, 0, { version: 2, agent: "0.1.9", capabilities: ["exec"], hostname: "old", kernel: "", arch: "x64", initrd: false, pid: 1, maxPayload: 262144, window: 262144 }));
      }
    });
  });
  await new Promise<void>((r) => old.listen(path, r));
  servers.keep(old);
  const r = await vge(["forward", `unix:${path}`, "0:127.0.0.1:80"]);
  expect(r.code).toBe(255);
  expect(r.stderr.trim()).toBe(`vge: error: the agent at unix:${path} (version 0.1.9) has no TCP streams; update it to forward ports`);
});
