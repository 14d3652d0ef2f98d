// guest.connectTcp against the real compiled agent (listening on a Unix socket), to servers this test runs
// on 127.0.0.1: an HTTP server (Bun.serve) and plain TCP ones. Half-closes both ways, refusals per stream,
// and 100 MiB each way with a slow reader while the agent's resident memory is measured.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { connect, GuestError, TcpError, type Guest } from "../../src/host/index.ts";
import type { RunningAgent } from "../helpers/agent.ts";
import { vmRssKiB } from "../helpers/proc.ts";
import { MiB, bigData, digestAnswer, sendAll, tcpServers } from "../helpers/tcp.ts";
import { listeningAgent, sha256, stop, tempDir } from "./_fixtures.ts";

const dir = tempDir("vge-tcp-");
let agent: RunningAgent;
let guest: Guest;
let http: ReturnType<typeof Bun.serve>;
const servers = tcpServers();
const tcpServer = servers.listen;

beforeAll(async () => {
  agent = await listeningAgent(dir.file("agent.sock"), 180_000);
  guest = await connect(`unix:${dir.file("agent.sock")}`);
  http = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: (req) => new Response(`hello from ${new URL(req.url).pathname}`) });
});

afterAll(() => {
  guest?.close();
  http?.stop(true);
  stop(agent);
  dir.remove();
});

test("HTTP through a stream: request, our half-close, the whole response, then closed", async () => {
  const s = await guest.connectTcp("127.0.0.1", http.port!);
  expect(s.remote).toEqual({ address: "127.0.0.1", port: http.port });
  const w = s.writable.getWriter();
  await w.write("GET /path HTTP/1.0\r\nHost: guest\r\n\r\n");
  await w.close();
  const text = await new Response(s.readable).text();
  expect(text).toStartWith("HTTP/1.1 200 OK");
  expect(text).toEndWith("\r\n\r\nhello from /path");
  await s.closed;
});

test("a refused port rejects with the guest's errno; the connection goes on", async () => {
  const port = await tcpServer(() => {});
  await servers.closeLast();
  const err = await guest.connectTcp("127.0.0.1", port).catch((e) => e);
  expect(err).toBeInstanceOf(TcpError);
  expect(err.code).toBe("ECONNREFUSED");
  expect(err.message).toBe(`127.0.0.1:${port} in guest unix:${dir.file("agent.sock")}: ECONNREFUSED`);
  expect((await guest.run(["echo", "still"])).stdoutText).toBe("still\n");
});

test("bad targets are refused here, before anything is sent", async () => {
  for (const [host, port] of [["", 80], ["a b", 80], ["127.0.0.1", 0], ["127.0.0.1", 70000], ["x\0y", 1]] as const) {
    const err = await guest.connectTcp(host, port).catch((e) => e);
    expect(err).toBeInstanceOf(TcpError);
    expect(err.code).toBe("EINVAL");
  }
  expect(guest.error).toBeUndefined();
});

test("half-close guest → host: the server's EOF ends our readable while we can still write", async () => {
  let got = "";
  const done = new Promise<void>((resolve) => {
    void tcpServer((s) => {
      s.end("banner\n");
      s.on("data", (d) => (got += d));
      s.on("end", () => resolve());
    }).then((port) => (portP.resolve as (n: number) => void)(port));
  });
  const portP = Promise.withResolvers<number>();
  const s = await guest.connectTcp("127.0.0.1", await portP.promise);
  expect(await new Response(s.readable).text()).toBe("banner\n");
  const w = s.writable.getWriter();
  await w.write("late answer");
  await w.close();
  await done;
  await s.closed;
  expect(got).toBe("late answer");
});

test("reset() drops a stream: closed rejects with ECONNRESET, the server sees its peer go", async () => {
  const peerGone = Promise.withResolvers<void>();
  const port = await tcpServer((s) => {
    s.resume();
    s.on("close", () => peerGone.resolve());
  });
  const s = await guest.connectTcp("127.0.0.1", port);
  s.reset();
  const err = await s.closed.catch((e) => e);
  expect(err).toBeInstanceOf(TcpError);
  expect(err.code).toBe("ECONNRESET");
  await peerGone.promise;
});

/** Samples the agent's RSS every 50 ms while `work` runs; returns the peak. */
async function peakRss(work: Promise<unknown>): Promise<number> {
  let peak = vmRssKiB(agent.proc.pid)!;
  let running = true;
  const sampler = (async () => {
    while (running) {
      peak = Math.max(peak, vmRssKiB(agent.proc.pid) ?? 0);
      await Bun.sleep(50);
    }
  })();
  try {
    await work;
  } finally {
    running = false;
    await sampler;
  }
  return peak;
}

test("100 MiB guest → host to a slow reader: intact, and the agent's memory stays bounded", async () => {
  const want = new Bun.CryptoHasher("sha256");
  const port = await tcpServer(sendAll(bigData(100), want));
  const rss0 = vmRssKiB(agent.proc.pid)!;
  const s = await guest.connectTcp("127.0.0.1", port);
  const got = new Bun.CryptoHasher("sha256");
  let n = 0;
  const read = (async () => {
    const r = s.readable.getReader();
    for (let i = 0; ; i++) {
      const { value, done } = await r.read();
      if (done) break;
      got.update(value);
      n += value.byteLength;
      // A slow consumer, about 40 MiB/s: the server could send far faster, so without flow control
      // the difference would pile up somewhere.
      if (i % 8 === 7) await Bun.sleep(Math.ceil((8 * value.byteLength) / (40 * 1024)));
    }
    await s.writable.close();
    await s.closed;
  })();
  const peak = await peakRss(read);
  expect(n).toBe(100 * MiB);
  expect(got.digest("hex")).toBe(want.digest("hex"));
  console.log(`guest → host 100 MiB: agent RSS ${rss0} KiB before, peak ${peak} KiB`);
  expect(peak - rss0).toBeLessThan(48 * 1024);
}, 120_000);

test("100 MiB host → guest to a slow server: intact (sha256 from the server), memory bounded", async () => {
  // A slow reader: paused 5 ms after every chunk, so the agent's writes wait for the socket.
  const port = await tcpServer(digestAnswer(5));
  const rss0 = vmRssKiB(agent.proc.pid)!;
  const s = await guest.connectTcp("127.0.0.1", port);
  const want = new Bun.CryptoHasher("sha256");
  const work = (async () => {
    const w = s.writable.getWriter();
    for (const b of bigData(100)) {
      want.update(b);
      await w.write(b);
    }
    await w.close();
    const answer = await new Response(s.readable).text();
    await s.closed;
    return answer;
  })();
  const peak = await peakRss(work);
  expect(await work).toBe(`${100 * MiB} ${want.digest("hex")}`);
  console.log(`host → guest 100 MiB: agent RSS ${rss0} KiB before, peak ${peak} KiB`);
  expect(peak - rss0).toBeLessThan(48 * 1024);
}, 120_000);

test("an agent without the tcp capability is told apart", async () => {
  const { connectTcp } = await import("../../src/host/tcp.ts");
  const err = await connectTcp({ name: "guest old" } as never, 262144, ["exec"], "127.0.0.1", 80).catch((e) => e);
  expect(err).toBeInstanceOf(GuestError);
  expect(err.code).toBe("ENOTSUP");
});
