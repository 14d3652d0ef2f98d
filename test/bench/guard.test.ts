// The regression guard's verdict (bench/guard.ts): the rows as --quick runs on the loaded development VM
// measured them pass; the same rows with one cost multiplied by what its bound is meant to catch (a
// doubled exec round trip, a quartered streaming rate, doubled idle memory) fail, naming the row.
import { expect, test } from "bun:test";
import { GUARD, judgeGuard } from "../../bench/guard.ts";
import type { Row } from "../../bench/_report.ts";
import { summarize } from "../../bench/_stats.ts";

function rows(ratios: Record<string, number>): Map<string, Row> {
  const m = new Map<string, Row>();
  for (const [label, r] of Object.entries(ratios)) m.set(label, { label, unit: "x", stats: summarize([r]), limit: { label: "limit", stats: summarize([1]) } });
  return m;
}
const MEASURED = Object.fromEntries(GUARD.map((g) => [g.label, g.measured]));

test("the measured runs pass, every bound with room to spare", () => {
  expect(judgeGuard(rows(MEASURED)).failed).toEqual([]);
  for (const g of GUARD) expect(g.kind === "max" ? g.bound / g.measured : g.measured / g.bound).toBeGreaterThanOrEqual(1.2);
});

test.each(GUARD.map((g) => [g.label, g] as const))("a step back in %s fails the guard", (label, g) => {
  // A cost times `catches`: a time or size ratio grows by it, a rate ratio shrinks by it.
  const worse = { ...MEASURED, [label]: g.kind === "max" ? g.measured * g.catches : g.measured / g.catches };
  const { failed } = judgeGuard(rows(worse));
  expect(failed.length).toBe(1);
  expect(failed[0]).toStartWith(`${label}:`);
});

test("best against best: the fastest samples of each side are compared, not the medians", () => {
  const row: Row = { label: "agent v2: /bin/true", unit: "ms", stats: summarize([1, 9, 9]), limit: { label: "local", stats: summarize([0.5, 0.6, 9]) } };
  const all = rows(MEASURED);
  all.set(row.label, row);
  // Medians 9 / 0.6 would be 15×; the best samples 1 / 0.5 are 2×, within 2.5×.
  expect(judgeGuard(all).failed).toEqual([]);
});

test("a row the run did not measure fails the guard", () => {
  const { ["stdin: agent v2"]: _, ...rest } = MEASURED;
  expect(judgeGuard(rows(rest)).failed).toEqual(["stdin: agent v2: not measured (wanted ≥ 0.1×)"]);
});
