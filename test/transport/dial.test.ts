// The agent up before its host, the usual case at boot. Over --unix it watches the socket's folder
// (inotify, src/transport/path-watch.ts) and dials when the socket file appears, with one attempt a second
// besides (a socket file that exists before its host listens); a host that starts listening is served at
// once — also long after the agent started, and after a host restart with --reconnect — at a CPU cost no
// larger than an idle Bun program's. The compiled agent over --unix, as the initrd runs it (over AF_VSOCK
// in test/guest/retry.test.ts).
import { expect, test } from "bun:test";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { listen } from "../../src/host/index.ts";
import { startAgent } from "../helpers/agent.ts";
import { binaryTests } from "../helpers/binary.ts";
import { median, percentile } from "../../bench/_stats.ts";
import { AF_UNIX, packSockaddrUn } from "../../src/sys/sockaddr.ts";
import { bind, close, listen as listenFd, poll, POLLIN, socket } from "../../src/sys/socket.ts";
import { spawnSync } from "bun";

const dir = binaryTests();

/** CPU time (user + system, all threads) of a process, in ms: /proc/PID/stat fields 14 and 15. */
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // USER_HZ is 100 on Linux
}

/** Listens at `path`, takes the agent's connection, runs one command; ms from listening to accepted. */
async function serveOnce(path: string): Promise<{ acceptedMs: number; pid: number }> {
  const t0 = performance.now();
  const l = await listen(`unix-listen:${path}`);
  try {
    const g = await l.accept();
    const acceptedMs = performance.now() - t0;
    const r = await g.run(["/bin/true"]);
    expect(r.code).toBe(0);
    g.close();
    await g.closed;
    return { acceptedMs, pid: g.info.pid };
  } finally {
    await l.close();
    rmSync(path, { force: true });
  }
}

test("a host that listens late, and again after each restart, is noticed within the cadence", async () => {
  const path = join(dir.path, "late.sock");
  const agent = startAgent(["--unix", path, "--retry", "60", "--reconnect"], { timeoutMs: 60_000 });
  try {
    const waits: number[] = [];
    // Well into the window: a backoff would by now pause up to 2 s between attempts.
    await Bun.sleep(2_500);
    const first = await serveOnce(path);
    waits.push(first.acceptedMs);
    // The host restarts 12 times, down for 0.3–1.4 s each time: --reconnect dials on the same cadence.
    for (let i = 0; i < 12; i++) {
      await Bun.sleep(300 + ((i * 317) % 1100));
      const again = await serveOnce(path);
      expect(again.pid).toBe(first.pid);
      waits.push(again.acceptedMs);
    }
    const p50 = median(waits);
    console.error(`host listens → agent connected: p50 ${p50.toFixed(1)} ms, max ${Math.max(...waits).toFixed(1)} ms over ${waits.length}`);
    // The cadence is 50 ms ±25 %; room for a loaded 2-core CI box, far below the 0.1–2 s backoff's waits.
    expect(p50).toBeLessThan(100);
    expect(Math.max(...waits)).toBeLessThan(400);
  } finally {
    agent.proc.kill("SIGKILL");
    await agent.done;
  }
}, 60_000);

/** CPU share of a core that `pid` uses over `ms`, after `settleMs` for its start-up. */
async function cpuShare(pid: number, ms: number): Promise<number> {
  const c0 = cpuMs(pid);
  const t0 = performance.now();
  await Bun.sleep(ms);
  return (cpuMs(pid) - c0) / (performance.now() - t0);
}

