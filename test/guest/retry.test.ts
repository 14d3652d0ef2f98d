// Scenario (c): the agent starts before the host listens. It keeps retrying (--retry) and is
// served once the host starts listening a couple of seconds after the agent began to dial.
import { expect, test } from "bun:test";
import { findGuestDeps, guestSkipReason, named, withGuest } from "../../scripts/qemu/harness.ts";
import { busyboxInitrd } from "../../scripts/qemu/images.ts";

const skip = guestSkipReason();

test.skipIf(!!skip)(named("retry: a host that listens late is still served", skip), async () => {
  const found = findGuestDeps();
  if ("missing" in found) throw new Error(found.missing);
  const id = crypto.randomUUID().slice(0, 8);
  await withGuest({ initrd: busyboxInitrd(found.deps), append: ["vge_args=--retry,60"] }, async (g) => {
    await g.start();
    const at = await g.waitFor("VGE-INIT: agent start");
    await Bun.sleep(2500); // the agent dials into nothing meanwhile: vhost-device-vsock resets it
    expect(g.saw("VGE-INIT: agent exited")).toBe(false);
    const host = await g.listen(1024);
    const conn = await host.accept(60_000);
    await conn.write(`echo VGE-T-late-${id}`);
    await conn.closed;
    const after = await g.waitFor(`VGE-T-late-${id}`, 60_000, at);
    await g.waitFor("VGE-INIT: agent exited 0", 60_000, after);
  });
}, 150_000);
