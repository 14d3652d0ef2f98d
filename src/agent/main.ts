#!/usr/bin/env bun
// Entry point of the guest agent. Errors are caught here once and printed as one line.
import { parseArgs } from "citty";
import pkg from "../../package.json" with { type: "json" };
import { UsageError, splitArgv } from "../common/argv.ts";
import { usageText } from "../common/usage.ts";
import { adoptFd } from "../transport/conn.ts";
import { describeTarget, dial } from "../transport/dial.ts";
import { agentArgs, agentCommand, toConfig, type AgentConfig } from "./cli.ts";
import { EXIT } from "./limits.ts";
import { agentLog } from "./log.ts";
import { exitGracefullyOnTerm } from "./shutdown.ts";
import { serveConnection } from "./session.ts";
import { listenUnix, listenVsock } from "./listen.ts";
import { TokenError } from "../protocol/v2/auth.ts";
import { readTokenFile } from "../common/token-file.ts";
import { PTY_EXEC_ARG, ptyExecMain } from "./pty-exec.ts";
import { onFdWatchFailure } from "../sys/fdwatch.ts";
import { setupContainment } from "./v2/contain.ts";

// A PTY execution's first moments (pty-exec.ts): before anything else runs, no handlers, no logging.
if (process.argv[2] === PTY_EXEC_ARG) ptyExecMain(process.argv.slice(3));

const HELP_NOTES = `
EXAMPLES
  vsock_guest_exec                    dial CID 2 port 1024, run one command, exit with its status
  vsock_guest_exec :1025 persistent   serve length-prefixed commands on port 1025 until the host closes
  vsock_guest_exec -1:                CID -1 (VMADDR_CID_ANY), port 1024
  vsock_guest_exec --unix /run/h.sock persistent   same formats over a Unix socket (tests, proxies)
  vsock_guest_exec --listen :1024     let hosts dial in (QEMU AF_VSOCK connect, Firecracker CONNECT 1024)
  vsock_guest_exec --reconnect persistent          serve the host again after it restarts
  vsock_guest_exec --listen --token-file /etc/vge.token :1024   serve only hosts that hold the token

  Protocol v2 (exit status, output, stdin, PTYs, files; see PROTOCOL.md) is chosen by the host on any
  connection; the mode argument only matters for hosts speaking the original formats.

EXIT STATUS
  disposable: the command's own status (126/127 from the shell); 0 when a persistent or v2 host closes,
  also after a v2 host broke the protocol (it got an ERROR frame); 1 cannot connect or the connection
  failed, or the host did not complete the v2 hello within --handshake-timeout; 2 bad command line or
  token file; 3 nothing runnable was received (command over 2048 bytes, a frame cut off, or no command
  at all); 4 the host was refused because it did not prove it holds the
  --token-file token (or spoke an original format without --allow-legacy); 143 after SIGTERM, once running
  v2 executions and the running persistent command have finished (or 1.5 s have passed; what still runs is
  then killed, its whole process group).
  With --reconnect nothing a host sends ends the agent: it dials again after every connection.

LIMITS (v2)
  An execution over --max-execs, --max-execs-per-conn or --max-ptys gets EXIT {status:"error",
  errno:"EAGAIN"}; a PUT/GET over --max-files-per-conn gets RESULT {ok:false, errno:"EAGAIN"}, a TCP
  stream over --max-tcp-per-conn TCP_CLOSED {ok:false, errno:"EAGAIN"}; the connection goes on. A bad field in any frame gets ERROR {code:"EPROTO"} and that connection closes.
  A host that has not completed the hello within --handshake-timeout gets ERROR {code:"ETIMEDOUT"}.
  The agent stops reading a host that does not read its answers (no unbounded queue).
  With --cgroup DIR every execution runs in a cgroup leaf of its own: its whole tree ends with it and
  EXEC limits (memoryBytes, pids, cpu) are enforced; without it limits get EXIT errno "ENOTSUP".
  Detached executions (EXEC detach) survive their connection; their output kept for a later ATTACH is
  bounded by --detach-memory in all, and --max-detached of them keep output at once.
`;

