// The standalone `vge` binaries that `bun run build` writes: the linux-x64 one is run against a real
// agent; the others cannot run here, so their headers are read: the CPU and format a loader checks.
import { afterAll, expect, test } from "bun:test";
import { openSync, readSync, closeSync } from "node:fs";
import { listen } from "../../src/host/index.ts";
import { distBinary } from "../helpers/build.ts";
import { dialingAgent, stop, tempDir } from "../host/_fixtures.ts";

const dir = tempDir("vge-standalone-");
afterAll(() => dir.remove());

function head(path: string, n = 64): DataView {
  const fd = openSync(path, "r");
  try {
    const buf = new Uint8Array(n);
    expect(readSync(fd, buf, 0, n, 0)).toBe(n);
    return new DataView(buf.buffer);
  } finally {
    closeSync(fd);
  }
}

/** ELF: magic, 64-bit class, little-endian, an executable (ET_EXEC or PIE ET_DYN) for `machine`. */
function expectElf(path: string, machine: number): void {
  const h = head(path);
  expect(h.getUint32(0)).toBe(0x7f454c46);
  expect(h.getUint8(4)).toBe(2); // ELFCLASS64
  expect(h.getUint8(5)).toBe(1); // ELFDATA2LSB
  expect([2, 3]).toContain(h.getUint16(16, true));
  expect(h.getUint16(18, true)).toBe(machine);
}

/** Mach-O: MH_MAGIC_64 (0xfeedfacf, little-endian on disk), MH_EXECUTE, the CPU type. */
function expectMachO(path: string, cputype: number): void {
  const h = head(path);
  expect(h.getUint32(0, true)).toBe(0xfeedfacf);
  expect(h.getUint32(4, true)).toBe(cputype);
  expect(h.getUint32(12, true)).toBe(2); // MH_EXECUTE
}

const onX64Linux = process.platform === "linux" && process.arch === "x64";

test.skipIf(!onX64Linux)("vge-linux-x64 runs a command through a real agent: its output and exit status", async () => {
  const vge = distBinary("vge-linux-x64");
  expectElf(vge, 62); // EM_X86_64
  const sock = dir.file("x64.sock");
  const proc = Bun.spawn([vge, "run", "-q", "--wait", "20", `unix-listen:${sock}`, "--", "sh", "-c", "echo out; echo err >&2; exit 3"], {
    stdout: "pipe",
    stderr: "pipe",
    env: { PATH: "/usr/bin:/bin", NO_COLOR: "1" },
    timeout: 30_000,
    killSignal: "SIGKILL",
  });
  const agent = dialingAgent(sock);
  try {
    const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
    expect({ out, err, code: await proc.exited }).toEqual({ out: "out\n", err: "err\n", code: 3 });
  } finally {
    stop(agent);
    proc.kill("SIGKILL");
  }
}, 120_000);

/** The dynamic loader's own log of every dlopen (LD_DEBUG=files): "opening file=/…/libc.so.6". */
async function dlopensLibc(args: string[]): Promise<{ libc: boolean; stderr: string; code: number }> {
  const proc = Bun.spawn([distBinary("vge-linux-x64"), ...args], {
    stdout: "ignore",
    stderr: "pipe",
    env: { PATH: "/usr/bin:/bin", NO_COLOR: "1", LD_DEBUG: "files" },
    timeout: 30_000,
    killSignal: "SIGKILL",
  });
  const stderr = await new Response(proc.stderr).text();
  return { libc: /opening file=\S*libc\.so\.6/.test(stderr), stderr: stderr.split("\n").filter((l) => l.startsWith("vge:")).join("\n"), code: await proc.exited };
}

async function vsockListenWorks(): Promise<boolean> {
  try {
    await (await listen(`vsock-listen:${40000 + Math.floor(Math.random() * 20000)}`)).close();
    return true;
  } catch {
    return false;
  }
}

test.skipIf(!onX64Linux)("vge-linux-x64 opens libc's FFI table only for an AF_VSOCK address", async () => {
  // A Unix address: the AF_VSOCK module (bun:ffi's dlopen of libc) is never evaluated.
  const unix = await dlopensLibc(["run", "--wait", "1", `unix-listen:${dir.file("nolibc.sock")}`, "--", "true"]);
  expect(unix.stderr).toContain("no guest connected");
  expect(unix.code).toBe(255);
  expect(unix.libc).toBe(false);
  // The control: a vsock-listen address (bind and listen only; nothing is dialed) does dlopen libc, so
  // the check above can see it. Skipped where the kernel has no AF_VSOCK.
  if (await vsockListenWorks()) {
    const vsock = await dlopensLibc(["run", "--wait", "1", `vsock-listen:${40000 + Math.floor(Math.random() * 20000)}`, "--", "true"]);
    expect(vsock.stderr).toContain("no guest connected");
    expect(vsock.libc).toBe(true);
  } else console.error("vge-linux-x64 libc check: no AF_VSOCK here, the vsock-listen control is skipped");
}, 120_000);

test("vge-linux-arm64 is an AArch64 ELF executable", () => {
  expectElf(distBinary("vge-linux-arm64"), 183); // EM_AARCH64
});

test("vge-darwin-arm64 and vge-darwin-x64 are 64-bit Mach-O executables for their CPUs", () => {
  expectMachO(distBinary("vge-darwin-arm64"), 0x0100000c); // CPU_TYPE_ARM64
  expectMachO(distBinary("vge-darwin-x64"), 0x01000007); // CPU_TYPE_X86_64
}, 120_000);
