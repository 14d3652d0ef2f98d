// `bun src/cli/vge.ts ARGS` as a user would run it, bounded by coreutils timeout.
import { spawn } from "bun";
import { REPO } from "../../scripts/qemu/deps.ts";

export async function vge(args: string[], timeoutS = 60): Promise<{ code: number; stdout: string; stderr: string }> {
  const p = spawn(["timeout", "-k", "5", String(timeoutS), process.execPath, "src/cli/vge.ts", ...args], {
    cwd: REPO,
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, NO_COLOR: "1" },
  });
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, stdout, stderr };
}
