// In a real guest (QEMU under TCG through scripts/qemu/harness.ts, the busybox initrd, the agent with
// `--listen :1024`; the host library dials it through vhost-device-vsock's CONNECT). The guest is
// emulated, so every row is reported against a limit measured in the same guest:
//   exec round trip        /bin/true via v2            vs one `sh -c :` (from the 1,000-loop below)
//   persistent commands    N frames of `echo >> F`,    vs a shell loop of N `sh -c :` in the guest
//                          format, to a second agent (run by the first) dialing host port 1025
//   v2 sequential          N × EXEC {shell:":"}         vs the same loop
//   stdout streaming       head -c M /dev/zero → host  vs `head -c M /dev/zero | cat >/dev/null` in the guest
//   agent start → first result (guest uptime, from the init's marker to `cat /proc/uptime` run by us)
//                                                       vs one `sh -c :`
//   exec round trip, contained: /bin/true through three more agents started in the guest, interleaved,
//                          `--listen :1035` (no cgroup: processes tracked), `:1036 --protect` (the
//                          /bin/sh trampoline that resets the OOM score), `:1037 --cgroup DIR --protect`
//                          (a leaf per execution too)             vs the first of them
import { connect } from "../../src/host/index.ts";
import { encodeLegacyFrame } from "../../src/protocol/legacy.ts";
import { findGuestDeps, guestSkipReason, withGuest, within } from "../../scripts/qemu/harness.ts";
import { busyboxInitrd } from "../../scripts/qemu/images.ts";
import type { Ctx } from "../_ctx.ts";
import { count } from "../_bytes.ts";
import type { Row, Section } from "../_report.ts";
import { summarize } from "../_stats.ts";
import { LEGACY_LABEL, legacyAgentBinary } from "../peers/legacy.ts";
import type { Guest as HostGuest } from "../../src/host/index.ts";
import type { Guest as QemuGuest } from "../../scripts/qemu/harness.ts";

export const GUEST_LABELS = ["guest: sh -c : (limit)", "guest: exec round trip /bin/true", "guest: persistent commands", "guest: v2 sequential", "guest: in-guest pipe (limit)", "guest: stdout streaming", "guest: agent start → first result", "guest: persistent commands, C agent of the original's formats", "guest: persistent agent idle Rss (vs the C agent)", "guest: exec round trip, uncontained (limit)", "guest: exec round trip, --protect", "guest: exec round trip, --cgroup --protect"];

/** The contained-exec agents: guest port they listen on, and options (each also `--listen :PORT`). */
const CONTAINED = [
  { port: 1035, opts: [] as string[] },
  { port: 1036, opts: ["--protect"] },
  { port: 1037, opts: ["--cgroup", "/sys/fs/cgroup/vge", "--protect"] },
];

const ABOUT = "QEMU (TCG, emulated: absolute numbers mean little) through scripts/qemu/harness.ts, busybox initrd, agent `--listen :1024`; the host library dials through vhost-device-vsock. Each row's limit is measured in the same guest.";

export function guestSkip(ctx: Ctx, noGuest: boolean): string | undefined {
  if (ctx.quick) return "no guest in --quick";
  if (noGuest) return "--no-guest";
  return guestSkipReason();
}

