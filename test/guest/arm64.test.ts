// The arm64 agent (dist/vsock_guest_exec-linux-arm64) in a real arm64 guest: qemu-system-aarch64 -M virt
// -cpu max under TCG, Debian's arm64 cloud kernel, the busybox initramfs with Debian's arm64 busybox and
// glibc, real virtio-vsock (vhost-user-vsock-pci on the virt machine's PCIe bus, vhost-device-vsock behind
// it). An arm64 boot is slow (~15 s), so ONE boot runs the agent three times (busybox-init.sh's vge_argsN):
//   run 1: persistent, dials the host library's listen(): a v2 session (streams, exit, stdin, files);
//   run 2: persistent, dials again; the host speaks the original length-prefixed format;
//   run 3: --listen :1024; `vge run fc:UDS:1024` and `vge info` dial in through the backend's CONNECT.
import { expect, test } from "bun:test";
import { listen } from "../../src/host/index.ts";
import { findGuestDeps, guestSkipReason, legacyFrame, named, withGuest, within } from "../../scripts/qemu/harness.ts";
import { busyboxInitrd } from "../../scripts/qemu/images.ts";
import { vge } from "./_vge.ts";

const skip = guestSkipReason([], "aarch64");
// One wait: an arm64 TCG boot reaches /init after ~9 s on an idle machine; with the 2 cores at load
// average 13 the first result came after 105 s. Room for a busy CI, still bounded.
const STEP = 240_000;
const CALL = 30_000;

function sha256(b: Uint8Array): string {
  return new Bun.CryptoHasher("sha256").update(b).digest("hex");
}

test.skipIf(!!skip)(named("arm64 guest: v2 session, original persistent format, listen mode (one boot)", skip), async () => {
  const found = findGuestDeps("aarch64");
  if ("missing" in found) throw new Error(found.missing);
  const id = crypto.randomUUID().slice(0, 8);
  const dial = "--retry,90,2:1024,persistent";
  const append = ["quiet", "vge_runs=3", `vge_args1=${dial}`, `vge_args2=${dial}`, "vge_args3=--listen,:1024,persistent"];
  await withGuest({ initrd: busyboxInitrd(found.deps), append, deps: found.deps, timeoutMs: 420_000 }, async (g) => {
    // Run 1: protocol v2 through the host library.
    const listener = await listen(`unix-listen:${g.portPath(1024)}`);
    let firstResultMs: number;
    try {
      await g.start();
      const guest = await within(listener.accept(), STEP, "the arm64 agent dialing in");
      const r = await within(guest.run({ shell: "echo out; echo err >&2; exit 3" }), CALL, "run");
      firstResultMs = g.elapsedMs();
      expect({ status: r.status, code: r.code, stdout: r.stdoutText, stderr: r.stderrText }).toEqual({ status: "exited", code: 3, stdout: "out\n", stderr: "err\n" });
      // It really is the arm64 build on an arm64 kernel.
      const uname = await within(guest.run(["uname", "-m", "-r"]), CALL, "uname");
      expect(uname.stdoutText.trim()).toBe(`${g.deps.kver} aarch64`);
      expect(guest.info.kernel).toBe(g.deps.kver);
      expect(guest.info.version).toBe(2);

      // stdin, more than one credit window (256 KiB).
      const input = crypto.getRandomValues(new Uint8Array(300_000));
      const wc = await within(guest.run(["wc", "-c"], { input }), CALL, "wc -c");
      expect({ code: wc.code, stdout: wc.stdoutText.trim() }).toEqual({ code: 0, stdout: String(input.byteLength) });

      // A file round trip: same bytes both ways, the guest's own sha256sum agrees, mode kept.
      const data = crypto.getRandomValues(new Uint8Array(500_000));
      const put = await within(guest.putFile("/tmp/vge-arm64", data, { mode: 0o640 }), CALL, "putFile");
      expect(put.size).toBe(data.byteLength);
      const file = guest.getFile("/tmp/vge-arm64");
      const back = await within(file.bytes(), CALL, "getFile");
      expect(await file.done).toEqual({ size: data.byteLength, mode: 0o640 });
      expect(sha256(back)).toBe(sha256(data));
      const sum = await within(guest.run(["sha256sum", "/tmp/vge-arm64"]), CALL, "sha256sum");
      expect(sum.stdoutText.split(" ")[0]).toBe(sha256(data));

      guest.close();
      await guest.closed;
    } finally {
      await listener.close();
    }
    let at = await g.waitFor("VGE-INIT: agent exited 0 run=1", STEP);

    // Run 2: the original persistent format (2-byte LE length + command), several frames in one write.
    const host = await g.listen(1024);
    const conn = await host.accept(STEP);
    const frames = [`echo VGE-T-1-${id}`, `sleep 0.3; echo VGE-T-2-${id}`, "false", `echo VGE-T-3-${id}`];
    await conn.write(Buffer.concat(frames.map(legacyFrame)));
    at = await g.waitFor(`VGE-T-1-${id}`, STEP, at);
    at = await g.waitFor(`VGE-T-2-${id}`, STEP, at);
    at = await g.waitFor(`VGE-T-3-${id}`, STEP, at);
    conn.end();
    await conn.closed;
    at = await g.waitFor("VGE-INIT: agent exited 0 run=2", STEP, at);

    // Run 3: listen mode, reached by the CLI through the backend (CONNECT 1024).
    at = await g.waitFor("VGE-INIT: agent start run=3", STEP, at);
    const addr = `fc:${g.uds}:1024`;
    const run = await vge(["run", "-q", "--wait", "60", addr, "--", "sh", "-c", "echo out; echo err >&2; exit 3"], 90);
    expect(run).toEqual({ code: 3, stdout: "out\n", stderr: "err\n" });
    const info = await vge(["info", "-q", "--json", addr]);
    expect(info.code).toBe(0);
    expect(JSON.parse(info.stdout)).toMatchObject({ version: 2, kernel: g.deps.kver });
    // The listening agent serves hosts one after another and never ends by itself.
    expect(g.saw("run=3 uptime")).toBe(false);
    console.error(`arm64 guest: first v2 result ${(firstResultMs / 1000).toFixed(1)} s after QEMU's start; all three runs done at ${(g.elapsedMs() / 1000).toFixed(1)} s`);
  });
}, 480_000);
