// The signal table lives in the protocol layer, shared with the agent.
export { signalName, signalNumber } from "../protocol/v2/signals.ts";
