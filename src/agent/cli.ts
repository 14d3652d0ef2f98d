// `vsock_guest_exec [CID][:PORT] [persistent]` plus the explicit options. Parses, validates, hands over.
import { defineCommand } from "citty";
import pkg from "../../package.json" with { type: "json" };
import { UsageError } from "../common/argv.ts";
import type { Target } from "../transport/dial.ts";
import { parseAddress, parseUint } from "./address.ts";
import { packSockaddrUn } from "../sys/sockaddr.ts";
import { DEFAULT_HANDSHAKE_TIMEOUT_S, DEFAULT_LIMITS, DEFAULT_PAUSE_MS, DEFAULT_RETRY_S, type Limits } from "./limits.ts";

export const agentArgs = {
  address: { type: "positional", required: false, valueHint: "[CID][:PORT]", description: "Host address, as in the original tool (default 2:1024)" },
  mode: { type: "positional", required: false, valueHint: "persistent", description: "`persistent` serves length-prefixed commands until the host closes; otherwise one command is run (disposable)" },
  cid: { type: "string", valueHint: "N", description: "CID to dial, any 32-bit value (-1 for VMADDR_CID_ANY); overrides the address" },
  port: { type: "string", valueHint: "N", description: "Port to dial, 0..4294967295; overrides the address" },
  unix: { type: "string", valueHint: "PATH", description: "Dial this Unix socket instead of AF_VSOCK (same formats)" },
  retry: { type: "string", valueHint: "SECONDS", description: `Keep retrying while the host is not listening, up to this long (default ${DEFAULT_RETRY_S}; 0 tries once)` },
  listen: { type: "boolean", description: "Listen on PORT (any local CID) or on --unix PATH and serve every host that dials in, many at once" },
  "allow-cid": { type: "string", valueHint: "LIST", description: "Listen mode: peer CIDs to accept, comma-separated, or `any` (default 2, the host)" },
  reconnect: { type: "boolean", description: "Dial again, every 50 ms and with no time limit, whenever the host goes away (persistent and v2 hosts)" },
  "handshake-timeout": { type: "string", valueHint: "SECONDS", description: `v2: time a host has to complete the hello (HELLO, and AUTH with a token), from its magic, or in listen mode from connecting; then ERROR ETIMEDOUT and the connection closes (default ${DEFAULT_HANDSHAKE_TIMEOUT_S}; 0 = no limit)` },
  pause: { type: "string", valueHint: "MS", description: `Disposable: a command is complete after this long without new bytes (default ${DEFAULT_PAUSE_MS})` },
  "max-execs": { type: "string", valueHint: "N", description: `v2: executions running at once in the agent; more get EXIT error EAGAIN (default ${DEFAULT_LIMITS.execs})` },
  "max-execs-per-conn": { type: "string", valueHint: "N", description: `v2: executions running at once per connection (default ${DEFAULT_LIMITS.execsPerConn})` },
  "max-detached": { type: "string", valueHint: "N", description: `v2: detached executions at once, running (keep 0 too) or finished with output kept (default ${DEFAULT_LIMITS.detached}); finished ones give way first, then EXIT error EAGAIN` },
  "detach-memory": { type: "string", valueHint: "MIB", description: `v2: output all detached executions may keep for replay, in MiB (default ${DEFAULT_LIMITS.detachMemory / 1048576})` },
  "max-ptys": { type: "string", valueHint: "N", description: `v2: executions on a pseudo-terminal at once in the agent (default ${DEFAULT_LIMITS.ptys})` },
  "max-files-per-conn": { type: "string", valueHint: "N", description: `v2: PUT/GET requests open at once per connection; more get RESULT EAGAIN (default ${DEFAULT_LIMITS.filesPerConn})` },
  "max-tcp-per-conn": { type: "string", valueHint: "N", description: `v2: TCP streams open at once per connection; more get TCP_CLOSED EAGAIN (default ${DEFAULT_LIMITS.tcpPerConn})` },
  "max-conns": { type: "string", valueHint: "N", description: `Listen mode: connections served at once; at the limit the oldest one still in its hello makes room, else ERROR EBUSY (default ${DEFAULT_LIMITS.conns})` },
  "token-file": { type: "string", valueHint: "PATH", description: "Serve only v2 hosts that prove they hold the token in this file (read once; one trailing newline ignored; at least 16 bytes)" },
  "allow-legacy": { type: "boolean", description: "With --token-file: still serve hosts speaking the original formats, which cannot authenticate" },
  "privileged-port": { type: "boolean", description: "Listen mode on AF_VSOCK: accept only peers whose source port is below 1024 (bound by root on the host)" },
  cgroup: { type: "string", valueHint: "DIR", description: "v2: run each execution in a cgroup v2 leaf of its own under DIR (the agent moves itself into DIR/agent): its whole tree ends with it, and EXEC limits are enforced; without it limits are refused (ENOTSUP). `self`: the agent's own cgroup (systemd Delegate=yes)" },
  protect: { type: "boolean", description: "Set the agent's OOM score to -1000 (the kernel's OOM killer never picks it); executions are born at 0" },
  verbose: { type: "boolean", alias: "v", description: "Log command texts and connection details" },
  version: { type: "boolean", alias: "V", description: "Print the version" },
} as const;

