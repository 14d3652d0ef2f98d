// Faults the agent survives in a real guest (busybox initrd, cgroup2 mounted by /init), one boot:
// 1. The guest's clock stepped a year forward and back (date -s, CLOCK_REALTIME) while a timeout runs and
//    with a finished detached job kept: the timeout fires on time, the job stays listed and attachable
//    (the agent's deadlines and expiry are on the monotonic clock, src/common/clock.ts).
// 2. The vsock backend (vhost-device-vsock) SIGKILLed and restarted (Guest.restartBackend: a new backend,
//    the device re-plugged) while a stdout stream, a PUT and a detached job are under way, first with the
//    agent in listen mode (run 1), then dialing with --reconnect (run 2): the agent serves again within
//    seconds; the detached job's output is complete on reattach; the interrupted PUT leaves nothing at its
//    target; the streaming execution's whole tree (a setsid'd grandchild too) is gone, its leaf removed.
import { expect, test } from "bun:test";
import { connect, type Guest as HostGuest, listen } from "../../src/host/index.ts";
import { findGuestDeps, type Guest, guestSkipReason, named, withGuest, within } from "../../scripts/qemu/harness.ts";
import { busyboxInitrd } from "../../scripts/qemu/images.ts";

const skip = guestSkipReason();
const STEP = 90_000;
const CALL = 60_000;
const CG = "/sys/fs/cgroup/vge";
const YEAR_S = 366 * 24 * 3600;
/** Generous bounds for a loaded 2-core CI machine under TCG. */
const TIMEOUT_MS = 6000;
const SERVED_AGAIN_MS = 20_000;
/** How long the device has no backend before the new one is plugged in. */
const BACKEND_DOWN_MS = 2000;

const JOB_LINES = 150;
// ~10 s under TCG: long enough to be under way when the backend dies, numbered lines to check every byte.
const JOB = `i=1; while [ $i -le ${JOB_LINES} ]; do echo "job-line-$i-$(printf %080d $i)"; sleep 0.05; i=$((i + 1)); done; echo job-done >&2; exit 7`;
const JOB_OUT = Array.from({ length: JOB_LINES }, (_, i) => `job-line-${i + 1}-${String(i + 1).padStart(80, "0")}\n`).join("");
const stateOf = (file: string) => `d=$(cat ${file}); if [ -e /proc/$d/status ] && ! grep -q '^State:.*Z' /proc/$d/status; then echo alive; else echo dead; fi`;

async function sh(g: HostGuest, cmd: string, what: string, opts: Parameters<HostGuest["run"]>[1] = {}) {
  return within(g.run({ shell: cmd }, opts), CALL, what);
}

/** Polls `cmd` until its trimmed stdout passes `ok` (bounded); its last output. */
async function poll(g: HostGuest, cmd: string, ok: (out: string) => boolean, what: string): Promise<string> {
  let out = "";
  for (let i = 0; i < 60; i++) {
    out = (await sh(g, cmd, what)).stdoutText.trim();
    if (ok(out)) break;
    await Bun.sleep(250);
  }
  return out;
}

async function attachAll(g: HostGuest, tag: string) {
  const p = g.attach(tag);
  const [stdout, stderr, result] = await within(Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.result]), STEP, `attach ${tag}`);
  return { stdout, stderr, code: "code" in result ? result.code : result.status };
}

