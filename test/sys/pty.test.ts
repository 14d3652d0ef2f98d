// Pseudo-terminals through the FFI layer: a close-on-exec pair, a non-blocking master whose reads end in
// EIO once the slave is closed, sizes a child sees, and failures named by syscall and errno.
import { expect, test } from "bun:test";
import { openSync, closeSync } from "node:fs";
import { close, openPty, read, setControllingTty, setWinsize, write } from "../../src/sys/index.ts";
import { O_CLOEXEC, O_NONBLOCK, fdFlags } from "../helpers/fd.ts";

test("openPty: both ends close-on-exec, only the master non-blocking; the slave is a /dev/pts device", () => {
  const p = openPty(80, 24);
  try {
    expect(p.path).toMatch(/^\/dev\/pts\/\d+$/);
    expect(fdFlags(p.master) & O_CLOEXEC).toBe(O_CLOEXEC);
    expect(fdFlags(p.slave) & O_CLOEXEC).toBe(O_CLOEXEC);
    expect(fdFlags(p.master) & O_NONBLOCK).toBe(O_NONBLOCK);
    expect(fdFlags(p.slave) & O_NONBLOCK).toBe(0);
  } finally {
    close(p.master);
    close(p.slave);
  }
});

test("the size given, and a later setWinsize, are what a child on the slave sees", () => {
  const p = openPty(123, 45);
  try {
    const size = () => Bun.spawnSync(["stty", "size"], { stdin: p.slave, stdout: "pipe" }).stdout.toString();
    expect(size()).toBe("45 123\n");
    setWinsize(p.master, 100, 30);
    expect(size()).toBe("30 100\n");
  } finally {
    close(p.master);
    close(p.slave);
  }
});

test("bytes written to the master reach the slave; the master reads nothing yet (null), then EIO once the slave is closed", () => {
  const p = openPty(80, 24);
  try {
    Bun.spawnSync(["stty", "raw", "-echo"], { stdin: p.slave });
    expect(read(p.master, new Uint8Array(16))).toBeNull();
    expect(write(p.master, new TextEncoder().encode("hi"))).toBe(2);
    const buf = new Uint8Array(16);
    expect(read(p.slave, buf)).toBe(2);
    expect(new TextDecoder().decode(buf.subarray(0, 2))).toBe("hi");
    close(p.slave);
    expect(() => read(p.master, buf)).toThrow("read: EIO");
  } finally {
    close(p.master);
  }
});

test("failures name the syscall and errno", () => {
  const fd = openSync("/dev/null", "r");
  try {
    expect(() => setWinsize(fd, 80, 24)).toThrow("ioctl: ENOTTY");
    expect(() => setControllingTty(fd)).toThrow("ioctl: ENOTTY");
  } finally {
    closeSync(fd);
  }
});
