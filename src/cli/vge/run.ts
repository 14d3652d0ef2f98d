// `vge run ADDRESS [options] -- PROGRAM [ARGS...]` / `--shell "CMD"`: one command, its output streamed,
// its status becoming vge's.
import { defineCommand } from "citty";
import { UsageError, repeatedValues } from "../../common/argv.ts";
import { GuestError, printableJson, shellStatus, type Command, type ExecOptions, type ExitResult, type Guest } from "../../host/index.ts";
import { address, addressArg, commonArgs, tokenArg, envVars, execArgs, seconds, waitArg } from "./_args.ts";
import { openGuest } from "./_guest.ts";
import { vgeLog } from "./_log.ts";
import { forwardSignals, pumpIn, pumpOut, writeAll } from "./_stdio.ts";
import { attachTerminal, localPty } from "./_tty.ts";

export const runArgs = {
  ...addressArg,
  command: { type: "positional", required: false, valueHint: "-- PROGRAM [ARGS...]", description: "What to run (or --shell CMD)" },
  shell: { type: "string", alias: "c", valueHint: "CMD", description: "Run CMD with /bin/sh -c instead of a program" },
  ...execArgs,
  timeout: { type: "string", valueHint: "SECONDS", description: "Kill the command's process group after this long (status 124)" },
  "kill-signal": { type: "string", valueHint: "SIGNAL", description: "Signal for --timeout (default SIGKILL)" },
  tty: { type: "boolean", alias: "t", description: "Run on a pseudo-terminal (raw mode here, window size follows)" },
  merge: { type: "boolean", description: "Send stderr to stdout, in write order" },
  stdin: { type: "boolean", default: true, description: "Pass stdin through (when it is a pipe or file)", negativeDescription: "Give the command a closed stdin (default when stdin is a terminal without -t)" },
  json: { type: "boolean", description: "Collect output; print {status, code, signal, stdout, stderr, durationMs} as JSON" },
  ...waitArg,
  ...tokenArg, ...commonArgs,
} as const;

export const RUN_NOTES = `
EXAMPLES
  vge run unix-listen:/tmp/vm.sock -- sh -c 'echo out; echo err >&2; exit 3'
  vge run fc:/run/fc/v.sock:1024 --timeout 60 -- make -j4
  tar c src | vge run vsock:3:1024 -- tar x -C /work
  vge run unix:/run/agent.sock --json --shell 'uname -a'
`;

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

/** Output streamed to our stdout/stderr, stdin passed through; resolves with the exit result. */
async function streamed(guest: Guest, cmd: Command, o: ExecOptions): Promise<ExitResult> {
  const proc = guest.exec(cmd, o);
  const restore = o.pty ? attachTerminal(proc) : () => {};
  const unforward = o.pty ? () => {} : forwardSignals(proc, (sig) => process.exit(sig === "SIGINT" ? 130 : 143));
  const stopIn = pumpIn(proc);
  try {
    const [result] = await guarded(Promise.all([proc.result, pumpOut(proc.stdout, process.stdout), pumpOut(proc.stderr, process.stderr)]), o.timeoutMs);
    return result;
  } finally {
    stopIn();
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
    const stdin = !args.stdin || (!tty && process.stdin.isTTY) || args.json ? "closed" : "pipe";
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
    };
    const log = vgeLog({ quiet: args.quiet, verbose: args.verbose });
    const guest = await openGuest(a, { waitMs: seconds("wait", args.wait), log, tokenFile: args["token-file"] });
    try {
      if (args.json) {
        const { stdin: _closed, ...runOpts } = o;
        const r = await guarded(guest.run(cmd, runOpts), timeoutMs);
        const out = { status: r.status, code: r.code, signal: r.signal, ...(r.errno ? { errno: r.errno, message: r.message } : {}), stdout: r.stdoutText, ...(o.merge ? {} : { stderr: r.stderrText }), durationMs: Math.round(r.durationMs) };
        await writeAll(process.stdout, `${printableJson(out)}\n`);
        return r.exitStatus;
      }
      const result = await streamed(guest, cmd, o);
      if (result.status === "error") log.error(`${Array.isArray(cmd) ? cmd[0] : "/bin/sh"}: ${result.message} (${result.errno})`);
      else if (result.status === "timeout") log.info(`timed out after ${timeoutMs! / 1000} s; the process group got ${result.signal}`);
      return shellStatus(result);
    } finally {
      guest.close();
    }
  },
});
