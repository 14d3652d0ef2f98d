// Replays every case in test/fuzz/corpus/: inputs that once broke the agent (see v2-fuzz.test.ts) must now
// be answered without breaking it, by the same judgement: alive, a fresh connection served in full within
// 5 s, no escaped exception in its log, no protocol violation in what it sent. Each case is sent a few
// times, since some failures depend on timing.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { agentBinary } from "../helpers/build.ts";
import { childrenOf } from "../helpers/proc.ts";
import { load, savedNames } from "./_corpus.ts";
import { hazard } from "./_mutate.ts";
import { escapedErrors, fuzzDir, health, removeDir, runCase, startTarget, stopTarget, type Target } from "./_target.ts";

const REPEAT = 3;
const names = savedNames();

let dir: string;
let target: Target | undefined;

async function ensureTarget(): Promise<Target> {
  if (!target) {
    target = await startTarget(dir, 600_000);
    escapedErrors(target);
  }
  return target;
}

beforeAll(() => {
  agentBinary();
  dir = fuzzDir();
}, 120_000);

afterAll(async () => {
  if (target) await stopTarget(target);
  if (dir) removeDir(dir);
});

test("the corpus is readable and every case is safe to send", () => {
  for (const name of names) {
    const { c } = load(name, "/tmp/vge-fuzz-XXXXXX"); // same length as every fuzz directory
    expect(hazard(c, "/tmp/vge-fuzz-XXXXXX")).toBeUndefined();
  }
});

describe.skipIf(names.length === 0)("regression corpus", () => {
  test.each(names)("%s", async (name) => {
    const { saved, c } = load(name, dir);
    expect(hazard(c, dir)).toBeUndefined();
    const problems: string[] = [];
    for (let i = 0; i < REPEAT && problems.length === 0; i++) {
      const t = await ensureTarget();
      const r = await runCase(t, c);
      problems.push(...r.violations);
      const sick = await health(t);
      if (sick) problems.push(sick);
      const escaped = escapedErrors(t);
      if (escaped.length) problems.push(`agent log: ${escaped.join(" | ")}`);
      if (sick) {
        await stopTarget(t);
        target = undefined;
      }
    }
    if (problems.length) console.log(`${name} (found ${saved.found}: ${saved.reason}) still breaks the agent: ${problems.join("; ")}`);
    expect(problems).toEqual([]);
  }, 60_000);

  test("no execution of the corpus is left behind", async () => {
    const t = await ensureTarget();
    const end = performance.now() + 3000;
    while (childrenOf(t.agent.pid).length && performance.now() < end) await Bun.sleep(50);
    expect(childrenOf(t.agent.pid)).toEqual([]);
  });
});
