// `vge wait ADDRESS [--timeout S]`: until an agent answers a hello. For listen addresses that means a guest
// dialed in (it is released again at once: start agents with --reconnect to serve the next command).
import { defineCommand } from "citty";
import { GuestError } from "../../host/index.ts";
import { address, addressArg, commonArgs, tokenArg, seconds } from "./_args.ts";
import { EXIT } from "./_exit.ts";
import { openGuest } from "./_guest.ts";
import { vgeLog } from "./_log.ts";

/** Under the 2^31 ms where timers overflow; about 23 days. */
const FOREVER_MS = 2_000_000_000;

export default defineCommand({
  meta: { name: "wait", description: "Wait until an agent is ready at ADDRESS (exit 0), or until --timeout (exit 124)" },
  args: {
    ...addressArg,
    timeout: { type: "string", valueHint: "SECONDS", description: "Give up after this long (default: no limit)" },
    ...tokenArg, ...commonArgs,
  },
  async run({ args }) {
    const a = address(args._[0]);
    const timeoutMs = seconds("timeout", args.timeout);
    const log = vgeLog({ quiet: args.quiet, verbose: args.verbose });
    const t0 = performance.now();
    let guest;
    try {
      // A connect address is retried for the whole timeout (forever without one).
      guest = await openGuest(a, { waitMs: timeoutMs ?? FOREVER_MS, log, tokenFile: args["token-file"] });
    } catch (e) {
      if (e instanceof GuestError && e.code === "ETIMEDOUT") {
        log.error(e.message);
        return EXIT.timeout;
      }
      throw e;
    }
    log.info(`ready: ${guest.info.hostname} (agent ${guest.info.agent}) after ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    guest.close();
    return EXIT.ok;
  },
});
