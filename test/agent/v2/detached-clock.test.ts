// Finished detached jobs expire on the monotonic clock (src/agent/v2/detached.ts, src/common/clock.ts), in
// process: a guest's wall clock steps (set at boot, NTP, snapshot resume), and a wall-clock deadline then
// forgets every finished job at once. Here Date.now() jumps a day ahead and back a day: the jobs stay; the
// monotonic clock moved past EXITED_TTL_MS: they go.
import { afterEach, expect, test } from "bun:test";
import { DetachedJobs, EXITED_TTL_MS } from "../../../src/agent/v2/detached.ts";
import type { Attachment } from "../../../src/agent/v2/job-output.ts";
import { DEFAULT_LIMITS } from "../../../src/agent/limits.ts";
import { makeLog } from "../../../src/common/log.ts";
import { FrameDecoder } from "../../../src/protocol/v2/decoder.ts";
import { T, type Frame } from "../../../src/protocol/v2/frame.ts";
import { decodeExec } from "../../../src/protocol/v2/messages.ts";

const realDateNow = Date.now;
const realPerfNow = performance.now.bind(performance);
afterEach(() => {
  Date.now = realDateNow;
  performance.now = realPerfNow;
});

const DAY = 24 * 3600 * 1000;

/** A connection's side of one id: every frame the registry sends it. */
function attachment(id: number): Attachment & { frames: Frame[] } {
  const decoder = new FrameDecoder();
  const frames: Frame[] = [];
  return { id, frames, send: async (b) => void frames.push(...decoder.frames(b.slice())), release: () => {} };
}

async function finishedJob(jobs: DetachedJobs, tag: string): Promise<void> {
  const a = attachment(1);
  expect(jobs.start(decodeExec({ argv: ["true"], detach: { tag } }), a, makeLog({ name: "test", quiet: true }))).toBeDefined();
  for (const end = realPerfNow() + 10_000; !a.frames.some((f) => f.type === T.EXIT); await Bun.sleep(10)) if (realPerfNow() > end) throw new Error("no EXIT");
}

const listed = (jobs: DetachedJobs) => jobs.listing().flatMap((p) => p.jobs.map((j) => `${j.tag}:${j.state}`));

test("a wall-clock step a day forward or back forgets no finished job; EXITED_TTL_MS on the monotonic clock does", async () => {
  const jobs = new DetachedJobs({ ...DEFAULT_LIMITS });
  await finishedJob(jobs, "one");
  await finishedJob(jobs, "two");
  expect(listed(jobs)).toEqual(["one:exited", "two:exited"]);
  // The guest's clock is set (or NTP steps it) a day ahead: before, every finished job was forgotten here.
  Date.now = () => realDateNow() + DAY;
  expect(listed(jobs)).toEqual(["one:exited", "two:exited"]);
  Date.now = () => realDateNow() - DAY;
  expect(listed(jobs)).toEqual(["one:exited", "two:exited"]);
  // Time itself passes: past the TTL on the monotonic clock, both are forgotten, whatever the wall clock says.
  Date.now = realDateNow;
  performance.now = () => realPerfNow() + EXITED_TTL_MS - 1000;
  expect(listed(jobs)).toEqual(["one:exited", "two:exited"]);
  performance.now = () => realPerfNow() + EXITED_TTL_MS + 1000;
  expect(listed(jobs)).toEqual([]);
});