export interface AgentConfig {
  target: Target;
  mode: "disposable" | "persistent";
  retryMs: number;
  pauseMs: number;
  /** --handshake-timeout in ms; 0: none. */
  handshakeTimeoutMs: number;
  verbose: boolean;
  listen: boolean;
  allowCids: Set<number> | "any";
  reconnect: boolean;
  limits: Limits;
  warnings: string[];
  /** The token file's path; main reads it once into `token`. */
  tokenFile?: string;
  token?: Uint8Array;
  allowLegacy: boolean;
  privilegedPort: boolean;
  /** --cgroup DIR: contain executions there (v2/contain.ts). */
  cgroupDir?: string;
  /** --protect: OOM score -1000 for the agent, 0 for what it runs. */
  protect: boolean;
}

type Parsed = { address?: string; mode?: string; cid?: string; port?: string; unix?: string; retry?: string; pause?: string; "handshake-timeout"?: string; verbose?: boolean; listen?: boolean; "allow-cid"?: string; reconnect?: boolean; "max-execs"?: string; "max-execs-per-conn"?: string; "max-ptys"?: string; "max-detached"?: string; "detach-memory"?: string; "max-files-per-conn"?: string; "max-tcp-per-conn"?: string; "max-conns"?: string; "token-file"?: string; "allow-legacy"?: boolean; "privileged-port"?: boolean; cgroup?: string; protect?: boolean; _: string[] };

function num(name: string, text: string, min: number, max: number): number {
  const n = parseUint(name, text, min, max);
  if (typeof n === "string") throw new UsageError(n);
  return n;
}

