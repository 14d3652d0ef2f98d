// The host side of the read-buffer tests (views-memory.test.ts), in its own process so that its memory is
// its own: two executions on one connection; the first is read to its end, the second never read (`stall`)
// or read with every chunk kept (`keep`, as run() collects output). Prints, as one JSON line, how much the
// resident size grew while the first was read (after a full GC), with the second's chunks still held.
import { readFileSync } from "node:fs";
import { connect } from "../../src/host/index.ts";

const rss = () => Number(/^VmRSS:\s+(\d+) kB$/m.exec(readFileSync("/proc/self/status", "utf8"))![1]) * 1024;
const guest = await connect(`unix:${process.argv[2]}`);
Bun.gc(true);
const base = rss();
const read = guest.exec(["read"]);
const stalled = guest.exec(["stalled"]);
const kept: Uint8Array[] = [];
if (process.argv[3] === "keep") void (async () => {
  for await (const c of stalled.stdout) kept.push(c);
})();
let got = 0;
for await (const c of read.stdout) got += c.byteLength;
await read.exited;
Bun.gc(true);
await Bun.sleep(50);
Bun.gc(true);
const grew = rss() - base;
process.stdout.write(`${JSON.stringify({ got, grew, kept: kept.reduce((n, c) => n + c.byteLength, 0) })}\n`);
stalled.kill();
process.exit(0);
