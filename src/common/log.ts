// The one logger of both programs: the agent (`vsock_guest_exec: …` on the guest console) and vge
// (`vge: …`). One line per message on stderr, written synchronously so that nothing is lost when the
// process execs or exits right after. Messages quote peer text (hostnames, errors, paths, commands), so
// every control character in them is escaped here, before our own colour codes are added: whatever a
// peer sends, it cannot drive the terminal or forge a log line.
import { writeSync } from "node:fs";
import { printableLines } from "../protocol/printable.ts";
import { wantsColor } from "./usage.ts";

export interface Log {
  /** Progress and notices; silent with `quiet`. */
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
  /** Only with `verbose`. */
  debug(msg: string): void;
  readonly quiet: boolean;
  readonly verbose: boolean;
}

export interface LogOptions {
  /** The prefix of every line: the program's name. */
  name: string;
  verbose?: boolean;
  quiet?: boolean;
  /** Colour the level words; default: when stderr is a terminal that wants it (NO_COLOR, TERM=dumb, CI). */
  color?: boolean;
}

/** Longest message printed (a --verbose stack with its causes fits). */
const MAX_LINE = 16 * 1024;

function writeLine(text: string): void {
  try {
    writeSync(2, text);
  } catch (e) {
    // A non-blocking stderr that is full: hand it to the stream, which queues. A closed console must
    // not take the program down.
    if ((e as { code?: string }).code === "EAGAIN") process.stderr.write(text);
  }
}

export function makeLog(opts: LogOptions): Log {
  const color = opts.color ?? wantsColor(process.stderr);
  const paint = (code: string, s: string) => (color ? `\x1b[${code}m${s}\x1b[0m` : s);
  const line = (s: string) => writeLine(`${opts.name}: ${s}\n`);
  const safe = (m: string) => printableLines(m, MAX_LINE);
  return {
    info: (m) => void (!opts.quiet && line(paint("2", safe(m)))),
    warn: (m) => line(`${paint("33", "warning:")} ${safe(m)}`),
    error: (m) => line(`${paint("31", "error:")} ${safe(m)}`),
    debug: (m) => void (opts.verbose && line(safe(m))),
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
