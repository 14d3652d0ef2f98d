// `bun run build`: standalone executables into dist/. The agent for each guest architecture, and the
// host CLI `vge` for each host platform (Bun downloads the other targets' runtimes from npm the first
// time). `bun build.ts NAME...` builds only the outputs whose file name ends with one of the NAMEs.
import { statSync } from "node:fs";
import { basename } from "node:path";

const AGENT = "src/agent/main.ts";
/** The agent's poll thread (src/sys/fdwatch.ts) is a Worker: a second entry point inside the same binary. */
const AGENT_THREADS = ["src/sys/_fdwatch-thread.ts"];
const VGE = "src/cli/vge.ts";
const TARGETS = [
  { entry: AGENT, target: "bun-linux-x64", out: "dist/vsock_guest_exec-linux-x64" },
  { entry: AGENT, target: "bun-linux-arm64", out: "dist/vsock_guest_exec-linux-arm64" },
  { entry: VGE, target: "bun-linux-x64", out: "dist/vge-linux-x64" },
  { entry: VGE, target: "bun-linux-arm64", out: "dist/vge-linux-arm64" },
  { entry: VGE, target: "bun-darwin-arm64", out: "dist/vge-darwin-arm64" },
  { entry: VGE, target: "bun-darwin-x64", out: "dist/vge-darwin-x64" },
] as const;

const only = process.argv.slice(2);
for (const t of TARGETS) {
  if (only.length && !only.some((o) => basename(t.out).endsWith(o))) continue;
  const started = performance.now();
  const result = await Bun.build({
    entrypoints: t.entry === AGENT ? [t.entry, ...AGENT_THREADS] : [t.entry],
    // Modules are stored in the binary by their path below root: src/sys/fdwatch.ts finds its thread there.
    root: "src",
    // vge's AF_VSOCK module (bun:ffi, libc) stays a lazy import inside the binary: it is evaluated only
    // when a vsock address is used, so Unix and Firecracker addresses never open libc's FFI table.
    compile: { target: t.target, outfile: t.out },
    // Bytecode: the agent starts ~3x faster (30.8 → 10.6 ms to listening). It was taken out once for a
    // worse peak under a hostile host; that peak was Bun's pipe read-ahead (now gone: fd-pump.ts), and with
    // bytecode the never-reading host's peak is +2 MiB. ESM, because the entry points use top-level await.
    bytecode: true,
    format: "esm",
    minify: true,
    sourcemap: "none",
  });
  if (!result.success) {
    for (const log of result.logs) console.error(log);
    console.error(`build: ${t.out} (${t.target}) failed`);
    process.exit(1);
  }
  const mib = (statSync(t.out).size / 2 ** 20).toFixed(1);
  console.log(`${t.out}  ${mib} MiB  (${((performance.now() - started) / 1000).toFixed(1)} s)`);
}
