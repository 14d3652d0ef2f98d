// Sequential executions per second: the original persistent format (the agent dials our Unix socket with
// `--unix PATH persistent`, we write u16-LE frames and half-close; the agent closes after the last
// command) against v2 (EXEC → EXIT one after another on one connection), both running `sh -c true`;
// the limit is the same `sh -c true` spawned here one after another.
import { join } from "node:path";
import { connect } from "../../src/host/index.ts";
import { encodeLegacyFrame } from "../../src/protocol/legacy.ts";
import { type Ctx, listeningAgent } from "../_ctx.ts";
import { start, stop } from "../_procs.ts";
import type { Row, Section } from "../_report.ts";
import { summarize } from "../_stats.ts";
import { buildFloor, FloorClient, floorTimes, startFloor } from "../peers/floor.ts";

async function persistentRate(ctx: Ctx, n: number, run: number): Promise<number> {
  const path = join(ctx.dir, `persistent-${run}.sock`);
  const frame = encodeLegacyFrame(new TextEncoder().encode("true"));
  const all = new Uint8Array(frame.byteLength * n);
  for (let i = 0; i < n; i++) all.set(frame, i * frame.byteLength);
  let t0 = 0;
  let done!: (ms: number) => void;
  const finished = new Promise<number>((r) => (done = r));
  const server = Bun.listen({
    unix: path,
    socket: {
      open(s) {
        t0 = performance.now();
        // n frames are a few KiB: one write; the agent reads them as it goes.
        if (s.write(all) !== all.byteLength) throw new Error("short write of the persistent frames");
        s.shutdown();
      },
      data() {},
      close: () => done(performance.now() - t0),
    },
  });
  const agent = start([ctx.agent, "--unix", path, "persistent"], { timeoutMs: Math.min(120_000, ctx.left()) });
  try {
    const ms = await finished;
    const code = await agent.exited;
    if (code !== 0) throw new Error(`persistent agent exited ${code}`);
    return n / (ms / 1000);
  } finally {
    await stop(agent);
    server.stop(true);
  }
}

export async function sequentialSection(ctx: Ctx): Promise<Section> {
  const n = ctx.quick ? 50 : 1000;
  const local: number[] = [];
  const persistent: number[] = [];
  const v2: number[] = [];
  const cServer: number[] = [];
  const cBoth: number[] = [];
  const cLocal: number[] = [];
  const agent = await listeningAgent(ctx);
  const guest = await connect(agent.address);
  const floorBin = await buildFloor(ctx.dir);
  const floor = floorBin.bin ? await startFloor(floorBin.bin, ctx.dir, ctx.left()) : undefined;
  const fc = floor ? await FloorClient.connect(floor.sock) : undefined;
  const sh = ["/bin/sh", "-c", "true"];
  /** A rate from C's own per-execution times (the C program does nothing between them). */
  const cRate = async (args: string[]) => n / ((await floorTimes(floorBin.bin!, [...args, ...sh])).reduce((a, b) => a + b, 0) / 1000);
  try {
    await guest.run({ shell: "true" });
    for (let r = 0; r < ctx.runs; r++) {
      ctx.log(`sequential executions, run ${r + 1}`);
      let t0 = performance.now();
      for (let i = 0; i < n; i++) await Bun.spawn(["sh", "-c", "true"], { stdio: ["ignore", "ignore", "ignore"] }).exited;
      local.push(n / ((performance.now() - t0) / 1000));
      persistent.push(await persistentRate(ctx, n, r));
      t0 = performance.now();
      for (let i = 0; i < n; i++) {
        const res = await guest.run({ shell: "true" });
        if (res.code !== 0) throw new Error(`v2 sh -c true: ${res.status} ${res.code}`);
      }
      v2.push(n / ((performance.now() - t0) / 1000));
      if (fc && floor) {
        t0 = performance.now();
        for (let i = 0; i < n; i++) if ((await fc.run(sh)).status !== 0) throw new Error("C floor: sh -c true failed");
        cServer.push(n / ((performance.now() - t0) / 1000));
        cLocal.push(await cRate(["local", String(n)]));
        cBoth.push(await cRate(["client", floor.sock, String(n)]));
      }
    }
  } finally {
    guest.close();
    fc?.close();
    if (floor) await stop(floor.proc);
    await stop(agent.proc);
  }
  const limit = { label: "local spawn", stats: summarize(local) };
  const rows: Row[] = [
    { label: "local spawn sh -c true (limit)", unit: "execs/s", stats: limit.stats, better: "higher" },
    { label: "original persistent format", unit: "execs/s", stats: summarize(persistent), limit, better: "higher", note: "u16-LE frames; no answers, so timed until the agent closes" },
    { label: "v2 EXEC → EXIT", unit: "execs/s", stats: summarize(v2), limit, better: "higher", note: "host library, {shell:\"true\"}" },
  ];
  if (cServer.length) {
    // The C floor (bench/peers/floor.c): the agent replaced by C, then the client as well.
    const cl = { label: "C local posix_spawn", stats: summarize(cLocal) };
    rows.push(
      { label: "C floor sequential: C server, Bun client", unit: "execs/s", stats: summarize(cServer), limit, better: "higher", note: "posix_spawn, waitpid, one write per answer; a raw Bun socket here: this agent's work with no JavaScript in it" },
      { label: "C floor sequential: local posix_spawn", unit: "execs/s", stats: cl.stats, limit, better: "higher", note: "the limit spawned from C instead of Bun" },
      { label: "C floor sequential: C client → C server", unit: "execs/s", stats: summarize(cBoth), limit: cl, better: "higher", note: "no JavaScript at either end: the ratio is what the socket hop costs a C design" },
    );
  } else ctx.log(`sequential: no C floor rows: ${floorBin.why}`);
  return {
    title: "Sequential executions per second",
    about: `${n} executions of \`sh -c true\` one after another, ${ctx.runs} run(s), interleaved; the samples are the runs' rates.`,
    rows,
  };
}