async function main(argv: string[]): Promise<number> {
  if (argv.includes("--help") || argv.includes("-h")) {
    console.log(await usageText(agentCommand, HELP_NOTES));
    return EXIT.ok;
  }
  if (argv.includes("--version") || argv.includes("-V")) {
    console.log(pkg.version);
    return EXIT.ok;
  }
  let cfg: AgentConfig;
  try {
    cfg = toConfig(parseArgs(splitArgv(argv, agentArgs), agentArgs) as never);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    agentLog(false).error(`${e.message} (see --help)`);
    return EXIT.usage;
  }
  const log = agentLog(cfg.verbose);
  if (cfg.tokenFile !== undefined) {
    try {
      // Read once: a file changed later does not change what this agent accepts.
      cfg.token = readTokenFile(cfg.tokenFile);
      log.info(`hosts must prove they hold the token in ${cfg.tokenFile}${cfg.allowLegacy ? " (original-format hosts are served without it: --allow-legacy)" : ""}`);
    } catch (e) {
      // Never the file's contents: the errors name the path and the length only.
      log.error(e instanceof TokenError ? e.message : `--token-file: ${(e as Error).message}`);
      return EXIT.usage;
    }
  }
  for (const w of cfg.warnings) log.warn(w);
  // Always: without --cgroup the agent still tracks what executions leave running (v2/track.ts).
  try {
    const c = setupContainment({ cgroupDir: cfg.cgroupDir, protect: cfg.protect, warn: (m) => log.warn(m) });
    if (c.tree) log.info(`executions are contained in cgroups under ${c.tree.dir} (controllers: ${[...c.tree.controllers].join(" ") || "none"})`);
    if (c.protect) log.info("OOM score -1000: the OOM killer never picks the agent; executions run at 0");
  } catch (e) {
    // Told to contain: running uncontained instead would be a silent downgrade.
    log.error((e as Error).message);
    return EXIT.usage;
  }
  exitGracefullyOnTerm(log);
  onFdWatchFailure((e) => log.error(`${e.message}; output is read by timer polling until the next wait restarts it`));

  if (cfg.listen) {
    return cfg.target.kind === "unix" ? listenUnix(cfg, cfg.target.path, log) : listenVsock(cfg, cfg.target.port, cfg.allowCids, log);
  }
  const where = describeTarget(cfg.target);
  for (let session = 1; ; session++) {
    let fd: number;
    try {
      fd = await dial(cfg.target, {
        // Reconnecting waits for the host as long as it takes: that is what the option is for.
        retryMs: session > 1 ? Infinity : cfg.retryMs,
        onRetry: (err, _wait, attempt) => {
          if (attempt === 1) log.info(`${where}: ${err.message}; host not listening yet, retrying${session > 1 ? "" : ` for up to ${cfg.retryMs / 1000}s`}`);
          // One attempt every ~50 ms (dial.ts): a line every ~5 s, not 20 a second, on a verbose console.
          else if (attempt % 100 === 0) log.debug(`${where}: attempt ${attempt}: ${err.message}`);
        },
      });
    } catch (e) {
      log.error(`cannot connect to ${where}: ${(e as Error).message}`);
      return EXIT.connect;
    }
    log.debug(`connected to ${where}`);
    // serveConnection never throws: nothing a host sends ends the agent; with --reconnect it dials again.
    const code = await serveConnection(await adoptFd(fd), cfg, log, { execFd: fd });
    if (!cfg.reconnect) return code;
    log.info(`${where}: host closed the connection; reconnecting`);
  }
}

// Last resort: an error thrown outside any connection's handling (a bug of ours) is logged, and the agent
// goes on serving; every connection catches its own errors (v2/server.ts, session.ts) before this.
const internal = (e: unknown) => agentLog(false).error(`internal error (continuing): ${(e as Error)?.stack ?? String(e)}`);
process.on("unhandledRejection", internal);
process.on("uncaughtException", internal);

try {
  process.exit(await main(process.argv.slice(2)));
} catch (e) {
  const err = e as Error;
  agentLog(false).error(process.argv.includes("--verbose") ? (err.stack ?? err.message) : err.message);
  process.exit(EXIT.connect);
}
