// The x64 agent's CPU floor (x86-64-v2) in the dracut image: on QEMU's default CPU model, qemu64, the
// agent would die with "Illegal instruction" before main and the host would simply never hear from the
// guest. The hooks check /proc/cpuinfo first, say so in one console line and follow rd.vge.onerror.
import { expect, test } from "bun:test";
import { findGuestDeps, type Guest, guestSkipReason, named, withGuest } from "../../scripts/qemu/harness.ts";
import { dracutInitrd } from "../../scripts/qemu/images.ts";

const skip = guestSkipReason();
const STEP = 90_000;
const CLEAR_LINE = /the CPU lacks ([a-z0-9_ ]+) \(x86-64-v2\), which the agent needs \(it would die with "Illegal instruction"\): give the guest a newer CPU model, e\.g\. QEMU -cpu host with KVM or -cpu max under TCG/;

function bootQemu64(append: string[], fn: (g: Guest) => Promise<void>) {
  const found = findGuestDeps();
  if ("missing" in found) throw new Error(found.missing);
  return withGuest({ initrd: dracutInitrd(found.deps), cpu: "qemu64", append: ["root=vge-testroot", ...append] }, fn);
}

// The shell's report of a process killed by SIGILL, not our line quoting it.
const SIGILL = /(?<!die with ")Illegal instruction/;

function missingFlags(g: Guest): string[] {
  return CLEAR_LINE.exec(g.serial())?.[1]?.trim().split(" ") ?? [];
}

test.skipIf(!!skip)(named("cpu floor: -cpu qemu64, listen mode: one clear line, then rd.vge.onerror=fail stops the boot", skip), async () => {
  // rd.shell=0: dracut halts instead of waiting in an emergency shell on the console.
  await bootQemu64(["rd.vge.mode=listen", "rd.shell=0"], async (g) => {
    await g.start();
    const at = await g.waitFor(new RegExp(`${CLEAR_LINE.source}; stopping the boot \\(rd\\.vge\\.onerror=fail\\)`), STEP);
    expect(missingFlags(g)).toEqual(expect.arrayContaining(["sse4_2", "popcnt"]));
    await g.waitFor("FATAL: vsock-guest-exec: CPU below x86-64-v2, the agent cannot run", STEP, at);
    await g.exited(); // die -> /init exits -> panic=-1 -> QEMU (-no-reboot) ends
    const log = g.serial();
    expect(log).not.toMatch(SIGILL);
    expect(log).not.toContain("listen: listening on port"); // the agent was never started
    expect(log).not.toContain("VGE-TESTROOT: real root reached");
  });
}, 180_000);

test.skipIf(!!skip)(named("cpu floor: -cpu qemu64, disposable, rd.vge.onerror=continue: boots on without the agent", skip), async () => {
  await bootQemu64(["rd.vge.mode=disposable", "rd.vge.onerror=continue", "rd.vge.retry=60"], async (g) => {
    const host = await g.listen(1024);
    await g.start();
    let at = await g.waitFor(new RegExp(`${CLEAR_LINE.source}; booting on without the agent \\(rd\\.vge\\.onerror=continue\\)`), STEP);
    at = await g.waitFor("VGE-TESTROOT: real root reached", STEP, at);
    at = await g.waitFor("VGE-TESTROOT: disposable.status=cpu", STEP, at);
    await g.waitFor("VGE-TESTROOT: poweroff", STEP, at);
    expect(g.serial()).not.toMatch(SIGILL);
    expect(g.serial()).not.toContain("disposable: dialing");
    expect(host.count).toBe(0); // nothing ever dialed the host
  });
}, 180_000);
