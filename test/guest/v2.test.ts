// Protocol v2 in a real guest, on the product path: the dracut image (initrd/50vsock-guest-exec) with the
// test root, driven by the host library (src/host) and by the `vge` CLI, both reaching the guest only
// through vhost-device-vsock's Unix sockets. One boot per direction, several checks in each:
//   persistent: the initrd's agent dials the host library's listen("unix-listen:UDS_1024");
//   listen:     the initrd's agent listens on port 1024 and `vge run fc:UDS:1024` dials in.
// rd.vge.hold keeps switch_root waiting until the host is done (see initrd/README.md).
import { expect, test } from "bun:test";
import { listen } from "../../src/host/index.ts";
import { findGuestDeps, type Guest, guestSkipReason, named, withGuest, within } from "../../scripts/qemu/harness.ts";
import { dracutInitrd } from "../../scripts/qemu/images.ts";
import { vge } from "./_vge.ts";

const skip = guestSkipReason();
const TEST_TIMEOUT = 180_000;
const STEP = 90_000; // one wait in the log: a dracut boot under TCG is ~12 s, give CI room
const CALL = 30_000; // one request to a running agent
// The test root module's static busybox, in the initrd too: dracut's image has no wc or sha256sum.
const BB = "/usr/lib/vge-testroot/busybox";
// PIDs of live `sleep 100` processes, like `pgrep -fx 'sleep 100'` (not in the image, nor in busybox
// here). A killed but unreaped process (zombie) has an empty cmdline, so it does not count.
const SLEEPERS = `for d in /proc/[0-9]*; do cmd=$(tr '\\0' ' ' 2>/dev/null < "$d/cmdline"); [ "$cmd" = "sleep 100 " ] && echo "\${d#/proc/}"; done; true`;
const RELEASE = "/run/vsock-guest-exec/release";

function bootDracut(append: string[], fn: (g: Guest) => Promise<void>) {
  const found = findGuestDeps();
  if ("missing" in found) throw new Error(found.missing);
  return withGuest({ initrd: dracutInitrd(found.deps), append: ["root=vge-testroot", ...append] }, fn);
}

function sha256(b: Uint8Array): string {
  return new Bun.CryptoHasher("sha256").update(b).digest("hex");
}

