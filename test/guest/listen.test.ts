// The host dials the guest: the agent with --listen in the busybox initrd, reached through
// vhost-device-vsock's Firecracker-style `CONNECT 1024` (Guest.connect). A raw command on an accepted
// connection is the original disposable format: it runs, and the connection closes when it finished.
import { expect, test } from "bun:test";
import { findGuestDeps, guestSkipReason, named, withGuest } from "../../scripts/qemu/harness.ts";
import { busyboxInitrd } from "../../scripts/qemu/images.ts";

const skip = guestSkipReason();

test.skipIf(!!skip)(named("listen: the host dials in through CONNECT, twice", skip), async () => {
  const found = findGuestDeps();
  if ("missing" in found) throw new Error(found.missing);
  const id = crypto.randomUUID().slice(0, 8);
  await withGuest({ initrd: busyboxInitrd(found.deps), append: ["vge_args=--listen,:1024"] }, async (g) => {
    await g.start();
    for (const n of [1, 2]) {
      const conn = await g.connect(1024, 90_000);
      const sent = performance.now();
      await conn.write(`sleep 1; echo VGE-T-listen-${n}-${id}`);
      await conn.closed;
      expect(performance.now() - sent).toBeGreaterThanOrEqual(1000);
      await g.waitFor(`VGE-T-listen-${n}-${id}`, 10_000);
    }
    expect(g.saw("VGE-INIT: agent exited")).toBe(false);
  });
}, 150_000);
