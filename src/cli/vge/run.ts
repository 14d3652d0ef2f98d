// `vge run ADDRESS [options] -- PROGRAM [ARGS...]` / `--shell "CMD"`: one command, its output streamed,
// its status becoming vge's.
import { defineCommand } from "citty";
import { UsageError, repeatedValues } from "../../common/argv.ts";
import { MAX_KEEP, TAG } from "../../protocol/v2/messages.ts";
import { GuestError, printableJson, shellStatus, type Command, type ExecOptions, type ExitResult, type Guest } from "../../host/index.ts";
import { address, addressArg, commonArgs, tokenArg, envVars, execArgs, seconds, waitArg } from "./_args.ts";
import { openGuest } from "./_guest.ts";
import { EXIT } from "./_exit.ts";
import { vgeLog, type Log } from "./_log.ts";
import { forwardSignals, pumpIn, pumpOut, writeAll } from "./_stdio.ts";
import { attachTerminal, localPty } from "./_tty.ts";
import { checkStdin, stdinIsTTY } from "./_stdin.ts";
import { limitArgs, parseLimits } from "./_limits.ts";

export const runArgs = {
  ...addressArg,
  command: { type: "positional", required: false, valueHint: "-- PROGRAM [ARGS...]", description: "What to run (or --shell CMD)" },
  shell: { type: "string", alias: "c", valueHint: "CMD", description: "Run CMD with /bin/sh -c instead of a program" },
  ...execArgs,
  timeout: { type: "string", valueHint: "SECONDS", description: "Kill the command's process group after this long (status 124)" },
  "kill-signal": { type: "string", valueHint: "SIGNAL", description: "Signal for --timeout (default SIGKILL)" },
  ...limitArgs,
  tty: { type: "boolean", alias: "t", description: "Run on a pseudo-terminal (raw mode here, window size follows)" },
  merge: { type: "boolean", description: "Send stderr to stdout, in write order" },
  stdin: { type: "boolean", default: true, description: "Pass stdin through (when it is a pipe or file)", negativeDescription: "Give the command a closed stdin (default when stdin is a terminal without -t)" },
  json: { type: "boolean", description: "Collect output; print {status, code, signal, stdout, stderr, durationMs, usage, oom} as JSON" },
  detach: { type: "string", valueHint: "TAG", description: "Start it detached under TAG: print the tag and return at once; it survives vge (see vge attach, ps, kill)" },
  keep: { type: "string", valueHint: "BYTES", description: "With --detach: output kept per stream for a later attach, e.g. 4M (default 1M, at most 64M)" },
  "open-stdin": { type: "boolean", description: "With --detach: leave the job's stdin open (empty) for a later vge attach --stdin, instead of closed" },
  ...waitArg,
  ...tokenArg, ...commonArgs,
} as const;

export const RUN_NOTES = `
EXAMPLES
  vge run unix-listen:/tmp/vm.sock -- sh -c 'echo out; echo err >&2; exit 3'
  vge run fc:/run/fc/v.sock:1024 --timeout 60 -- make -j4
  tar c src | vge run vsock:3:1024 -- tar x -C /work
  vge run unix:/run/agent.sock --json --shell 'uname -a'
  vge run vsock:3:1024 --memory 256M --pids 64 --cpus 0.5 -- ./build.sh   # agent started with --cgroup DIR
  vge run --detach provision fc:/run/fc/v.sock:1024 -- /srv/provision.sh   # then: vge attach ... provision
  vge run --detach db --open-stdin fc:/run/fc/v.sock:1024 -- psql   # later: vge attach ... db --stdin < q.sql
`;

/** `--keep 4M` → bytes; K, M as powers of 1024. */
function keepBytes(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const m = /^(\d+)([KMkm]?)$/.exec(text);
  if (!m) throw new UsageError(`--keep must be a byte count like 65536, 512K or 4M, got "${text}"`);
  const n = Number(m[1]) * (m[2] ? 1024 ** ("kKmM".indexOf(m[2]) < 2 ? 1 : 2) : 1);
  if (n > MAX_KEEP) throw new UsageError(`--keep may be at most 64M, got "${text}"`);
  return n;
}

/** --detach: start the command, say its tag, leave it running; the closing connection detaches it. */
async function detached(guest: Guest, cmd: Command, o: ExecOptions, tag: string, keep: number | undefined, openStdin: boolean, log: Log): Promise<number> {
  // An open stdin that nobody writes: the job reads nothing until a follower's --stdin, whose end closes it.
  const proc = guest.exec(cmd, { ...o, stdin: openStdin ? "pipe" : "closed", detach: { tag, ...(keep !== undefined ? { keep } : {}) } });
  if ((await proc.started) === null) {
    const r = await proc.result;
    log.error(r.status === "error" ? `${r.message} (${r.errno})` : `the command did not start`);
    return r.status === "error" && r.errno === "EEXIST" ? EXIT.failed : shellStatus(r);
  }
  await writeAll(process.stdout, `${tag}\n`);
  log.info(`job %${proc.job} (${tag}) runs detached, pid ${proc.pid}; follow it with: vge attach ADDRESS ${tag}`);
  return EXIT.ok;
}

