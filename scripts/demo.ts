#!/usr/bin/env bun
// The demo (`bash scripts/demo.sh`): boots Debian's cloud kernel under QEMU with an initrd built by our
// dracut module (rd.vge.mode=persistent), and drives the agent from the host with the host library over
// real virtio-vsock. The host side is vhost-device-vsock's Unix socket `UDS_1024`, exactly what
// Firecracker would give; nothing on this machine opens an AF_VSOCK socket.
//
// Prints each command's output and exit status, and the time from QEMU's start to the first result.
import { createHash } from "node:crypto";
import { listen, type Guest as Agent, type RunResult } from "../src/host/index.ts";
import { findGuestDeps, withGuest } from "./qemu/harness.ts";
import { dracutInitrd } from "./qemu/images.ts";

const found = findGuestDeps();
if ("missing" in found) {
  console.error(`demo: ${found.missing} (scripts/demo.sh installs it)`);
  process.exit(1);
}
const say = (s: string) => console.log(`demo: ${s}`);
const secs = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

function show(title: string, r: RunResult): void {
  console.log(`\n$ ${title}`);
  for (const [name, text] of [["stdout", r.stdoutText], ["stderr", r.stderrText]] as const)
    for (const line of text.split("\n").filter(Boolean)) console.log(`  ${name}| ${line}`);
  const why = r.status === "exited" ? `exit ${r.code}` : r.status === "error" ? `failed to start: ${r.errno} (${r.message})` : `${r.status}: ${r.signal}`;
  console.log(`  => ${why}; shell status ${r.exitStatus}; ${r.durationMs.toFixed(0)} ms`);
}

say("building the dracut initrd (cached by input hash)");
const initrd = dracutInitrd(found.deps);

const ok = await withGuest(
  { initrd, append: ["root=vge-testroot", "rd.vge.mode=persistent", "rd.vge.retry=120", "rd.vge.hold=120"], timeoutMs: 300_000 },
  async (g) => {
    // rd.vge.hold: switch_root waits (up to 120 s) for the host to end the initrd's session.
    // The host listens first: a guest's connect to host port 1024 arrives on UDS_1024.
    const listener = await listen(`unix-listen:${g.portPath(1024)}`);
    await g.start();
    say(`QEMU started (TCG, -cpu max, virtio-vsock via vhost-user); serial log: ${g.serialPath}`);
    const iter = listener[Symbol.asyncIterator]();
    const next = await Promise.race([iter.next(), Bun.sleep(180_000).then(() => null)]);
    if (!next || next.done) throw new Error("no agent dialed in within 180 s; see the serial log");
    const agent: Agent = next.value;
    const i = agent.info;
    say(`agent ${i.agent} connected after ${secs(g.elapsedMs())}: ${i.hostname}, Linux ${i.kernel}, ${i.arch}, ${i.initrd ? "running in the initrd" : "running in the real root"}`);

    const first = await agent.run(["uname", "-sr"]);
    const firstAt = g.elapsedMs();
    show("uname -sr", first);
    show("sh -c 'echo out; echo err >&2; exit 3'", await agent.run(["sh", "-c", "echo out; echo err >&2; exit 3"]));
    show("cat   (stdin from the host, then end of input)", await agent.run(["cat"], { input: "hello from the host\n" }));
    show("no-such-program", await agent.run(["no-such-program"]));
    show("sh -c 'sleep 60 & sleep 60'   (timeout 1 s: the whole group is killed)", await agent.run({ shell: "sleep 60 & sleep 60" }, { timeoutMs: 1000 }));
    // A minimal initrd has no pgrep: look through /proc with shell built-ins.
    const sleepers = 'n=0; for c in /proc/[0-9]*/comm; do { read -r x < "$c"; } 2>/dev/null && [ "$x" = sleep ] && n=$((n+1)); done; echo "$n sleep processes left"';
    show("count sleep processes in /proc", await agent.run({ shell: sleepers }));

    const data = crypto.getRandomValues(new Uint8Array(256 * 1024));
    await agent.putFile("/run/demo.bin", data, { mode: 0o600 });
    const back = await agent.getFile("/run/demo.bin").bytes();
    const same = createHash("sha256").update(data).digest("hex") === createHash("sha256").update(back).digest("hex");
    console.log(`\n$ put 256 KiB to /run/demo.bin, get it back\n  => ${same ? "identical (sha256)" : "DIFFERENT"}`);
    show("ls -l /run/demo.bin", await agent.run(["ls", "-l", "/run/demo.bin"]));
    console.log(`\nping: ${(await agent.ping()).toFixed(2)} ms round trip`);

    // Closing the session lets the initrd go on: switch_root into the test root, which powers off.
    await agent.close();
    await listener.close();
    await g.waitFor("VGE-TESTROOT: poweroff", 120_000);
    console.log(`\ndemo: QEMU start -> first command result: ${secs(firstAt)}`);
    return first.code === 0 && same;
  },
);
say(ok ? "done" : "something did not go as shown above");
process.exit(ok ? 0 : 1);
