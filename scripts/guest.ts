#!/usr/bin/env bun
// A guest to play with (`bash scripts/guest.sh`): boots the demo guest — Debian's cloud kernel under QEMU
// (TCG, -cpu max), our dracut initrd, real virtio-vsock behind vhost-device-vsock — keeps it up, prints
// the exact `vge` commands to try against it, and powers it off on Ctrl-C or when its time limit ends.
//
//   bun scripts/guest.ts [--minutes N] [--mode listen|persistent]
//
//   listen (default)  rd.vge.mode=listen: the agent listens on guest port 1024; each vge command dials
//                     in through the backend's CONNECT (address fc:UDS:1024).
//   persistent        rd.vge.mode=persistent rd.vge.reconnect=1: the agent dials host port 1024 and dials
//                     again after each host leaves; each vge command waits for it (unix-listen:UDS_1024).
// The guest stays in its initrd (rd.vge.hold = the time limit): a small world — sh, modprobe, sleep,
// kill, plus a static busybox at /usr/lib/vge-testroot/busybox. Creating /run/vsock-guest-exec/release
// lets it switch_root into the throw-away test root, which powers off.
import { parseArgs } from "node:util";
import { join } from "node:path";
import { connect, listen, type Guest as Agent } from "../src/host/index.ts";
import { REPO } from "./qemu/deps.ts";
import { findGuestDeps, withGuest, within } from "./qemu/harness.ts";
import { dracutInitrd } from "./qemu/images.ts";

const USAGE = "usage: bash scripts/guest.sh [--minutes N] [--mode listen|persistent]";
const say = (s: string) => console.log(`guest: ${s}`);
function die(why: string): never {
  console.error(`guest: error: ${why}`);
  process.exit(2);
}

let values: { minutes?: string; mode?: string; help?: boolean };
try {
  ({ values } = parseArgs({ options: { minutes: { type: "string" }, mode: { type: "string" }, help: { type: "boolean", short: "h" } }, strict: true }));
} catch (e) {
  die(`${(e as Error).message} (${USAGE})`);
}
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const minutes = Number(values.minutes ?? "30");
if (!(minutes > 0 && minutes <= 24 * 60)) die(`--minutes ${values.minutes}: not a number of minutes in (0, 1440]`);
const mode = values.mode ?? "listen";
if (mode !== "listen" && mode !== "persistent") die(`--mode ${mode}: not listen or persistent`);

const found = findGuestDeps();
if ("missing" in found) {
  console.error(`guest: error: ${found.missing}`);
  process.exit(1);
}
const limitMs = Math.round(minutes * 60_000);
// The hold only starts once the initrd has mounted the root: with the limit as its length, the time
// limit (counted from QEMU's start) always ends the guest first.
const holdS = Math.ceil(limitMs / 1000);
say("building the dracut initrd (cached by input hash)");
const initrd = dracutInitrd(found.deps);
const append = ["root=vge-testroot", `rd.vge.hold=${holdS}`, ...(mode === "listen"
  ? ["rd.vge.mode=listen"]
  : ["rd.vge.mode=persistent", "rd.vge.reconnect=1", `rd.vge.retry=${holdS}`])];

// What the user types: the CLI from this checkout, by absolute path, so it works from any folder.
const vge = `bun ${join(REPO, "src/cli/vge.ts")}`;

await withGuest({ initrd, append, timeoutMs: limitMs + 30_000 }, async (g) => {
  const address = mode === "listen" ? `fc:${g.uds}:1024` : `unix-listen:${g.portPath(1024)}`;
  await g.start();
  say(`QEMU started (TCG, -cpu max, ${mode} mode); serial log: ${g.serialPath}`);
  process.once("SIGINT", () => say("Ctrl-C: powering off"));

  // Ready means the agent answers, not just that QEMU runs.
  const agent: Agent = mode === "listen"
    ? await connect(address, { retryMs: 180_000 })
    : await (async () => {
      const l = await listen(address);
      try {
        return await within(l.accept(), 180_000, "the agent dialing in");
      } finally {
        await l.close();
      }
    })();
  const rtt = await agent.ping();
  await agent.close();
  say(`ready after ${(g.elapsedMs() / 1000).toFixed(1)} s: agent ${agent.info.agent}, Linux ${agent.info.kernel}, ping ${rtt.toFixed(1)} ms`);
  const q = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;
  console.log(`
Try (from any folder; each command opens its own session):
  ${vge} run ${address} -- uname -a
  ${vge} run ${address} --shell ${q("echo out; echo err >&2; exit 3")}; echo "exit $?"
  echo hello | ${vge} run ${address} -- cat
  ${vge} shell ${address}
  ${vge} cp ${address} ${join(REPO, "README.md")} :/run/README.md
  ${vge} cp ${address} :/proc/cpuinfo -
  ${vge} info ${address}
More programs: ${vge} run ${address} -- /usr/lib/vge-testroot/busybox ls -l /
The guest powers off in ${minutes} min, on Ctrl-C here, or after: ${vge} run ${address} --shell ${q(": > /run/vsock-guest-exec/release")}
`);

  const ended = await Promise.race([g.exited().then(() => "exited" as const), Bun.sleep(Math.max(0, limitMs - g.elapsedMs())).then(() => "limit" as const)]);
  say(ended === "limit" ? `time limit (${minutes} min) reached: powering off` : "the guest powered off");
});
say("QEMU and vhost-device-vsock are gone");