function command(positionals: string[], shell: string | undefined): Command {
  if (shell !== undefined && positionals.length > 0) throw new UsageError("give either --shell CMD or a program after --, not both");
  if (shell !== undefined) return { shell };
  if (positionals.length === 0) throw new UsageError("nothing to run: give a program after -- or --shell CMD");
  return positionals;
}

/** The agent enforces --timeout; if it never reports the end (a hung or hostile guest), vge gives up this much later. */
const TIMEOUT_GRACE_MS = 5000;

/** `p`, or ETIMEDOUT once --timeout plus the grace has passed without it. */
function guarded<T>(p: Promise<T>, timeoutMs: number | undefined): Promise<T> {
  if (timeoutMs === undefined) return p;
  const ms = timeoutMs + TIMEOUT_GRACE_MS;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new GuestError("ETIMEDOUT", `the agent did not report the command's end within ${ms / 1000} s (--timeout plus ${TIMEOUT_GRACE_MS / 1000} s)`)), ms);
  });
  return Promise.race([p, limit]).finally(() => clearTimeout(timer));
}

/** Output streamed to our stdout/stderr, stdin passed through; resolves with the exit result and whether stdin failed. */
async function streamed(guest: Guest, cmd: Command, o: ExecOptions, log: Log): Promise<{ result: ExitResult; stdinFailed: boolean }> {
  const proc = guest.exec(cmd, o);
  const restore = o.pty ? attachTerminal(proc) : () => {};
  const unforward = o.pty ? () => {} : forwardSignals(proc, (sig) => process.exit(sig === "SIGINT" ? 130 : 143));
  const input = pumpIn(proc, log);
  try {
    const [result] = await guarded(Promise.all([proc.result, pumpOut(proc.stdout, process.stdout), pumpOut(proc.stderr, process.stderr)]), o.timeoutMs);
    return { result, stdinFailed: input.failed };
  } finally {
    input.stop();
    unforward();
    restore();
  }
}

export default defineCommand({
  meta: { name: "run", description: "Run a command in the guest; its output and exit status become vge's" },
  args: runArgs,
  async run({ args, rawArgs }) {
    const [addrText, ...rest] = args._;
    const a = address(addrText);
    const cmd = command(rest, args.shell);
    const timeoutMs = seconds("timeout", args.timeout);
    if (timeoutMs === 0) throw new UsageError("--timeout must be more than 0");
    const tty = !!args.tty;
    if (tty && args.json) throw new UsageError("--json collects output; it cannot be combined with --tty");
    const tag = args.detach;
    if (tag !== undefined && !TAG.test(tag)) throw new UsageError(`--detach needs a tag (1..64 of A-Z a-z 0-9 . _ -, starting with a letter or digit), got "${tag}"`);
    if (tag !== undefined && (tty || args.json)) throw new UsageError("--detach returns at once; it cannot be combined with --tty or --json (use vge attach)");
    if (tag === undefined && args.keep !== undefined) throw new UsageError("--keep only applies with --detach");
    if (tag === undefined && args["open-stdin"]) throw new UsageError("--open-stdin only applies with --detach");
    const keep = keepBytes(args.keep);
    const stdin = !args.stdin || (!tty && stdinIsTTY()) || args.json || tag !== undefined ? "closed" : "pipe";
    if (stdin === "pipe") checkStdin();
    const o: ExecOptions = {
      env: envVars(repeatedValues(rawArgs, ["env", "e"])),
      clearEnv: args["clear-env"] || undefined,
      cwd: args.cwd,
      user: args.user,
      stdin,
      merge: args.merge || undefined,
      timeoutMs,
      killSignal: args["kill-signal"],
      ...(tty ? { pty: localPty() } : {}),
      limits: parseLimits(args),
    };
    const log = vgeLog({ quiet: args.quiet, verbose: args.verbose });
    const guest = await openGuest(a, { waitMs: seconds("wait", args.wait), log, tokenFile: args["token-file"] });
    try {
      if (tag !== undefined) return await detached(guest, cmd, o, tag, keep, !!args["open-stdin"], log);
      if (args.json) {
        const { stdin: _closed, ...runOpts } = o;
        const r = await guarded(guest.run(cmd, { ...runOpts, usage: true }), timeoutMs);
        const used = { ...(r.usage ? { usage: r.usage } : {}), ...(r.oom !== undefined ? { oom: r.oom } : {}) };
        const out = { status: r.status, code: r.code, signal: r.signal, ...(r.errno ? { errno: r.errno, message: r.message } : {}), stdout: r.stdoutText, ...(o.merge ? {} : { stderr: r.stderrText }), durationMs: Math.round(r.durationMs), ...used };
        await writeAll(process.stdout, `${printableJson(out)}\n`);
        return r.exitStatus;
      }
      const { result, stdinFailed } = await streamed(guest, cmd, o, log);
      if (result.status === "error") log.error(`${Array.isArray(cmd) ? cmd[0] : "/bin/sh"}: ${result.message} (${result.errno})`);
      else if (result.status === "timeout") log.info(`timed out after ${timeoutMs! / 1000} s; the process group got ${result.signal}`);
      // The command ran on a short input: its status cannot be trusted to mean what the caller thinks.
      return stdinFailed ? EXIT.vge : shellStatus(result);
    } finally {
      guest.close();
    }
  },
});
