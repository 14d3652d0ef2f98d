// vge's messages: the shared logger (common/log.ts) under vge's name, coloured only for a terminal that
// wants it; guest text in them is escaped there.
import { makeLog, type Log } from "../../common/log.ts";

export { describeError } from "../../common/log.ts";
export type { Log };

export function vgeLog(opts: { quiet?: boolean; verbose?: boolean } = {}): Log {
  return makeLog({ name: "vge", ...opts });
}
