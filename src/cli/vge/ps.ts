// `vge ps ADDRESS`: the agent's detached executions, running and recently finished (PROTOCOL.md §5.1).
import { defineCommand } from "citty";
import { describeExit, printable, printableJson, type JobInfo } from "../../host/index.ts";
import { address, addressArg, commonArgs, seconds, waitArg, tokenArg } from "./_args.ts";
import { openGuest } from "./_guest.ts";
import { vgeLog } from "./_log.ts";
import { writeAll } from "./_stdio.ts";

function bytes(n: number): string {
  return n < 1024 ? `${n}` : n < 1048576 ? `${(n / 1024).toFixed(1)}K` : `${(n / 1048576).toFixed(1)}M`;
}

function row(j: JobInfo): string[] {
  const state = j.state === "running" ? (j.attached ? "running*" : "running") : j.exit ? describeExit(j.exit) : "exited";
  // What the agent no longer keeps: a later attach reports it as dropped.
  const out = `${bytes(j.stdout.total)}${j.stdout.kept < j.stdout.total ? `(-${bytes(j.stdout.total - j.stdout.kept)})` : ""}`;
  return [`%${j.job}`, j.tag ?? "-", j.pid === null ? "-" : String(j.pid), new Date(j.startedAt).toISOString().slice(0, 19).replace("T", " "), state, out, j.argv.join(" ")];
}

export default defineCommand({
  meta: { name: "ps", description: "List the agent's detached executions (running ones, and finished ones for 10 minutes)" },
  args: {
    ...addressArg,
    json: { type: "boolean", description: "Print the list as JSON (one array of jobs)" },
    ...waitArg,
    ...tokenArg,
    ...commonArgs,
  },
  async run({ args }) {
    const a = address(args._[0]);
    const log = vgeLog({ quiet: args.quiet, verbose: args.verbose });
    const guest = await openGuest(a, { waitMs: seconds("wait", args.wait), log, tokenFile: args["token-file"] });
    try {
      const jobs = await guest.list();
      if (args.json) {
        await writeAll(process.stdout, `${printableJson(jobs)}\n`);
        return 0;
      }
      const rows = [["JOB", "TAG", "PID", "STARTED (UTC)", "STATE", "STDOUT", "COMMAND"], ...jobs.map(row)];
      const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
      // Every cell came from the guest: escaped, so that a command line cannot carry terminal sequences.
      const lines = rows.map((r) => printable(r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  "), 1024).trimEnd());
      await writeAll(process.stdout, `${lines.join("\n")}\n`);
      return 0;
    } finally {
      guest.close();
    }
  },
});