test.skipIf(!!skip)(named("v2 in the dracut initrd (persistent): run, ENOENT, stdin, files, timeout kills the tree, ping, info", skip), async () => {
  await bootDracut(["rd.vge.mode=persistent", "rd.vge.retry=60", "rd.vge.hold=90"], async (g) => {
    const listener = await listen(`unix-listen:${g.portPath(1024)}`);
    try {
      await g.start();
      const guest = await within(listener.accept(), STEP, "the initrd's agent dialing in");

      // Exit status and both streams, apart.
      const r = await within(guest.run({ shell: "echo out; echo err >&2; exit 3" }), CALL, "run");
      const firstResultMs = g.elapsedMs();
      expect({ status: r.status, code: r.code, stdout: r.stdoutText, stderr: r.stderrText }).toEqual({ status: "exited", code: 3, stdout: "out\n", stderr: "err\n" });

      expect(guest.info.initrd).toBe(true);
      expect(guest.info.kernel).toBe(g.deps.kver);
      expect(guest.info.version).toBe(2);

      const missing = await within(guest.run(["vge-no-such-program"]), CALL, "run missing");
      expect({ status: missing.status, errno: missing.errno, exitStatus: missing.exitStatus }).toEqual({ status: "error", errno: "ENOENT", exitStatus: 127 });

      // stdin round trip, more than one window of credit (256 KiB).
      const input = crypto.getRandomValues(new Uint8Array(300_000));
      const wc = await within(guest.run([BB, "wc", "-c"], { input }), CALL, "wc -c");
      expect({ code: wc.code, stdout: wc.stdoutText.trim() }).toEqual({ code: 0, stdout: String(input.byteLength) });

      // putFile, then getFile: same bytes (and the guest's own sha256sum agrees), mode kept.
      const data = crypto.getRandomValues(new Uint8Array(700_000));
      const put = await within(guest.putFile("/run/vge-v2-put", data, { mode: 0o640 }), CALL, "putFile");
      expect(put.size).toBe(data.byteLength);
      const file = guest.getFile("/run/vge-v2-put");
      const back = await within(file.bytes(), CALL, "getFile");
      expect(await file.done).toEqual({ size: data.byteLength, mode: 0o640 });
      expect(sha256(back)).toBe(sha256(data));
      const sum = await within(guest.run([BB, "sha256sum", "/run/vge-v2-put"]), CALL, "sha256sum");
      expect(sum.stdoutText.split(" ")[0]).toBe(sha256(data));

      // A timeout kills the whole process group: the background sleep as well as the foreground one.
      const t = await within(guest.run(["sh", "-c", "sleep 100 & sleep 100"], { timeoutMs: 1000 }), CALL, "timeout run");
      expect({ status: t.status, signal: t.signal, exitStatus: t.exitStatus }).toEqual({ status: "timeout", signal: "SIGKILL", exitStatus: 124 });
      expect(t.durationMs).toBeLessThan(15_000);
      const left = await within(guest.run({ shell: SLEEPERS }), CALL, "looking for sleeps");
      expect({ code: left.code, stdout: left.stdoutText }).toEqual({ code: 0, stdout: "" });
      // The same look does find a live one (so the empty answer above means something).
      const control = await within(
        guest.run({ shell: `sleep 100 & c=$!; for i in 1 2 3 4 5 6 7 8 9 10; do out=$(${SLEEPERS}); [ -n "$out" ] && break; sleep 0.2; done; kill $c; echo "$out"; echo "started $c"` }),
        CALL,
        "looking for a live sleep",
      );
      const started = /started (\d+)/.exec(control.stdoutText)?.[1];
      expect(started).toBeDefined();
      expect(control.stdoutText.split("\n")).toContain(started!);

      const rtt = await within(guest.ping(), CALL, "ping");
      expect(rtt).toBeGreaterThan(0);

      // Still in the initrd: rd.vge.hold waits for our close.
      expect(g.saw("VGE-TESTROOT: real root reached")).toBe(false);
      guest.close();
      await guest.closed;
      let at = await g.waitFor("persistent: the initrd's session ended", STEP);
      at = await g.waitFor("VGE-TESTROOT: real root reached", STEP, at);
      await g.waitFor("VGE-TESTROOT: poweroff", STEP, at);
      console.error(`v2 persistent (dracut): first result after ${(firstResultMs / 1000).toFixed(1)} s of boot; ping ${rtt.toFixed(1)} ms`);
    } finally {
      await listener.close();
    }
  });
}, TEST_TIMEOUT);

test.skipIf(!!skip)(named("v2 in the dracut initrd (listen): `vge run fc:UDS:1024` dials in; the host releases the hold", skip), async () => {
  await bootDracut(["rd.vge.mode=listen", "rd.vge.allowcid=2,7", "rd.vge.hold=90"], async (g) => {
    await g.start();
    const addr = `fc:${g.uds}:1024`;
    // rd.vge.allowcid reached the agent.
    let at = await g.waitFor("listening on vsock port 1024 (accepting CID 2, 7)", STEP);
    const r = await vge(["run", "-q", "--wait", "30", addr, "--", "sh", "-c", "echo out; echo err >&2; exit 3"]);
    const firstResultMs = g.elapsedMs();
    expect(r).toEqual({ code: 3, stdout: "out\n", stderr: "err\n" });
    const info = await vge(["info", "-q", "--json", addr]);
    expect(info.code).toBe(0);
    expect(JSON.parse(info.stdout)).toMatchObject({ version: 2, initrd: true, kernel: g.deps.kver });

    // The listening agent never ends by itself: the hold lasts until the host creates the release file.
    at = await g.waitFor("listen: holding switch_root up to 90s, until the host creates /run/vsock-guest-exec/release", STEP, at);
    expect(g.saw("VGE-TESTROOT: real root reached")).toBe(false);
    const rel = await vge(["run", "-q", addr, "--shell", `: > ${RELEASE}`]);
    expect(rel).toEqual({ code: 0, stdout: "", stderr: "" });
    at = await g.waitFor(`listen: released by the host (${RELEASE})`, STEP, at);
    at = await g.waitFor("listen: stopping the initrd's agent", STEP, at);
    at = await g.waitFor("listen: the initrd's agent ended", STEP, at);
    at = await g.waitFor("VGE-TESTROOT: real root reached", STEP, at);
    await g.waitFor("VGE-TESTROOT: poweroff", STEP, at);
    console.error(`v2 listen (dracut, vge run): first result after ${(firstResultMs / 1000).toFixed(1)} s of boot`);
  });
}, TEST_TIMEOUT);
