// Exec round trips, one after another: `/bin/true` and `echo hi` through the agent (host library, v2),
// qemu-ga (guest-exec + polled guest-exec-status), ssh through a ControlMaster, ssh with a fresh
// connection each time, and a `socat UNIX-LISTEN:…,fork EXEC:/bin/sh` one-liner; the limit is spawning
// the same command here with Bun.spawn.
import { connect } from "../../src/host/index.ts";
import { type Ctx, listeningAgent } from "../_ctx.ts";
import { stop, start, waitUnix } from "../_procs.ts";
import type { Row, Section } from "../_report.ts";
import { summarize } from "../_stats.ts";
import { join } from "node:path";
import { QgaClient, startQga } from "../peers/qga.ts";
import { startSshd } from "../peers/ssh.ts";
import { buildFloor, FloorClient, floorTimes, startFloor } from "../peers/floor.ts";

type Op = () => Promise<string>;

/** Up to n timed runs after one warm-up, stopping early (but after 5) once a row has had ROW_BUDGET_MS. */
const ROW_BUDGET_MS = 20_000;
async function time(n: number, op: Op, expect: string, what: string): Promise<number[]> {
  const out: number[] = [];
  await op(); // warm-up: first spawns, first page faults
  const t0 = performance.now();
  for (let i = 0; i < n && (i < 5 || performance.now() - t0 < ROW_BUDGET_MS); i++) {
    const t0 = performance.now();
    const got = await op();
    out.push(performance.now() - t0);
    if (got !== expect) throw new Error(`${what}: expected ${JSON.stringify(expect)}, got ${JSON.stringify(got)}`);
  }
  return out;
}

async function local(argv: string[]): Promise<string> {
  const p = Bun.spawn(argv, { stdin: "ignore", stdout: "pipe", stderr: "ignore" });
  const [out] = await Promise.all([new Response(p.stdout).text(), p.exited]);
  return out;
}

/** One connection to `socat UNIX-LISTEN:S,fork EXEC:/bin/sh`: the command, a half-close, output until EOF. */
function socatExec(path: string, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = "";
    Bun.connect({
      unix: path,
      socket: {
        open(s) {
          s.write(`${command}\n`);
          s.shutdown();
        },
        data: (_s, d) => void (out += new TextDecoder().decode(d)),
        close: () => resolve(out),
        error: (_s, e) => reject(e),
      },
    }).catch(reject);
  });
}

export async function execSection(ctx: Ctx): Promise<Section> {
  const n = ctx.reps;
  const nFresh = Math.max(5, Math.floor(n / 4));
  const rows: Row[] = [];
  const cases = [
    { name: "/bin/true", argv: ["/bin/true"], shell: "/bin/true", expect: "" },
    { name: "echo hi", argv: ["/bin/echo", "hi"], shell: "echo hi", expect: "hi\n" },
  ];
  const agent = await listeningAgent(ctx);
  const guest = await connect(agent.address);
  const qga = await startQga(ctx.dir, ctx.left());
  const q = await QgaClient.connect(qga.sock);
  const sshd = await startSshd(ctx.dir, ctx.left());
  await sshd.startMaster();
  const socatSock = join(ctx.dir, "socat-exec.sock");
  const socat = start(["socat", `UNIX-LISTEN:${socatSock},fork`, "EXEC:/bin/sh"], { timeoutMs: ctx.left() });
  await waitUnix(socatSock, 10_000, 5);
  const floorBin = await buildFloor(ctx.dir);
  const floor = floorBin.bin ? await startFloor(floorBin.bin, ctx.dir, ctx.left()) : undefined;
  const fc = floor ? await FloorClient.connect(floor.sock) : undefined;
  if (!floor) ctx.log(`exec: no C floor rows: ${floorBin.why}`);
  try {
    for (const c of cases) {
      ctx.log(`exec round trip ${c.name}`);
      const limit = { label: "local spawn", stats: summarize(await time(n, () => local(c.argv), c.expect, "local")) };
      const row = (label: string, xs: number[], note?: string): Row => ({ label: `${label}: ${c.name}`, unit: "ms", stats: summarize(xs), limit, better: "lower", note });
      rows.push({ label: `local spawn (limit): ${c.name}`, unit: "ms", stats: limit.stats, better: "lower", note: "Bun.spawn here, until exit and EOF" });
      rows.push(row("agent v2", await time(n, async () => (await guest.run(c.argv)).stdoutText, c.expect, "agent"), "host library, one connection"));
      rows.push(row("qemu-ga", await time(n, async () => (await q.exec(c.argv[0]!, c.argv.slice(1))).stdout, c.expect, "qemu-ga"), "guest-exec + status polled back to back"));
      rows.push(row("ssh ControlMaster", await time(n, () => local([...sshd.viaMaster, c.shell]), c.expect, "ssh -S"), "a new ssh client process per command"));
      rows.push(row("ssh fresh", await time(nFresh, () => local([...sshd.fresh, c.shell]), c.expect, "ssh"), "new TCP connection, key exchange and auth each time"));
      rows.push(row("socat EXEC", await time(n, () => socatExec(socatSock, c.shell), c.expect, "socat"), "socat forks /bin/sh per connection"));
      if (floor && fc && floorBin.bin) {
        // The floor rows (bench/peers/floor.c): the agent replaced by C, then the client as well.
        rows.push(row("C floor: C server, Bun client", await time(n, async () => (await fc.run(c.argv)).stdout, c.expect, "C server"), "posix_spawn, stdout to EOF, waitpid, one write: this agent's work with no JavaScript; a raw Bun socket here"));
        const cLocalTimes = await floorTimes(floorBin.bin, ["local", String(n), ...c.argv]);
        const cLocal = summarize(cLocalTimes);
        rows.push(row("C floor: local posix_spawn", cLocalTimes, "the limit spawned from C instead of Bun"));
        rows.push({ label: `C floor: C client → C server: ${c.name}`, unit: "ms", stats: summarize(await floorTimes(floorBin.bin, ["client", floor.sock, String(n), ...c.argv])), limit: { label: "C local posix_spawn", stats: cLocal }, better: "lower", note: "no JavaScript at either end: the ratio is what the socket hop costs a C design" });
      }
    }
  } finally {
    guest.close();
    q.close();
    await sshd.close();
    await stop(qga.proc);
    await stop(socat);
    fc?.close();
    if (floor) await stop(floor.proc);
    await stop(agent.proc);
  }
  return {
    title: "Exec round trip",
    about: `One command after another, from sending it to having its exit status and all its output. up to ${n} runs each after one warm-up (${nFresh} for fresh ssh connections), a row stops after ${ROW_BUDGET_MS / 1000} s (at least 5 runs). Everything on this machine over Unix sockets (ssh over 127.0.0.1). Ratio = median / local spawn median.`,
    rows,
  };
}
