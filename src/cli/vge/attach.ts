// `vge attach ADDRESS TAG|%N`: follow a detached execution again: what the agent kept of its output, then
// the rest live; vge exits with its status. Ctrl-C (or any end of vge) only detaches: the job runs on.
import { defineCommand } from "citty";
import { shellStatus } from "../../host/index.ts";
import { jobArgs, jobTarget } from "./_job.ts";
import { EXIT } from "./_exit.ts";
import { pumpIn, pumpOut } from "./_stdio.ts";
import { checkStdin } from "./_stdin.ts";

export const ATTACH_NOTES = `
EXAMPLES
  vge run --detach build fc:/run/fc/v.sock:1024 -- make -j4     # prints the tag, returns at once
  vge attach fc:/run/fc/v.sock:1024 build                        # the output kept so far, then live
  vge attach fc:/run/fc/v.sock:1024 %3 --stdin < answers.txt     # job %3 started with --open-stdin
`;

export default defineCommand({
  meta: { name: "attach", description: "Follow a detached execution: its kept output, then live output; exit with its status" },
  args: jobArgs({
    stdin: { type: "boolean", description: "Pass this stdin to the job, then close its stdin (a job started with vge run --detach --open-stdin)" },
  }),
  async run({ args }) {
    const { job, log, open } = jobTarget(args);
    if (args.stdin) checkStdin();
    const guest = await open();
    try {
      const proc = guest.attach(job);
      await proc.started;
      for (const [name, r] of Object.entries(proc.replay ?? {})) {
        if (r.dropped > 0) log.warn(`${r.dropped} bytes of ${name} were dropped before this attach (the agent keeps the last --keep bytes)`);
      }
      const input = args.stdin ? pumpIn(proc, log) : undefined;
      try {
        const [result] = await Promise.all([proc.result, pumpOut(proc.stdout, process.stdout), pumpOut(proc.stderr, process.stderr)]);
        if (result.status === "error") log.error(`the job failed to start: ${result.message} (${result.errno})`);
        return input?.failed ? EXIT.vge : shellStatus(result);
      } finally {
        input?.stop();
      }
    } finally {
      guest.close();
    }
  },
});
