#!/usr/bin/env bun
// `bun bench/throughput.ts [--mib N] [--runs N] [--execs N] [--json]`: what v2 costs, side by side with
// what the same work costs without the agent, on this machine, over Unix sockets (never AF_VSOCK: the
// development machine is itself a VM).
//
//   output throughput  v2: `head -c N /dev/zero` run by the agent, STDOUT frames read by this process,
//                      credit returned as consumed.  baseline: the same bytes through a plain relay,
//                      `head -c N /dev/zero | socat -b 65536 -u - UNIX-CONNECT:…` (socat copies in chunks
//                      of v2's CHUNK, not its default 8 KiB), read by the same code here.
//   exec latency       v2: EXEC {shell:"true"} → EXIT, one at a time over one connection.
//                      baseline: Bun.spawn(["sh","-c","true"]) → exited, here, one at a time.
//
// Everything is bounded: a fixed number of runs and of executions, and a deadline for the whole bench.
import { cpus, release, totalmem } from "node:os";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { agentBinary } from "../test/helpers/build.ts";
import { CHUNK } from "../src/protocol/v2/frame.ts";
import { V2Conn, byteSink } from "./_v2.ts";

const { values: opt } = parseArgs({
  options: {
    mib: { type: "string", default: "1024" },
    runs: { type: "string", default: "3" },
    execs: { type: "string", default: "200" },
    json: { type: "boolean", default: false },
  },
});
const BYTES = Number(opt.mib) * 1024 * 1024;
const RUNS = Number(opt.runs);
const EXECS = Number(opt.execs);
const DEADLINE_MS = 240_000;
const started = performance.now();
const left = () => DEADLINE_MS - (performance.now() - started);

const dir = mkdtempSync(join(tmpdir(), "vge-bench-"));
const agentSock = join(dir, "agent.sock");
const agent = Bun.spawn([agentBinary(), "--listen", "--unix", agentSock], { stdio: ["ignore", "ignore", "ignore"], timeout: DEADLINE_MS + 10_000, killSignal: "SIGKILL" });

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
const mibs = (bytes: number, ms: number) => bytes / 1024 / 1024 / (ms / 1000);

async function v2Throughput(conn: V2Conn, id: number): Promise<number> {
  const t0 = performance.now();
  const r = await conn.exec(id, { argv: ["head", "-c", String(BYTES), "/dev/zero"] }, Math.min(60_000, left()));
  const ms = performance.now() - t0;
  if (r.stdout !== BYTES || r.exit.status !== "exited") throw new Error(`v2 run got ${r.stdout} bytes, ${JSON.stringify(r.exit)}`);
  return mibs(BYTES, ms);
}

async function relayThroughput(i: number): Promise<number> {
  const path = join(dir, `relay-${i}.sock`);
  const sink = await byteSink(path);
  const t0 = performance.now();
  const relay = Bun.spawn(["sh", "-c", `head -c ${BYTES} /dev/zero | socat -b ${CHUNK} -u - UNIX-CONNECT:${path}`], { stdio: ["ignore", "ignore", "inherit"], timeout: Math.min(60_000, left()), killSignal: "SIGKILL" });
  const n = await sink.done;
  const ms = performance.now() - t0;
  await relay.exited;
  sink.close();
  if (n !== BYTES) throw new Error(`relay run got ${n} bytes`);
  return mibs(BYTES, ms);
}

async function v2Latency(conn: V2Conn, firstId: number, req: object): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < EXECS && left() > 5000; i++) {
    const t0 = performance.now();
    const r = await conn.exec(firstId + i, req, 10_000);
    out.push(performance.now() - t0);
    if (r.exit.status !== "exited") throw new Error(`latency run: ${JSON.stringify(r.exit)}`);
  }
  return out;
}

async function localLatency(): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < EXECS && left() > 5000; i++) {
    const t0 = performance.now();
    const p = Bun.spawn(["sh", "-c", "true"], { stdio: ["ignore", "ignore", "ignore"] });
    await p.exited;
    out.push(performance.now() - t0);
  }
  return out;
}

