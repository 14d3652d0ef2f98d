// Guest facts for WELCOME: read once per connection, cheap, and never fatal.
import { readFileSync, existsSync } from "node:fs";
import { hostname, release } from "node:os";
import pkg from "../../../package.json" with { type: "json" };
import { CAPABILITIES, PROTOCOL_VERSION, type Welcome } from "../../protocol/v2/messages.ts";
import { DEFAULT_WINDOW, MAX_PAYLOAD } from "../../protocol/v2/frame.ts";

/** In an initramfs, / is rootfs (or a tmpfs/ramfs) and systemd-style initrds carry /etc/initrd-release. */
export function inInitrd(): boolean {
  if (existsSync("/etc/initrd-release")) return true;
  try {
    const root = readFileSync("/proc/mounts", "utf8")
      .split("\n")
      .map((l) => l.split(" "))
      .filter((f) => f[1] === "/")
      .at(-1);
    return root ? ["rootfs", "ramfs", "tmpfs"].includes(root[2]!) : false;
  } catch {
    return false;
  }
}

export function welcome(): Welcome {
  return {
    version: PROTOCOL_VERSION,
    agent: pkg.version,
    capabilities: [...CAPABILITIES],
    hostname: hostname(),
    kernel: release(),
    arch: process.arch,
    initrd: inInitrd(),
    pid: process.pid,
    maxPayload: MAX_PAYLOAD,
    window: DEFAULT_WINDOW,
  };
}