/** The clock a year forward and back around a timeout and a kept job. */
async function clockSteps(g: HostGuest) {
  const step = async (s: number) => (await sh(g, `date -s @$(( $(date +%s) + ${s} )) > /dev/null; date +%Y`, "date -s")).stdoutText.trim();
  const year0 = Number((await sh(g, "date +%Y", "year")).stdoutText.trim());

  const kept = g.exec({ shell: "echo kept-out; echo kept-err >&2; exit 4" }, { stdin: "closed", detach: { tag: "kept", keep: 4096 } });
  expect(await within(kept.started, CALL, "kept job start")).not.toBeNull();
  const ended = await within((async () => {
    for (;;) {
      const j = (await g.list()).find((x) => x.tag === "kept");
      if (j?.state === "exited") return j;
      await Bun.sleep(200);
    }
  })(), CALL, "kept job's end");
  expect(ended.exit).toMatchObject({ status: "exited", code: 4 });

  // A 6 s timeout: the clock jumps a year ahead 1.5 s in, and back 1.5 s later.
  const t0 = performance.now();
  const timed = sh(g, "sleep 300", "timed run", { timeoutMs: TIMEOUT_MS });
  await Bun.sleep(1500);
  const fwd = await step(YEAR_S);
  await Bun.sleep(1500);
  const back = await step(-YEAR_S);
  const t = await timed;
  const firedMs = performance.now() - t0;
  expect({ fwd: Number(fwd), back: Number(back) }).toEqual({ fwd: year0 + 1, back: year0 });
  expect(t.status).toBe("timeout");
  expect(firedMs).toBeGreaterThan(TIMEOUT_MS - 200);
  expect(firedMs).toBeLessThan(TIMEOUT_MS + 6000);

  // The kept job, a year on and back again: listed, attachable, its output whole.
  const seen: string[] = [];
  for (const s of [YEAR_S, -YEAR_S]) {
    const year = Number(await step(s));
    const listed = (await g.list()).find((x) => x.tag === "kept");
    expect(listed?.state).toBe("exited");
    expect(await attachAll(g, "kept")).toEqual({ stdout: "kept-out\n", stderr: "kept-err\n", code: 4 });
    seen.push(String(year));
  }
  expect(seen).toEqual([String(year0 + 1), String(year0)]);
  console.error(`faults: clock +1 year at 1.5 s and back at 3 s: a ${TIMEOUT_MS} ms timeout fired after ${firedMs.toFixed(0)} ms (host side); the kept job listed and attachable in ${seen.join(" and ")}`);
}

/** A PUT source that sends 2 MiB of its declared 32 MiB, then stalls: under way whatever the speed. */
function stalledSource(): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream<Uint8Array>({
    async pull(c) {
      if (sent >= 2 * 1024 * 1024) return new Promise<void>(() => {});
      c.enqueue(new Uint8Array(64 * 1024).fill(0x61));
      sent += 64 * 1024;
    },
  });
}

/**
 * The backend dies under a stream, a PUT and a detached job on `g`, and comes back; `again` gets a served
 * connection afterwards. Returns that connection.
 */
