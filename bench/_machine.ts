// The machine and the versions of everything measured, for the head of BENCHMARKS.md.
import { spawnSync } from "bun";
import { cpus, release, totalmem } from "node:os";

function firstLine(cmd: string[]): string {
  try {
    const r = spawnSync(cmd, { stdout: "pipe", stderr: "pipe", timeout: 10_000 });
    const text = `${r.stdout.toString()}\n${r.stderr.toString()}`.trim();
    return text.split("\n").find((l) => l.trim() !== "")?.trim() ?? "unknown";
  } catch {
    return "not installed";
  }
}

export interface Machine {
  cpu: string;
  cores: number;
  memGiB: number;
  kernel: string;
  versions: Record<string, string>;
}

export function machine(agentBinary: string): Machine {
  const c = cpus();
  return {
    cpu: c[0]?.model ?? "unknown",
    cores: c.length,
    memGiB: +(totalmem() / 1024 ** 3).toFixed(1),
    kernel: release(),
    versions: {
      bun: Bun.version,
      agent: firstLine([agentBinary, "--version"]),
      "qemu-ga": firstLine(["/usr/sbin/qemu-ga", "--version"]),
      OpenSSH: firstLine(["ssh", "-V"]),
      socat: firstLine(["socat", "-V"]).startsWith("socat by") ? (spawnSync(["socat", "-V"]).stdout.toString().split("\n")[1] ?? "").trim() : firstLine(["socat", "-V"]),
      "qemu-system-x86_64": firstLine(["qemu-system-x86_64", "--version"]),
    },
  };
}
