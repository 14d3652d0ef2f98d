// `vge kill ADDRESS TAG|%N [--signal SIG]`: signal a detached execution's process group without attaching.
import { defineCommand } from "citty";
import { lookupSignal } from "../../protocol/v2/signals.ts";
import { UsageError } from "../../common/argv.ts";
import { GuestError } from "../../host/index.ts";
import { EXIT } from "./_exit.ts";
import { jobArgs, jobTarget } from "./_job.ts";

export default defineCommand({
  meta: { name: "kill", description: "Send a signal (default SIGTERM) to a detached execution's process group" },
  args: jobArgs({
    signal: { type: "string", alias: "s", valueHint: "SIGNAL", description: "Signal name: TERM, SIGKILL, hup, ... (default SIGTERM)" },
  }),
  async run({ args }) {
    const { job, log, open } = jobTarget(args);
    const signal = args.signal ?? "SIGTERM";
    if (!lookupSignal(signal)) throw new UsageError(`--signal: unknown signal "${signal}"`);
    const guest = await open();
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