/** Turns parsed arguments into a validated configuration; UsageError on anything wrong. */
export function toConfig(args: Parsed): AgentConfig {
  if (args._.length > 2) throw new UsageError(`unexpected argument "${args._[2]}"`);
  const warnings: string[] = [];
  // A lone "persistent" names the mode with the default address. The original read it as the address
  // (atoi gave CID 0) and ran disposable, which nobody can have meant; with --unix it is the only way.
  if (args.address === "persistent" && args.mode === undefined) args = { ...args, address: undefined, mode: "persistent" };
  const explicit = args.unix !== undefined || args.cid !== undefined || args.port !== undefined;
  if (explicit && args.address !== undefined) {
    if (args.mode !== undefined) throw new UsageError("give the address either as [CID][:PORT] or with --cid/--port/--unix, not both");
    throw new UsageError(`unexpected argument "${args.address}": with --cid, --port or --unix give no [CID][:PORT] address; the only argument is the mode "persistent"`);
  }
  let mode: AgentConfig["mode"] = "disposable";
  if (args.mode === "persistent") mode = "persistent";
  else if (args.mode !== undefined) warnings.push(`second argument "${args.mode}" is not "persistent"; running in disposable mode`);

  let target: Target;
  if (args.unix !== undefined) {
    if (args.cid !== undefined || args.port !== undefined) throw new UsageError("--unix cannot be combined with --cid or --port");
    try {
      packSockaddrUn(args.unix);
    } catch (e) {
      throw new UsageError(`--unix: ${(e as Error).message}`);
    }
    target = { kind: "unix", path: args.unix };
  } else {
    const addr = parseAddress(args.address);
    warnings.push(...addr.warnings);
    const cid = args.cid === undefined ? addr.cid : args.cid === "-1" ? 0xffffffff : num("--cid", args.cid, 0, 0xffffffff);
    const port = args.port === undefined ? addr.port : num("--port", args.port, 0, 0xffffffff);
    target = { kind: "vsock", cid, port };
  }
  const retryMs = args.retry === undefined ? DEFAULT_RETRY_S * 1000 : num("--retry", args.retry, 0, 86_400) * 1000;
  const pauseMs = args.pause === undefined ? DEFAULT_PAUSE_MS : num("--pause", args.pause, 1, 60_000);
  const handshakeTimeoutMs = (args["handshake-timeout"] === undefined ? DEFAULT_HANDSHAKE_TIMEOUT_S : num("--handshake-timeout", args["handshake-timeout"], 0, 86_400)) * 1000;
  const listen = !!args.listen;
  if (listen && args.reconnect) throw new UsageError("--reconnect is for dialing the host; it cannot be combined with --listen");
  if (!listen && args["allow-cid"] !== undefined) throw new UsageError("--allow-cid only applies with --listen");
  let allowCids: AgentConfig["allowCids"] = new Set([2]);
  if (args["allow-cid"] !== undefined) {
    const text = args["allow-cid"];
    allowCids = text === "any" ? "any" : new Set(text.split(",").map((c) => num("--allow-cid", c.trim(), 0, 0xffffffff)));
  }
  const limit = (name: keyof Parsed & `max-${string}`, dflt: number) => (args[name] === undefined ? dflt : num(`--${name}`, args[name] as string, 1, 1_000_000));
  const limits: Limits = {
    execs: limit("max-execs", DEFAULT_LIMITS.execs),
    execsPerConn: limit("max-execs-per-conn", DEFAULT_LIMITS.execsPerConn),
    ptys: limit("max-ptys", DEFAULT_LIMITS.ptys),
    filesPerConn: limit("max-files-per-conn", DEFAULT_LIMITS.filesPerConn),
    tcpPerConn: limit("max-tcp-per-conn", DEFAULT_LIMITS.tcpPerConn),
    conns: limit("max-conns", DEFAULT_LIMITS.conns),
    detached: limit("max-detached", DEFAULT_LIMITS.detached),
    detachMemory: args["detach-memory"] === undefined ? DEFAULT_LIMITS.detachMemory : num("--detach-memory", args["detach-memory"], 1, 65_536) * 1024 * 1024,
  };
  if (!listen && args["max-conns"] !== undefined) throw new UsageError("--max-conns only applies with --listen");
  const auth = authConfig(args, listen, target);
  if (args.cgroup !== undefined && !args.cgroup.startsWith("/") && args.cgroup !== "self") throw new UsageError("--cgroup needs an absolute DIR on a cgroup2 mount, e.g. /sys/fs/cgroup/vge, or `self` (the agent's own cgroup, under a systemd unit with Delegate=yes)");
  return { target, mode, retryMs, pauseMs, handshakeTimeoutMs, verbose: !!args.verbose, listen, allowCids, reconnect: !!args.reconnect, limits, warnings, ...auth, cgroupDir: args.cgroup, protect: !!args.protect };
}

function authConfig(args: Parsed, listen: boolean, target: Target): Pick<AgentConfig, "tokenFile" | "allowLegacy" | "privilegedPort"> {
  const tokenFile = args["token-file"];
  if (tokenFile === "") throw new UsageError("--token-file needs a PATH");
  if (args["allow-legacy"] && tokenFile === undefined) throw new UsageError("--allow-legacy only applies with --token-file");
  // The peer's port is only the host's word on AF_VSOCK; a Unix socket has no port to check.
  if (args["privileged-port"] && !(listen && target.kind === "vsock")) throw new UsageError("--privileged-port only applies with --listen on AF_VSOCK (not --unix)");
  return { tokenFile, allowLegacy: !!args["allow-legacy"], privilegedPort: !!args["privileged-port"] };
}

export const agentCommand = defineCommand({
  meta: { name: "vsock_guest_exec", version: pkg.version, description: "Dial the host over AF_VSOCK and run the commands it sends" },
  args: agentArgs,
});