export async function guestSection(ctx: Ctx): Promise<Section> {
  const found = findGuestDeps();
  if ("missing" in found) throw new Error(found.missing);
  const N = ctx.quick ? 50 : 1000;
  const RTT = ctx.quick ? 10 : 50;
  const V2SEQ = ctx.quick ? 50 : 200;
  const BYTES = (ctx.quick ? 8 : 32) * 1024 * 1024;
  ctx.log("guest: building/finding the busybox image");
  const initrd = busyboxInitrd(found.deps);
  return withGuest({ initrd, append: ["vge_args=--listen,:1024"], memoryMiB: 1024, timeoutMs: Math.min(400_000, ctx.left()) }, async (g) => {
    ctx.log("guest: booting");
    await g.start();
    await g.waitFor("VGE-INIT: agent start", 120_000);
    const guest = await within(connect(`fc:${g.uds}:1024`, { retryMs: 60_000 }), 90_000, "connecting to the guest agent");
    const up = await guest.run(["cat", "/proc/uptime"]);
    const startUptime = Number(/VGE-INIT: agent start .*uptime=([\d.]+)/.exec(g.serial())?.[1]);
    const startToFirst = (Number(up.stdoutText.split(" ")[0]) - startUptime) * 1000;

    ctx.log(`guest: shell loop of ${N}`);
    const loop = async (cmd: string) => {
      const t0 = performance.now();
      const r = await guest.run({ shell: `i=0; while [ $i -lt ${N} ]; do ${cmd}; i=$((i+1)); done` }, { timeoutMs: 300_000 });
      if (r.code !== 0) throw new Error(`guest loop: ${r.status} ${r.code} ${r.stderrText}`);
      return performance.now() - t0;
    };
    const loopMs = await loop("sh -c :");
    const perSh = loopMs / N;
    const shStats = summarize([perSh]);

    ctx.log("guest: round trips");
    const rtt: number[] = [];
    await guest.run(["/bin/true"]);
    for (let i = 0; i < RTT; i++) {
      const t0 = performance.now();
      await guest.run(["/bin/true"]);
      rtt.push(performance.now() - t0);
    }

    ctx.log(`guest: ${N} persistent commands`);
    const persistentMs = await persistentRun(g, guest, ["/usr/bin/vsock_guest_exec", ":1025", "persistent"], 1025, N);
    ctx.log(`guest: ${N} persistent commands, ${LEGACY_LABEL}`);
    const legacyBin = legacyAgentBinary();
    const put = await guest.putFile("/tmp/legacy-agent", await Bun.file(legacyBin).bytes(), { mode: 0o755 });
    if (put.size !== Bun.file(legacyBin).size) throw new Error("the C agent did not reach the guest whole");
    const legacyArgv = ["env", "LEGACY_AGENT_IN_GUEST=1", "/tmp/legacy-agent", ":1026", "persistent"];
    const legacyMs = await persistentRun(g, guest, legacyArgv, 1026, N);
    ctx.log("guest: both persistent agents' memory, connected and idle");
    const oursIdle = await idleMemory(g, guest, "/usr/bin/vsock_guest_exec :1027 persistent", 1027);
    const legacyIdle = await idleMemory(g, guest, "LEGACY_AGENT_IN_GUEST=1 /tmp/legacy-agent :1028 persistent", 1028);

    ctx.log(`guest: ${V2SEQ} v2 executions`);
    const s0 = performance.now();
    for (let i = 0; i < V2SEQ; i++) await guest.run({ shell: ":" });
    const v2PerExec = (performance.now() - s0) / V2SEQ;

    ctx.log("guest: contained round trips");
    // cgroup2 where the contained agent wants it (the busybox /init mounts it only with vge_cgroup2=1).
    await guest.run({ shell: "[ -e /sys/fs/cgroup/cgroup.procs ] || { mkdir -p /sys/fs/cgroup && mount -t cgroup2 none /sys/fs/cgroup; }" });
    const agents = CONTAINED.map((a) => guest.exec(["/usr/bin/vsock_guest_exec", "--listen", `:${a.port}`, ...a.opts], { stdin: "closed" }));
    const peers = [];
    for (const a of CONTAINED) peers.push(await within(connect(`fc:${g.uds}:${a.port}`, { retryMs: 60_000 }), 90_000, `the agent on ${a.port}`));
    const contained: number[][] = CONTAINED.map(() => []);
    for (const p of peers) await p.run(["/bin/true"]);
    // Interleaved, so that the guest's and the host's load fall on all three alike.
    for (let i = 0; i < RTT; i++) {
      for (let k = 0; k < peers.length; k++) {
        const t0 = performance.now();
        const r = await peers[k]!.run(["/bin/true"]);
        contained[k]!.push(performance.now() - t0);
        if (r.code !== 0) throw new Error(`contained /bin/true on ${CONTAINED[k]!.port}: ${r.status} ${r.code} ${r.errno ?? ""}`);
      }
    }
    for (const p of peers) p.close();
    for (const a of agents) a.kill("SIGKILL");
    await Promise.all(agents.map((a) => a.result.catch(() => undefined)));

    ctx.log("guest: streaming");
    const pipe0 = performance.now();
    await guest.run({ shell: `head -c ${BYTES} /dev/zero | cat > /dev/null` }, { timeoutMs: 120_000 });
    const pipeRate = BYTES / 1024 / 1024 / ((performance.now() - pipe0) / 1000);
    const st0 = performance.now();
    const p = guest.exec(["head", "-c", String(BYTES), "/dev/zero"], { stdin: "closed" });
    const [n] = await Promise.all([count(p.stdout), count(p.stderr), p.exited]);
    if (n !== BYTES) throw new Error(`guest stream: ${n} bytes`);
    const streamRate = BYTES / 1024 / 1024 / ((performance.now() - st0) / 1000);
    guest.close();

    const sh = { label: "sh -c :", stats: shStats };
    const loopLimit = { label: `${N} × sh -c :`, stats: summarize([loopMs]) };
    const pipe = { label: "in-guest pipe", stats: summarize([pipeRate]) };
    const rows: Row[] = [
      { label: GUEST_LABELS[0]!, unit: "ms", stats: shStats, better: "lower", note: `one iteration of a ${N}-iteration loop in the guest` },
      { label: GUEST_LABELS[1]!, unit: "ms", stats: summarize(rtt), limit: sh, better: "lower" },
      { label: GUEST_LABELS[2]!, unit: "ms", stats: summarize([persistentMs]), limit: loopLimit, better: "lower", note: `${N} frames of \`echo >> FILE\` (counted after) to a second agent (\`:1025 persistent\`), from accepting it until its EXIT` },
      { label: GUEST_LABELS[7]!, unit: "ms", stats: summarize([legacyMs]), limit: loopLimit, better: "lower", note: `the same ${N} frames to ${LEGACY_LABEL}, gcc -static -Os` },
      { label: GUEST_LABELS[8]!, unit: "KiB", stats: summarize([oursIdle.rss]), limit: { label: "the C agent", stats: summarize([legacyIdle.rss]) }, better: "lower", note: `\`:PORT persistent\`, connected, before any command (smaps_rollup); Anonymous ${oursIdle.anon} KiB vs ${legacyIdle.anon} KiB; the binary, itself in RAM (initramfs, tmpfs): ${mib(Bun.file(found.deps.agent).size)} MiB vs ${(Bun.file(legacyBin).size / 1024).toFixed(0)} KiB (static glibc)` },
      { label: GUEST_LABELS[3]!, unit: "ms", stats: summarize([v2PerExec * N]), limit: loopLimit, better: "lower", note: `${V2SEQ} EXEC {shell:":"} one after another, scaled to ${N}` },
      { label: GUEST_LABELS[4]!, unit: "MiB/s", stats: pipe.stats, better: "higher", note: `head -c ${BYTES / 1024 / 1024} MiB /dev/zero | cat > /dev/null` },
      { label: GUEST_LABELS[5]!, unit: "MiB/s", stats: summarize([streamRate]), limit: pipe, better: "higher", note: "head -c … /dev/zero via exec(), read by the host library over vsock" },
      { label: GUEST_LABELS[6]!, unit: "ms", stats: summarize([startToFirst]), limit: sh, better: "lower", note: "guest uptime: init's `agent start` marker → our first `cat /proc/uptime` (10 ms resolution)" },
    ];
    const plain = { label: "uncontained", stats: summarize(contained[0]!) };
    rows.push(
      { label: GUEST_LABELS[9]!, unit: "ms", stats: plain.stats, better: "lower", note: "/bin/true through a second agent, `--listen :1035` (no cgroup: its processes tracked, track.ts)" },
      { label: GUEST_LABELS[10]!, unit: "ms", stats: summarize(contained[1]!), limit: plain, better: "lower", note: "`--protect`: the program starts through `/bin/sh -c 'echo 0 > /proc/self/oom_score_adj; exec …'`" },
      { label: GUEST_LABELS[11]!, unit: "ms", stats: summarize(contained[2]!), limit: plain, better: "lower", note: "`--cgroup /sys/fs/cgroup/vge --protect`: a leaf made, entered, left, emptied and removed per execution, and the trampoline" },
    );
    return { title: "In a real guest (QEMU, emulated)", about: ABOUT, rows };
  });
}

