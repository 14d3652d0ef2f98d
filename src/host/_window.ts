// A WINDOW from the agent (PROTOCOL.md §7): credit back for bytes this host sent under the agent's window
// (stdin, PUT and PUTDIR data, TCP data). The agent can only return what it was sent, so a WINDOW that
// would take the credit past the window it started at is the guest's violation: EFLOW, which ends the
// connection like an output overrun. Unchecked, a guest repeating WINDOW 0xffffffff would have this host
// send far past what the agent can hold, with a count that stops being exact beyond 2^53.
import { decodeWindow, type Frame } from "../protocol/v2/frame.ts";
import type { Credit } from "../protocol/v2/credit.ts";
import { GuestError } from "./errors.ts";

/** Adds the WINDOW frame `f` to `credit`, or throws EFLOW; `what` names the request ("execution 3"). */
export function windowFrom(credit: Credit, f: Frame, name: string, what: string): void {
  const n = decodeWindow(f);
  if (!credit.add(n)) {
    throw new GuestError("EFLOW", `${name}: the agent returned ${n} bytes of credit for ${what}, more than was sent (${credit.available} of the ${credit.limit}-byte window unused)`);
  }
}
