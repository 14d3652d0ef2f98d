// The Python host package (python/, installed into the venv of scripts/python-deps.sh) driving a real
// guest: the dracut initrd's agent listens on vsock port 1024; Python reaches it through
// vhost-device-vsock's Unix socket with `CONNECT 1024` (fc:UDS:1024), as a Python host next to
// Firecracker or Cloud Hypervisor would.
import { expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { findGuestDeps, guestSkipReason, named, withGuest } from "../../scripts/qemu/harness.ts";
import { dracutInitrd } from "../../scripts/qemu/images.ts";

const REPO = join(import.meta.dir, "../..");
const PY = join(process.env.VGE_PY_VENV ?? join(REPO, ".cache/py"), "bin/python");
const skip = guestSkipReason() ?? (existsSync(PY) || process.env.VGE_REQUIRE_GUEST ? undefined : "no Python venv (scripts/python-deps.sh)");
const RELEASE = "/run/vsock-guest-exec/release";

test.skipIf(!!skip)(named("Python host in a real guest (dracut, listen, fc:): run, stdin, files, timeout, ping", skip), async () => {
  const found = findGuestDeps();
  if ("missing" in found) throw new Error(found.missing);
  await withGuest({ initrd: dracutInitrd(found.deps), append: ["root=vge-testroot", "rd.vge.mode=listen", "rd.vge.hold=90"] }, async (g) => {
    await g.start();
    const proc = Bun.spawn([PY, join(import.meta.dir, "_python_guest.py"), `fc:${g.uds}:1024`, RELEASE], { cwd: "/", stdout: "pipe", stderr: "pipe", timeout: 150_000, killSignal: "SIGKILL" });
    const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    if (code !== 0) throw new Error(`python exited ${code}: ${err}`);
    const rep = JSON.parse(out);
    expect(rep.info).toEqual({ initrd: true, kernel: g.deps.kver, version: 2 });
    expect(rep.run).toEqual([3, "out\n", "err\n"]);
    expect(rep.wc).toBe("300000");
    expect({ file: rep.file, sum: rep.sum }).toEqual({ file: true, sum: true });
    expect(rep.timeout).toEqual(["timeout", 124]);
    expect(rep.missing).toBe("ENOENT");
    expect(rep.ping).toBe(true);
    await g.waitFor("VGE-TESTROOT: real root reached", 90_000);
  });
}, 240_000);