async function backendOutage(vm: Guest, g: HostGuest, label: string, again: () => Promise<HostGuest>): Promise<HostGuest> {
  const tag = `job-${label}`;
  const job = g.exec({ shell: JOB }, { stdin: "closed", detach: { tag } });
  expect(await within(job.started, CALL, "job start")).not.toBeNull();

  // A stream whose shell leaves a setsid'd grandchild behind.
  const stream = g.exec({ shell: `echo $$ > /tmp/${label}-leader; setsid sh -c 'sleep 300 & echo $! > /tmp/${label}-gc'; i=0; while :; do echo stream-$i; i=$((i + 1)); sleep 0.05; done` }, { stdin: "closed" });
  const streamEnd = stream.result.then(() => "ended", (e) => (e as { code?: string }).code ?? String(e));
  const reader = stream.stdout.getReader();
  let streamed = "";
  await within((async () => {
    while (!streamed.includes("stream-3\n")) streamed += new TextDecoder().decode((await reader.read()).value ?? new Uint8Array());
  })(), CALL, "the stream's first lines");
  const gcState = await poll(g, stateOf(`/tmp/${label}-gc`), (s) => s === "alive", "grandchild up");
  expect(gcState).toBe("alive");
  const leaf = (await sh(g, `sed 's/^0:://' /proc/$(cat /tmp/${label}-gc)/cgroup`, "the stream's leaf")).stdoutText.trim();
  expect(leaf).toMatch(/^\/vge\/exec-\d+$/);

  // A PUT under way: its temporary file is there.
  await sh(g, `mkdir -p /tmp/${label}-put`, "put target");
  const put = g.putFile(`/tmp/${label}-put/big`, stalledSource(), { size: 32 * 1024 * 1024 }).then(() => "ok", (e) => (e as { code?: string; errno?: string }).errno ?? (e as { code?: string }).code ?? String(e));
  const during = await poll(g, `ls -a /tmp/${label}-put`, (s) => /\.vge-/.test(s), "the PUT's temporary file");
  expect(during).toMatch(/\.big\.vge-/);

  // The backend dies and comes back, with the job still printing.
  expect((await g.list()).find((j) => j.tag === tag)?.state).toBe("running");
  const killedAt = performance.now();
  await vm.restartBackend(BACKEND_DOWN_MS);
  const backAt = performance.now();
  expect(await within(put, CALL, "the PUT's end")).not.toBe("ok");
  expect(await within(streamEnd, CALL, "the stream's end")).not.toBe("ended");

  const g2 = await within(again(), STEP, "served again");
  expect((await sh(g2, "echo back", "first run after the restart")).stdoutText).toBe("back\n");
  const servedMs = performance.now() - backAt;
  expect(servedMs).toBeLessThan(SERVED_AGAIN_MS);

  // The stream's whole tree is gone and its leaf removed; the PUT left nothing; the job's output is whole.
  expect(await poll(g2, stateOf(`/tmp/${label}-gc`), (s) => s === "dead", "grandchild gone")).toBe("dead");
  expect(await poll(g2, stateOf(`/tmp/${label}-leader`), (s) => s === "dead", "leader gone")).toBe("dead");
  expect(await poll(g2, `test -e /sys/fs/cgroup${leaf} && echo present || echo removed`, (s) => s === "removed", "leaf removed")).toBe("removed");
  expect(await poll(g2, `ls -A /tmp/${label}-put`, (s) => s === "", "nothing at the PUT's target")).toBe("");
  const a = await attachAll(g2, tag);
  expect(a.stdout.length).toBe(JOB_OUT.length);
  expect(a.stdout === JOB_OUT).toBe(true);
  expect({ stderr: a.stderr, code: a.code }).toEqual({ stderr: "job-done\n", code: 7 });
  console.error(`faults: backend SIGKILLed and restarted (${label}): device back ${(backAt - killedAt).toFixed(0)} ms after the kill (${BACKEND_DOWN_MS} ms without a backend), served again ${servedMs.toFixed(0)} ms later; job output ${a.stdout.length} bytes whole`);
  return g2;
}

test.skipIf(!!skip)(named("faults: clock stepped a year forward and back; vsock backend killed and restarted mid-stream, mid-PUT, mid-job (listen and dial --reconnect)", skip), async () => {
  const found = findGuestDeps();
  if ("missing" in found) throw new Error(found.missing);
  const listenArgs = ["--listen", ":1024", "--cgroup", CG].join(",");
  const dialArgs = ["--reconnect", "--cgroup", CG, ":1025", "persistent"].join(",");
  const append = [`vge_args1=${listenArgs}`, `vge_args2=${dialArgs}`, "vge_runs=2", "vge_cgroup2=1"];
  await withGuest({ initrd: busyboxInitrd(found.deps), memoryMiB: 384, append, timeoutMs: 300_000, restartableBackend: true }, async (vm) => {
    await vm.start();
    await vm.waitFor("executions are contained in cgroups", STEP);
    const addr = `fc:${vm.uds}:1024`;
    const dial = () => connect(addr, { retryMs: 60_000 });
    const g = await within(dial(), STEP, "connect");
    await clockSteps(g);

    // Listen mode: the host dials again.
    const g2 = await backendOutage(vm, g, "listen", dial);
    g.close();

    // Dial mode with --reconnect: the same agent process dials the host again.
    const host = await listen(`unix-listen:${vm.portPath(1025)}`);
    try {
      await sh(g2, `kill -TERM ${g2.info.pid}`, "end the listening agent").catch(() => undefined);
      g2.close();
      await vm.waitFor(/agent start run=2/, STEP);
      const d = await within(host.accept(), STEP, "the dialing agent");
      const d2 = await backendOutage(vm, d, "dial", () => host.accept());
      expect(d2.info.pid).toBe(d.info.pid);
      d.close();
      d2.close();
    } finally {
      await host.close();
    }
    expect(vm.saw("agent exited 1 ")).toBe(false);
  });
}, 300_000);
