// Scenario (c): the agent starts before the host listens. It keeps dialing (--retry) and is served once
// the host listens: over AF_VSOCK a new attempt every 50 ms, each left to the guest kernel until answered
// or timed out (src/transport/dial-vsock.ts).
// 1. Stock vhost-device-vsock 0.3.0 (what users run): it never answers a connect nobody takes, so attempts
//    pile up for the kernel's 2 s each. An ovm-style host (listen, accept, write one original-format
//    command, close) starts at a random moment of the agent's attempts, 30 times: every command must
//    arrive (an attempt given up early reached such a host as a connection the guest reset: 1 lost in 30
//    with 100 ms attempts). A last run measures what dialing into nothing costs in the guest, beside an
//    idle agent (--listen).
// 2. vhost-device-vsock-rst (scripts/guest-deps.sh: 0.3.0 with an RST for a connect nobody takes, as
//    Firecracker and QEMU's vhost-vsock do): a persistent host listens late, then restarts 11 times:
//    --reconnect is as prompt as the first connection; and the CPU of dialing into nothing there.
import { expect, test } from "bun:test";
import { findGuestDeps, findRstBackend, guestSkipReason, legacyFrame, named, withGuest } from "../../scripts/qemu/harness.ts";
import { busyboxInitrd } from "../../scripts/qemu/images.ts";
import { median, percentile } from "../../bench/_stats.ts";

const skip = guestSkipReason();
const OVM_RUNS = 30;

test.skipIf(!!skip)(named("retry: an ovm-style host started at random moments gets every command (stock backend)", skip), async () => {
  const found = findGuestDeps();
  if ("missing" in found) throw new Error(found.missing);
  const id = crypto.randomUUID().slice(0, 8);
  const runs = OVM_RUNS + 1;
  // --retry 5: a lost command would leave the agent dialing into nothing; it then exits 1 after 5 s.
  await withGuest({ initrd: busyboxInitrd(found.deps), append: ["vge_args=--retry,5", `vge_runs=${runs}`], timeoutMs: 600_000 }, async (g) => {
    await g.start();
    let at = 0;
    const waits: number[] = [];
    let marks = 0;
    const lost: number[] = [];
    for (let run = 1; run <= OVM_RUNS; run++) {
      at = await g.waitFor(`VGE-INIT: agent start run=${run} `, 120_000, at);
      // The agent is dialing (its first attempt failed); then a random moment within its next attempts.
      at = await g.waitFor("host not listening yet", 60_000, at);
      await Bun.sleep(Math.random() * 500);
      const t0 = performance.now();
      const host = await g.listen(1024);
      const conn = await host.accept(30_000);
      waits.push(performance.now() - t0);
      // ovm: one command, then close; nothing read back. The mark goes to the console, not to the host.
      await conn.write(`echo VGE-T-ovm-${id}-${run} >/dev/console`);
      conn.end();
      await host.close(); // nobody listens again until the next run
      const end = await Promise.race([
        g.waitFor(`VGE-T-ovm-${id}-${run}`, 60_000, at).then((i) => ({ i, got: true })),
        g.waitFor(`VGE-INIT: agent exited 1 run=${run} `, 60_000, at).then((i) => ({ i, got: false })),
      ]);
      if (end.got) marks++;
      else lost.push(run);
      at = await g.waitFor(new RegExp(`VGE-INIT: agent exited \\d+ run=${run} `), 60_000, at);
    }
    // The last run: an agent dialing port 1099, where nobody listens, beside an agent idle in --listen
    // (the same Bun runtime doing nothing): ticks of 10 ms over 10 s, both at once.
    at = await g.waitFor(`VGE-INIT: agent start run=${runs} `, 120_000, at);
    const host = await g.listen(1024);
    const conn = await host.accept(30_000);
    await conn.write(`echo "VGE-T-cpu-${id} $(${CPU_SCRIPT})" >/dev/console`);
    at = await g.waitFor(new RegExp(`VGE-T-cpu-${id} dial=\\d+ idle=\\d+`), 90_000, at);
    const m = new RegExp(`VGE-T-cpu-${id} dial=(\\d+) idle=(\\d+)`).exec(g.serial())!;
    const dialTicks = Number(m[1]);
    const idleTicks = Number(m[2]);
    console.error(
      `retry (guest, stock backend, overlapping attempts): ovm-style commands arrived ${marks}/${OVM_RUNS}${lost.length ? ` (lost: runs ${lost.join(", ")})` : ""}; ` +
        `host listens → agent connected p50 ${median(waits).toFixed(0)} ms, p99 ${percentile(waits, 99).toFixed(0)} ms (${waits.map((w) => w.toFixed(0)).join(", ")}); ` +
        `dialing into nothing ${dialTicks / 10} % of the emulated core, an idle agent ${idleTicks / 10} %`,
    );
    expect(lost).toEqual([]);
    expect(marks).toBe(OVM_RUNS);
    // The 50 ms cadence + one tick to see the answer; TCG on a loaded 2-core box needs room. Was 237–1729 ms
    // with one 2 s attempt at a time.
    expect(percentile(waits, 99)).toBeLessThan(1_000);
    // TCG: absolute numbers mean little; the dialing agent against an idle one in the same guest.
    // ~20 attempts a second: each is a virtqueue kick, which TCG emulates at great cost (measured ~21 %
    // against 1.4 %; under KVM it is a fraction of that). A bound against a runaway loop, not a target.
    expect(dialTicks - idleTicks).toBeLessThan(400);
  });
}, 600_000);

