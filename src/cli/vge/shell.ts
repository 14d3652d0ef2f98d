// `vge shell ADDRESS [-- PROGRAM ARGS...]`: an interactive login shell on a pseudo-terminal in the guest.
import { defineCommand } from "citty";
import { UsageError, repeatedValues } from "../../common/argv.ts";
import { shellStatus, type Command } from "../../host/index.ts";
import { address, addressArg, commonArgs, tokenArg, envVars, execArgs, seconds, waitArg } from "./_args.ts";
import { openGuest } from "./_guest.ts";
import { vgeLog } from "./_log.ts";
import { pumpIn, pumpOut } from "./_stdio.ts";
import { attachTerminal, localPty } from "./_tty.ts";
import { stdinIsTTY } from "./_stdin.ts";

/** The guest's login shell when it has one in $SHELL, else /bin/sh (an initramfs has no login setup). */
const LOGIN_SHELL: Command = { shell: 'exec "${SHELL:-/bin/sh}" -l' };

export default defineCommand({
  meta: { name: "shell", description: "Open an interactive shell in the guest on a pseudo-terminal" },
  args: { ...addressArg, ...execArgs, ...waitArg, ...tokenArg, ...commonArgs },
  async run({ args, rawArgs }) {
    const [addrText, ...argv] = args._;
    const a = address(addrText);
    if (!stdinIsTTY()) throw new UsageError("vge shell needs a terminal on stdin; use vge run for scripts and pipes");
    const log = vgeLog({ quiet: args.quiet, verbose: args.verbose });
    const guest = await openGuest(a, { waitMs: seconds("wait", args.wait), log, tokenFile: args["token-file"] });
    try {
      const proc = guest.exec(argv.length ? argv : LOGIN_SHELL, {
        env: envVars(repeatedValues(rawArgs, ["env", "e"])),
        clearEnv: args["clear-env"] || undefined,
        cwd: args.cwd,
        user: args.user,
        pty: localPty(),
      });
      const restore = attachTerminal(proc);
      const input = pumpIn(proc, log);
      try {
        const [result] = await Promise.all([proc.result, pumpOut(proc.stdout, process.stdout), pumpOut(proc.stderr, process.stderr)]);
        if (result.status === "error") log.error(`${result.message} (${result.errno})`);
        return shellStatus(result);
      } finally {
        input.stop();
        restore();
      }
    } finally {
      guest.close();
    }
  },
});