test("a socket file that appears is dialed at once, hundreds of times in a row (--reconnect)", async () => {
  const path = join(dir.path, "appears.sock");
  const agent = startAgent(["--unix", path, "--retry", "60", "--reconnect"], { timeoutMs: 60_000 });
  try {
    await Bun.sleep(1_500); // past the first second: the agent is in its slow (watched) cadence
    const waits: number[] = [];
    const until = performance.now() + 12_000;
    for (let i = 0; i < 150 && performance.now() < until; i++) {
      const opened = Promise.withResolvers<number>();
      const t0 = performance.now();
      // A bare listener, no protocol: it closes what it accepts and the agent (--reconnect) dials again.
      const l = Bun.listen({ unix: path, socket: {
          open(s) {
            opened.resolve(performance.now() - t0);
            s.end();
          },
          data() {},
        }, });
      waits.push(await opened.promise);
      l.stop(true);
      rmSync(path, { force: true });
      // Down for 0–150 ms (inside the fast second after a change) or 1.1–1.6 s (back in the slow cadence).
      await Bun.sleep(i % 10 === 9 ? 1_100 + Math.random() * 500 : Math.random() * 150);
    }
    const p50 = median(waits);
    const p99 = percentile(waits, 99);
    console.error(`socket file appears → agent connected: p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, max ${Math.max(...waits).toFixed(1)} ms over ${waits.length}`);
    expect(waits.length).toBeGreaterThanOrEqual(40);
    // inotify wakes the agent within ~1 ms; an attempt that lands between the host's bind() and listen()
    // is refused and the next comes 50 ms later. Blind dialing every 50 ms had p50 ~30 ms.
    // Target p99 ≤ 150 ms (BENCHMARKS.md); room for a loaded 2-core CI box.
    expect(p50).toBeLessThan(15);
    expect(p99).toBeLessThan(250);
  } finally {
    agent.proc.kill("SIGKILL");
    await agent.done;
  }
}, 60_000);

test("a socket file that exists before its host listens is dialed within the slow cadence", async () => {
  const path = join(dir.path, "early.sock");
  const agent = startAgent(["--unix", path, "--retry", "60"], { timeoutMs: 30_000 });
  const fd = socket(AF_UNIX);
  try {
    const { addr, len } = packSockaddrUn(path);
    bind(fd, addr, len); // the file exists from here: inotify has nothing more to say
    await Bun.sleep(2_500);
    const t0 = performance.now();
    listenFd(fd, 8);
    // The agent's connect completes against the backlog: the listener polls readable from then on.
    const deadline = t0 + 5_000;
    let connectedMs = -1;
    while (performance.now() < deadline) {
      if (poll([{ fd, events: POLLIN }], 0)[0]! & POLLIN) {
        connectedMs = performance.now() - t0;
        break;
      }
      await Bun.sleep(5);
    }
    console.error(`socket file there, host listens late → agent connected: ${connectedMs.toFixed(0)} ms`);
    expect(connectedMs).toBeGreaterThanOrEqual(0);
    expect(connectedMs).toBeLessThan(2_000); // one attempt a second, ±25 %, on a loaded box
  } finally {
    close(fd);
    agent.proc.kill("SIGKILL");
    await agent.done;
  }
}, 30_000);

test("dialing into nothing costs no more CPU than an idle Bun program: a missing socket file and a refused one", async () => {
  // The baseline: the smallest compiled Bun program that only waits (bench/hello.ts listens and idles).
  const hello = join(dir.path, "hello");
  const built = spawnSync(["bun", "build", "--compile", join(import.meta.dir, "../../bench/hello.ts"), "--outfile", hello], { stdout: "ignore", stderr: "pipe" });
  expect(built.exitCode).toBe(0);
  const missing = join(dir.path, "missing.sock");
  // A socket file nobody listens on: connect() is refused (ECONNREFUSED), the other "not yet" path.
  const refusing = join(dir.path, "refusing.sock");
  const fd = socket(AF_UNIX);
  const { addr, len } = packSockaddrUn(refusing);
  bind(fd, addr, len);
  const base = Bun.spawn([hello, join(dir.path, "hello.sock")], { stdout: "ignore", stderr: "ignore", timeout: 30_000 });
  try {
    for (const path of [missing, refusing]) {
      const agent = startAgent(["--unix", path, "--retry", "60"], { timeoutMs: 30_000 });
      try {
        await Bun.sleep(1_000); // past the start-up's own CPU
        const [share, baseline] = await Promise.all([cpuShare(agent.proc.pid, 5_000), cpuShare(base.pid, 5_000)]);
        console.error(`dialing ${path === missing ? "a missing socket" : "a refusing socket"}: ${(share * 100).toFixed(2)} % of a core; an idle compiled Bun program: ${(baseline * 100).toFixed(2)} %`);
        // Measured 0.2–0.4 % against the baseline's 0.0–0.2 % (10 ms ticks over 5 s: 1 tick is 0.2 %);
        // dialing every 50 ms cost 0.75–1.75 %.
        expect(share).toBeLessThan(0.01);
        expect(share - baseline).toBeLessThan(0.006);
        expect(agent.proc.exitCode).toBe(null);
      } finally {
        agent.proc.kill("SIGKILL");
        await agent.done;
      }
    }
  } finally {
    base.kill("SIGKILL");
    close(fd);
  }
}, 60_000);
