// The agent's tunables and exit codes, in one place for the docs to point at.

/**
 * Disposable mode: a command is complete when the host half-closes, or when no byte has arrived for this
 * long after the last one. The original took whatever one recv() returned, so hosts exist that write the
 * command and keep the socket open; 250 ms is far above loopback and virtio-vsock latencies between the
 * pieces of one write, yet short enough to be unnoticeable at boot.
 */
export const DEFAULT_PAUSE_MS = 250;

/** Default connect-retry window, in seconds. See README "Connect retry". */
export const DEFAULT_RETRY_S = 30;

/** Exit codes of the agent itself (a command's own status passes through in disposable mode). */
export const EXIT = {
  ok: 0,
  /** Could not reach the host, or the connection failed. */
  connect: 1,
  /** Bad command line. */
  usage: 2,
  /** The host sent something that cannot be run: too long, cut off, or nothing at all. */
  input: 3,
  /** A token is set and the host did not prove it holds it (or spoke an original format). */
  auth: 4,
  /** /bin/sh could not be executed. */
  exec: 126,
} as const;