try {
  if (!Bun.which("socat")) throw new Error("socat is needed for the relay baseline (apt-get install socat)");
  for (let t = 0; !existsSync(agentSock); t += 20) {
    if (t > 10_000) throw new Error("the agent did not start listening");
    await Bun.sleep(20);
  }
  const conn = await V2Conn.connect(agentSock);
  const welcome = await conn.hello();

  // Warm-up: first spawns and first reads are slower everywhere.
  await conn.exec(1, { shell: "true" }, 10_000);
  await Bun.spawn(["sh", "-c", "true"]).exited;

  const v2: number[] = [];
  const relay: number[] = [];
  for (let i = 0; i < RUNS && left() > 30_000; i++) {
    // Interleaved, so that a machine that slows down over the run slows both down alike.
    v2.push(await v2Throughput(conn, 100 + i));
    relay.push(await relayThroughput(i));
  }
  const local = await localLatency();
  const viaShell = await v2Latency(conn, 10_000, { shell: "true" });
  const viaArgv = await v2Latency(conn, 20_000, { argv: ["true"] });
  const pingRtt: number[] = [];
  for (let i = 0; i < 200; i++) pingRtt.push(await conn.ping(30_000 + i));
  conn.close();

  const cpu = cpus();
  const result = {
    machine: {
      cpu: cpu[0]?.model ?? "unknown",
      cpus: cpu.length,
      memGiB: +(totalmem() / 1024 ** 3).toFixed(1),
      kernel: release(),
      bun: Bun.version,
      agent: welcome.agent,
    },
    bytesPerRun: BYTES,
    throughputMiBs: { v2: v2.map((x) => +x.toFixed(0)), relay: relay.map((x) => +x.toFixed(0)), ratio: +(median(v2) / median(relay)).toFixed(2) },
    latencyMs: {
      v2Shell: { median: +median(viaShell).toFixed(2), p95: +pct(viaShell, 95).toFixed(2), n: viaShell.length },
      v2Argv: { median: +median(viaArgv).toFixed(2), p95: +pct(viaArgv, 95).toFixed(2), n: viaArgv.length },
      localShell: { median: +median(local).toFixed(2), p95: +pct(local, 95).toFixed(2), n: local.length },
      ratio: +(median(viaShell) / median(local)).toFixed(2),
      pingRtt: { median: +median(pingRtt).toFixed(3), p95: +pct(pingRtt, 95).toFixed(3) },
    },
    seconds: +((performance.now() - started) / 1000).toFixed(1),
  };
  if (opt.json) console.log(JSON.stringify(result, null, 2));
  else {
    const m = result.machine;
    const l = result.latencyMs;
    console.log(`machine: ${m.cpu}, ${m.cpus} CPUs, ${m.memGiB} GiB, Linux ${m.kernel}, Bun ${m.bun}, agent ${m.agent}`);
    console.log(`output throughput, ${opt.mib} MiB per run, ${v2.length} runs (median MiB/s):`);
    console.log(`  v2 exec STDOUT over a Unix socket  ${median(v2).toFixed(0).padStart(6)}   runs ${result.throughputMiBs.v2.join(", ")}`);
    console.log(`  plain relay (head | socat)         ${median(relay).toFixed(0).padStart(6)}   runs ${result.throughputMiBs.relay.join(", ")}`);
    console.log(`  ratio v2 / relay                   ${result.throughputMiBs.ratio.toFixed(2).padStart(6)}`);
    console.log(`exec round trip, ${l.v2Shell.n} one after another (ms, median / p95):`);
    console.log(`  v2 EXEC {shell:"true"} → EXIT      ${l.v2Shell.median.toFixed(2).padStart(6)} / ${l.v2Shell.p95.toFixed(2)}`);
    console.log(`  v2 EXEC {argv:["true"]} → EXIT     ${l.v2Argv.median.toFixed(2).padStart(6)} / ${l.v2Argv.p95.toFixed(2)}`);
    console.log(`  local Bun.spawn sh -c true         ${l.localShell.median.toFixed(2).padStart(6)} / ${l.localShell.p95.toFixed(2)}`);
    console.log(`  ratio v2 shell / local             ${l.ratio.toFixed(2).padStart(6)}`);
    console.log(`  PING → PONG                        ${l.pingRtt.median.toFixed(3).padStart(6)} / ${l.pingRtt.p95.toFixed(3)}`);
    console.log(`(${result.seconds} s)`);
  }
} finally {
  agent.kill("SIGKILL");
  await agent.exited;
  rmSync(dir, { recursive: true, force: true });
}
