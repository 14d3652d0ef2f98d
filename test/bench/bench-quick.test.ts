// `bun run bench --quick` as a smoke check: it runs to the end and writes every row with numbers.
// No timing target either, only the regression guard (bench/guard.ts, `--guard`): generous bounds on ratios
// measured side by side in the same run, which a change that doubles a cost (an exec, a streamed byte) breaks.
// Rows that --quick does not measure by design (the real guest, the initrd compressions) must still be
// listed, marked "not measured"; every other row must carry numbers in each column.
import { expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT } from "../helpers/build.ts";
import { GUEST_LABELS } from "../../bench/sections/guest.ts";
import { INITRD_LABELS } from "../../bench/sections/initrd.ts";

const PEERS = ["agent v2", "qemu-ga", "ssh ControlMaster", "ssh fresh", "socat EXEC", "C floor: C server, Bun client", "C floor: local posix_spawn", "C floor: C client → C server"];
const MEASURED = [
  ...["/bin/true", "echo hi"].flatMap((c) => [`local spawn (limit): ${c}`, ...PEERS.map((p) => `${p}: ${c}`)]),
  "local spawn sh -c true (limit)",
  "original persistent format",
  "v2 EXEC → EXIT",
  // bench/peers/floor.c, built with gcc at bench time: the floor each missed target is stated against.
  ...["C server, Bun client", "local posix_spawn", "C client → C server"].map((r) => `C floor sequential: ${r}`),
  "64 local spawns at once (limit): batch",
  "64 concurrent on one connection: batch",
  "64 concurrent on one connection: each",
  "host RSS per connection",
  "exec on 1 connection (limit)",
  "first exec on each of 50 connections",
  "exec with 50 connections open",
  ...["stdout", "stdin", "file PUT", "file GET"].flatMap((s) => [`${s}: plain relay (limit)`, `${s}: agent v2`]),
  "stdout: agent v2, lean client",
  "compiled Bun hello (baseline): binary",
  "agent binary",
  "hello: start → listening",
  "agent --listen: start → listening",
  "hello: VmRSS idle",
  "agent: VmRSS idle",
  "hello: RssAnon idle",
  "agent: RssAnon idle",
  "agent: VmRSS peak while streaming stdout",
  "agent: RssAnon peak while streaming stdout",
  "agent up first: host listens → first result",
];
// The peers come from bench/deps.sh (scripts/test.sh runs it); in CI a missing peer is a failure.
const missing = ["/usr/sbin/qemu-ga", "/usr/sbin/sshd"].filter((f) => !existsSync(f)).concat(["ssh", "socat", "gcc"].filter((t) => !Bun.which(t)));
const skip = missing.length > 0 && !process.env.CI ? `missing ${missing.join(", ")} (bash bench/deps.sh)` : undefined;
const NUMBER = /^-?\d+(\.\d+)?(e[+-]?\d+)?$/;

test.skipIf(!!skip)(`bun run bench --quick writes every row, with numbers, within the regression guard${skip ? ` [skipped: ${skip}]` : ""}`, async () => {
  const dir = mkdtempSync(join(tmpdir(), "vge-bench-test-"));
  try {
    const out = join(dir, "BENCHMARKS.md");
    const p = Bun.spawn(["bun", "run", "bench", "--quick", "--out", out], { cwd: ROOT, stdout: "pipe", stderr: "pipe", timeout: 280_000, killSignal: "SIGKILL" });
    const [stderr, code] = await Promise.all([new Response(p.stderr).text(), p.exited]);
    expect({ code, stderr: code === 0 ? "" : stderr }).toEqual({ code: 0, stderr: "" });
    const md = readFileSync(out, "utf8");
    // The head names the machine, the versions and the command.
    for (const k of ["Machine:", "bun:", "agent:", "qemu-ga:", "OpenSSH:", "socat:", "bun run bench --quick"]) expect(md).toContain(k);
    const rows = new Map<string, string[]>();
    for (const line of md.split("\n")) {
      if (!line.startsWith("| ") || line.startsWith("| row ")) continue;
      const cells = line.split(" | ").map((c) => c.replace(/^\| |\s*\|$/g, "").trim());
      rows.set(cells[0]!, cells);
    }
    const bad: string[] = [];
    for (const label of MEASURED) {
      const c = rows.get(label);
      if (!c) {
        bad.push(`${label}: missing`);
        continue;
      }
      // label | unit | n | median | p99 | min–max | limit | ratio | note
      const [, , n, med, p99, range] = c;
      const [lo, hi] = range!.split("–");
      if (![n, med, p99, lo, hi].every((x) => NUMBER.test(x ?? ""))) bad.push(`${label}: not numbers: ${c.join(" | ")}`);
      if (Number(n) < 1) bad.push(`${label}: no samples`);
      if (c[6] !== "—" && !/^\d+(\.\d+)?×$/.test(c[7]!)) bad.push(`${label}: a limit but no ratio: ${c[7]}`);
    }
    for (const label of [...GUEST_LABELS, ...INITRD_LABELS]) {
      const c = rows.get(label);
      if (!c) bad.push(`${label}: missing`);
      else if (c[3] !== "not measured" && !NUMBER.test(c[3]!)) bad.push(`${label}: neither numbers nor "not measured"`);
    }
    expect(bad).toEqual([]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 300_000);
