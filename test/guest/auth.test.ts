// Authentication in a real guest (PROTOCOL.md §11): the busybox initrd carries a token file, the agent
// listens with --token-file, and hosts reach it only through vhost-device-vsock's CONNECT. Refusals are
// checked by markers that a command which ran would have written to the guest console (the serial log).
// The token must appear neither in the serial log nor in any /proc/*/cmdline inside the guest.
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { connect, GuestError } from "../../src/host/index.ts";
import { MAGIC, T, encodeJson } from "../../src/protocol/v2/frame.ts";
import { findGuestDeps, guestSkipReason, named, withGuest, within } from "../../scripts/qemu/harness.ts";
import { busyboxInitrd, dracutInitrd } from "../../scripts/qemu/images.ts";

const skip = guestSkipReason();
// A test secret (test/guest/auth-test.token), fixed so that the image is cached; nothing else trusts it.
const TOKEN_FILE = join(import.meta.dir, "auth-test.token");
const TOKEN = readFileSync(TOKEN_FILE, "utf8").trimEnd();
const WRONG = "not-the-guest-token-but-long-enough";
const STEP = 90_000;
const CALL = 30_000;

async function refused(p: Promise<unknown>): Promise<GuestError> {
  try {
    const g = await p;
    (g as { close?: () => void }).close?.();
  } catch (e) {
    return e as GuestError;
  }
  throw new Error("expected the connection to be refused");
}

test.skipIf(!!skip)(named("auth: hosts and agents without the token are refused before anything runs; the token never shows", skip), async () => {
  const found = findGuestDeps();
  if ("missing" in found) throw new Error(found.missing);
  const initrd = busyboxInitrd(found.deps, [{ src: TOKEN_FILE, dest: "/etc/vge.token" }], "busybox-token");
  const id = crypto.randomUUID().slice(0, 8);
  const mark = (what: string) => `VGE-T-auth-${what}-${id}`;
  const toConsole = (what: string) => ({ shell: `echo ${mark(what)} > /dev/console` });

  await withGuest({ initrd, append: ["vge_args=--listen,--verbose,--token-file,/etc/vge.token,:1024"] }, async (g) => {
    await g.start();
    const addr = `fc:${g.uds}:1024`;
    const hostToken = TOKEN_FILE;

    // The first successful connection also tells us the agent is up (the library retries until then).
    const guest = await within(connect(addr, { tokenFile: hostToken, retryMs: STEP }), STEP, "the authenticated hello");
    expect(guest.authenticated).toBe(true);
    expect(guest.info.initrd).toBe(true);
    expect(guest.info.kernel).toBe(g.deps.kver);

    // A host without the token, through the library: EAUTH.
    const noToken = await refused(connect(addr));
    expect(noToken.code).toBe("EAUTH");
    // With a wrong token: the library refuses the agent's proof.
    const wrong = await refused(connect(addr, { token: WRONG }));
    expect(wrong.code).toBe("EAUTH");
    // A raw host without the token that pipelines an EXEC right after its HELLO: ERROR EAUTH, closed.
    const raw = await g.connect(1024, CALL);
    await raw.write(MAGIC);
    await raw.write(encodeJson(T.HELLO, 0, { versions: [2] }));
    await raw.write(encodeJson(T.EXEC, 1, toConsole("raw-noauth"))).catch(() => {});
    await within(raw.closed, CALL, "the agent closing the unauthenticated connection");
    const got = raw.received();
    expect(got.includes(Buffer.from('"EAUTH"'))).toBe(true);
    expect(got.includes(Buffer.from("hostname"))).toBe(false);

    // The right token runs commands, and marks the console so we know the console check is live.
    const ok = await within(guest.run(toConsole("authed")), CALL, "an authenticated run");
    expect(ok.code).toBe(0);
    await g.waitFor(mark("authed"), 10_000);

    // An agent without a token (started by the authenticated host on port 1025): the host with the
    // token refuses it and sends no request.
    const bg = await within(guest.run({ shell: "setsid /usr/bin/vsock_guest_exec --listen :1025 > /dev/console 2>&1 < /dev/null & echo started" }), CALL, "starting a second agent");
    expect(bg.stdoutText).toBe("started\n");
    await g.waitFor("listening on vsock port 1025", 30_000);
    const plain = await refused(connect(`fc:${g.uds}:1025`, { token: TOKEN }));
    expect(plain.code).toBe("EAUTH");
    expect(plain.message).toContain("does not authenticate");

    // Nothing the refused hosts asked for ran.
    expect(g.serial()).not.toContain(mark("raw-noauth"));

    // No /proc/*/cmdline in the guest holds the token (the agent's holds only the path), nor does the
    // kernel command line; and the serial log never showed it.
    const cmdlines = await within(guest.run({ shell: "for d in /proc/[0-9]*; do tr '\\0' ' ' < $d/cmdline 2>/dev/null; echo; done; cat /proc/cmdline" }), CALL, "reading cmdlines");
    expect(cmdlines.stdoutText).toContain("--token-file /etc/vge.token");
    expect(cmdlines.stdoutText).not.toContain(TOKEN);
    guest.close();
    await Bun.sleep(500);
    const serial = g.serial();
    expect(serial).toContain("requires authentication");
    expect(serial).not.toContain(TOKEN);
  });
}, 180_000);

