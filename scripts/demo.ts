#!/usr/bin/env bun
// The demo (`bun run demo`): boots a TCG guest whose agent listens on vsock port 1024, then drives it
// from the host with the `vge` CLI through vhost-device-vsock's Unix socket (Firecracker-style
// `CONNECT 1024`). Nothing on this machine opens an AF_VSOCK socket; all vsock traffic is in the guest.
// Needs scripts/guest-deps.sh and `bun run build` (scripts/demo.sh does both when something is missing).
import { spawnSync } from "bun";
import { join } from "node:path";
import { findGuestDeps, withGuest } from "../test/guest/harness.ts";
import { busyboxInitrd } from "../test/guest/images.ts";

const REPO = join(import.meta.dir, "..");
const found = findGuestDeps();
if ("missing" in found) {
  console.error(`demo: ${found.missing}`);
  process.exit(1);
}

function vge(args: string[], input?: string): number {
  console.log(`\n$ vge ${args.join(" ")}${input === undefined ? "" : "   (stdin: piped)"}`);
  const r = spawnSync(["bun", join(REPO, "src/cli/vge.ts"), ...args], {
    stdin: input === undefined ? "ignore" : Buffer.from(input),
    stdout: "inherit",
    stderr: "inherit",
    timeout: 120_000,
  });
  console.log(`[exit status ${r.exitCode}]`);
  return r.exitCode ?? -1;
}

const initrd = busyboxInitrd(found.deps);
const status = await withGuest({ initrd, append: ["vge_args=--listen,:1024"], timeoutMs: 300_000 }, async (g) => {
  console.log(`demo: booting the guest (TCG, ~5 s); serial log: ${g.serialPath}`);
  await g.start();
  await g.waitFor("VGE-INIT: agent start", 120_000);
  const at = `fc:${g.uds}:1024`;
  const codes = [
    // --wait: the agent takes a moment to start listening; vge retries the CONNECT meanwhile.
    vge(["run", at, "--wait", "60", "--", "uname", "-sr"]),
    vge(["run", at, "--shell", "echo to stdout; echo to stderr >&2; exit 3"]) === 3 ? 0 : 1,
    vge(["run", at, "--", "wc", "-c"], "twelve bytes"),
    vge(["run", at, "--json", "--shell", "cat /proc/uptime"]),
  ];
  console.log(`\ndemo: guest console (agent lines):\n${g.serial().split("\n").filter((l) => l.startsWith("vsock_guest_exec") || l.startsWith("VGE-")).join("\n")}`);
  return codes.every((c) => c === 0) ? 0 : 1;
});
console.log(status === 0 ? "\ndemo: done" : "\ndemo: something did not go as shown above");
process.exit(status);
