#!/usr/bin/env bun
// `bun bench/variants.ts [--n N]`: what build options would change at start-up and idle, without
// (--bytecode needs --format=esm: bytecode defaults to CommonJS, where main.ts's top-level await fails.)
// changing build.ts: the agent compiled as build.ts does (minify), with `--bytecode`, with `--smol`
// embedded (`--compile-exec-argv=--smol`), and both; against the compiled hello (bench/hello.ts).
// Start → listening and idle VmRSS/RssAnon, the variants interleaved so a machine that slows down slows
// them all. Prints a Markdown table (for bench/README.md).
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ROOT } from "../test/helpers/build.ts";
import type { Ctx } from "./_ctx.ts";
import { run, stopAll } from "./_procs.ts";
import { summarize } from "./_stats.ts";
import { startToReady } from "./sections/footprint.ts";

const { values: opt } = parseArgs({ options: { n: { type: "string", default: "15" } } });
const N = Number(opt.n);
const dir = mkdtempSync(join(tmpdir(), "vge-variants-"));
const ctx = { dir, quick: false, agent: "", reps: 0, bytes: 0, runs: 0, left: () => 600_000, log: (m: string) => console.error(m) } as Ctx;
const entry = join(ROOT, "src/agent/main.ts");
const VARIANTS: [string, string[]][] = [
  ["agent (as build.ts: --minify)", ["--minify"]],
  ["agent --bytecode", ["--minify", "--bytecode", "--format=esm"]],
  ["agent --smol", ["--minify", "--compile-exec-argv=--smol"]],
  ["agent --bytecode --smol", ["--minify", "--bytecode", "--format=esm", "--compile-exec-argv=--smol"]],
  ["hello (bench/hello.ts)", []],
];
try {
  const bins: string[] = [];
  for (const [i, [name, flags]] of VARIANTS.entries()) {
    const out = join(dir, `v${i}`);
    console.error(`building ${name}`);
    await run(["bun", "build", "--compile", ...flags, name.startsWith("hello") ? join(import.meta.dir, "hello.ts") : entry, "--outfile", out], 180_000);
    bins.push(out);
  }
  const res = VARIANTS.map(() => ({ ms: [] as number[], rss: [] as number[], anon: [] as number[] }));
  for (let k = 0; k < N; k++) {
    for (const [i, bin] of bins.entries()) {
      const r = await startToReady(ctx, (s) => (i === bins.length - 1 ? [bin, s] : [bin, "--listen", "--unix", s]), 1);
      res[i]!.ms.push(...r.ms);
      res[i]!.rss.push(...r.rss);
      res[i]!.anon.push(...r.anon);
    }
  }
  console.log(`| build (${N} starts each, interleaved) | size MiB | start → listening ms: median (min–max) | VmRSS idle MiB | RssAnon idle MiB |`);
  console.log("|---|---|---|---|---|");
  for (const [i, [name]] of VARIANTS.entries()) {
    const ms = summarize(res[i]!.ms);
    const f = (xs: number[]) => (summarize(xs).median / 1024).toFixed(1);
    console.log(`| ${name} | ${(statSync(bins[i]!).size / 2 ** 20).toFixed(1)} | ${ms.median.toFixed(0)} (${ms.min.toFixed(0)}–${ms.max.toFixed(0)}) | ${f(res[i]!.rss)} | ${f(res[i]!.anon)} |`);
  }
} finally {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
}
