#!/usr/bin/env bun
// `bun run bench [--quick] [--guard] [--out FILE] [--only SECTION,…] [--no-guest] [--note TEXT]`: this agent side by side with
// the tools users choose between (qemu-ga, OpenSSH, socat EXEC), each row with the limit measured in the
// same run, written as Markdown (default BENCHMARKS.md at the repo root). See bench/README.md.
// --guard: exit 2 when a ratio leaves the regression guard's bounds (guard.ts).
// Everything is bounded: every process has a timeout and the whole run a deadline (10 min; 4 min quick).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { agentBinary, ROOT } from "../test/helpers/build.ts";
import type { Ctx } from "./_ctx.ts";
import { machine } from "./_machine.ts";
import { stopAll } from "./_procs.ts";
import { renderSection, type Section } from "./_report.ts";
import { concurrencySection } from "./sections/concurrency.ts";
import { execSection } from "./sections/exec.ts";
import { sequentialSection } from "./sections/sequential.ts";
import { footprintSection } from "./sections/footprint.ts";
import { streamSection } from "./sections/stream.ts";
import { initrdSection, initrdSkipped } from "./sections/initrd.ts";
import { targetsSection } from "./targets.ts";
import { judgeGuard } from "./guard.ts";
import { guestSection, guestSkip, skippedGuest } from "./sections/guest.ts";

const { values: opt } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    guard: { type: "boolean", default: false },
    out: { type: "string" },
    only: { type: "string" },
    "no-guest": { type: "boolean", default: false },
    /** A line in bold at the top, e.g. "Preliminary: a shared development VM". */
    note: { type: "string" },
  },
});

const SECTIONS: Record<string, (ctx: Ctx) => Promise<Section>> = {
  exec: execSection,
  sequential: sequentialSection,
  concurrency: concurrencySection,
  stream: streamSection,
  footprint: footprintSection,
  guest: (ctx) => {
    const skip = guestSkip(ctx, opt["no-guest"]!);
    return skip ? Promise.resolve(skippedGuest(skip)) : guestSection(ctx);
  },
  // Last: it takes what time is left (see sections/initrd.ts).
  initrd: (ctx) => (ctx.quick ? Promise.resolve(initrdSkipped("compressing ~100 MiB images takes minutes: not in --quick")) : initrdSection(ctx)),
};

const quick = opt.quick!;
const DEADLINE_MS = quick ? 240_000 : 600_000;
const t0 = performance.now();
const out = opt.out ?? join(ROOT, "BENCHMARKS.md");
const dir = mkdtempSync(join(tmpdir(), "vge-bench-"));
const ctx: Ctx = {
  dir,
  quick,
  agent: agentBinary(),
  reps: quick ? 20 : 200,
  bytes: quick ? 32 * 1024 * 1024 : 1024 * 1024 * 1024,
  // Five short runs in --quick: the regression guard (guard.ts) takes the best of them.
  runs: quick ? 5 : 3,
  left: () => DEADLINE_MS - (performance.now() - t0),
  log: (m) => console.error(`bench: ${((performance.now() - t0) / 1000).toFixed(1)} s: ${m}`),
};
const wanted = opt.only ? opt.only.split(",") : Object.keys(SECTIONS);
const argv = ["bun", "run", "bench", ...process.argv.slice(2)].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", "'\\''")}'`)).join(" ");

const sections: Section[] = [];
let failed = false;
const m = machine(ctx.agent);

/**
 * Rows measured by tests and scripts outside a bench run (guest boot ordering, RAM floors): kept in
 * bench/measured-separately.md and carried into every BENCHMARKS.md, so that a run does not drop them.
 * Not in --out files of --quick runs (the guard's), where they would only be noise.
 */
function separately(): string {
  if (quick) return "";
  const text = readFileSync(join(ROOT, "bench", "measured-separately.md"), "utf8");
  // Its title becomes a section of BENCHMARKS.md, its sections subsections.
  return `${text.replace(/^## /gm, "### ").replace(/^# .*$/m, "## Measured separately, by tests and scripts (bench/measured-separately.md)").trimEnd()}\n\n`;
}

/** Written after every section, so that a run cut short still leaves what it measured. */
function write(done: boolean): void {
  const head = [
    "# Benchmarks",
    "",
    ...(quick ? ["**Quick run (`--quick`): small counts and sizes, a smoke check. Not the numbers to quote.**", ""] : []),
    ...(done ? [] : ["**Incomplete: the run stopped before its last section.**", ""]),
    ...(opt.note ? [`**${opt.note}**`, ""] : []),
    `Written by \`${argv}\` on ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC in ${((performance.now() - t0) / 1000).toFixed(0)} s. How each row is measured: [bench/README.md](bench/README.md).`,
    "",
    `- Machine: ${m.cpu}, ${m.cores} cores, ${m.memGiB} GiB, Linux ${m.kernel}`,
    ...Object.entries(m.versions).map(([k, v]) => `- ${k}: ${v}`),
    "",
    "Ratio = row median / limit median (unless its note says otherwise): for times and sizes above 1 is slower or larger than the limit, for rates below 1 is slower.",
    "",
  ].join("\n");
  writeFileSync(out, `${head}\n${sections.map(renderSection).join("\n")}\n${separately()}${targetsSection(sections)}`);
}

async function cleanup(): Promise<void> {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
}
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.once(sig, () => {
    console.error(`bench: ${sig}: stopping`);
    void cleanup().finally(() => process.exit(sig === "SIGINT" ? 130 : 143));
  });
}

try {
  for (const name of wanted) {
    const fn = SECTIONS[name];
    if (!fn) throw new Error(`no section "${name}" (sections: ${Object.keys(SECTIONS).join(", ")})`);
    try {
      sections.push(await fn(ctx));
    } catch (e) {
      failed = true;
      console.error(`bench: section ${name} failed: ${(e as Error).stack ?? e}`);
    }
    write(false);
  }
  write(true);
} finally {
  await cleanup();
}
console.error(`bench: wrote ${out}`);
if (opt.guard && !failed) {
  const verdict = judgeGuard(new Map(sections.flatMap((s) => s.rows.map((r) => [r.label, r] as const))));
  for (const l of verdict.lines) console.error(l);
  if (verdict.failed.length) {
    console.error(`bench: regression guard failed: ${verdict.failed.join("; ")}`);
    process.exit(2);
  }
}
process.exit(failed ? 1 : 0);
