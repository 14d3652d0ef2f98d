// Errors the host library throws or rejects with. Each carries a short `code` to branch on and a message
// that reads as one line ("guest unix:/run/g.sock: the agent closed the connection").

/**
 * A failure of the connection or the protocol: every pending exec, file request and ping of that
 * connection is rejected with the same error.
 *   ECLOSED    the connection dropped or was closed
 *   EPROTO     the agent sent a malformed frame
 *   EHELLO     no usable WELCOME (timeout, an original-format agent, a refused version)
 *   ETIMEDOUT  a host-side deadline passed
 * and for calls the library refuses before anything is sent:
 *   EINVAL     a bad argument (unknown signal, bad exec options, a listen address given to connect())
 *   ENOTSUP    an AF_VSOCK address where there is no Bun (Node): use the vge binary or a Unix address
 *   EMAXBUFFER run() collected more than maxBuffer; the process was killed
 *   EADDRINUSE a listen address somebody else holds
 * AddressError (EINVAL), FileError (its errno), StdinClosedError (EPIPE) and ListenerClosedError
 * (ECLOSED) carry a `code` too.
 *   EFLOW      the agent sent more output or file data than the host granted, or gave back more credit
 *              than the host had sent under its window (PROTOCOL.md §7)
 *   other      the code of the agent's ERROR frame (EFLOW, EVERSION, ...), or EREMOTE
 */
export class GuestError extends Error {
  override name = "GuestError";
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A PUT or GET the agent refused or failed: `errno` is the agent's (ENOENT, EACCES, EFBIG, ...). */
export class FileError extends Error {
  override name = "FileError";
  /** The same as `errno`, so that every error of the library can be told apart by `code`. */
  readonly code: string;
  constructor(
    readonly errno: string,
    readonly path: string,
    message: string,
  ) {
    super(`${path}: ${message}`);
    this.code = errno;
  }
}

/** Writing to a process's stdin after it has exited (or after its connection failed). */
export class StdinClosedError extends Error {
  override name = "StdinClosedError";
  readonly code = "EPIPE";
  constructor(message = "stdin: the process has exited") {
    super(message);
  }
}
