// Streaming: an execution's stdout and stdin, and a file PUT and GET, of ctx.bytes each, through the
// host library and the compiled agent; the limit is the same bytes through a plain socat relay on the
// same socket kind (Unix), read or written by the same process here. Runs interleave agent and relay.
import { rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { connect } from "../../src/host/index.ts";
import { type Ctx, listeningAgent } from "../_ctx.ts";
import { byteSink, count, pushZeros, zeros } from "../_bytes.ts";
import { start, stop } from "../_procs.ts";
import type { Row, Section } from "../_report.ts";
import { summarize } from "../_stats.ts";
import { V2Conn } from "../_v2.ts";

const RELAY_BUF = 65536;
const mibs = (bytes: number, ms: number) => bytes / 1024 / 1024 / (ms / 1000);

export async function streamSection(ctx: Ctx): Promise<Section> {
  const N = ctx.bytes;
  const bound = () => Math.min(120_000, ctx.left());
  const agent = await listeningAgent(ctx);
  const guest = await connect(agent.address);
  // The same agent read by bench/_v2.ts's lean client (headers parsed in place, no web streams): tells
  // the host library's share of the stdout row from the agent's.
  const lean = await V2Conn.connect(agent.sock);
  await lean.hello();
  let leanId = 1;
  const r: Record<string, number[]> = { stdout: [], stdoutLean: [], stdoutRelay: [], stdin: [], stdinRelay: [], put: [], putRelay: [], get: [], getRelay: [] };
  const file = join(ctx.dir, "put.bin");
  const relayFile = join(ctx.dir, "relay.bin");
  let seq = 0;
  const sock = () => join(ctx.dir, `relay-${++seq}.sock`);
  const timed = async (what: string, f: () => Promise<number>) => {
    const t0 = performance.now();
    const got = await f();
    if (got !== N) throw new Error(`${what}: moved ${got} bytes, not ${N}`);
    return mibs(N, performance.now() - t0);
  };
  try {
    await guest.run(["/bin/true"]);
    for (let i = 0; i < ctx.runs; i++) {
      ctx.log(`streaming ${N / 1024 / 1024} MiB, run ${i + 1}`);
      r.stdout!.push(await timed("agent stdout", async () => {
        const p = guest.exec(["head", "-c", String(N), "/dev/zero"], { stdin: "closed" });
        const [n] = await Promise.all([count(p.stdout), count(p.stderr), p.exited]);
        return n;
      }));
      r.stdoutLean!.push(await timed("lean stdout", async () => {
        const res = await lean.exec(leanId++, { argv: ["head", "-c", String(N), "/dev/zero"] }, bound());
        return res.stdout;
      }));
      r.stdoutRelay!.push(await timed("relay stdout", async () => {
        const path = sock();
        const sink = await byteSink(path);
        const relay = start(["sh", "-c", `head -c ${N} /dev/zero | socat -b ${RELAY_BUF} -u - UNIX-CONNECT:${path}`], { timeoutMs: bound() });
        const n = await sink.done;
        await relay.exited;
        sink.close();
        return n;
      }));
      r.stdin!.push(await timed("agent stdin", async () => {
        const res = await guest.run(["wc", "-c"], { input: zeros(N) });
        return Number(res.stdoutText.trim());
      }));
      r.stdinRelay!.push(await timed("relay stdin", async () => {
        const path = sock();
        const relay = start(["sh", "-c", `socat -b ${RELAY_BUF} -u UNIX-LISTEN:${path} - | wc -c`], { timeoutMs: bound(), stdout: "pipe" });
        await waitUnixFile(path);
        await pushZeros(path, N);
        const out = await new Response(relay.stdout as ReadableStream).text();
        await relay.exited;
        return Number(out.trim());
      }));
      r.put!.push(await timed("agent PUT", async () => (await guest.putFile(file, zeros(N), { size: N })).size));
      r.putRelay!.push(await timed("relay PUT", async () => {
        const path = sock();
        const relay = start(["socat", "-b", String(RELAY_BUF), "-u", `UNIX-LISTEN:${path}`, `OPEN:${relayFile},creat,trunc`], { timeoutMs: bound() });
        await waitUnixFile(path);
        await pushZeros(path, N);
        await relay.exited;
        return statSync(relayFile).size;
      }));
      r.get!.push(await timed("agent GET", async () => {
        const f = guest.getFile(file, { maxSize: N });
        const [n] = await Promise.all([count(f.stream), f.done]);
        return n;
      }));
      r.getRelay!.push(await timed("relay GET", async () => {
        const path = sock();
        const sink = await byteSink(path);
        const relay = start(["socat", "-b", String(RELAY_BUF), "-u", `OPEN:${relayFile}`, `UNIX-CONNECT:${path}`], { timeoutMs: bound() });
        const n = await sink.done;
        await relay.exited;
        sink.close();
        return n;
      }));
    }
  } finally {
    guest.close();
    lean.close();
    await stop(agent.proc);
    rmSync(file, { force: true });
    rmSync(relayFile, { force: true });
  }
  const rows: Row[] = [];
  const pair = (label: string, a: number[], relay: number[], relayLabel: string, note: string) => {
    const limit = { label: "relay", stats: summarize(relay) };
    rows.push({ label: `${label}: plain relay (limit)`, unit: "MiB/s", stats: limit.stats, better: "higher", note: relayLabel });
    rows.push({ label: `${label}: agent v2`, unit: "MiB/s", stats: summarize(a), limit, better: "higher", note });
  };
  pair("stdout", r.stdout!, r.stdoutRelay!, "`head -c N /dev/zero | socat -u - UNIX-CONNECT` into a Bun listener", "`head -c N /dev/zero` via exec(), stdout read by the host library");
  rows.push({ label: "stdout: agent v2, lean client", unit: "MiB/s", stats: summarize(r.stdoutLean!), limit: { label: "relay", stats: summarize(r.stdoutRelay!) }, better: "higher", note: "the same exec read by bench/_v2.ts (no web streams): the agent without the host library's receive path" });
  pair("stdin", r.stdin!, r.stdinRelay!, "Bun socket → `socat -u UNIX-LISTEN - | wc -c`", "run([\"wc\",\"-c\"], {input}) via the host library");
  pair("file PUT", r.put!, r.putRelay!, "Bun socket → `socat -u UNIX-LISTEN OPEN:file`", "putFile(stream, {size})");
  pair("file GET", r.get!, r.getRelay!, "`socat -u OPEN:file UNIX-CONNECT` into a Bun listener", "getFile().stream");
  return {
    title: "Streaming",
    about: `${(N / 1024 / 1024).toFixed(0)} MiB per run, ${ctx.runs} run(s) each, agent and relay interleaved; samples are the runs' rates. The relay copies ${RELAY_BUF}-byte chunks (socat -b), as the agent's frames carry 64 KiB. Files in ${"/tmp"} (the same disk for both).`,
    rows,
  };
}

/** A socat UNIX-LISTEN is ready once its socket file exists (connecting to probe would use up its one accept). */
async function waitUnixFile(path: string): Promise<void> {
  for (let t = 0; t < 10_000; t += 2) {
    try {
      if (statSync(path).isSocket()) return;
    } catch {}
    await Bun.sleep(2);
  }
  throw new Error(`${path} did not appear`);
}
