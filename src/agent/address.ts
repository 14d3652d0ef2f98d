// The original tool's positional address, `[CID][:PORT]`, parsed with its exact acceptance rules.
import { VMADDR_CID_ANY, VMADDR_CID_HOST, VMADDR_CID_HYPERVISOR, VMADDR_CID_LOCAL } from "../sys/sockaddr.ts";

export const DEFAULT_CID = VMADDR_CID_HOST;
export const DEFAULT_PORT = 1024;

export interface ParsedAddress {
  cid: number;
  port: number;
  /** One line per part that was not accepted and fell back to its default. */
  warnings: string[];
}

const INTEGER = /^[+-]?\d+$/;

/**
 * The original accepts a CID only when it is -1 (VMADDR_CID_ANY), 0, 1 or 2, and a port only in 0..65535;
 * anything else silently keeps the default. We keep the outcome and say so on stderr. Unlike C's atoi,
 * text that is not a whole number ("foo", "3x") is not read as 0 or 3: it falls back to the default too,
 * which is what the original documents for `foo:bar`.
 */
export function parseAddress(text: string | undefined): ParsedAddress {
  const out: ParsedAddress = { cid: DEFAULT_CID, port: DEFAULT_PORT, warnings: [] };
  if (text === undefined || text === "") return out;
  const colon = text.indexOf(":");
  const cidText = colon < 0 ? text : text.slice(0, colon);
  const portText = colon < 0 ? "" : text.slice(colon + 1);

  if (cidText !== "") {
    const n = INTEGER.test(cidText) ? Number(cidText) : NaN;
    if (n === -1) out.cid = VMADDR_CID_ANY;
    else if (n === VMADDR_CID_HYPERVISOR || n === VMADDR_CID_LOCAL || n === VMADDR_CID_HOST) out.cid = n;
    else out.warnings.push(`CID "${cidText}" is not one of -1, 0, 1, 2; using ${DEFAULT_CID} (use --cid for any other CID)`);
  }
  if (portText !== "") {
    const n = INTEGER.test(portText) ? Number(portText) : NaN;
    if (n >= 0 && n <= 65535) out.port = n;
    else out.warnings.push(`port "${portText}" is not a number 0..65535; using ${DEFAULT_PORT}`);
  }
  return out;
}

/** Strict parsing for the new options: a whole decimal number within [min, max], or an error message. */
export function parseUint(name: string, text: string, min: number, max: number): number | string {
  if (!/^\d+$/.test(text)) return `${name} must be a whole number ${min}..${max}, got "${text}"`;
  const n = Number(text);
  if (n < min || n > max) return `${name} must be ${min}..${max}, got ${text}`;
  return n;
}
