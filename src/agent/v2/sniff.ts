// Is this connection a v2 host? Only an exact magic says yes; the bytes stay buffered when it says no.
import { MAGIC, magicPrefixState } from "../../protocol/v2/frame.ts";
import type { ByteReader } from "../../transport/reader.ts";

/**
 * Consumes the magic and returns true for a v2 host. Returns false, consuming nothing, as soon as the first
 * bytes differ from the magic, or if a partial magic is followed by EOF or a pause of `pauseMs` (an
 * original-format message that happens to start with FF is then served as before).
 */
export async function sniffV2(reader: ByteReader, pauseMs: number): Promise<boolean> {
  for (;;) {
    const head = reader.peek(MAGIC.byteLength);
    const state = magicPrefixState(head);
    if (state === "no") return false;
    if (state === "match") {
      await reader.readExact(MAGIC.byteLength);
      return true;
    }
    if (reader.sawEnd) return false;
    if (head.byteLength === 0) await reader.waitMore();
    else if (!(await reader.waitMore(pauseMs))) return false;
  }
}
