#!/usr/bin/env bun
// Measures, on this machine, how long a TCG guest takes from QEMU's start to the agent's connection
// and to the first command's result (the host seeing the disposable connection close after `echo`),
// for the busybox test initrd and for the dracut image (hook at pre-pivot). Needs what the guest tests
// need (scripts/guest-deps.sh, bun run build).
//
//   bun scripts/guest-boot-time.ts [RUNS]     (default 3 runs of each image)
import { findGuestDeps, type GuestOptions, withGuest } from "./qemu/harness.ts";
import { busyboxInitrd, dracutInitrd } from "./qemu/images.ts";

const runs = Number(process.argv[2] ?? 3);
const found = findGuestDeps();
if ("missing" in found) {
  console.error(`guest-boot-time: ${found.missing}`);
  process.exit(1);
}
const kinds: { name: string; opts: GuestOptions; end: string }[] = [
  { name: "busybox", opts: { initrd: busyboxInitrd(found.deps), append: ["vge_args=--retry,60"] }, end: "VGE-INIT: poweroff" },
  {
    name: "dracut",
    opts: { initrd: dracutInitrd(found.deps), append: ["root=vge-testroot", "rd.vge.mode=disposable", "rd.vge.retry=60"] },
    end: "VGE-TESTROOT: poweroff",
  },
];

const s = (ms: number) => (ms / 1000).toFixed(1);
const load = async () => (await Bun.file("/proc/loadavg").text()).split(" ").slice(0, 3).join(" ");
console.log(`load average before: ${await load()} (2 cores: above ~1 the other work slows the guest)`);
console.log("image    run  connected  first-result  power-off   (seconds from QEMU start, host clock)");
for (const k of kinds) {
  for (let i = 1; i <= runs; i++) {
    await withGuest(k.opts, async (g) => {
      const host = await g.listen(1024);
      await g.start();
      const conn = await host.accept(120_000);
      const connected = g.elapsedMs();
      await conn.write("echo VGE-MEASURE");
      await conn.closed;
      const result = g.elapsedMs();
      await g.waitFor(k.end, 120_000);
      console.log(`${k.name.padEnd(8)} ${String(i).padStart(3)}  ${s(connected).padStart(9)}  ${s(result).padStart(12)}  ${s(g.elapsedMs()).padStart(9)}`);
    });
  }
}
console.log(`load average after: ${await load()}`);
