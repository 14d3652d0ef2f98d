// Strict argv splitting shared by the agent and `vge`: citty is lenient (unknown flags pass, `-1:` reads
// as a flag), while both tools promise exit 2 with one clear line for any bad option.
import type { ArgsDef } from "citty";

export class UsageError extends Error {
  override name = "UsageError";
}

/**
 * Splits raw arguments into citty-ready ones: known flags first, then `--` and the positionals.
 * Anything that looks like a negative number (`-1:`) is a positional, as in the original CLI.
 */
export function splitArgv(argv: string[], def: ArgsDef): string[] {
  const takesValue = new Map<string, boolean>();
  for (const [name, d] of Object.entries(def)) {
    if (d.type === "positional") continue;
    const alias = "alias" in d ? d.alias : undefined;
    const names = [name, ...(Array.isArray(alias) ? alias : alias ? [alias] : [])];
    for (const n of names) takesValue.set(n, d.type === "string" || d.type === "enum");
  }
  const flags: string[] = [];
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!a.startsWith("-") || a === "-" || /^-\d/.test(a) || /^-?:/.test(a)) {
      positionals.push(a);
      continue;
    }
    const body = a.replace(/^--?/, "");
    const eq = body.indexOf("=");
    const name = eq < 0 ? body : body.slice(0, eq);
    const negated = name.startsWith("no-") && takesValue.get(name.slice(3)) === false;
    const wants = takesValue.get(negated ? name.slice(3) : name);
    if (wants === undefined) throw new UsageError(`unknown option ${a.split("=")[0]}`);
    if (wants && eq < 0) {
      const v = argv[i + 1];
      if (v === undefined) throw new UsageError(`option --${name} needs a value`);
      flags.push(`--${name}=${v}`);
      i++;
    } else if (wants && body.slice(eq + 1) === "") {
      throw new UsageError(`option --${name} needs a value`);
    } else {
      flags.push(a.startsWith("--") ? a : `--${body}`);
    }
  }
  return [...flags, "--", ...positionals];
}

/**
 * Every value of a repeatable string option (`--env A=1 --env B=2`), from splitArgv's output; citty keeps
 * only the last. `names` are the option's name and aliases.
 */
export function repeatedValues(split: string[], names: string[]): string[] {
  const end = split.indexOf("--");
  const out: string[] = [];
  for (const a of split.slice(0, end < 0 ? split.length : end)) {
    for (const n of names) if (a.startsWith(`--${n}=`)) out.push(a.slice(n.length + 3));
  }
  return out;
}
