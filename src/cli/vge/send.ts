// `vge send ADDRESS [--persistent] CMD...`: drive an agent in the original formats, which answer nothing.
// Disposable: one command; vge returns when the agent closes, i.e. when the command has finished.
// Persistent: each CMD is one frame; vge half-closes and returns when the agent has run them all.
import { defineCommand } from "citty";
import { UsageError } from "../../common/argv.ts";
import { sendDisposable, sendPersistent } from "../../host/index.ts";
import { address, addressArg, commonArgs, seconds, waitArg } from "./_args.ts";
import { openRaw } from "./_guest.ts";
import { vgeLog } from "./_log.ts";

export default defineCommand({
  meta: { name: "send", description: "Send commands in the original formats (no output or status comes back)" },
  args: {
    ...addressArg,
    persistent: { type: "boolean", alias: "p", description: "Persistent format: each CMD as one length-prefixed frame" },
    timeout: { type: "string", valueHint: "SECONDS", description: "Stop waiting for the agent to close after this long" },
    ...waitArg,
    ...commonArgs,
  },
  async run({ args }) {
    const [addrText, ...cmds] = args._;
    const a = address(addrText);
    if (cmds.length === 0) throw new UsageError("nothing to send: give a command");
    if (!args.persistent && cmds.length > 1) throw new UsageError("disposable mode sends one command: quote it, or use --persistent for several");
    for (const [i, c] of cmds.entries()) {
      const n = new TextEncoder().encode(c).byteLength;
      if (n === 0 || n > 2048) throw new UsageError(`command ${i + 1} is ${n} bytes; the original format takes 1..2048`);
    }
    const timeoutMs = seconds("timeout", args.timeout);
    const log = vgeLog({ quiet: args.quiet, verbose: args.verbose });
    const conn = await openRaw(a, { waitMs: seconds("wait", args.wait), log });
    try {
      if (args.persistent) await sendPersistent(conn, cmds, { timeoutMs });
      else await sendDisposable(conn, cmds[0]!, { timeoutMs });
      return 0;
    } finally {
      conn.close();
    }
  },
});
