// What the job commands (attach, kill) share: how they name a detached execution, by its tag or %N for
// job number N (as a shell names its jobs, so that a tag made of digits is never mistaken for a number),
// their arguments around each command's own, and the checks before the guest is opened.
import type { ArgsDef } from "citty";
import { UsageError } from "../../common/argv.ts";
import type { Guest } from "../../host/index.ts";
import { address, addressArg, commonArgs, seconds, tokenArg, waitArg } from "./_args.ts";
import { openGuest } from "./_guest.ts";
import { vgeLog, type Log } from "./_log.ts";

const TAG = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export const jobArg = {
  job: { type: "positional", required: true, valueHint: "TAG|%N", description: "The detached execution: its tag, or %N for job number N (see vge ps)" },
} as const;

export function jobRef(text: string | undefined): string | number {
  if (!text) throw new UsageError("a TAG (or %N for a job number) is required");
  const m = /^%(\d{1,10})$/.exec(text);
  if (m) {
    const n = Number(m[1]);
    if (n >= 1 && n <= 0xffffffff) return n;
  }
  if (!TAG.test(text)) throw new UsageError(`"${text}" is not a tag (1..64 of A-Z a-z 0-9 . _ -, starting with a letter or digit) nor %N`);
  return text;
}

/** ADDRESS TAG|%N, the command's `own` options, then --wait, --token-file and the common ones (--help order). */
export function jobArgs<const E extends ArgsDef>(own: E) {
  return { ...addressArg, ...jobArg, ...own, ...waitArg, ...tokenArg, ...commonArgs };
}

export interface JobTarget {
  job: string | number;
  log: Log;
  /** Dials (or waits for) the guest; called once the command has checked its own options. */
  open(): Promise<Guest>;
}

/** ADDRESS and TAG|%N checked (a usage error before anything is dialed), and how to open that guest. */
export function jobTarget(args: { _: string[]; wait?: string; "token-file"?: string; quiet?: boolean; verbose?: boolean }): JobTarget {
  const [addrText, jobText] = args._;
  const a = address(addrText);
  const job = jobRef(jobText);
  const log = vgeLog({ quiet: args.quiet, verbose: args.verbose });
  return { job, log, open: () => openGuest(a, { waitMs: seconds("wait", args.wait), log, tokenFile: args["token-file"] }) };
}
