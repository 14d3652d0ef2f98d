// Every agent deadline runs on a monotonic clock (src/common/clock.ts): a guest's wall clock steps at boot
// (no RTC), under NTP, and on snapshot resume. Here Date.now is stepped in-process by an hour, forward or
// back, in the middle of each wait; the wait must last as long as it would have without the step.
import { afterEach, expect, test } from "bun:test";
import { retrying } from "../../src/transport/retry.ts";
import { POLLIN, close, pipe, waitFd } from "../../src/sys/index.ts";
import { Execution } from "../../src/agent/v2/exec.ts";
import type { Output } from "../../src/agent/v2/output.ts";
import type { ExitResult } from "../../src/protocol/v2/messages.ts";
import { decodeExec } from "../../src/protocol/v2/messages.ts";

const HOUR = 3_600_000;
const realNow = Date.now;
let offset = 0;
/** From now on Date.now() reads `by` ms off (cumulative); restored after each test. */
function stepWallClock(by: number): void {
  offset += by;
  Date.now = () => realNow() + offset;
}
afterEach(() => {
  Date.now = realNow;
  offset = 0;
});

const transient = Object.assign(new Error("connect: ECONNREFUSED"), { code: "ECONNREFUSED" });

for (const step of [HOUR, -HOUR]) {
  test(`dial retry window: a ${step > 0 ? "forward" : "backward"} step of an hour after the first failure does not change its 1.5 s`, async () => {
    const t0 = performance.now();
    let attempts = 0;
    const outcome = retrying(
      async () => {
        if (++attempts === 1) stepWallClock(step);
        throw transient;
      },
      { retryMs: 1500, isTransient: () => true, firstPauseMs: 50, maxPauseMs: 100 },
    ).then(
      () => "resolved",
      (e) => (e === transient ? "gave up" : String(e)),
    );
    // A backward step on the wall clock would retry for an hour: bounded here at 6 s.
    const result = await Promise.race([outcome, Bun.sleep(6000).then(() => "still retrying after 6 s")]);
    const elapsed = performance.now() - t0;
    expect(result).toBe("gave up");
    expect(elapsed).toBeGreaterThan(1400);
    expect(elapsed).toBeLessThan(5000);
    expect(attempts).toBeGreaterThan(5);
  });
}

test("waitFd's timeout (each connect attempt's bound): a forward step does not end it early", async () => {
  const p = pipe();
  try {
    const t0 = performance.now();
    setTimeout(() => stepWallClock(HOUR), 100);
    expect(await waitFd(p.read, POLLIN, { timeoutMs: 800 })).toBe(0);
    expect(performance.now() - t0).toBeGreaterThan(700);
  } finally {
    close(p.read);
    close(p.write);
  }
});

/** An Output that takes everything at once and records it. */
function recordingOutput(): Output & { text(): string; exit: Promise<ExitResult> } {
  let out = "";
  let ended!: (r: ExitResult) => void;
  const exit = new Promise<ExitResult>((r) => (ended = r));
  return {
    ready: async () => true,
    room: () => 1 << 20,
    copiesChunks: false,
    write: async (_t, chunk) => {
      out += new TextDecoder().decode(chunk);
      return true;
    },
    started: () => {},
    end: (r) => ended(r),
    onWindow: () => {},
    spendStdin: () => {},
    stdinTaken: () => {},
    leave: () => false,
    close: () => {},
    text: () => out,
    exit,
  };
}

test("quiet after exit: a forward step while a child still writes does not cut its output off", async () => {
  // The leader exits at once; its child holds stdout and writes a line every 100 ms for 1.2 s, never
  // quiet for the 500 ms that would end the execution.
  const script = "(for i in 1 2 3 4 5 6 7 8 9 10 11 12; do echo $i; sleep 0.1; done) & exit 0";
  const out = recordingOutput();
  const ex = new Execution(1, decodeExec({ shell: script }), out, () => {});
  ex.start();
  setTimeout(() => stepWallClock(HOUR), 400);
  const result = await Promise.race([out.exit, Bun.sleep(10_000).then(() => undefined)]);
  expect(result).toEqual({ status: "exited", code: 0 });
  expect(out.text().trim().split("\n")).toEqual(["1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12"]);
});
