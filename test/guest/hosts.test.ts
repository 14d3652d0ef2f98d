// The Go module and the Python package (as installed: scripts/python-deps.sh) driving one real guest: the
// dracut initrd's agent listens on vsock port 1024 and each host reaches it through vhost-device-vsock's
// Unix socket with `CONNECT 1024` (fc:UDS:1024), as a host next to Firecracker or Cloud Hypervisor would.
// One boot for both; the last one releases the initrd's hold.
import { expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findGuestDeps, guestSkipReason, named, withGuest } from "../../scripts/qemu/harness.ts";
import { dracutInitrd } from "../../scripts/qemu/images.ts";

const REPO = join(import.meta.dir, "../..");
const PY = join(process.env.VGE_PY_VENV ?? join(REPO, ".cache/py"), "bin/python");
const GO = ["/usr/local/go/bin/go", "/usr/lib/go/bin/go"].find(existsSync) ?? "go";
const skip = guestSkipReason() ?? (existsSync(PY) || process.env.VGE_REQUIRE_GUEST ? undefined : "no Python venv (scripts/python-deps.sh)");
const RELEASE = "/run/vsock-guest-exec/release";

async function report(argv: string[], cwd: string): Promise<Record<string, unknown>> {
  const p = Bun.spawn(argv, { cwd, stdout: "pipe", stderr: "pipe", timeout: 150_000, killSignal: "SIGKILL" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  if (code !== 0) throw new Error(`${argv[0]} exited ${code}: ${err}`);
  return JSON.parse(out);
}

test.skipIf(!!skip)(named("Go and Python hosts in a real guest (dracut, listen, fc:): run, stdin, files, timeout, ping", skip), async () => {
  const found = findGuestDeps();
  if ("missing" in found) throw new Error(found.missing);
  const bin = mkdtempSync(join(tmpdir(), "vge-guestcheck-"));
  try {
    // Built before the boot: a cold Go build cache takes tens of seconds.
    const build = Bun.spawnSync([GO, "build", "-o", join(bin, "guestcheck"), "./internal/guestcheck"], { cwd: join(REPO, "go"), stderr: "pipe", timeout: 240_000 });
    if (build.exitCode !== 0) throw new Error(`go build: ${build.stderr.toString()}`);
    await withGuest({ initrd: dracutInitrd(found.deps), append: ["root=vge-testroot", "rd.vge.mode=listen", "rd.vge.hold=150"] }, async (g) => {
      await g.start();
      const addr = `fc:${g.uds}:1024`;
      const py = await report([PY, join(import.meta.dir, "_python_guest.py"), addr], "/");
      const go = await report([join(bin, "guestcheck"), addr, RELEASE], "/");
      for (const [who, rep] of [["python", py], ["go", go]] as const) {
        expect({ who, ...rep }).toMatchObject({
          who,
          info: { initrd: true, kernel: g.deps.kver, version: 2 },
          run: [3, "out\n", "err\n"],
          wc: "300000",
          file: true,
          sum: true,
          timeout: ["timeout", 124],
          ping: true,
        });
      }
      expect(py.missing).toBe("ENOENT");
      expect(go.missing).toBe(true);
      await g.waitFor("VGE-TESTROOT: real root reached", 90_000);
    });
  } finally {
    rmSync(bin, { recursive: true, force: true });
  }
}, 420_000);
