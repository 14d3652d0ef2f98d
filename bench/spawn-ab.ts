import { spawnProcess, reap } from "../src/sys/spawn.ts";
import { fdReady } from "../src/sys/fdwatch.ts";
import { pipe, close, setNonblocking, POLLIN } from "../src/sys/index.ts";
const env = Object.fromEntries(Object.entries(process.env).filter(([, v]) => v !== undefined)) as Record<string, string>;
const med = (xs: number[]) => xs.sort((a, b) => a - b)[xs.length >> 1]!;
async function bun1() {
  const p = pipe(); setNonblocking(p.read, true);
  const proc = Bun.spawn(["/bin/true"], { env, detached: true, stdin: "ignore", stdout: p.write, stderr: p.write });
  close(p.write); close(p.read);
  await proc.exited;
}
async function fast1() {
  const p = pipe(); setNonblocking(p.read, true);
  const s = spawnProcess({ path: "/bin/true", argv: ["/bin/true"], env, stdio: [null, p.write, p.write] });
  close(p.write); close(p.read);
  let st = reap(s.pid);
  while (!st) { await fdReady(s.pidfd, POLLIN); st = reap(s.pid); }
  close(s.pidfd);
}
const W: Record<string, number[]> = { bun: [], fast: [] }, C: Record<string, number[]> = { bun: [], fast: [] };
for (let i = 0; i < 1500; i++) {
  for (const [n, f] of [["bun", bun1], ["fast", fast1]] as const) {
    const c0 = process.cpuUsage(); const t0 = performance.now();
    await f();
    W[n]!.push(performance.now() - t0); const c = process.cpuUsage(c0); C[n]!.push((c.user + c.system) / 1000);
  }
}
for (const n of ["bun", "fast"]) console.log(n, "wall median", med(W[n]!).toFixed(3), "cpu median", med(C[n]!).toFixed(3), "cpu mean", (C[n]!.reduce((a, b) => a + b) / C[n]!.length).toFixed(3));
process.exit(0);
