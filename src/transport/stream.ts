// The connected byte stream every transport hands up, on its own so that what imports only the type
// (the host library and its published declarations) does not import Bun's socket types with it.
import type { ByteReader } from "./reader.ts";

export interface Conn {
  readonly reader: ByteReader;
  /** Resolves once everything is handed to the kernel. */
  write(data: Uint8Array): Promise<void>;
  /** Half-close: no more writes from us; reads go on. */
  end(): void;
  close(): void;
  readonly closed: Promise<void>;
}
