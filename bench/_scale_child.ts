// Child of sections/concurrency.ts: one host process that opens CONNS connections to the listening agents
// given, and reports its own RSS per connection and exec latencies on one connection vs across all.
// Its own process so that the RSS it reads (/proc/self/status) is only this.
// Usage: bun bench/_scale_child.ts CONNS EXECS ADDRESS...   → one JSON line on stdout.
import { connect, type Guest } from "../src/host/index.ts";
import { readFileSync } from "node:fs";

const [connsText, execsText, ...addresses] = process.argv.slice(2);
const CONNS = Number(connsText);
const EXECS = Number(execsText);

function rssKiB(): number {
  Bun.gc(true);
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync("/proc/self/status", "utf8"))?.[1]);
}

async function lat(g: () => Guest, n = EXECS): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const guest = g();
    const t0 = performance.now();
    const r = await guest.run(["/bin/true"]);
    out.push(performance.now() - t0);
    if (r.code !== 0) throw new Error(`exec: ${r.status}`);
  }
  return out;
}

const first = await connect(addresses[0]!);
await first.run(["/bin/true"]);
const single = await lat(() => first);
const before = rssKiB();
const guests: Guest[] = [];
for (let i = 0; i < CONNS; i += 50) {
  const batch = Array.from({ length: Math.min(50, CONNS - i) }, (_, j) => connect(addresses[(i + j) % addresses.length]!));
  guests.push(...(await Promise.all(batch)));
}
const after = rssKiB();
// The first exec on each connection, then the steady state (every connection already used once).
let k = 0;
const firstOnEach = await lat(() => guests[k++ % guests.length]!, guests.length);
k = 0;
// Round robin over all connections: each exec on a different one, all of them held open.
const spread = await lat(() => guests[k++ % guests.length]!);
const fds = (await Array.fromAsync(new Bun.Glob("*").scan({ cwd: "/proc/self/fd", onlyFiles: false }))).length;
for (const g of [first, ...guests]) g.close();
console.log(JSON.stringify({ conns: guests.length, before, after, fds, single, firstOnEach, spread }));
process.exit(0);
