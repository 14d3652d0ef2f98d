#!/usr/bin/env bun
// The guest RAM floor of each image: the least `-m` (MiB, in steps of 8) at which a TCG guest boots,
// its agent (listening) is reached through vhost-device-vsock and serves 20 commands. A binary search
// between LOW (assumed to fail) and HIGH (checked first), one guest at a time. The agent's own memory
// in the guest (VmRSS, RssAnon, RssFile) is printed at the floor. Needs what the guest tests need
// (scripts/guest-deps.sh, bun run build). BENCHMARKS.md "Guest RAM floor" quotes its output.
//
//   bun scripts/guest-ram-floor.ts [IMAGE...]   IMAGE: busybox, busybox-ondisk, dracut, dracut-ondisk,
//                                               busybox-ondisk-arm64 (an arm64 guest: qemu-system-aarch64)
//                                               (default: the four x86_64 ones; the embedded ones take longest)
//   --append K=V   one more kernel argument for every boot (repeatable); a busybox image's /init passes
//                  unknown K=V on to the agent as environment, e.g. --append BUN_JSC_forceRAMSize=67108864
//   VGE_AGENT=FILE another x86_64 agent build (e.g. one compiled with --compile-exec-argv=--smol)
import { connect } from "../src/host/index.ts";
import { findGuestDeps, type GuestOptions, withGuest, within } from "./qemu/harness.ts";
import { agentDisk, busyboxInitrd, busyboxOnDiskInitrd, diskArgs, dracutInitrd, dracutOnDiskInitrd } from "./qemu/images.ts";

const found = findGuestDeps();
if ("missing" in found) {
  console.error(`guest-ram-floor: ${found.missing}`);
  process.exit(1);
}
const deps = found.deps;
/** The arm64 inputs, looked up only when an arm64 image is asked for. */
function arm64Deps() {
  const arm = findGuestDeps("aarch64");
  if ("missing" in arm) throw new Error(`guest-ram-floor: ${arm.missing}`);
  return arm.deps;
}
const dracutArgs = ["root=vge-testroot", "rd.vge.mode=listen", "rd.vge.hold=300"];
const images: Record<string, { low: number; high: number; opts: () => Omit<GuestOptions, "memoryMiB"> }> = {
  busybox: { low: 128, high: 256, opts: () => ({ initrd: busyboxInitrd(deps), append: ["vge_args=--listen,:1024"] }) },
  "busybox-ondisk": { low: 64, high: 128, opts: () => ({ initrd: busyboxOnDiskInitrd(deps), qemuArgs: diskArgs(agentDisk(deps)), append: ["vge_agent_disk=/dev/vda", "vge_args=--listen,:1024"] }) },
  dracut: { low: 192, high: 320, opts: () => ({ initrd: dracutInitrd(deps), append: dracutArgs }) },
  "dracut-ondisk": { low: 64, high: 128, opts: () => ({ initrd: dracutOnDiskInitrd(deps), qemuArgs: diskArgs(agentDisk(deps)), append: [...dracutArgs, "rd.vge.agent=/dev/vda"] }) },
  "busybox-ondisk-arm64": {
    low: 64,
    high: 128,
    opts: () => {
      const arm = arm64Deps();
      return { deps: arm, initrd: busyboxOnDiskInitrd(arm), qemuArgs: diskArgs(agentDisk(arm)), append: ["vge_agent_disk=/dev/vda", "vge_args=--listen,:1024"] };
    },
  },
};
const DEFAULT_IMAGES = ["busybox", "busybox-ondisk", "dracut", "dracut-ondisk"];

/** Boots at `mib`; the agent's memory line when it served 20 commands, undefined otherwise. */
async function serves(opts: Omit<GuestOptions, "memoryMiB">, mib: number): Promise<string | undefined> {
  try {
    return await withGuest({ ...opts, memoryMiB: mib, timeoutMs: 200_000 }, async (g) => {
      await g.start();
      // A guest that panics (out of memory while unpacking) ends QEMU: stop waiting for its agent then.
      const down = g.exited().then(() => {
        throw new Error(g.saw("Out of memory") ? "out of memory" : "QEMU exited");
      });
      const guest = await within(Promise.race([connect(`fc:${g.uds}:1024`, { retryMs: 120_000 }), down]), 150_000, "connecting");
      for (let i = 0; i < 20; i++) {
        const r = await within(guest.run({ shell: `echo ${i}` }), 30_000, "a command");
        if (r.code !== 0 || r.stdoutText !== `${i}\n`) throw new Error(`command ${i}: ${r.status} ${r.code}`);
      }
      const pick = (file: string, keys: string) => `while read -r k v u; do case $k in ${keys}) printf '%s %s %s ' "$k" "$v" "$u";; esac; done < ${file}`;
      const m = await guest.run({ shell: `${pick(`/proc/${guest.info.pid}/status`, "VmRSS:|RssAnon:|RssFile:")}; ${pick("/proc/meminfo", "MemTotal:|MemAvailable:")}` });
      guest.close();
      return m.stdoutText.trim();
    });
  } catch (e) {
    console.log(`  ${mib} MiB: no (${(e as Error).message.split("\n")[0]})`);
    return undefined;
  }
}

const names: string[] = [];
const extraAppend: string[] = [];
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i]!;
  if (a === "--append") {
    const kv = process.argv[++i];
    if (!kv || !/^[^=\s]+=\S*$/.test(kv)) {
      console.error(`guest-ram-floor: --append wants K=V, got ${kv ?? "nothing"}`);
      process.exit(2);
    }
    extraAppend.push(kv);
  } else names.push(a);
}
for (const name of names.length ? names : DEFAULT_IMAGES) {
  const image = images[name];
  if (!image) {
    console.error(`guest-ram-floor: unknown image ${name} (${Object.keys(images).join(", ")})`);
    process.exit(2);
  }
  const base = image.opts();
  const opts = { ...base, append: [...(base.append ?? []), ...extraAppend] };
  let { low, high } = image;
  let at = await serves(opts, high);
  if (!at) {
    console.log(`${name}: does not serve even at ${high} MiB`);
    continue;
  }
  console.log(`  ${high} MiB: yes: ${at}`);
  while (high - low > 8) {
    const mid = Math.round((low + high) / 16) * 8;
    const got = await serves(opts, mid);
    if (got) {
      high = mid;
      at = got;
      console.log(`  ${mid} MiB: yes: ${at}`);
    } else low = mid;
  }
  console.log(`${name}: floor ${high} MiB (fails at ${low}); at the floor: ${at}`);
}
