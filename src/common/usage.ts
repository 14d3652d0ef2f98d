// Help text for both CLIs: citty's usage plus our own notes, coloured only for a terminal that wants it.
// node:util, not Bun.stripANSI: vge also runs on Node. Imported when help is printed: log.ts imports this
// file, and evaluating node:util at start-up cost a compiled agent ~3 ms and ~4 MiB of RSS (bench/README.md).
import { renderUsage, type CommandDef } from "citty";

export function wantsColor(stream: { isTTY?: boolean } = process.stdout): boolean {
  const env = process.env;
  if (env.NO_COLOR !== undefined || env.TERM === "dumb" || env.CI) return false;
  return !!stream.isTTY;
}

/** `parent` names a subcommand after its command in the usage line (`vge run`). */
export async function usageText(cmd: CommandDef<any>, notes = "", parent?: CommandDef<any>): Promise<string> {
  const text = (await renderUsage(cmd, parent)) + (notes ? `\n${notes.trimEnd()}\n` : "");
  return wantsColor() ? text : (await import("node:util")).stripVTControlCharacters(text);
}
