// Closing after a final frame (ERROR) so that the host gets to read it.
import type { Conn } from "../../transport/conn.ts";

/** How long, and how many bytes, a closing agent still reads from a host after its last frame. */
export const LINGER_MS = 500;
export const LINGER_BYTES = 4 * 1024 * 1024;

/**
 * Half-closes (a FIN after everything queued), then reads and drops whatever the host still sends until
 * it closes too, `ms` pass or more than `maxBytes` arrived; then closes. Nothing read here is decoded or
 * acted on. Why: closing with unread bytes in the receive buffer makes the kernel reset the connection,
 * and a host that had pipelined more frames behind a bad one then fails its write (EPIPE/ECONNRESET)
 * and can lose the ERROR before it reads it.
 */
export async function lingerClose(conn: Conn, ms = LINGER_MS, maxBytes = LINGER_BYTES): Promise<void> {
  try {
    conn.end();
    const until = performance.now() + ms;
    const reader = conn.reader;
    for (let dropped = 0; dropped <= maxBytes && !reader.isEnded; ) {
      const left = until - performance.now();
      if (left <= 0 || !(await reader.waitData(left))) break;
      dropped += reader.readAvailable(reader.available).byteLength;
    }
  } finally {
    conn.close();
  }
}
