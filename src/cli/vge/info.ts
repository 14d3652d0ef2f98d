// `vge info ADDRESS`: what the agent said in its WELCOME, and the round trip of one PING.
import { defineCommand } from "citty";
import { printable, printableJson } from "../../host/index.ts";
import { address, addressArg, commonArgs, tokenArg, seconds, waitArg } from "./_args.ts";
import { openGuest } from "./_guest.ts";
import { vgeLog } from "./_log.ts";
import { writeAll } from "./_stdio.ts";

export default defineCommand({
  meta: { name: "info", description: "Show the agent's version and the guest's facts (hostname, kernel, arch, ...) and the round-trip time" },
  args: {
    ...addressArg,
    json: { type: "boolean", description: "Print one JSON object: the WELCOME fields plus rttMs" },
    ...waitArg,
    ...tokenArg, ...commonArgs,
  },
  async run({ args }) {
    const a = address(args._[0]);
    const log = vgeLog({ quiet: args.quiet, verbose: args.verbose });
    const guest = await openGuest(a, { waitMs: seconds("wait", args.wait), log, tokenFile: args["token-file"] });
    try {
      const rttMs = Math.round((await guest.ping()) * 1000) / 1000;
      const i = guest.info;
      if (args.json) {
        await writeAll(process.stdout, `${printableJson({ ...i, rttMs })}\n`);
        return 0;
      }
      // Every value came from the guest: escaped, so a hostname cannot carry terminal sequences.
      const rows: [string, unknown][] = [
        ["agent", `${i.agent} (protocol ${i.version})`],
        ["hostname", i.hostname],
        ["kernel", i.kernel],
        ["arch", i.arch],
        ["initrd", i.initrd ? "yes (running from the initramfs)" : "no"],
        ["agent pid", i.pid],
        ["capabilities", i.capabilities.join(" ")],
        ["window", `${i.window} bytes`],
        ["rtt", `${rttMs.toFixed(3)} ms`],
      ];
      await writeAll(process.stdout, rows.map(([k, v]) => `${`${k}:`.padEnd(14)}${printable(String(v))}\n`).join(""));
      return 0;
    } finally {
      guest.close();
    }
  },
});
