// Signals as callers of the host library name them: the one table lives in the protocol layer (shared with
// the agent); here its refusals become GuestErrors with a code, like every error the library throws.
import { signalName as name, signalNumber } from "../protocol/v2/signals.ts";
import { GuestError } from "./errors.ts";

/** "TERM", "sigterm", "SIGTERM" or 15 → "SIGTERM"; a GuestError EINVAL for anything else. */
export function signalName(sig: string | number): string {
  try {
    return name(sig);
  } catch (e) {
    throw new GuestError("EINVAL", (e as Error).message);
  }
}

export { signalNumber };
