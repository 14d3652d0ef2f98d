// What every transport hands the host library: connected streams, and listeners that yield them.
import type { Conn } from "../../transport/stream.ts";

export interface Accepted {
  conn: Conn;
  /** Who connected, for logs and errors: "vsock:3:51234", "unix-listen:/run/g.sock#2". */
  peer: string;
}

export interface ConnListener extends AsyncIterable<Accepted> {
  /** The address listened on, in the address syntax. */
  readonly address: string;
  /** The next connection; rejects with ListenerClosedError once closed. */
  accept(): Promise<Accepted>;
  /** Stops accepting, closes connections nobody took, and removes a socket file it created. */
  close(): Promise<void>;
}

export interface DialOptions {
  /** Give up on one connect (and a handshake) after this long. */
  timeoutMs?: number;
  signal?: AbortSignal;
}
