// Scenario (a) and the hand-over: the dracut image built by scripts/build-initrd.sh (module
// initrd/50vsock-guest-exec) plus the test-only vge-testroot module, which gives dracut a throw-away
// tmpfs root (root=vge-testroot) so the whole flow runs: hooks, switch_root, the real root's init.
import { expect, test } from "bun:test";
import { findGuestDeps, type Guest, guestSkipReason, named, legacyFrame, withGuest } from "../../scripts/qemu/harness.ts";
import { dracutInitrd } from "../../scripts/qemu/images.ts";

const skip = guestSkipReason();
const TEST_TIMEOUT = 180_000;
const STEP = 90_000; // one wait in the log: a dracut boot under TCG is ~12 s, give CI room

function image(): string {
  const found = findGuestDeps();
  if ("missing" in found) throw new Error(found.missing);
  return dracutInitrd(found.deps);
}

function bootDracut(append: string[], fn: (g: Guest) => Promise<void>) {
  return withGuest({ initrd: image(), append: ["root=vge-testroot", ...append] }, fn);
}

test.skipIf(!!skip)(named("dracut disposable: the command runs before switch_root, boot waits for it", skip), async () => {
  const id = crypto.randomUUID().slice(0, 8);
  await bootDracut(["rd.vge.mode=disposable", "rd.vge.retry=60"], async (g) => {
    const host = await g.listen(1024);
    await g.start();
    const conn = await host.accept(STEP);
    // Writes into the mounted real root ($NEWROOT); the sleep shows the boot waiting for the command.
    // No end(): the agent takes the command as complete after its pause, and the connection then
    // stays open until the command has finished (see HostConnection.end).
    const sent = performance.now();
    await conn.write(
      `echo VGE-T-start-${id}; mkdir -p "$NEWROOT/etc/vge-test" && echo provisioned-${id} > "$NEWROOT/etc/vge-test/provisioned" && sleep 2; echo VGE-T-done-${id}`,
    );
    await conn.closed;
    const firstResultMs = g.elapsedMs();
    // The host saw the close only once the command had finished (the serial line may trail a little).
    expect(performance.now() - sent).toBeGreaterThanOrEqual(2000);
    // Each wait starts where the previous match ended: the log lines must come in this order.
    let at = await g.waitFor(`VGE-T-done-${id}`, 10_000);
    at = await g.waitFor("disposable: command succeeded (exit 0)", STEP, at);
    at = await g.waitFor("VGE-TESTROOT: real root reached", STEP, at);
    at = await g.waitFor("VGE-TESTROOT: disposable.status=0", STEP, at);
    at = await g.waitFor(`VGE-TESTROOT: file /etc/vge-test/provisioned: provisioned-${id}`, STEP, at);
    await g.waitFor("VGE-TESTROOT: poweroff", STEP, at);
    console.error(`dracut disposable: first command result after ${(firstResultMs / 1000).toFixed(1)} s of boot`);
  });
}, TEST_TIMEOUT);

test.skipIf(!!skip)(named("dracut disposable: a failing command stops the boot, visibly", skip), async () => {
  const id = crypto.randomUUID().slice(0, 8);
  // rd.shell=0: dracut halts instead of waiting in an emergency shell on the console.
  await bootDracut(["rd.vge.mode=disposable", "rd.vge.retry=60", "rd.shell=0"], async (g) => {
    const host = await g.listen(1024);
    await g.start();
    const conn = await host.accept(STEP);
    await conn.write(`echo VGE-T-failing-${id}; exit 7`);
    await conn.closed;
    const at = await g.waitFor("disposable: command FAILED (exit 7); stopping the boot", STEP);
    await g.waitFor("dracut: FATAL: vsock-guest-exec: provisioning failed (exit 7)", STEP, at);
    await g.exited(); // die -> /init exits -> panic=-1 -> QEMU (-no-reboot) ends
    expect(g.saw("VGE-TESTROOT: real root reached")).toBe(false);
  });
}, TEST_TIMEOUT);

test.skipIf(!!skip)(named("dracut disposable: rd.vge.onerror=continue boots on after a failure", skip), async () => {
  const id = crypto.randomUUID().slice(0, 8);
  await bootDracut(["rd.vge.mode=disposable", "rd.vge.retry=60", "rd.vge.onerror=continue"], async (g) => {
    const host = await g.listen(1024);
    await g.start();
    const conn = await host.accept(STEP);
    await conn.write(`echo VGE-T-failing-${id}; exit 3`);
    await conn.closed;
    let at = await g.waitFor("disposable: command FAILED (exit 3); booting on", STEP);
    at = await g.waitFor("VGE-TESTROOT: disposable.status=3", STEP, at);
    await g.waitFor("VGE-TESTROOT: poweroff", STEP, at);
  });
}, TEST_TIMEOUT);

test.skipIf(!!skip)(named("dracut persistent: initrd session, then the real root's agent takes over", skip), async () => {
  const id = crypto.randomUUID().slice(0, 8);
  const append = ["rd.vge.mode=persistent", "rd.vge.retry=60", "rd.vge.hold=60", "rd.vgetest.agent=1", "vgetest.serve=1024"];
  await bootDracut(append, async (g) => {
    const host = await g.listen(1024);
    await g.start();
    // 1. The initrd's agent (started from pre-udev); rd.vge.hold keeps switch_root waiting for our close.
    const first = await host.accept(STEP);
    await first.write(Buffer.concat([`echo VGE-T-initrd-1-${id}`, `test -e /usr/lib/vge-testroot/init && echo VGE-T-in-initrd-${id}`].map(legacyFrame)));
    let at = await g.waitFor(`VGE-T-initrd-1-${id}`, STEP);
    at = await g.waitFor(`VGE-T-in-initrd-${id}`, STEP, at);
    expect(g.saw("VGE-TESTROOT: real root reached")).toBe(false);
    first.end();
    await first.closed;
    at = await g.waitFor("persistent: the initrd's session ended", STEP, at);
    // 2. After switch_root, the agent that vsock-guest-exec.service would run dials the same port.
    at = await g.waitFor("VGE-TESTROOT: starting the agent as the service would", STEP, at);
    const second = await host.accept(STEP);
    await second.write(legacyFrame(`test -e /usr/lib/vge-testroot/init || echo VGE-T-in-real-root-${id}`));
    at = await g.waitFor(`VGE-T-in-real-root-${id}`, STEP, at);
    second.end();
    await second.closed;
    at = await g.waitFor("VGE-TESTROOT: agent exited 0", STEP, at);
    await g.waitFor("VGE-TESTROOT: poweroff", STEP, at);
  });
}, TEST_TIMEOUT);

test.skipIf(!!skip)(named("dracut persistent: a session still open at switch_root is ended (rd.vge.hold=0)", skip), async () => {
  const id = crypto.randomUUID().slice(0, 8);
  await bootDracut(["rd.vge.mode=persistent", "rd.vge.retry=60"], async (g) => {
    const host = await g.listen(1024);
    await g.start();
    const conn = await host.accept(STEP);
    await conn.write(legacyFrame(`echo VGE-T-open-${id}`));
    let at = await g.waitFor(`VGE-T-open-${id}`, STEP);
    // The host keeps the session open; the cleanup hook must not wait for it.
    at = await g.waitFor("persistent: stopping the initrd's agent", STEP, at);
    await conn.closed;
    at = await g.waitFor("persistent: the initrd's session ended", STEP, at);
    await g.waitFor("VGE-TESTROOT: poweroff", STEP, at);
  });
}, TEST_TIMEOUT);
