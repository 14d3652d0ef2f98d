// initrd sizes per compressor: the busybox test image (scripts/qemu/busybox-initrd.sh) and the product's
// dracut image (scripts/build-initrd.sh), each built once uncompressed (--compress cat), then piped
// through each compressor, exactly as the scripts' --compress would. zstd -19 and xz take minutes on
// ~100 MiB on 2 cores (zstd -19 --long: 2 to over 6 min), so sizes are cached under .cache/bench, keyed
// by what the image is built from (agent binary, scripts, kernel version) and the command, and a
// compression that would pass the bench's deadline is skipped and listed as not measured.
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { findGuestDeps } from "../../scripts/qemu/deps.ts";
import { ROOT } from "../../test/helpers/build.ts";
import type { Ctx } from "../_ctx.ts";
import { run, start, stop } from "../_procs.ts";
import type { Row, Section } from "../_report.ts";
import { summarize } from "../_stats.ts";

const COMPRESSORS: [string, string][] = [
  ["gzip", "gzip -9 -n"],
  ["zstd -3", "zstd -3 -q -T0"],
  ["zstd -19 (build-initrd.sh default)", "zstd -19 -q -T0"],
  ["zstd -19 --long", "zstd -19 --long -q -T0"],
  ["xz", "xz -T0 --check=crc32"],
];
const CACHE = join(ROOT, ".cache", "bench", "initrd-sizes.json");

export async function initrdSection(ctx: Ctx): Promise<Section> {
  const skipped: string[] = [];
  const rows = await initrdRows(ctx, skipped);
  return {
    title: "initrd size per compressor",
    about: "Each image built once by its script with `--compress cat`, then piped through each compressor (what `--compress CMD` does). Ratio = compressed / uncompressed cpio.",
    rows,
    skipped: skipped.length ? { reason: "not measured: would pass the bench's deadline (sizes are cached once measured: `bun run bench --only initrd`)", labels: skipped } : undefined,
  };
}

async function initrdRows(ctx: Ctx, skipped: string[]): Promise<Row[]> {
  const found = findGuestDeps();
  if ("missing" in found) throw new Error(`initrd sizes need the guest inputs: ${found.missing}`);
  const d = found.deps;
  const cache: Record<string, number> = existsSync(CACHE) ? JSON.parse(readFileSync(CACHE, "utf8")) : {};
  const rows: Row[] = [];
  const images: [string, string[]][] = [
    ["busybox", ["bash", join(ROOT, "scripts/qemu/busybox-initrd.sh"), "--agent", d.agent, "--kver", d.kver, "--kroot", d.kroot]],
    ["dracut", ["bash", join(ROOT, "scripts/build-initrd.sh"), "--agent", d.agent, "--kver", d.kver, "--kroot", d.kroot]],
  ];
  const inputs: Record<string, string[]> = {
    busybox: [join(ROOT, "scripts/qemu/busybox-initrd.sh"), join(ROOT, "scripts/qemu/busybox-init.sh")],
    dracut: [join(ROOT, "scripts/build-initrd.sh"), ...readdirSync(join(ROOT, "initrd/50vsock-guest-exec")).map((f) => join(ROOT, "initrd/50vsock-guest-exec", f))],
  };
  for (const [kind, cmd] of images) {
    ctx.log(`initrd ${kind}: building uncompressed`);
    const cpio = join(ctx.dir, `${kind}.cpio`);
    await run([...cmd, "-o", cpio, "--compress", "cat"], Math.min(300_000, ctx.left()));
    const raw = statSync(cpio).size;
    const rawStats = summarize([raw / 1024 / 1024]);
    rows.push({ label: `initrd ${kind}: none (cpio)`, unit: "MiB", stats: rawStats, better: "lower", note: `agent ${(statSync(d.agent).size / 1024 / 1024).toFixed(1)} MiB of it` });
    // The images are not byte-reproducible (file times), so the key is what they are built from.
    const h = new Bun.CryptoHasher("sha256").update(`${kind} ${d.kver}\n`).update(readFileSync(d.agent));
    for (const f of inputs[kind]!) h.update(readFileSync(f));
    const hash = h.digest("hex").slice(0, 16);
    for (const [name, comp] of COMPRESSORS) {
      const key = `${hash} ${comp}`;
      let size = cache[key];
      let note = "cached: same agent, scripts and kernel";
      if (size === undefined) {
        ctx.log(`initrd ${kind}: ${comp}`);
        const t0 = performance.now();
        try {
          size = await compressedSize(comp, cpio, ctx.left() - 5000);
        } catch (e) {
          if (ctx.left() > 6000) throw e;
          skipped.push(`initrd ${kind}: ${name}`);
          continue;
        }
        note = `compressed in ${((performance.now() - t0) / 1000).toFixed(0)} s`;
        cache[key] = size;
        mkdirSync(join(ROOT, ".cache", "bench"), { recursive: true });
        writeFileSync(CACHE, JSON.stringify(cache, null, 1));
      }
      rows.push({ label: `initrd ${kind}: ${name}`, unit: "MiB", stats: summarize([size / 1024 / 1024]), limit: { label: "cpio", stats: rawStats }, better: "lower", note: `\`${comp}\`; ${note}` });
    }
  }
  return rows;
}

/**
 * Bytes `cmd` writes for the file on its stdin, counted here: no shell pipeline, so that the timeout's
 * SIGKILL reaches the compressor itself (killing a `sh -c "… | wc -c"` leaves the compressor running).
 */
async function compressedSize(cmd: string, file: string, timeoutMs: number): Promise<number> {
  const p = start(cmd.split(" "), { timeoutMs, stdin: Bun.file(file), stdout: "pipe" });
  try {
    let n = 0;
    for await (const c of p.stdout as ReadableStream<Uint8Array>) n += c.byteLength;
    const code = await p.exited;
    if (code !== 0) throw new Error(`${cmd} exited ${code}${p.signalCode ? ` (${p.signalCode})` : ""}`);
    return n;
  } finally {
    await stop(p);
  }
}

export const INITRD_LABELS = ["busybox", "dracut"].flatMap((k) => ["none (cpio)", ...COMPRESSORS.map(([n]) => n)].map((c) => `initrd ${k}: ${c}`));

export function initrdSkipped(reason: string): Section {
  return { title: "initrd size per compressor", about: "Not measured in this run.", rows: [], skipped: { reason, labels: INITRD_LABELS } };
}
