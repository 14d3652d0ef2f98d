// The bench's C agent of the original's formats (bench/peers/legacy-agent.c) builds as the bench builds
// it (gcc -static -Os), is static (it runs in the busybox guest with nothing else), and does nothing
// outside a test guest: without LEGACY_AGENT_IN_GUEST=1 it says so in one line and exits 2 before it
// creates a socket. It dials vsock, so its formats are exercised only in the guest (bench/sections/guest.ts
// counts the lines its 1,000 persistent commands wrote).
import { expect, test } from "bun:test";
import { spawnSync } from "bun";
import { which } from "../../scripts/qemu/deps.ts";
import { legacyAgentBinary } from "../../bench/peers/legacy.ts";

const skip = which("gcc") ? undefined : "gcc not found (bench/deps.sh)";

test.skipIf(!!skip)("the bench's C agent: static, small, refuses to run outside a test guest", () => {
  const bin = legacyAgentBinary();
  const file = spawnSync(["file", "-b", bin]).stdout.toString();
  expect(file).toContain("statically linked");
  expect(Bun.file(bin).size).toBeLessThan(1024 * 1024);
  // The guard comes first: no env → no socket, no connect (this machine's vsock is not ours).
  const env = { ...process.env };
  delete env.LEGACY_AGENT_IN_GUEST;
  const r = spawnSync([bin, "2:1024", "persistent"], { env, stdout: "pipe", stderr: "pipe", timeout: 10_000 });
  expect(r.exitCode).toBe(2);
  expect(r.stdout.toString()).toBe("");
  expect(r.stderr.toString()).toBe("legacy-agent: runs only inside a test guest (set LEGACY_AGENT_IN_GUEST=1 there)\n");
});
