// The host side of the stalled-reader test (stall-memory.test.ts), in its own process: runs `yes` (or GETs
// a large file) and reads nothing for `ms`, sampling its own resident size; then reads one chunk (the
// stream is live) and prints, as one JSON line, how much the resident size grew at its peak.
import { readFileSync } from "node:fs";
import { connect } from "../../src/host/index.ts";

const [addr, what, ms] = [process.argv[2]!, process.argv[3]!, Number(process.argv[4] ?? 3000)];
const rss = () => Number(/^VmRSS:\s+(\d+) kB$/m.exec(readFileSync("/proc/self/status", "utf8"))![1]) * 1024;
const guest = await connect(addr);
await guest.run(["true"]);
Bun.gc(true);
const base = rss();
let peak = base;
const stream = what === "stdout" ? guest.exec(["yes", "0123456789abcdef"]).stdout : guest.getFile(what).stream;
for (const t0 = performance.now(); performance.now() - t0 < ms; ) {
  await Bun.sleep(20);
  peak = Math.max(peak, rss());
}
const reader = stream.getReader();
const first = await reader.read();
process.stdout.write(`${JSON.stringify({ grew: peak - base, firstChunk: first.value?.byteLength ?? 0 })}\n`);
process.exit(0);
