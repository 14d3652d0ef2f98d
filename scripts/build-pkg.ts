// `bun run build:pkg` (and npm's prepack): what the npm package ships. ESM JavaScript for Node ≥ 20 and
// Bun in dist/lib (the library entries, the vge CLI, shared chunks; AF_VSOCK and bun:ffi sit in a chunk
// that only a vsock address loads), and .d.ts declarations for consumers in dist/types.
import { chmodSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";

const ROOT = join(import.meta.dir, "..");
const LIB = join(ROOT, "dist/lib");
const TYPES = join(ROOT, "dist/types");
const started = performance.now();

rmSync(LIB, { recursive: true, force: true });
rmSync(TYPES, { recursive: true, force: true });

const result = await Bun.build({
  entrypoints: ["src/host/index.ts", "src/protocol/index.ts", "src/cli/vge.ts"].map((p) => join(ROOT, p)),
  root: join(ROOT, "src"),
  outdir: LIB,
  target: "node",
  format: "esm",
  splitting: true,
  sourcemap: "none",
  // citty is bundled: the package has no runtime dependencies to fetch.
  naming: { entry: "[dir]/[name].js", chunk: "_chunks/[name]-[hash].js" },
});
if (!result.success) {
  for (const log of result.logs) console.error(log);
  console.error("build:pkg: bundling failed");
  process.exit(1);
}

// The CLI starts with whichever runtime runs it; through npm's bin link that is Node.
const vge = join(LIB, "cli/vge.js");
const body = readFileSync(vge, "utf8").replace(/^#!.*\n/, "");
writeFileSync(vge, `#!/usr/bin/env node\n${body}`);
chmodSync(vge, 0o755);

const tsc = Bun.spawnSync([process.execPath, join(ROOT, "node_modules/typescript/bin/tsc"), "-p", join(ROOT, "tsconfig.pkg.json")], { cwd: ROOT, stdout: "inherit", stderr: "inherit" });
if (tsc.exitCode !== 0) {
  console.error("build:pkg: declarations failed");
  process.exit(1);
}
// tsc keeps the sources' ".ts" specifiers in declarations; NodeNext consumers resolve ".js" to ".d.ts".
// Only what the public entries reach is kept: tsc also declares the vsock chunk's modules (src/sys,
// Bun's socket types), which no public type mentions.
const SPECIFIER = /((?:from|import)\s*\(?\s*["'])(\.{1,2}\/[^"']*)\.ts(["'])/g;
const reached = new Set<string>();
const pending = ["host/index.d.ts", "protocol/index.d.ts"].map((p) => join(TYPES, p));
while (pending.length) {
  const file = pending.pop()!;
  if (reached.has(file)) continue;
  reached.add(file);
  const text = readFileSync(file, "utf8");
  for (const m of text.matchAll(SPECIFIER)) pending.push(join(dirname(file), `${m[2]}.d.ts`));
  writeFileSync(file, text.replace(SPECIFIER, "$1$2.js$3"));
}
for (const rel of new Bun.Glob("**/*.d.ts").scanSync(TYPES)) if (!reached.has(join(TYPES, rel))) rmSync(join(TYPES, rel));
for (const file of reached) {
  if (/from\s*["']bun(:[a-z]+)?["']/.test(readFileSync(file, "utf8"))) {
    console.error(`build:pkg: ${file} imports Bun's types; the public declarations must not`);
    process.exit(1);
  }
}
console.log(`dist/lib, dist/types  (${((performance.now() - started) / 1000).toFixed(1)} s)`);
