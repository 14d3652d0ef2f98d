// `bun run build`: standalone agent executables for each guest architecture, into dist/.
import { statSync } from "node:fs";

const TARGETS = [
  { target: "bun-linux-x64", out: "dist/vsock_guest_exec-linux-x64" },
  { target: "bun-linux-arm64", out: "dist/vsock_guest_exec-linux-arm64" },
] as const;

const only = process.argv.slice(2);
for (const t of TARGETS) {
  if (only.length && !only.some((o) => t.out.endsWith(o))) continue;
  const started = performance.now();
  const result = await Bun.build({
    entrypoints: ["src/agent/main.ts"],
    compile: { target: t.target, outfile: t.out },
    minify: true,
    sourcemap: "none",
  });
  if (!result.success) {
    for (const log of result.logs) console.error(log);
    console.error(`build: ${t.target} failed`);
    process.exit(1);
  }
  const mib = (statSync(t.out).size / 2 ** 20).toFixed(1);
  console.log(`${t.out}  ${mib} MiB  (${((performance.now() - started) / 1000).toFixed(1)} s)`);
}
