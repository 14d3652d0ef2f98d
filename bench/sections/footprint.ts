// Footprint: binary size, initrd size per compressor, the agent's memory idle and while streaming, its
// start → ready, and host-listens → first result with the agent up first; the same start and memory for
// a compiled Bun "hello" (bench/hello.ts) as the baseline.
import { rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { connect, listen } from "../../src/host/index.ts";
import { ROOT } from "../../test/helpers/build.ts";
import { wakeups } from "../../test/helpers/proc.ts";
import type { Ctx } from "../_ctx.ts";
import { count } from "../_bytes.ts";
import { memKiB, run, start, stop, waitUnix } from "../_procs.ts";
import type { Row, Section } from "../_report.ts";
import { type Stats, summarize } from "../_stats.ts";

const one = (x: number): Stats => summarize([x]);

/** Process start → something accepts on its Unix socket, polled every 1 ms; then its idle memory. */
/** Wake-ups per second of `pid` (main and worker threads, test/helpers/proc.ts) over `ms`. */
async function wakeupsPerSecond(pid: number, ms: number): Promise<number> {
  const w0 = wakeups(pid);
  await Bun.sleep(ms);
  return ((wakeups(pid) - w0) * 1000) / ms;
}

export async function startToReady(ctx: Ctx, argv: (sock: string) => string[], n: number): Promise<{ ms: number[]; rss: number[]; anon: number[]; wakes: number[] }> {
  const ms: number[] = [];
  const rss: number[] = [];
  const anon: number[] = [];
  const wakes: number[] = [];
  for (let i = 0; i < n; i++) {
    const sock = join(ctx.dir, `ready-${i}-${Math.random().toString(36).slice(2, 8)}.sock`);
    const t0 = performance.now();
    const p = start(argv(sock), { timeoutMs: 30_000 });
    await waitUnix(sock, 10_000, 1);
    ms.push(performance.now() - t0);
    await Bun.sleep(300); // let start-up garbage settle before reading "idle"
    const m = memKiB(p.pid);
    rss.push(m.rss);
    anon.push(m.anon);
    if (i < 3) wakes.push(await wakeupsPerSecond(p.pid, 1000));
    await stop(p);
  }
  return { ms, rss, anon, wakes };
}

export async function footprintSection(ctx: Ctx): Promise<Section> {
  const rows: Row[] = [];
  const hello = join(ctx.dir, "hello");
  ctx.log("footprint: compiling bench/hello.ts");
  await run(["bun", "build", "--compile", join(import.meta.dir, "..", "hello.ts"), "--outfile", hello], 120_000);
  const helloSize = one(statSync(hello).size / 1024 / 1024);
  rows.push({ label: "compiled Bun hello (baseline): binary", unit: "MiB", stats: helloSize, better: "lower" });
  rows.push({ label: "agent binary", unit: "MiB", stats: one(statSync(ctx.agent).size / 1024 / 1024), limit: { label: "hello", stats: helloSize }, better: "lower", note: ctx.agent.replace(`${ROOT}/`, "") });

  const n = ctx.quick ? 3 : 15;
  ctx.log("footprint: start → ready");
  const h = await startToReady(ctx, (s) => [hello, s], n);
  const a = await startToReady(ctx, (s) => [ctx.agent, "--listen", "--unix", s], n);
  const hs = { ms: summarize(h.ms), rss: summarize(h.rss.map((x) => x / 1024)), anon: summarize(h.anon.map((x) => x / 1024)) };
  rows.push(
    { label: "hello: start → listening", unit: "ms", stats: hs.ms, better: "lower" },
    { label: "agent --listen: start → listening", unit: "ms", stats: summarize(a.ms), limit: { label: "hello", stats: hs.ms }, better: "lower", note: "spawn until a connect() succeeds, polled every 1 ms" },
    { label: "hello: VmRSS idle", unit: "MiB", stats: hs.rss, better: "lower" },
    { label: "agent: VmRSS idle", unit: "MiB", stats: summarize(a.rss.map((x) => x / 1024)), limit: { label: "hello", stats: hs.rss }, better: "lower", note: "300 ms after listening, no connection yet" },
    { label: "hello: RssAnon idle", unit: "MiB", stats: hs.anon, better: "lower" },
    { label: "agent: RssAnon idle", unit: "MiB", stats: summarize(a.anon.map((x) => x / 1024)), limit: { label: "hello", stats: hs.anon }, better: "lower" },
    { label: "hello: wake-ups/s idle", unit: "/s", stats: summarize(h.wakes), better: "lower" },
    { label: "agent: wake-ups/s idle", unit: "/s", stats: summarize(a.wakes), limit: { label: "hello", stats: summarize(h.wakes) }, better: "lower", note: "voluntary context switches of the main and worker threads over 1 s, 3 starts" },
  );

  // Memory while streaming: peak of VmRSS / RssAnon sampled every 20 ms during a stdout stream.
  ctx.log("footprint: memory while streaming");
  const sock = join(ctx.dir, "mem.sock");
  const agent = start([ctx.agent, "--listen", "--unix", sock], { timeoutMs: ctx.left() });
  await waitUnix(sock, 10_000, 5);
  const guest = await connect(`unix:${sock}`);
  // Idle executions cost wake-ups only if something polls them on a timer: a terminal running `cat` and a
  // pipe execution running `sleep`, both waiting.
  const tty = guest.exec(["cat"], { pty: true });
  const sleeper = guest.exec(["sleep", "30"], { stdin: "closed" });
  await Bun.sleep(300);
  const idleExecWakes = await wakeupsPerSecond(agent.pid, 2000);
  tty.kill("SIGKILL");
  sleeper.kill("SIGKILL");
  await Promise.all([tty.exited, sleeper.exited]);
  rows.push({ label: "agent: wake-ups/s with an idle terminal and an idle pipe execution", unit: "/s", stats: one(idleExecWakes), limit: { label: "hello idle", stats: summarize(h.wakes) }, better: "lower", note: "over 2 s; the terminal was polled every ≤ 20 ms before the poll thread (src/sys/fdwatch.ts)" });
  const peak = { rss: 0, anon: 0 };
  const idle = memKiB(agent.pid);
  const timer = setInterval(() => {
    const m = memKiB(agent.pid);
    peak.rss = Math.max(peak.rss, m.rss);
    peak.anon = Math.max(peak.anon, m.anon);
  }, 20);
  const bytes = ctx.quick ? 64 * 1024 * 1024 : 1024 * 1024 * 1024;
  try {
    const p = guest.exec(["head", "-c", String(bytes), "/dev/zero"], { stdin: "closed" });
    await Promise.all([count(p.stdout), count(p.stderr), p.exited]);
  } finally {
    clearInterval(timer);
    guest.close();
    await stop(agent);
  }
  rows.push(
    { label: "agent: VmRSS peak while streaming stdout", unit: "MiB", stats: one(peak.rss / 1024), limit: { label: "hello idle", stats: hs.rss }, better: "lower", note: `${bytes / 1024 / 1024} MiB; connected idle ${(idle.rss / 1024).toFixed(1)} MiB` },
    { label: "agent: RssAnon peak while streaming stdout", unit: "MiB", stats: one(peak.anon / 1024), limit: { label: "hello idle", stats: hs.anon }, better: "lower", note: `connected idle ${(idle.anon / 1024).toFixed(1)} MiB` },
  );

  // Host listens → first result, the agent up first: the agent dials (v2, default --retry; over --unix it
  // dials when the socket file appears, src/transport/dial.ts) before anyone listens; we then listen,
  // accept, and run /bin/true. Target (issue 18): p99 ≤ 150 ms (targets.ts).
  ctx.log("footprint: host listens → first result");
  const firsts: number[] = [];
  for (let i = 0; i < (ctx.quick ? 3 : 10); i++) {
    const path = join(ctx.dir, `dial-${i}.sock`);
    const dialer = start([ctx.agent, "--unix", path], { timeoutMs: 60_000 });
    try {
      await Bun.sleep(500 + ((i * 137) % 500)); // the agent is up and dialing, at some point between attempts
      const t0 = performance.now();
      const l = await listen(`unix-listen:${path}`);
      try {
        const g = await l.accept();
        const r = await g.run(["/bin/true"]);
        firsts.push(performance.now() - t0);
        if (r.code !== 0) throw new Error("first result failed");
        g.close();
      } finally {
        l.close();
      }
    } finally {
      await stop(dialer);
      rmSync(path, { force: true });
    }
  }
  rows.push({ label: "agent up first: host listens → first result", unit: "ms", stats: summarize(firsts), better: "lower", note: "agent `--unix` dialing when the socket file appears (inotify; target p99 ≤ 150 ms), started 0.5–1 s before the host listens" });

  return {
    title: "Footprint",
    about: `Sizes from stat(2); memory from /proc/PID/status (VmRSS, RssAnon); ${n} starts each. The baseline is bench/hello.ts compiled with \`bun build --compile\`: a Bun program that only listens on a Unix socket.`,
    rows,
  };
}

