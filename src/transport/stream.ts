// The connected byte stream every transport hands up, on its own so that what imports only the type
// (the host library and its published declarations) does not import Bun's socket types with it.
import type { ByteReader } from "./reader.ts";

export interface Conn {
  readonly reader: ByteReader;
  /** Resolves once everything is handed to the kernel. */
  write(data: Uint8Array): Promise<void>;
  /** Bytes written but not yet taken by the kernel (the peer is not reading fast enough). */
  readonly unsent: number;
  /**
   * Resolves once at most `highWater` bytes are unsent, or the connection is closed. A reader that waits
   * here before acting on more input (whose answers are writes) keeps the unsent queue bounded.
   */
  drained(highWater?: number): Promise<void>;
  /** Half-close: no more writes from us; reads go on. */
  end(): void;
  close(): void;
  readonly closed: Promise<void>;
}