function mib(bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(1);
}

/**
 * Runs `argv` in the guest: an agent dialing host port `port` in the persistent format. It gets `n`
 * frames of `echo >> FILE` (builtins only, one open) so that the count of lines proves every command
 * ran. Timed from accepting it until it exits (its EXIT reaches us), not until its connection closes:
 * through vhost-device-vsock our half-close ends the whole vsock connection at once, while the agent
 * still has the commands to run.
 */
async function persistentRun(g: QemuGuest, guest: HostGuest, argv: string[], port: number, n: number): Promise<number> {
  const file = `/tmp/vge-bench-persistent-${port}`;
  const frame = encodeLegacyFrame(new TextEncoder().encode(`echo >> ${file}`));
  const all = new Uint8Array(frame.byteLength * n);
  for (let i = 0; i < n; i++) all.set(frame, i * frame.byteLength);
  let t0 = 0;
  const server = Bun.listen({
    unix: g.portPath(port),
    socket: {
      open(s) {
        t0 = performance.now();
        if (s.write(all) !== all.byteLength) throw new Error("short write of the persistent frames");
        s.shutdown();
      },
      data() {},
    },
  });
  try {
    const exit = await within(guest.run(argv, { timeoutMs: 300_000 }), 300_000, `persistent commands (${argv.join(" ")})`);
    const ms = performance.now() - t0;
    if (exit.code !== 0) throw new Error(`the persistent agent ${argv.join(" ")} exited ${exit.status} ${exit.code}: ${exit.stderrText}`);
    const ran = await guest.run({ shell: `wc -l < ${file}` });
    if (Number(ran.stdoutText.trim()) !== n) throw new Error(`${argv.join(" ")} ran ${ran.stdoutText.trim()} of ${n} commands`);
    return ms;
  } finally {
    server.stop(true);
  }
}

