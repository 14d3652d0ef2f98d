// Scenario (b): the agent in persistent mode, original format (2-byte LE length + command), in the
// busybox test initrd. Several frames in one write; commands run in order; a clean host close ends
// the agent with status 0.
import { test } from "bun:test";
import { findGuestDeps, guestSkipReason, named, legacyFrame, withGuest } from "../../scripts/qemu/harness.ts";
import { busyboxInitrd } from "../../scripts/qemu/images.ts";

const skip = guestSkipReason();

test.skipIf(!!skip)(named("persistent: frames run in order, host close ends the agent with 0", skip), async () => {
  const found = findGuestDeps();
  if ("missing" in found) throw new Error(found.missing);
  const id = crypto.randomUUID().slice(0, 8);
  await withGuest({ initrd: busyboxInitrd(found.deps), append: ["vge_args=--retry,60,2:1024,persistent"] }, async (g) => {
    const host = await g.listen(1024);
    await g.start();
    const conn = await host.accept(60_000);
    const frames = [`echo VGE-T-1-${id}`, `sleep 0.3; echo VGE-T-2-${id}`, `false`, `echo VGE-T-3-${id}`];
    // One write with every frame: the agent must split them itself.
    await conn.write(Buffer.concat(frames.map(legacyFrame)));
    let at = await g.waitFor(`VGE-T-1-${id}`);
    at = await g.waitFor(`VGE-T-2-${id}`, 60_000, at);
    at = await g.waitFor(`VGE-T-3-${id}`, 60_000, at);
    conn.end();
    await conn.closed;
    await g.waitFor("VGE-INIT: agent exited 0", 60_000, at);
    await g.waitFor("VGE-INIT: poweroff");
  });
}, 150_000);
