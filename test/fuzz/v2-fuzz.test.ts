// Mutation fuzzing of protocol v2 against the compiled agent (listen mode, Unix socket), one connection per
// case, seeded and reproducible. After every case the agent must still be alive, serve a fresh connection
// in full, and have logged no escaped exception; after the run its fds, children and RSS are held to the
// baseline. A case that breaks it is saved in test/fuzz/corpus/, which corpus.test.ts replays on every run.
//
//   VGE_FUZZ_SECONDS  fuzzing time (default 45; CI keeps the default, with guest-fuzz.test.ts's 25 s)
//   VGE_FUZZ_SEED     the run's seed (default below); printed with every failure
//   VGE_FUZZ_CASE     run only this case number of the seed (reproduce one failure)
//   VGE_FUZZ_SAVE=0   do not write failures into the corpus
import { afterAll, beforeAll, expect, test } from "bun:test";
import { agentBinary } from "../helpers/build.ts";
import { fdTargets, footprint, settled, type Footprint } from "../helpers/proc.ts";
import { save, signature } from "./_corpus.ts";
import { grammarCase } from "./_grammar.ts";
import { hazard, makeCase, type Case } from "./_mutate.ts";
import { caseSeed, prng } from "./_rng.ts";
import { seedSessions } from "./_seeds.ts";
import { alive, escapedErrors, fuzzDir, health, overLimit, removeDir, runCase, startTarget, stopTarget, type Target } from "./_target.ts";

const SECONDS = Number(process.env.VGE_FUZZ_SECONDS ?? 45);
const SEED = Number(process.env.VGE_FUZZ_SEED ?? 0x5eedf022) >>> 0;
const ONLY = process.env.VGE_FUZZ_CASE === undefined ? undefined : Number(process.env.VGE_FUZZ_CASE);
const SAVE = process.env.VGE_FUZZ_SAVE !== "0";
/** Cases drawn from the stateful grammar (_grammar.ts) rather than mutated from a seed session. */
const GRAMMAR_SHARE = 0.4;
/** Failures of one kind reported in full (all are counted); the run stops early after MAX_FAILURES in all. */
const REPORT_PER_KIND = 3;
const MAX_FAILURES = 1000;
/**
 * RSS growth allowed after the run (agent heap after thousands of hostile connections, some with frames
 * near MAX_PAYLOAD and JSON of 5,000 keys). Measured: +12 to +16 MiB after 60 to 180 s (1,000 to 3,800
 * cases), on top of which garbage the GC has not yet collected was seen at up to 25 MiB in the soak test.
 * 64 MiB holds both and still fails a leak of ~50 KiB per case; small leaks are the soak test's job.
 */
const RSS_GROWTH_LIMIT_KIB = 64 * 1024;

interface Failure {
  seed: string;
  case: number;
  reason: string;
  seedSession: string;
  mutations: string[];
  saved?: string;
}

let dir: string;
let target: Target;
let baseline: Footprint;
let baselineFds: string[];
/** The one TCP target cases may name (hazard() refuses any other): an echo server on 127.0.0.1, port from the kernel. */
const echo = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data: (s, d) => void s.write(d), error: () => {} } });

async function fresh(): Promise<void> {
  target = await startTarget(dir, SECONDS * 1000 + 120_000);
  if ((await health(target)) !== undefined) throw new Error(`the agent does not serve even before fuzzing:\n${target.agent.log()}`);
  escapedErrors(target);
  // The health check's connection closes asynchronously in the agent: count once it has.
  await Bun.sleep(300);
  baseline = footprint(target.agent.pid);
  baselineFds = fdTargets(target.agent.pid);
}

beforeAll(async () => {
  agentBinary();
  dir = fuzzDir();
  await fresh();
}, 120_000);

afterAll(async () => {
  echo.stop(true);
  if (target) await stopTarget(target);
  if (dir) removeDir(dir);
});

/** Case `n` of the run: its own PRNG, so it reproduces alone. Redrawn (same PRNG) in the rare event the mutator produced something `hazard` refuses. */
function caseFor(n: number, seeds: ReturnType<typeof seedSessions>): Case {
  const rng = prng(caseSeed(SEED, n));
  for (;;) {
    const c = rng.chance(GRAMMAR_SHARE) ? grammarCase(rng, dir, echo.port) : makeCase(rng, seeds, dir);
    if (hazard(c, dir, echo.port) === undefined) return c;
  }
}