/**
 * Rss and Anonymous (KiB, /proc/PID/smaps_rollup) of the agent `cmdline` (a shell command) in the guest
 * once it has dialed host port `port` and been accepted, before any command: what an idle persistent
 * agent costs. smaps_rollup walks the page tables; VmRSS in /proc/PID/status is a per-thread cached
 * counter that is synced every 64 faults, so a process as small as the C agent shows 4 KiB there.
 * Closing our side then ends the agent.
 */
async function idleMemory(g: QemuGuest, guest: HostGuest, cmdline: string, port: number): Promise<{ rss: number; anon: number }> {
  let accepted!: () => void;
  const connected = new Promise<void>((r) => (accepted = r));
  const conns: { end(): void }[] = [];
  const server = Bun.listen({
    unix: g.portPath(port),
    socket: {
      open(s) {
        conns.push(s);
        accepted();
      },
      data() {},
    },
  });
  try {
    const pidFile = `/tmp/vge-bench-idle-${port}`;
    const running = guest.run({ shell: `${cmdline} & echo $! > ${pidFile}; wait` }, { timeoutMs: 120_000 });
    await within(connected, 60_000, `${cmdline} dialing in`);
    const r = await guest.run({ shell: `read p < ${pidFile}; while read -r k v u; do case $k in Rss:|Anonymous:) printf '%s %s\\n' "$k" "$v";; esac; done < /proc/$p/smaps_rollup` });
    for (const c of conns) c.end();
    await within(running, 60_000, `${cmdline} ending`);
    const kib = (key: string) => Number(new RegExp(`${key}: (\\d+)`).exec(r.stdoutText)?.[1] ?? Number.NaN);
    const got = { rss: kib("Rss"), anon: kib("Anonymous") };
    if (!(got.rss > 0)) throw new Error(`no Rss for ${cmdline}: ${r.stdoutText} ${r.stderrText}`);
    return got;
  } finally {
    server.stop(true);
  }
}

export function skippedGuest(reason: string): Section {
  return { title: "In a real guest (QEMU, emulated)", about: ABOUT, rows: [], skipped: { reason, labels: GUEST_LABELS } };
}
