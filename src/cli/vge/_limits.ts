// `vge run --memory 256M --pids 64 --cpus 0.5`: the execution's cgroup limits (PROTOCOL.md §5.2).
import { UsageError } from "../../common/argv.ts";
import { MAX_CPU_LIMIT, MAX_PIDS_LIMIT, MIN_CPU_LIMIT, MIN_MEMORY_LIMIT, type ExecLimits } from "../../protocol/v2/messages.ts";

export const limitArgs = {
  memory: { type: "string", valueHint: "BYTES", description: "Memory limit of the command's whole tree, e.g. 256M or 1G (agent with --cgroup; over it the kernel kills inside it only, \"oom\": true)" },
  pids: { type: "string", valueHint: "N", description: "Most processes and threads the command's tree may have at once (agent with --cgroup)" },
  cpus: { type: "string", valueHint: "N", description: "CPU time the command's tree may use, in CPUs, e.g. 0.5 (agent with --cgroup)" },
} as const;

/** `256M` → bytes; K, M, G, T as powers of 1024. */
function bytes(text: string): number {
  const m = /^(\d+)([KMGTkmgt]?)$/.exec(text);
  if (!m) throw new UsageError(`--memory must be a byte count like 268435456, 256M or 1G, got "${text}"`);
  const n = Number(m[1]) * 1024 ** (m[2] ? "KMGT".indexOf(m[2].toUpperCase()) + 1 : 0);
  if (n < MIN_MEMORY_LIMIT || !Number.isSafeInteger(n)) throw new UsageError(`--memory must be at least 1M, got "${text}"`);
  return n;
}

/** The limits given on the command line, or undefined for none. */
export function parseLimits(args: { memory?: string; pids?: string; cpus?: string }): ExecLimits | undefined {
  const l: ExecLimits = {};
  if (args.memory !== undefined) l.memoryBytes = bytes(args.memory);
  if (args.pids !== undefined) {
    if (!/^\d+$/.test(args.pids) || Number(args.pids) < 1 || Number(args.pids) > MAX_PIDS_LIMIT) throw new UsageError(`--pids must be a count 1..${MAX_PIDS_LIMIT}, got "${args.pids}"`);
    l.pids = Number(args.pids);
  }
  if (args.cpus !== undefined) {
    const n = Number(args.cpus);
    if (!/^\d+(\.\d+)?$/.test(args.cpus) || n < MIN_CPU_LIMIT || n > MAX_CPU_LIMIT) throw new UsageError(`--cpus must be a number of CPUs ${MIN_CPU_LIMIT}..${MAX_CPU_LIMIT}, got "${args.cpus}"`);
    l.cpu = n;
  }
  return Object.keys(l).length ? l : undefined;
}
