// Is this connection a v2 host? Only an exact magic says yes; the bytes stay buffered when it says no.
import { MAGIC, magicPrefixState } from "../../protocol/v2/frame.ts";
import type { ByteReader } from "../../transport/reader.ts";

/**
 * Consumes the magic and returns "v2" for a v2 host. Returns "legacy", consuming nothing, as soon as the
 * first bytes differ from the magic, or if a partial magic is followed by EOF or a pause of `pauseMs` (an
 * original-format message that happens to start with FF is then served as before). Returns "silent" when
 * `deadline` (performance.now() time) passes before the first byte; without one the first byte may take
 * as long as the host likes, as with the original tool.
 */
export async function sniffV2(reader: ByteReader, pauseMs: number, deadline?: number): Promise<"v2" | "legacy" | "silent"> {
  for (;;) {
    const head = reader.peek(MAGIC.byteLength);
    const state = magicPrefixState(head);
    if (state === "no") return "legacy";
    if (state === "match") {
      await reader.readExact(MAGIC.byteLength);
      return "v2";
    }
    if (reader.sawEnd) return "legacy";
    if (head.byteLength > 0) {
      if (!(await reader.waitMore(pauseMs))) return "legacy";
    } else if (deadline === undefined) await reader.waitMore();
    else if (!(await reader.waitMore(Math.max(0, deadline - performance.now())))) return "silent";
  }
}
