// How the job commands (attach, kill) name a detached execution: its tag, or %N for job number N (as a
// shell names its jobs), so that a tag made of digits is never mistaken for a number.
import { UsageError } from "../../common/argv.ts";

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
