// Port forwarding into a real guest: the agent listens on vsock port 1024 in the busybox initrd, busybox
// httpd serves on the guest's own 127.0.0.1:8080 (the guest has no network device at all), and
// `vge forward fc:UDS:1024 0:127.0.0.1:8080` on the host reaches it through vhost-device-vsock:
// 50 connections at once, then a 100 MiB file whose sha256 must match the guest's own sha256sum.
import { expect, test } from "bun:test";
import { connect as tcpConnect } from "node:net";
import { connect } from "../../src/host/index.ts";
import { REPO } from "../../scripts/qemu/deps.ts";
import { findGuestDeps, guestSkipReason, named, withGuest, within } from "../../scripts/qemu/harness.ts";
import { busyboxInitrd } from "../../scripts/qemu/images.ts";

const skip = guestSkipReason();
const MiB = 1024 * 1024;
const BIG = 100 * MiB;

/** One HTTP/1.0 GET over a fresh connection, half-closed after the request; the body's size and sha256. */
function get(port: number, path: string): Promise<{ status: string; bytes: number; sha: string; body: string }> {
  return new Promise((resolve, reject) => {
    const h = new Bun.CryptoHasher("sha256");
    let head = Buffer.alloc(0);
    let inBody = false;
    let bytes = 0;
    let body = "";
    const s = tcpConnect({ host: "127.0.0.1", port, allowHalfOpen: true }, () => s.end(`GET ${path} HTTP/1.0\r\nHost: guest\r\n\r\n`));
    s.on("data", (d: Buffer) => {
      if (!inBody) {
        head = Buffer.concat([head, d]);
        const at = head.indexOf("\r\n\r\n");
        if (at < 0) return;
        inBody = true;
        d = head.subarray(at + 4);
      }
      h.update(d);
      bytes += d.length;
      if (body.length < 100) body += d.toString("latin1");
    });
    s.on("end", () => resolve({ status: head.toString("latin1").split("\r\n")[0]!, bytes, sha: h.digest("hex"), body }));
    s.on("error", reject);
  });
}

test.skipIf(!!skip)(named("vge forward reaches busybox httpd inside the guest: 50 connections at once, 100 MiB intact", skip), async () => {
  const found = findGuestDeps();
  if ("missing" in found) throw new Error(found.missing);
  await withGuest({ initrd: busyboxInitrd(found.deps), append: ["vge_args=--listen,:1024"], memoryMiB: 1024 }, async (g) => {
    await g.start();
    await g.waitFor("listening on vsock port 1024", 90_000);
    const addr = `fc:${g.uds}:1024`;
    const guest = await within(connect(addr), 30_000, "connecting to the guest's agent");
    try {
      // The guest's loopback is down in a bare initramfs; httpd daemonizes and outlives this execution.
      const setup = await within(
        guest.run({ shell: `ip link set lo up && mkdir -p /tmp/www && echo "hello from the guest" > /tmp/www/index.html && head -c ${BIG} /dev/urandom > /tmp/www/big && sha256sum /tmp/www/big && httpd -p 127.0.0.1:8080 -h /tmp/www` }),
        120_000,
        "setting up httpd",
      );
      expect({ code: setup.code, stderr: setup.stderrText }).toEqual({ code: 0, stderr: "" });
      const guestSha = setup.stdoutText.split(" ")[0]!;

      const fwd = Bun.spawn(["timeout", "-k", "5", "200", process.execPath, "src/cli/vge.ts", "forward", addr, "0:127.0.0.1:8080"], {
        cwd: REPO,
        stdin: "ignore",
        stdout: "ignore",
        stderr: "pipe",
        env: { ...process.env, NO_COLOR: "1" },
      });
      let stderr = "";
      const port = await within(
        (async () => {
          const dec = new TextDecoder();
          for await (const c of fwd.stderr) {
            stderr += dec.decode(c, { stream: true });
            const m = /forwarding 127\.0\.0\.1:(\d+) → /.exec(stderr);
            if (m) return Number(m[1]);
          }
          throw new Error(`vge forward ended: ${stderr}`);
        })(),
        30_000,
        "vge forward announcing its port",
      );
      try {
        const t0 = performance.now();
        const pages = await within(Promise.all(Array.from({ length: 50 }, () => get(port, "/index.html"))), 120_000, "50 GETs");
        const manyMs = performance.now() - t0;
        for (const p of pages) expect({ status: p.status, body: p.body }).toEqual({ status: "HTTP/1.1 200 OK", body: "hello from the guest\n" });

        const t1 = performance.now();
        const big = await within(get(port, "/big"), 150_000, "the 100 MiB GET");
        const bigMs = performance.now() - t1;
        expect(big.status).toBe("HTTP/1.1 200 OK");
        expect(big.bytes).toBe(BIG);
        expect(big.sha).toBe(guestSha);
        expect(stderr).not.toContain("warning");
        console.error(`forward in a guest: 50 GETs in ${manyMs.toFixed(0)} ms; 100 MiB in ${(bigMs / 1000).toFixed(1)} s (${(BIG / MiB / (bigMs / 1000)).toFixed(1)} MiB/s)`);
      } finally {
        fwd.kill("SIGINT");
        await fwd.exited;
      }
      expect(fwd.exitCode).toBe(0);
    } finally {
      guest.close();
    }
  });
}, 420_000);
