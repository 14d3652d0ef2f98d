// The regression guard (issue 15): generous bounds on ratios measured side by side in one `--quick` run, so
// that a change that doubles a cost fails CI (test/bench/bench-quick.test.ts runs `bun run bench --quick
// --guard`). Not the targets (targets.ts): these bounds sit well above what the loaded 2-core CI machine
// measures, and only catch a step backwards. Every bound is on a ratio to a limit measured in the same
// run, never on an absolute time or rate, and on the best sample of each side (the fastest time, the
// highest rate): a neighbour's load only ever slows a sample down, so best against best moves least on a
// shared machine (single 32 MiB runs of the same build measured 0.16× to 0.7× by median, side by side).
import type { Row } from "./_report.ts";

export interface GuardBound {
  label: string;
  /** The ratio row / limit must stay at most (for times and sizes) or at least (for rates) this. */
  bound: number;
  kind: "max" | "min";
  /**
   * Best-against-best ratio of --quick runs on the shared development VM with 7 other jobs on its 2 cores,
   * after issue 15's cuts (the worst of three runs, one of them beside another bench).
   */
  measured: number;
  /** The factor on the row's cost from `measured` that the bound is sure to catch (2: a doubled cost). */
  catches: number;
}

export const GUARD: GuardBound[] = [
  { label: "agent v2: /bin/true", bound: 2.5, kind: "max", measured: 1.59, catches: 2 },
  { label: "v2 EXEC → EXIT", bound: 0.22, kind: "min", measured: 0.41, catches: 2 },
  { label: "64 concurrent on one connection: batch", bound: 4, kind: "max", measured: 2.9, catches: 2 },
  // Streaming runs are 32 MiB (~0.1 s): even best of five swings 0.2–0.8× with the machine's load, so the
  // bound catches a collapse (a quarter of the rate), not a halving.
  { label: "stdout: agent v2", bound: 0.1, kind: "min", measured: 0.22, catches: 4 },
  { label: "stdin: agent v2", bound: 0.1, kind: "min", measured: 0.23, catches: 4 },
  { label: "file PUT: agent v2", bound: 0.1, kind: "min", measured: 0.25, catches: 4 },
  { label: "file GET: agent v2", bound: 0.1, kind: "min", measured: 0.36, catches: 4 },
  // Three starts each, hello's own start varying 5–10 ms: wide.
  { label: "agent --listen: start → listening", bound: 5, kind: "max", measured: 3.45, catches: 2 },
  // Memory barely varies between runs: closer bounds.
  { label: "agent: VmRSS idle", bound: 2, kind: "max", measured: 1.63, catches: 2 },
  { label: "agent: RssAnon idle", bound: 5, kind: "max", measured: 3.02, catches: 2 },
];

/** Best against best: the lowest times (or sizes), or the highest rates, of the row and of its limit. */
function bestRatio(r: Row, kind: GuardBound["kind"]): number | undefined {
  if (!r.limit) return undefined;
  const [a, b] = kind === "max" ? [r.stats.min, r.limit.stats.min] : [r.stats.max, r.limit.stats.max];
  return b > 0 ? a / b : undefined;
}

/** One line per guarded row; `failed` lists the rows out of bounds or missing. */
export function judgeGuard(rows: Map<string, Row>, bounds: GuardBound[] = GUARD): { lines: string[]; failed: string[] } {
  const lines: string[] = [];
  const failed: string[] = [];
  for (const g of bounds) {
    const r = rows.get(g.label);
    const v = r ? bestRatio(r, g.kind) : undefined;
    const want = `${g.kind === "max" ? "≤" : "≥"} ${g.bound}×`;
    if (v === undefined) {
      failed.push(`${g.label}: not measured (wanted ${want})`);
      lines.push(`guard: ${g.label}: not measured, FAIL`);
      continue;
    }
    const ok = g.kind === "max" ? v <= g.bound : v >= g.bound;
    lines.push(`guard: ${g.label}: ${v.toFixed(2)}× best/best (${want}) ${ok ? "ok" : "FAIL"}`);
    if (!ok) failed.push(`${g.label}: ${v.toFixed(2)}× best/best, wanted ${want}`);
  }
  return { lines, failed };
}