/** Ticks of 10 ms over 10 s: an agent dialing port 1099 (nobody listens) and one idle in --listen. */
const TICKS = (p: string) => `$(awk '{print $14+$15}' /proc/${p}/stat)`;
const AGENT = "/usr/bin/vsock_guest_exec";
const CPU_SCRIPT = `${AGENT} --retry 60 :1099 >/dev/null 2>&1 & d=$!; ${AGENT} --listen :1098 >/dev/null 2>&1 & l=$!; sleep 3; d0=${TICKS("$d")}; l0=${TICKS("$l")}; sleep 10; d1=${TICKS("$d")}; l1=${TICKS("$l")}; kill $d $l; echo "dial=$((d1 - d0)) idle=$((l1 - l0))"`;

const rstBackend = findRstBackend();
const rstSkip = skip ?? (rstBackend ? undefined : "vhost-device-vsock-rst not found (run scripts/guest-deps.sh)");

test.skipIf(!!rstSkip)(named("retry: with a backend that resets, the host is served within the 50 ms cadence, also after restarts (--reconnect)", rstSkip), async () => {
  const found = findGuestDeps();
  if ("missing" in found) throw new Error(found.missing);
  const deps = { ...found.deps, backend: rstBackend! };
  const id = crypto.randomUUID().slice(0, 8);
  const append = ["vge_args=--retry,60,--reconnect,persistent"];
  await withGuest({ initrd: busyboxInitrd(deps), deps, append, timeoutMs: 300_000 }, async (g) => {
    await g.start();
    let at = await g.waitFor("host not listening yet", 120_000); // the agent is up and dialing
    const waits: number[] = [];
    for (let i = 0; i < 12; i++) {
      // Down 0.6–1.9 s: the agent dials into nothing meanwhile.
      await Bun.sleep(600 + ((i * 433) % 1300));
      const t0 = performance.now();
      const host = await g.listen(1024);
      const conn = await host.accept(30_000);
      waits.push(performance.now() - t0);
      if (i === 0) {
        // Once: what dialing into nothing costs when every attempt is reset at once (~20 attempts a
        // second), beside an idle agent, 10 s. Persistent commands answer nothing: the console has it.
        await conn.write(legacyFrame(`echo "VGE-T-cpu-${id} $(${CPU_SCRIPT})" >/dev/console`));
        at = await g.waitFor(new RegExp(`VGE-T-cpu-${id} dial=\\d+ idle=\\d+`), 90_000, at);
      }
      conn.end(); // the host goes away: the same agent dials again (--reconnect)
      at = await g.waitFor("host closed the connection; reconnecting", 60_000, at);
      await host.close();
    }
    expect(g.saw("VGE-INIT: agent exited")).toBe(false); // one agent process throughout
    const p50 = median(waits);
    const p99 = percentile(waits, 99);
    const [dialTicks, idleTicks] = (new RegExp(`VGE-T-cpu-${id} dial=(\\d+) idle=(\\d+)`).exec(g.serial()) ?? []).slice(1).map(Number);
    console.error(`retry (guest, RST backend, --reconnect): host listens → agent connected p50 ${p50.toFixed(0)} ms, p99 ${p99.toFixed(0)} ms over ${waits.length}: ${waits.map((w) => w.toFixed(0)).join(", ")}; dialing into nothing ${dialTicks! / 10} % of the emulated core, an idle agent ${idleTicks! / 10} %`);
    expect(dialTicks! - idleTicks!).toBeLessThan(400); // as in the stock test: a bound, not a target
    // Target p99 ≤ 150 ms (BENCHMARKS.md; measured p50 23, p99 46); TCG on a loaded 2-core CI box needs room.
    expect(p50).toBeLessThan(150);
    expect(p99).toBeLessThan(500);
  });
}, 300_000);
