// Concurrency: 64 executions at once on one connection (limit: 64 local spawns at once), and one host
// process holding many guest connections (1,000; a few agents in listen mode share them): the host's RSS
// per connection, and an exec's p99 with all of them open against the p99 on a single connection.
import { join } from "node:path";
import { connect } from "../../src/host/index.ts";
import { type Ctx, listeningAgent } from "../_ctx.ts";
import { run, stop } from "../_procs.ts";
import type { Row, Section } from "../_report.ts";
import { summarize } from "../_stats.ts";

const AT_ONCE = 64;

async function batch(op: () => Promise<void>): Promise<{ each: number[]; wall: number }> {
  const t0 = performance.now();
  const each = await Promise.all(
    Array.from({ length: AT_ONCE }, async () => {
      await op();
      return performance.now() - t0;
    }),
  );
  return { each, wall: performance.now() - t0 };
}

export async function concurrencySection(ctx: Ctx): Promise<Section> {
  const rows: Row[] = [];
  // 1,000 connections over 4 agents is 250 each (below): above the default --max-conns (64), a limit for
  // hostile hosts, not for this one.
  const MANY = ["--max-conns", "1000"];
  const agents = [await listeningAgent(ctx, undefined, MANY)];
  try {
    const guest = await connect(agents[0]!.address);
    const localEach: number[] = [];
    const localWall: number[] = [];
    const v2Each: number[] = [];
    const v2Wall: number[] = [];
    await guest.run(["/bin/true"]);
    for (let r = 0; r < Math.max(3, ctx.runs * 2); r++) {
      ctx.log(`${AT_ONCE} concurrent, run ${r + 1}`);
      const l = await batch(async () => void (await Bun.spawn(["/bin/true"], { stdio: ["ignore", "ignore", "ignore"] }).exited));
      localEach.push(...l.each);
      localWall.push(l.wall);
      const v = await batch(async () => {
        const res = await guest.run(["/bin/true"]);
        if (res.code !== 0) throw new Error(`concurrent exec: ${res.status}`);
      });
      v2Each.push(...v.each);
      v2Wall.push(v.wall);
    }
    guest.close();
    const limitWall = { label: "local", stats: summarize(localWall) };
    const limitEach = { label: "local", stats: summarize(localEach) };
    rows.push(
      { label: `${AT_ONCE} local spawns at once (limit): batch`, unit: "ms", stats: limitWall.stats, better: "lower" },
      { label: `${AT_ONCE} concurrent on one connection: batch`, unit: "ms", stats: summarize(v2Wall), limit: limitWall, better: "lower", note: "all 64 sent, until the last EXIT" },
      { label: `${AT_ONCE} concurrent on one connection: each`, unit: "ms", stats: summarize(v2Each), limit: limitEach, better: "lower", note: "from the batch start to that exec's EXIT" },
    );

    const conns = ctx.quick ? 50 : 1000;
    const execs = ctx.quick ? 50 : 300;
    for (let i = 1; i < 4; i++) agents.push(await listeningAgent(ctx, undefined, MANY));
    ctx.log(`${conns} connections from one host process`);
    const out = await run(["bun", join(import.meta.dir, "..", "_scale_child.ts"), String(conns), String(execs), ...agents.map((a) => a.address)], Math.min(180_000, ctx.left()));
    const r = JSON.parse(out.trim().split("\n").at(-1)!) as { conns: number; before: number; after: number; fds: number; single: number[]; firstOnEach: number[]; spread: number[] };
    const single = { label: "1 connection", stats: summarize(r.single) };
    rows.push(
      { label: "host RSS per connection", unit: "KiB", stats: summarize([(r.after - r.before) / r.conns]), better: "lower", note: `${r.conns} connections to ${agents.length} agents: RSS ${r.before} → ${r.after} KiB, ${r.fds} fds` },
      { label: "exec on 1 connection (limit)", unit: "ms", stats: single.stats, better: "lower" },
      { label: `first exec on each of ${conns} connections`, unit: "ms", stats: summarize(r.firstOnEach), limit: single, better: "lower", note: "one after another, each on a connection not used before" },
      { label: `exec with ${conns} connections open`, unit: "ms", stats: summarize(r.spread), limit: { label: "1 connection p99", stats: { ...single.stats, median: single.stats.p99 } }, better: "lower", note: "round robin over all connections, each used before; ratio = this p99 / single-connection p99" },
    );
    // The ratio column divides medians; for this row the comparison asked for is p99 to p99.
    const last = rows.at(-1)!;
    last.stats = { ...last.stats };
    last.ratioOverride = last.stats.p99 / single.stats.p99;
  } finally {
    for (const a of agents) await stop(a.proc);
  }
  return {
    title: "Concurrency and scale",
    about: `${AT_ONCE} executions of \`/bin/true\` sent at once on one connection (host library), ${Math.max(3, ctx.runs * 2)} batches. Then one host process (bench/_scale_child.ts) opens ${ctx.quick ? 50 : 1000} connections to 4 agents in listen mode and runs execs one after another round robin over them.`,
    rows,
  };
}
