#!/usr/bin/env bun
// `vge`: the host CLI over the host library. Parses strictly, runs one command, and catches errors here
// once: one line on stderr (the whole error with --verbose), exit 2 for bad input, 255 for vge's failures.
import { defineCommand, runCommand, type CommandDef } from "citty";
import { stripVTControlCharacters } from "node:util";
import pkg from "../../package.json" with { type: "json" };
import { UsageError, splitArgv } from "../common/argv.ts";
import { usageText } from "../common/usage.ts";
import { FileError } from "../host/index.ts";
import cp, { CP_NOTES } from "./vge/cp.ts";
import { EXIT, EXIT_NOTES } from "./vge/_exit.ts";
import forward, { FORWARD_NOTES } from "./vge/forward.ts";
import info from "./vge/info.ts";
import { describeError, vgeLog } from "./vge/_log.ts";
import run, { RUN_NOTES } from "./vge/run.ts";
import attach, { ATTACH_NOTES } from "./vge/attach.ts";
import kill from "./vge/kill.ts";
import ps from "./vge/ps.ts";
import send from "./vge/send.ts";
import shell from "./vge/shell.ts";
import wait from "./vge/wait.ts";

const commands: Record<string, { cmd: CommandDef<any>; notes?: string }> = {
  run: { cmd: run, notes: RUN_NOTES },
  shell: { cmd: shell },
  cp: { cmd: cp, notes: CP_NOTES },
  forward: { cmd: forward, notes: FORWARD_NOTES },
  info: { cmd: info },
  wait: { cmd: wait },
  send: { cmd: send },
  ps: { cmd: ps },
  attach: { cmd: attach, notes: ATTACH_NOTES },
  kill: { cmd: kill },
};

const ADDRESS_NOTES = `
ADDRESSES
  vsock:CID:PORT            connect to an agent listening in the guest (vsock_guest_exec --listen)
  vsock-listen:[CID:]PORT   wait for a guest to dial the host on AF_VSOCK (QEMU vhost-vsock)
  unix:PATH                 connect to a Unix socket where an agent or proxy listens
  unix-listen:PATH          wait for a guest on a Unix socket (vfkit/krunkit/libkrun per-port sockets;
                            Firecracker / Cloud Hypervisor forward guest port P to UDS_PATH_P)
  fc:UDS_PATH:PORT          Firecracker / Cloud Hypervisor / vhost-device-vsock: CONNECT PORT handshake
  fc-listen:UDS_PATH:PORT   the same as unix-listen:UDS_PATH_PORT
`;

const main = defineCommand({
  meta: { name: "vge", version: pkg.version, description: "Run commands in a Linux guest over vsock (host side of vsock-guest-exec)" },
  subCommands: Object.fromEntries(Object.entries(commands).map(([k, v]) => [k, v.cmd])),
});

const isVerbose = (argv: string[]) => argv.slice(0, (argv.indexOf("--") + 1 || argv.length + 1) - 1).some((a) => a === "--verbose" || a === "-v");

async function vge(argv: string[]): Promise<number> {
  // Global flags may come before the command name: `vge --verbose run ...`.
  const globals = new Set(["--verbose", "-v", "--quiet", "-q"]);
  const lead = argv.findIndex((a) => !globals.has(a));
  const name = lead < 0 ? undefined : argv[lead];
  const rest = [...argv.slice(0, Math.max(lead, 0)), ...argv.slice(lead + 1)];
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(`${await usageText(main, `${ADDRESS_NOTES}${EXIT_NOTES}`)}`);
    return name === undefined ? EXIT.usage : EXIT.ok;
  }
  if (name === "--version" || name === "-V") {
    process.stdout.write(`${pkg.version}\n`);
    return EXIT.ok;
  }
  const entry = commands[name];
  if (!entry) throw new UsageError(`unknown command "${name}"; commands: ${Object.keys(commands).join(", ")}`);
  const dashdash = rest.indexOf("--");
  const opts = dashdash < 0 ? rest : rest.slice(0, dashdash);
  if (opts.includes("--help") || opts.includes("-h")) {
    process.stdout.write(await usageText(entry.cmd, `${entry.notes ?? ""}${ADDRESS_NOTES}${EXIT_NOTES}`, main));
    return EXIT.ok;
  }
  const split = splitArgv(rest, entry.cmd.args as never);
  const { result } = await runCommand(entry.cmd, { rawArgs: split });
  return typeof result === "number" ? result : EXIT.ok;
}

const argv = process.argv.slice(2);
let status: number;
try {
  status = await vge(argv);
} catch (e) {
  const log = vgeLog({ verbose: isVerbose(argv) });
  // citty's own argument errors (a missing positional) are usage errors too.
  const citty = (e as { name?: string; code?: string }).name === "CLIError" && (e as { code?: string }).code === "EARG";
  if (e instanceof UsageError || citty) {
    log.error(`${stripVTControlCharacters((e as Error).message)} (see vge --help)`);
    status = EXIT.usage;
  } else {
    log.error(describeError(e, isVerbose(argv)));
    status = e instanceof FileError ? EXIT.failed : EXIT.vge;
  }
}
process.exit(status);
