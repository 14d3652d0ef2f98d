// The same dracut module in a systemd-based initrd: the hooks run from dracut's services
// (dracut-pre-udev.service, dracut-pre-pivot.service), the root is a real disk (root=/dev/vda, an ext4
// image of the test root) and systemd does the switch_root. Note: in this flavour a command's stdout
// goes to the journal only; stderr (and the hook's and agent's lines) also reach the console.
import { expect, test } from "bun:test";
import { findGuestDeps, type Guest, guestSkipReason, legacyFrame, named, withGuest } from "../../scripts/qemu/harness.ts";
import { dracutSystemdInitrd, testrootDisk } from "../../scripts/qemu/images.ts";

const skip = guestSkipReason(["mkfs.ext4"]);
const TEST_TIMEOUT = 180_000;
const STEP = 90_000;

function bootSystemd(append: string[], fn: (g: Guest) => Promise<void>) {
  const found = findGuestDeps();
  if ("missing" in found) throw new Error(found.missing);
  return withGuest(
    {
      initrd: dracutSystemdInitrd(found.deps),
      // snapshot=on: the guest's writes go to a temporary overlay, the cached image stays as built.
      qemuArgs: ["-drive", `file=${testrootDisk()},if=virtio,format=raw,snapshot=on`],
      append: ["root=/dev/vda", "rw", "rd.shell=0", ...append],
    },
    fn,
  );
}

test.skipIf(!!skip)(named("dracut+systemd disposable: the command runs in dracut-pre-pivot.service, then switch_root", skip), async () => {
  const id = crypto.randomUUID().slice(0, 8);
  await bootSystemd(["rd.vge.mode=disposable", "rd.vge.retry=60"], async (g) => {
    const host = await g.listen(1024);
    await g.start();
    const conn = await host.accept(STEP);
    await conn.write(`mkdir -p "$NEWROOT/etc/vge-test" && echo sd-${id} > "$NEWROOT/etc/vge-test/provisioned"; echo VGE-T-sd-${id} >&2`);
    await conn.closed;
    let at = await g.waitFor(`VGE-T-sd-${id}`, 10_000);
    at = await g.waitFor("disposable: command succeeded (exit 0)", STEP, at);
    at = await g.waitFor(`VGE-TESTROOT: file /etc/vge-test/provisioned: sd-${id}`, STEP, at);
    await g.waitFor("VGE-TESTROOT: poweroff", STEP, at);
  });
}, TEST_TIMEOUT);

test.skipIf(!!skip)(named("dracut+systemd persistent: the agent outlives dracut-pre-udev.service and is ended at switch_root", skip), async () => {
  const id = crypto.randomUUID().slice(0, 8);
  await bootSystemd(["rd.vge.mode=persistent", "rd.vge.retry=60"], async (g) => {
    const host = await g.listen(1024);
    await g.start();
    const conn = await host.accept(STEP);
    await conn.write(legacyFrame(`echo VGE-T-sdp-${id}`));
    let at = await g.waitFor(`VGE-T-sdp-${id}`, STEP);
    at = await g.waitFor("persistent: stopping the initrd's agent", STEP, at);
    await conn.closed;
    at = await g.waitFor("VGE-TESTROOT: real root reached", STEP, at);
    await g.waitFor("VGE-TESTROOT: poweroff", STEP, at);
    expect(g.saw("FATAL")).toBe(false);
  });
}, TEST_TIMEOUT);
