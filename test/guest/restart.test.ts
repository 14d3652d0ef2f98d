// The host restarts while the guest's agent keeps serving: rd.vge.mode=persistent rd.vge.reconnect=1
// in the dracut initrd. The host library serves one session, then goes away entirely (connection and
// listening socket closed, nobody on the port for ~2 s), then listens again on the same path: the same
// agent process dials in again and is served. rd.vge.hold keeps the initrd until the host releases it.
import { expect, test } from "bun:test";
import { listen } from "../../src/host/index.ts";
import { findGuestDeps, guestSkipReason, named, withGuest, within } from "../../scripts/qemu/harness.ts";
import { dracutInitrd } from "../../scripts/qemu/images.ts";

const skip = guestSkipReason();
const STEP = 90_000;
const CALL = 30_000;
const HOST_DOWN_MS = 2_000;

test.skipIf(!!skip)(named("restart: rd.vge.reconnect serves a host again after it restarted", skip), async () => {
  const found = findGuestDeps();
  if ("missing" in found) throw new Error(found.missing);
  const id = crypto.randomUUID().slice(0, 8);
  const append = ["root=vge-testroot", "rd.vge.mode=persistent", "rd.vge.reconnect=1", "rd.vge.retry=60", "rd.vge.hold=90"];
  await withGuest({ initrd: dracutInitrd(found.deps), append }, async (g) => {
    const address = `unix-listen:${g.portPath(1024)}`;
    // 1. The first host.
    const first = await listen(address);
    let firstPid: number;
    let firstResultMs: number;
    try {
      await g.start();
      const guest = await within(first.accept(), STEP, "the initrd's agent dialing in");
      const r = await within(guest.run({ shell: `echo session-1-${id}` }), CALL, "run in session 1");
      firstResultMs = g.elapsedMs();
      expect({ code: r.code, stdout: r.stdoutText }).toEqual({ code: 0, stdout: `session-1-${id}\n` });
      firstPid = guest.info.pid;
      // 2. The host "restarts": its listening socket (and socket file) goes, then its connection, so
      // the agent's next dial cannot land on the old listener.
      await first.close();
      guest.close();
      await guest.closed;
    } finally {
      await first.close();
    }
    let at = await g.waitFor("host closed the connection; reconnecting", STEP);
    // The agent dials while nobody listens (vhost-device-vsock resets it) and keeps trying.
    at = await g.waitFor("host not listening yet, retrying", STEP, at);
    await Bun.sleep(HOST_DOWN_MS);

    // 3. The host is back on the same path: the same agent dials in and is served.
    const second = await listen(address);
    const back = performance.now();
    try {
      const guest = await within(second.accept(), STEP, "the agent dialing in again");
      const servedAfterMs = performance.now() - back;
      expect(guest.info.pid).toBe(firstPid);
      expect(guest.info.initrd).toBe(true);
      const r = await within(guest.run({ shell: `echo session-2-${id}; echo err >&2; exit 5` }), CALL, "run in session 2");
      expect({ code: r.code, stdout: r.stdoutText, stderr: r.stderrText }).toEqual({ code: 5, stdout: `session-2-${id}\n`, stderr: "err\n" });
      expect(g.saw("VGE-TESTROOT: real root reached")).toBe(false);
      // 4. Done: let the boot go on. The agent never ends by itself, so the hold needs the release file.
      const rel = await within(guest.run({ shell: ": > /run/vsock-guest-exec/release" }), CALL, "release");
      expect(rel.code).toBe(0);
      guest.close();
      await guest.closed;
      at = await g.waitFor("persistent: released by the host (/run/vsock-guest-exec/release)", STEP, at);
      at = await g.waitFor("persistent: stopping the initrd's agent", STEP, at);
      at = await g.waitFor("persistent: the initrd's session ended", STEP, at);
      at = await g.waitFor("VGE-TESTROOT: real root reached", STEP, at);
      await g.waitFor("VGE-TESTROOT: poweroff", STEP, at);
      console.error(`restart (dracut, reconnect): first result after ${(firstResultMs / 1000).toFixed(1)} s of boot; served again ${(servedAfterMs / 1000).toFixed(1)} s after the host came back`);
    } finally {
      await second.close();
    }
  });
}, 180_000);
