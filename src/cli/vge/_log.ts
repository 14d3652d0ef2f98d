// vge's own messages: stderr, one line each, prefixed `vge:`; coloured only for a terminal that wants it.
// Messages quote guest text (hostnames, errors, paths), so every control character in them is escaped
// here, before our own colour codes are added: whatever a guest sends, it cannot drive the terminal.
import { printableLines } from "../../protocol/printable.ts";
import { wantsColor } from "../_usage.ts";

export interface Log {
  /** Progress and notices; silent with --quiet. */
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
  readonly quiet: boolean;
  readonly verbose: boolean;
}

/** Longest message printed (a --verbose stack with its causes fits). */
const MAX_LINE = 16 * 1024;

export function makeLog(opts: { quiet?: boolean; verbose?: boolean } = {}): Log {
  const color = wantsColor(process.stderr);
  const paint = (code: string, s: string) => (color ? `\x1b[${code}m${s}\x1b[0m` : s);
  const line = (s: string) => void process.stderr.write(`vge: ${s}\n`);
  const safe = (m: string) => printableLines(m, MAX_LINE);
  return {
    info: (m) => !opts.quiet && line(paint("2", safe(m))),
    warn: (m) => line(`${paint("33", "warning:")} ${safe(m)}`),
    error: (m) => line(`${paint("31", "error:")} ${safe(m)}`),
    quiet: !!opts.quiet,
    verbose: !!opts.verbose,
  };
}

/** One line for the user, or the whole story (stack and causes) with --verbose. */
export function describeError(e: unknown, verbose: boolean): string {
  const err = e instanceof Error ? e : new Error(String(e));
  if (!verbose) return err.message.split("\n")[0]!;
  const parts = [err.stack ?? err.message];
  for (let c = (err as { cause?: unknown }).cause; c; c = (c as { cause?: unknown }).cause) parts.push(`caused by: ${c instanceof Error ? (c.stack ?? c.message) : String(c)}`);
  return parts.join("\n");
}
