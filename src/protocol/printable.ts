// Text from a peer made safe to print: a guest must not be able to move the cursor, retitle the window,
// rewrite earlier lines or flood the screen through a hostname or an error message. Pure, no I/O; the
// host library applies it where guest text enters a message, vge to every guest string it prints.

/** C0 controls, DEL, C1 controls, the line/paragraph separators and the bidi embedding/override/isolate marks. */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const NAMED: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t", "\x1b": "\\e" };

function escapeChar(c: string): string {
  const named = NAMED[c];
  if (named) return named;
  const code = c.charCodeAt(0);
  return code < 0x100 ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`;
}

/**
 * `s` with every control character written as an escape (ESC as `\e`, so an escape sequence shows as
 * text), cut to `max` characters with a note of how much was dropped. Printable text is unchanged.
 */
export function printable(s: string, max = 1024): string {
  const cut = s.length > max ? s.slice(0, max) : s;
  const out = cut.replace(UNSAFE, escapeChar);
  return s.length > max ? `${out}... (${s.length - max} more characters)` : out;
}

/** The same, for a text of several lines (vge --verbose stacks): newlines stay, all else is escaped. */
export function printableLines(s: string, max = 64 * 1024): string {
  const lines = (s.length > max ? s.slice(0, max) : s).split("\n").map((l) => printable(l, Infinity));
  return lines.join("\n") + (s.length > max ? `... (${s.length - max} more characters)` : "");
}

/**
 * JSON.stringify, with DEL, C1 and the separators/bidi marks written as \u escapes too (JSON.stringify
 * escapes only C0): the same value when parsed, and nothing a terminal acts on when printed.
 */
export function printableJson(value: unknown): string {
  return JSON.stringify(value).replace(/[\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}