test.skipIf(!!skip)(named("auth: rd.vge.token_file and rd.vge.handshake_timeout in the dracut initrd (listen): only the token's holder runs, a silent host is cut off, the hold is released", skip), async () => {
  const found = findGuestDeps();
  if ("missing" in found) throw new Error(found.missing);
  const initrd = dracutInitrd(found.deps, [{ src: TOKEN_FILE, dest: "/etc/vge.token" }], "dracut-token");
  const append = ["root=vge-testroot", "rd.vge.mode=listen", "rd.vge.token_file=/etc/vge.token", "rd.vge.handshake_timeout=4", "rd.vge.hold=90"];
  await withGuest({ initrd, append }, async (g) => {
    await g.start();
    const addr = `fc:${g.uds}:1024`;
    let at = await g.waitFor("hosts must prove they hold the token in /etc/vge.token", STEP);
    const noToken = await refused(connect(addr, { retryMs: 30_000 }));
    expect(noToken.code).toBe("EAUTH");
    const guest = await within(connect(addr, { tokenFile: TOKEN_FILE, retryMs: 30_000 }), STEP, "the authenticated hello");
    try {
      expect(guest.info.initrd).toBe(true);
      // First, before the boot reaches the hold: the cleanup hook removes agent.pid before it holds.
      const args = await within(guest.run({ shell: "cat /proc/cmdline; tr '\\0' ' ' < /proc/$(cat /run/vsock-guest-exec/agent.pid)/cmdline" }), CALL, "reading cmdlines");
      expect(args.stdoutText).toContain("rd.vge.token_file=/etc/vge.token");
      expect(args.stdoutText).toContain("--token-file /etc/vge.token --handshake-timeout 4");
      expect(args.stdoutText).not.toContain(TOKEN);
      // A host that connects and sends nothing holds a connection only until the kernel argument's deadline.
      const silent = await g.connect(1024, CALL);
      const t0 = performance.now();
      await within(silent.closed, CALL, "the agent closing a silent connection");
      const heldMs = performance.now() - t0;
      expect(heldMs).toBeGreaterThan(3_500);
      expect(heldMs).toBeLessThan(15_000);
      expect(silent.received().includes(Buffer.from('"ETIMEDOUT"'))).toBe(true);
      const rel = await within(guest.run({ shell: ": > /run/vsock-guest-exec/release" }), CALL, "release");
      expect(rel.code).toBe(0);
    } finally {
      guest.close();
    }
    at = await g.waitFor("listen: the initrd's agent ended", STEP, at);
    await g.waitFor("VGE-TESTROOT: poweroff", STEP, at);
    expect(g.serial()).toContain("requires authentication");
    expect(g.serial()).not.toContain(TOKEN);
  });
}, 240_000);
