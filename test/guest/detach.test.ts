// Detached executions in a real guest (PROTOCOL.md §5.1): the dracut initrd's agent listens on vsock port
// 1024 and every host is a separate `vge` process reaching it through vhost-device-vsock (fc:UDS:1024).
// A job that prints for about 20 s is started detached; a host process that follows it is killed with
// SIGKILL, connection and all; `vge ps` lists the job running; a new host attaches and receives every
// byte and the exit status; `vge ps` lists it after its end.
import { expect, test } from "bun:test";
import { spawn } from "bun";
import { REPO } from "../../scripts/qemu/deps.ts";
import { findGuestDeps, guestSkipReason, named, withGuest, within } from "../../scripts/qemu/harness.ts";
import { dracutInitrd } from "../../scripts/qemu/images.ts";

const skip = guestSkipReason();
const STEP = 90_000;
const LINES = 200;
// About 20 s: a line every 0.1 s. Plain sh: dracut's image has no seq.
const JOB = `i=1; while [ $i -le ${LINES} ]; do echo line-$i; sleep 0.1; i=$((i + 1)); done; echo done >&2; exit 3`;
const expected = Array.from({ length: LINES }, (_, i) => `line-${i + 1}\n`).join("");

/** vge itself (no wrapper: killing it must kill the host process), bounded by Bun's own timeout. */
function vgeProc(args: string[], timeoutS: number) {
  return spawn([process.execPath, "src/cli/vge.ts", ...args], {
    cwd: REPO,
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, NO_COLOR: "1" },
    timeout: timeoutS * 1000,
    killSignal: "SIGKILL",
  });
}

async function vge(args: string[], timeoutS = 60): Promise<{ code: number; stdout: string; stderr: string }> {
  const p = vgeProc(args, timeoutS);
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, stdout, stderr };
}

const psLine = (stdout: string) => stdout.split("\n").find((l) => /\sprov\s/.test(l)) ?? "";

test.skipIf(!!skip)(named("detach: a 20 s job survives its host being killed; a new host attaches, gets every byte and the status; ps lists it", skip), async () => {
  const found = findGuestDeps();
  if ("missing" in found) throw new Error(found.missing);
  await withGuest({ initrd: dracutInitrd(found.deps), append: ["root=vge-testroot", "rd.vge.mode=listen", "rd.vge.hold=170"] }, async (g) => {
    await g.start();
    const addr = `fc:${g.uds}:1024`;
    await g.waitFor("listening on vsock port 1024", STEP);

    const started = await vge(["run", "-q", "--wait", "30", "--detach", "prov", addr, "--", "sh", "-c", JOB]);
    expect(started).toEqual({ code: 0, stdout: "prov\n", stderr: "" });

    // 1. A host process follows the job, and is killed (SIGKILL: no goodbye) once it has seen some lines.
    const follower = vgeProc(["attach", "-q", addr, "prov"], 120);
    const reader = follower.stdout.getReader();
    let seen = "";
    await within(
      (async () => {
        while (seen.split("\n").length <= 20) seen += new TextDecoder().decode((await reader.read()).value ?? new Uint8Array());
      })(),
      STEP,
      "the first host's first 20 lines",
    );
    follower.kill("SIGKILL");
    await follower.exited;
    expect(follower.signalCode).toBe("SIGKILL");
    expect(expected.startsWith(seen.slice(0, seen.lastIndexOf("\n") + 1))).toBe(true);
    const killedAtLines = seen.split("\n").length - 1;

    // 2. The job runs on; ps lists it as running with nobody attached ("running*" while someone is): the
    // agent saw the killed host's connection go.
    let ps = "";
    for (const end = Date.now() + 30_000; Date.now() < end; await Bun.sleep(500)) {
      ps = psLine((await vge(["ps", "-q", addr])).stdout);
      if (/\srunning\s/.test(ps)) break;
    }
    expect(ps).toMatch(/^%\d+\s+prov\s+\d+\s+\S+ \S+\s+running\s/);
    const running = JSON.parse((await vge(["ps", "-q", "--json", addr])).stdout).find((j: { tag: string }) => j.tag === "prov");
    expect(running).toMatchObject({ state: "running", tag: "prov" });

    // 3. A new host attaches: everything from the first byte (1 MiB is kept), then live to the end, and
    // the exit status; what was printed while nobody was attached is there too.
    const att = await vge(["attach", "-q", addr, "prov"], 150);
    expect(att.stdout).toBe(expected);
    expect(att.stderr).toBe("done\n");
    expect(att.code).toBe(3);
    expect(killedAtLines).toBeLessThan(LINES / 2);

    // 4. ps lists it after its end, with its result.
    const after = await vge(["ps", "-q", addr]);
    expect(psLine(after.stdout)).toMatch(/exited 3|code 3|status 3/);
    const json = JSON.parse((await vge(["ps", "-q", "--json", addr])).stdout).find((j: { tag: string }) => j.tag === "prov");
    expect(json).toMatchObject({ state: "exited", exit: { status: "exited", code: 3 }, stdout: { total: expected.length, kept: expected.length } });
    console.error(`detach (dracut, listen): follower killed after ${killedAtLines} lines; the new host got all ${LINES} and status 3`);
  });
}, 240_000);
