// vge's exit statuses, in one place for --help and the README to point at. `vge run` and `vge shell`
// exit with the remote command's status instead (code, 128+n, 124, 127, 126); vge's own failures use 255,
// as ssh does, so that they stand apart from any status a command can have.
export const EXIT = {
  ok: 0,
  /** The operation failed in the guest: a file could not be read or written. */
  failed: 1,
  /** Bad command line, address or token file. */
  usage: 2,
  /** `vge wait` (or run --timeout) ran out of time. */
  timeout: 124,
  /** vge itself failed: no guest, connection lost, protocol error. */
  vge: 255,
} as const;

export const EXIT_NOTES = `
EXIT STATUS
  run, shell, attach: the command's status; 128+n when killed by signal n; 124 after --timeout; 127 when the
  program is not found, 126 when it cannot start; 255 when vge fails (no guest, connection lost, stdin
  unreadable).
  other commands: 0 done, 1 failed in the guest, 124 timed out (wait), 255 vge failed.
  2 for a bad command line, address or --token-file (missing, unreadable, empty, too short), always.
`;
