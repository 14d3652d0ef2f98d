// The agent's tunables and exit codes, in one place for the docs to point at.

/**
 * Disposable mode: a command is complete when the host half-closes, or when no byte has arrived for this
 * long after the last one. The original took whatever one recv() returned, so hosts exist that write the
 * command and keep the socket open; 250 ms is far above loopback and virtio-vsock latencies between the
 * pieces of one write, yet short enough to be unnoticeable at boot.
 */
export const DEFAULT_PAUSE_MS = 250;

/**
 * Default time a host has to complete the v2 hello (HELLO, and AUTH with a token), in seconds: counted from
 * the magic, or from the connection in listen mode. Far above any real host (milliseconds), short enough
 * that a silent peer does not hold a connection slot (--max-conns) or a dialing agent for long.
 */
export const DEFAULT_HANDSHAKE_TIMEOUT_S = 30;

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

/**
 * How much one host, or all of them, may have open at once. A request over a limit is refused on its own
 * (EXIT or RESULT with errno EAGAIN, PROTOCOL.md §9); the connection goes on. Set with the agent's options.
 */
export interface Limits {
  /** Executions running at once on one connection (--max-execs-per-conn). */
  execsPerConn: number;
  /** Executions running at once over all connections (--max-execs). */
  execs: number;
  /** Executions on a pseudo-terminal at once over all connections (--max-ptys). */
  ptys: number;
  /** PUT and GET requests open at once on one connection (--max-files-per-conn). */
  filesPerConn: number;
  /**
   * TCP streams open at once on one connection (--max-tcp-per-conn). Each may hold one window of the
   * host's data until the guest's server reads it: 128 × 256 KiB = 32 MiB at worst, and 128 sockets.
   */
  tcpPerConn: number;
  /** Listen mode: connections served at once (--max-conns); at the limit the oldest one still in its hello is dropped for a newcomer, else the newcomer gets ERROR EBUSY (conn-slots.ts). */
  conns: number;
  /** Detached executions at once: every running one (keep 0 too), and finished ones with output kept (--max-detached). */
  detached: number;
  /** Bytes all detached executions together may keep for replay (--detach-memory, given in MiB). */
  detachMemory: number;
}

export const DEFAULT_LIMITS: Limits = { execsPerConn: 64, execs: 256, ptys: 32, filesPerConn: 16, tcpPerConn: 128, conns: 64, detached: 16, detachMemory: 64 * 1024 * 1024 };

/**
 * A v2 session stops reading its host while more than this many bytes it wrote are still unsent: a host
 * that sends PINGs (or anything that is answered) and never reads then blocks in its own write, instead of
 * growing the agent's memory. Output is bounded separately, by each stream's window.
 */
export const OUTBOUND_HIGH_WATER = 256 * 1024;
