// Issue 19: the smallest microVMs. A Firecracker guest has 128 MiB by default; an initramfs carrying the
// ~106 MiB agent cannot even be unpacked there (the kernel panics: "Out of memory and no killable
// processes"). Images built with --agent-on-disk leave the agent out and run it from a squashfs disk
// (scripts/build-agent-image.sh): both the busybox image and the dracut image boot at 128 MiB and serve
// commands through vhost-device-vsock. The agent's RAM in the guest (VmRSS, RssAnon, RssFile) is printed.
// The arm64 busybox image does the same at 128 MiB (qemu-system-aarch64 -M virt, TCG: fewer executions,
// an arm64 TCG execution costs several times an x86_64 one).
import { expect, test } from "bun:test";
import { connect, type Guest as HostGuest } from "../../src/host/index.ts";
import { findGuestDeps, guestSkipReason, named, withGuest, within } from "../../scripts/qemu/harness.ts";
import { agentDisk, busyboxOnDiskInitrd, diskArgs, dracutOnDiskInitrd } from "../../scripts/qemu/images.ts";

const skip = guestSkipReason(["mksquashfs"]);
const skipArm = guestSkipReason(["mksquashfs"], "aarch64");
const MEMORY_MIB = 128;
const STEP = 120_000;

/** Runs `n` executions one after another; every one must succeed. */
async function runMany(guest: HostGuest, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const r = await within(guest.run({ shell: `echo run-${i}` }), 30_000, `execution ${i}`);
    expect({ code: r.code, out: r.stdoutText }).toEqual({ code: 0, out: `run-${i}\n` });
  }
}

/** The agent's memory and the guest's, as the guest sees them (shell builtins only: dracut has no grep). */
async function memory(guest: HostGuest): Promise<string> {
  const pick = (file: string, keys: string) => `while read -r k v u; do case $k in ${keys}) printf '%s %s %s ' "$k" "$v" "$u";; esac; done < ${file}`;
  const r = await guest.run({ shell: `${pick(`/proc/${guest.info.pid}/status`, "VmRSS:|RssAnon:|RssFile:")}; ${pick("/proc/meminfo", "MemTotal:|MemAvailable:")}` });
  expect(r.code).toBe(0);
  return r.stdoutText.trim();
}

test.skipIf(!!skip)(named(`small guest: the busybox image serves 1,000 executions at ${MEMORY_MIB} MiB, agent on disk`, skip), async () => {
  const found = findGuestDeps();
  if ("missing" in found) throw new Error(found.missing);
  const opts = { initrd: busyboxOnDiskInitrd(found.deps), qemuArgs: diskArgs(agentDisk(found.deps, 3)), memoryMiB: MEMORY_MIB, timeoutMs: 240_000 };
  await withGuest({ ...opts, append: ["vge_agent_disk=/dev/vda", "vge_args=--listen,:1024"] }, async (g) => {
    await g.start();
    await g.waitFor("VGE-INIT: agent start", STEP);
    const guest = await within(connect(`fc:${g.uds}:1024`, { retryMs: 60_000 }), STEP, "connecting to the agent");
    const t0 = performance.now();
    await runMany(guest, 1000);
    console.error(`small guest (busybox, ${MEMORY_MIB} MiB): 1000 executions in ${((performance.now() - t0) / 1000).toFixed(1)} s; ${await memory(guest)}`);
    expect(g.saw("Out of memory")).toBe(false);
    guest.close();
  });
}, 240_000);

test.skipIf(!!skip)(named(`small guest: the dracut image serves at ${MEMORY_MIB} MiB (rd.vge.agent), then boots on`, skip), async () => {
  const found = findGuestDeps();
  if ("missing" in found) throw new Error(found.missing);
  // dracut builds its image in this test's time (zstd -19: 40 s quiet, minutes on a loaded machine).
  const opts = { initrd: dracutOnDiskInitrd(found.deps), qemuArgs: diskArgs(agentDisk(found.deps, 3)), memoryMiB: MEMORY_MIB, timeoutMs: 420_000 };
  const append = ["root=vge-testroot", "rd.vge.mode=listen", "rd.vge.agent=/dev/vda", "rd.vge.hold=120"];
  await withGuest({ ...opts, append }, async (g) => {
    await g.start();
    const guest = await within(connect(`fc:${g.uds}:1024`, { retryMs: STEP }), STEP, "connecting to the initrd's agent");
    expect(guest.info.initrd).toBe(true);
    const t0 = performance.now();
    await runMany(guest, 200);
    console.error(`small guest (dracut, ${MEMORY_MIB} MiB): 200 executions in ${((performance.now() - t0) / 1000).toFixed(1)} s; ${await memory(guest)}`);
    const rel = await guest.run({ shell: ": > /run/vsock-guest-exec/release" });
    expect(rel.code).toBe(0);
    guest.close();
    let at = await g.waitFor("unmounted the agent's disk", STEP);
    at = await g.waitFor("VGE-TESTROOT: real root reached", STEP, at);
    await g.waitFor("VGE-TESTROOT: poweroff", STEP, at);
    expect(g.saw("Out of memory")).toBe(false);
  });
}, 480_000);

test.skipIf(!!skipArm)(named(`small guest: the arm64 busybox image serves 200 executions at ${MEMORY_MIB} MiB, agent on disk`, skipArm), async () => {
  const found = findGuestDeps("aarch64");
  if ("missing" in found) throw new Error(found.missing);
  const deps = found.deps;
  const opts = { initrd: busyboxOnDiskInitrd(deps), qemuArgs: diskArgs(agentDisk(deps, 3)), memoryMiB: MEMORY_MIB, deps, timeoutMs: 240_000 };
  await withGuest({ ...opts, append: ["quiet", "vge_agent_disk=/dev/vda", "vge_args=--listen,:1024"] }, async (g) => {
    await g.start();
    await g.waitFor("VGE-INIT: agent start", STEP);
    const guest = await within(connect(`fc:${g.uds}:1024`, { retryMs: 90_000 }), STEP, "connecting to the arm64 agent");
    expect(guest.info.kernel).toBe(deps.kver);
    const t0 = performance.now();
    await runMany(guest, 200);
    console.error(`small guest (arm64 busybox, ${MEMORY_MIB} MiB): 200 executions in ${((performance.now() - t0) / 1000).toFixed(1)} s; ${await memory(guest)}`);
    expect(g.saw("Out of memory")).toBe(false);
    guest.close();
  });
}, 240_000);
