// Reading the agent's log (stderr) for signs that something went wrong inside it.

/**
 * Lines that show an exception escaping: a listener's "unix connection N: …" error is a session that ended
 * by a throw other than a protocol error (those are logged as "v2: …; closing this connection"); Bun's
 * error names and stack frames mean one reached the top; "…Warning" is how Bun reports an argument it
 * clamped (a timer over 2^31-1 ms fires at once). Long lines are cut to 300 characters.
 */
export function escapedErrorLines(log: string): string[] {
  return log
    .split("\n")
    .filter((l) => /error: unix connection \d+: /.test(l) || /\b(TypeError|RangeError|ReferenceError|SyntaxError|EvalError|AggregateError|\w+Warning)\b/.test(l) || /^\s+at .+:\d+:\d+\)?$/.test(l) || /\b(unhandled|uncaught)\b/i.test(l))
    .map((l) => (l.length > 300 ? `${l.slice(0, 300)}…` : l));
}
