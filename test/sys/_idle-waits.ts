// Run by fdwatch.test.ts in a process of its own, so that nothing left over from other test files (timers,
// sockets, garbage) wakes it: 50 idle pipe reads waited on for 1 s, through the poll thread ("watch") or
// by timer polling every 20 ms ("poll", the old way). Prints this process's wake-ups in that second.
import { POLLIN, pipe, setNonblocking, waitFd } from "../../src/sys/index.ts";
import { fdReady } from "../../src/sys/fdwatch.ts";
import { wakeups } from "../helpers/proc.ts";

const mode = process.argv[2];
if (mode !== "watch" && mode !== "poll") throw new Error(`usage: _idle-waits.ts watch|poll, not ${mode}`);
const ac = new AbortController();
const waits = Array.from({ length: 50 }, () => {
  const p = pipe();
  setNonblocking(p.read, true);
  return mode === "watch" ? fdReady(p.read, POLLIN, ac.signal).catch(() => 0) : waitFd(p.read, POLLIN, { signal: ac.signal, maxNapMs: 20 }).catch(() => 0);
});
await Bun.sleep(200);
const start = wakeups("self");
// A sleep wakes this thread once; everything else counted is the waits.
await Bun.sleep(1000);
console.log(wakeups("self") - start);
ac.abort();
await Promise.all(waits);
