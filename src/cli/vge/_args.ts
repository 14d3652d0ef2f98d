// Argument definitions shared by the vge commands, and the checks that turn their text into values.
import { UsageError } from "../../common/argv.ts";
import { AddressError, parseAddress, type Address } from "../../host/index.ts";

export const addressArg = {
  address: { type: "positional", required: true, valueHint: "ADDRESS", description: "Where the guest is: vsock:CID:PORT, vsock-listen:[CID:]PORT, unix:PATH, unix-listen:PATH, fc:UDS_PATH:PORT, fc-listen:UDS_PATH:PORT" },
} as const;

export const commonArgs = {
  verbose: { type: "boolean", alias: "v", description: "Full errors (stack and causes)" },
  quiet: { type: "boolean", alias: "q", description: "No progress messages on stderr" },
} as const;

export const waitArg = {
  wait: { type: "string", valueHint: "SECONDS", description: "How long to wait for the guest: listen addresses wait for a guest to dial in (default: no limit); connect addresses retry (default 0: one attempt)" },
} as const;

export const tokenArg = {
  "token-file": { type: "string", valueHint: "PATH", description: "Authenticate with the token in this file (the agent's --token-file); one trailing newline is ignored" },
} as const;

export const execArgs = {
  env: { type: "string", alias: "e", valueHint: "NAME=VALUE", description: "Set a variable (repeatable); NAME alone removes it" },
  "clear-env": { type: "boolean", description: "Start from an empty environment" },
  cwd: { type: "string", valueHint: "DIR", description: "Working directory in the guest" },
  user: { type: "string", alias: "u", valueHint: "USER", description: "Run as this user (name or uid)" },
} as const;

export function address(text: string | undefined): Address {
  if (!text) throw new UsageError("an ADDRESS is required");
  try {
    return parseAddress(text);
  } catch (e) {
    if (e instanceof AddressError) throw new UsageError(e.message);
    throw e;
  }
}

/** Seconds as a decimal number (0.5, 30) → milliseconds; undefined stays undefined. */
export function seconds(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+(\.\d+)?$/.test(text)) throw new UsageError(`--${name} must be a number of seconds, got "${text}"`);
  return Math.round(Number(text) * 1000);
}

/** `--env A=1 --env B` → { A: "1", B: null }. */
export function envVars(values: string[]): Record<string, string | null> | undefined {
  if (values.length === 0) return undefined;
  const env: Record<string, string | null> = {};
  for (const v of values) {
    const eq = v.indexOf("=");
    const name = eq < 0 ? v : v.slice(0, eq);
    if (name === "" || name.includes("\0")) throw new UsageError(`--env needs NAME=VALUE or NAME, got "${v}"`);
    env[name] = eq < 0 ? null : v.slice(eq + 1);
  }
  return env;
}
