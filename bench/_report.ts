// The rows a bench run produces and their Markdown rendering (BENCHMARKS.md).
import type { Stats } from "./_stats.ts";

export interface Row {
  /** Stable label, also what test/bench/bench-quick.test.ts looks for. */
  label: string;
  unit: string;
  stats: Stats;
  /** What the row is compared with, measured in the same run, and its median. */
  limit?: { label: string; stats: Stats };
  /** "lower" when smaller is better (times, sizes), "higher" for rates. Only decides the ratio's wording. */
  better?: "lower" | "higher";
  note?: string;
  /** A ratio other than median / limit median (e.g. p99 / p99), said in the note. */
  ratioOverride?: number;
}

export interface Section {
  title: string;
  /** What was measured and how, in a sentence or two. */
  about: string;
  rows: Row[];
  /** Set when the section could not run (missing tool, --quick): its rows are listed as not measured. */
  skipped?: { reason: string; labels: string[] };
}

function fmt(x: number): string {
  const a = Math.abs(x);
  if (a === 0) return "0";
  if (a >= 1000) return x.toFixed(0);
  if (a >= 100) return x.toFixed(1);
  if (a >= 1) return x.toFixed(2);
  return x.toPrecision(3);
}

export function ratioOf(r: Row): number | undefined {
  if (r.ratioOverride !== undefined) return r.ratioOverride;
  // A limit of 0 (a count, e.g. wake-ups of an idle baseline) has no ratio: the row shows the limit alone.
  return r.limit && r.limit.stats.median > 0 ? r.stats.median / r.limit.stats.median : undefined;
}

function tableRow(r: Row): string {
  const s = r.stats;
  const ratio = ratioOf(r);
  const limit = r.limit ? `${r.limit.label}: ${fmt(r.limit.stats.median)}` : "—";
  return `| ${r.label} | ${r.unit} | ${s.n} | ${fmt(s.median)} | ${fmt(s.p99)} | ${fmt(s.min)}–${fmt(s.max)} | ${limit} | ${ratio === undefined ? "—" : `${ratio.toFixed(2)}×`} |${r.note ? ` ${r.note} |` : " |"}`;
}

export function renderSection(sec: Section): string {
  const out = [`## ${sec.title}`, "", sec.about, ""];
  out.push("| row | unit | n | median | p99 | min–max | limit (median) | ratio to limit | note |", "|---|---|---|---|---|---|---|---|---|");
  for (const r of sec.rows) out.push(tableRow(r));
  if (sec.skipped) for (const l of sec.skipped.labels) out.push(`| ${l} | — | 0 | not measured | — | — | — | — | ${sec.skipped.reason} |`);
  out.push("");
  return out.join("\n");
}
