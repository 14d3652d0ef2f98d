// `vge kill ADDRESS TAG|%N [--signal SIG]`: signal a detached execution's process group without attaching.
import { defineCommand } from "citty";
import { lookupSignal } from "../../protocol/v2/signals.ts";
import { UsageError } from "../../common/argv.ts";
import { GuestError } from "../../host/index.ts";
import { address, addressArg, commonArgs, seconds, waitArg, tokenArg } from "./_args.ts";
import { EXIT } from "./_exit.ts";
import { openGuest } from "./_guest.ts";
import { jobArg, jobRef } from "./_job.ts";
import { vgeLog } from "./_log.ts";

export default defineCommand({
  meta: { name: "kill", description: "Send a signal (default SIGTERM) to a detached execution's process group" },
  args: {
    ...addressArg,
    ...jobArg,
    signal: { type: "string", alias: "s", valueHint: "SIGNAL", description: "Signal name: TERM, SIGKILL, hup, ... (default SIGTERM)" },
    ...waitArg,
    ...tokenArg,
    ...commonArgs,
  },
  async run({ args }) {
    const [addrText, jobText] = args._;
    const a = address(addrText);
    const job = jobRef(jobText);
    const signal = args.signal ?? "SIGTERM";
    if (!lookupSignal(signal)) throw new UsageError(`--signal: unknown signal "${signal}"`);
    const log = vgeLog({ quiet: args.quiet, verbose: args.verbose });
    const guest = await openGuest(a, { waitMs: seconds("wait", args.wait), log, tokenFile: args["token-file"] });
    try {
      await guest.kill(job, signal);
      return EXIT.ok;
    } catch (e) {
      // No such job, or it has ended: a failure in the guest, said in one line.
      if (e instanceof GuestError && (e.code === "ENOENT" || e.code === "ESRCH")) {
        log.error(e.message);
        return EXIT.failed;
      }
      throw e;
    } finally {
      guest.close();
    }
  },
});
