// `bash scripts/guest.sh`, driven as a user would: start it, wait for its "ready" line, run the `vge run`
// command it printed (from another folder), then Ctrl-C (SIGINT). The QEMU and vhost-device-vsock
// processes it started must be gone when it has exited, and its guest folder removed.
import { expect, test } from "bun:test";
import { spawn } from "bun";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import { REPO } from "../../scripts/qemu/deps.ts";
import { guestSkipReason, named, within } from "../../scripts/qemu/harness.ts";

const skip = guestSkipReason();

/** PID -> [parent PID, comm] for every process, from /proc. */
function processes(): Map<number, [number, string]> {
  const out = new Map<number, [number, string]>();
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      // comm is in parentheses and may hold spaces; the parent PID is the 2nd field after it.
      const close = stat.lastIndexOf(")");
      const comm = stat.slice(stat.indexOf("(") + 1, close);
      out.set(Number(d), [Number(stat.slice(close + 2).split(" ")[1]), comm]);
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Descendants of `root` whose comm starts with one of `names`. */
function descendants(root: number, names: string[]): { pid: number; comm: string }[] {
  const all = processes();
  const isUnder = (pid: number): boolean => {
    for (let p = all.get(pid)?.[0]; p !== undefined && p > 1; p = all.get(p)?.[0]) if (p === root) return true;
    return false;
  };
  return [...all].filter(([pid, [, comm]]) => names.some((n) => comm.startsWith(n)) && isUnder(pid)).map(([pid, [, comm]]) => ({ pid, comm }));
}

function alive(pid: number, comm: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, "utf8").includes(`(${comm})`);
  } catch {
    return false;
  }
}

test.skipIf(!!skip)(named("scripts/guest.sh: ready line, the printed `vge run` works, Ctrl-C leaves no QEMU or backend behind", skip), async () => {
  const p = spawn(["bash", "scripts/guest.sh", "--minutes", "5"], {
    cwd: REPO,
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH}` },
  });
  let out = "";
  const reader = (async () => {
    for await (const chunk of p.stdout) out += new TextDecoder().decode(chunk);
  })();
  const errText = new Response(p.stderr).text();
  try {
    // The first printed command, once the guest is ready (the block follows the ready line).
    const runLine = /^ {2}(bun \S+\/src\/cli\/vge\.ts run (fc:\S+:1024) -- uname -a)$/m;
    const started = performance.now();
    while (!(/^guest: ready after/m.test(out) && runLine.test(out))) {
      if (p.exitCode !== null) throw new Error(`guest.sh exited ${p.exitCode} before "ready":\n${out}\n${await errText}`);
      if (performance.now() - started > 200_000) throw new Error(`no ready line within 200 s:\n${out}`);
      await Bun.sleep(200);
    }
    const [, command] = runLine.exec(out)!;
    const guestDir = /serial log: (\S+)\/serial\.log/.exec(out)?.[1];
    expect(guestDir).toBeDefined();

    // What it started: one QEMU and one backend (each under coreutils timeout).
    const started_ = descendants(p.pid, ["qemu-system", "vhost-device-vs"]);
    expect(started_.map((x) => x.comm.slice(0, 11)).sort()).toEqual(["qemu-system", "vhost-devic"]);
    const timeouts = descendants(p.pid, ["timeout"]);
    expect(timeouts.length).toBe(2);

    // The printed command, typed into a shell in another folder.
    const run = spawn(["timeout", "-k", "5", "60", "bash", "-c", command!], { cwd: "/tmp", stdout: "pipe", stderr: "pipe", env: { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH}` } });
    const [stdout, stderr, code] = await Promise.all([new Response(run.stdout).text(), new Response(run.stderr).text(), run.exited]);
    expect({ code, stderr }).toEqual({ code: 0, stderr: "" });
    expect(stdout).toMatch(/^Linux \S+ 6\.\S+-cloud-amd64 .* x86_64/);

    // Ctrl-C.
    const sent = performance.now();
    p.kill("SIGINT");
    const status = await within(p.exited, 30_000, "guest.sh ending after SIGINT");
    const stopMs = performance.now() - sent;
    await reader;
    expect(status).toBe(130);
    expect(out).toContain("guest: Ctrl-C: powering off");
    // Gone the moment guest.sh has exited: it waited for them (no orphan left to init).
    for (const x of [...started_, ...timeouts]) expect({ ...x, alive: alive(x.pid, x.comm) }).toEqual({ ...x, alive: false });
    expect(existsSync(guestDir!)).toBe(false);
    console.error(`guest.sh: ready, vge run answered, Ctrl-C -> all gone in ${(stopMs / 1000).toFixed(1)} s`);
  } finally {
    if (p.exitCode === null) p.kill("SIGTERM");
  }
}, 300_000);

// Bad input: one clear line and exit 2, before anything is built or booted (no guest needed).
test("scripts/guest.ts (what guest.sh runs): a bad option or value is refused in one line, exit 2", async () => {
  for (const [args, want] of [
    [["--minutes", "0"], "guest: error: --minutes 0: not a number of minutes in (0, 1440]"],
    [["--minutes", "soon"], "guest: error: --minutes soon: not a number of minutes in (0, 1440]"],
    [["--mode", "dial"], "guest: error: --mode dial: not listen or persistent"],
    [["--frobnicate"], "guest: error: Unknown option '--frobnicate'"],
  ] as const) {
    const p = spawn([process.execPath, "scripts/guest.ts", ...args], { cwd: REPO, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
    const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    expect({ code, stdout, lines: stderr.trim().split("\n").length }).toEqual({ code: 2, stdout: "", lines: 1 });
    expect(stderr).toStartWith(want);
  }
});
