// The boot-time shell code must pass shellcheck: dracut hooks as POSIX sh (they may run under dash or
// busybox), module-setup.sh and the build scripts as bash.
import { expect, test } from "bun:test";
import { spawnSync } from "bun";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { REPO, which } from "../../scripts/qemu/deps.ts";

const shellcheck = which("shellcheck");
const shFiles = (dir: string, re: RegExp) =>
  readdirSync(join(REPO, dir)).filter((f) => re.test(f)).map((f) => join(REPO, dir, f));

const sets = [
  {
    name: "hooks and inits (POSIX sh)",
    shell: "sh",
    paths: [
      ...shFiles("initrd/50vsock-guest-exec", /^vge-.*\.sh$/),
      ...shFiles("scripts/qemu/59vge-testroot", /^testroot-.*\.sh$/),
      join(REPO, "scripts/qemu/busybox-init.sh"),
    ],
  },
  {
    name: "module-setup.sh and build scripts (bash)",
    shell: "bash",
    paths: [
      join(REPO, "initrd/50vsock-guest-exec/module-setup.sh"),
      join(REPO, "scripts/qemu/59vge-testroot/module-setup.sh"),
      join(REPO, "scripts/qemu/58vge-unit/module-setup.sh"),
      join(REPO, "scripts/qemu/busybox-initrd.sh"),
      join(REPO, "scripts/qemu/testroot-disk.sh"),
      ...["guest-deps.sh", "build-initrd.sh", "demo.sh", "guest.sh"].map((f) => join(REPO, "scripts", f)),
    ],
  },
];

for (const s of sets) {
  test.skipIf(!shellcheck)(`shellcheck: ${s.name}${shellcheck ? "" : " (skipped: shellcheck not installed, run scripts/guest-deps.sh)"}`, () => {
    expect(s.paths.length).toBeGreaterThan(0);
    const r = spawnSync([shellcheck!, "-x", "-s", s.shell, ...s.paths], { cwd: REPO, stdout: "pipe", stderr: "pipe" });
    expect(`${r.stdout}${r.stderr}`).toBe("");
    expect(r.exitCode).toBe(0);
  });
}
