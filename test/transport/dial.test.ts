// The agent up before its host, the usual case at boot: it dials on a short fixed cadence (dial.ts,
// DIAL_CADENCE_MS) for its whole window, so a host that starts listening is served at once — also long
// after the agent started, and after a host restart with --reconnect — at a CPU cost that stays small.
// The compiled agent over --unix, as the initrd runs it (over AF_VSOCK in test/guest/retry.test.ts).
import { expect, test } from "bun:test";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { listen } from "../../src/host/index.ts";
import { startAgent } from "../helpers/agent.ts";
import { binaryTests } from "../helpers/binary.ts";
import { median } from "../../bench/_stats.ts";
import { AF_UNIX, packSockaddrUn } from "../../src/sys/sockaddr.ts";
import { bind, close, socket } from "../../src/sys/socket.ts";

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

test("dialing into nothing costs little CPU: a missing socket file and a refused one", async () => {
  const missing = join(dir.path, "missing.sock");
  // A socket file nobody listens on: connect() is refused (ECONNREFUSED), the other "not yet" path.
  const refusing = join(dir.path, "refusing.sock");
  const fd = socket(AF_UNIX);
  const { addr, len } = packSockaddrUn(refusing);
  bind(fd, addr, len);
  for (const path of [missing, refusing]) {
    const agent = startAgent(["--unix", path, "--retry", "60"], { timeoutMs: 30_000 });
    try {
      await Bun.sleep(1_000); // past the start-up's own CPU
      const c0 = cpuMs(agent.proc.pid);
      const t0 = performance.now();
      await Bun.sleep(4_000);
      const share = (cpuMs(agent.proc.pid) - c0) / (performance.now() - t0);
      console.error(`dialing ${path.endsWith("missing.sock") ? "a missing socket" : "a refusing socket"}: ${(share * 100).toFixed(2)} % of a core`);
      // Measured ~0.5 % on an idle machine (BENCHMARKS.md); 10 ms ticks and a loaded box need room.
      expect(share).toBeLessThan(0.05);
      expect(agent.proc.exitCode).toBe(null);
    } finally {
      agent.proc.kill("SIGKILL");
      await agent.done;
    }
  }
  close(fd);
}, 60_000);