test(
  `v2 fuzz: ${ONLY === undefined ? `${SECONDS} s` : `case ${ONLY}`} of mutated sessions, seed 0x${SEED.toString(16)}`,
  async () => {
    const seeds = seedSessions(dir, echo.port);
    const failures: Failure[] = [];
    const kinds = new Map<string, number>();
    const t0 = performance.now();
    let n = ONLY ?? 0;
    let cases = 0;
    let errors = 0;
    let restarts = 0;
    for (; ONLY === undefined ? performance.now() - t0 < SECONDS * 1000 : n === ONLY; n++) {
      const c = caseFor(n, seeds);
      const r = await runCase(target, c);
      cases++;
      if (r.error) errors++;
      const problems: string[] = [...r.violations];
      const sick = await health(target);
      if (sick) problems.push(sick);
      const over = sick ? undefined : await overLimit(target);
      if (over) problems.push(over);
      const escaped = escapedErrors(target);
      if (escaped.length) problems.push(`agent log: ${escaped.join(" | ")}`);
      if (problems.length === 0) continue;

      const reason = problems.join("; ");
      const f: Failure = { seed: `0x${SEED.toString(16)}`, case: n, reason, seedSession: c.seedName, mutations: c.notes };
      // The corpus replays without this run's echo listener, so a case that reaches it (a well-formed
      // TCP_OPEN, which hazard() refuses without the port) stays out; its seed and case reproduce it. So
      // does one over --max-detached: the corpus replays against an agent without that limit.
      if (SAVE && !over && hazard(c, dir) === undefined) f.saved = save(SEED, n, c, reason, dir);
      failures.push(f);
      const kind = signature(reason);
      kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
      if (kinds.get(kind)! <= REPORT_PER_KIND) console.log(`FUZZ FAILURE seed 0x${SEED.toString(16)} case ${n} (VGE_FUZZ_SEED=${SEED} VGE_FUZZ_CASE=${n}): ${reason}\n  from "${c.seedName}": ${c.notes.join("; ")}`);
      if (sick) {
        // A dead or stuck agent serves no further case: start another, and keep going.
        await stopTarget(target);
        await fresh();
        restarts++;
      }
      if (failures.length >= MAX_FAILURES) break;
    }
    const elapsed = (performance.now() - t0) / 1000;

    // Killed executions and closed connections wind down asynchronously: give them a moment.
    await Bun.sleep(300);
    const after = await settled(target.agent.pid, baseline.fds, 5000);
    const growth = after.rssKiB - baseline.rssKiB;
    console.log(
      `v2 fuzz: seed 0x${SEED.toString(16)}, ${cases} cases in ${elapsed.toFixed(1)} s, ${errors} answered with ERROR, ` +
        `${failures.length} failures, ${restarts} agent restarts\n` +
        `v2 fuzz: agent (since its last start) fds ${baseline.fds} -> ${after.fds}, RSS ${(baseline.rssKiB / 1024).toFixed(1)} -> ${(after.rssKiB / 1024).toFixed(1)} MiB, ` +
        `children ${JSON.stringify(after.children)}`,
    );
    for (const [kind, count] of kinds) console.log(`v2 fuzz: ${count} x ${kind}`);
    // One case alone: its whole agent log, for the lines around what the check picked out.
    if (ONLY !== undefined) console.log(`v2 fuzz: agent log:\n${target.agent.log()}`);
    if (after.fds !== baseline.fds) console.log(`v2 fuzz: agent fds before:\n${baselineFds.join("\n")}\nafter:\n${fdTargets(target.agent.pid).join("\n")}`);

    expect(alive(target)).toBe(true);
    expect(after.children).toEqual([]); // nothing left running, no zombie
    expect(after.fds).toBe(baseline.fds);
    expect(growth).toBeLessThan(RSS_GROWTH_LIMIT_KIB);
    // One line per failure here; the full cases are above (the first few of each kind) and in the corpus.
    expect(failures.map((f) => `case ${f.case}: ${f.reason}`)).toEqual([]);
  },
  // Fuzzing time, plus a health check (<= 5 s) and possibly a restart for a few failures, plus the settle.
  (ONLY === undefined ? SECONDS : 0) * 1000 + 10 * 12_000 + 60_000,
);
