// Byte-exact socket addresses. Pure functions over bytes: no FFI here, so they are testable anywhere.

export const AF_UNIX = 1;
export const AF_VSOCK = 40;

/** Well-known CIDs from <linux/vm_sockets.h>. */
export const VMADDR_CID_ANY = 0xffffffff;
export const VMADDR_CID_HYPERVISOR = 0;
export const VMADDR_CID_LOCAL = 1;
export const VMADDR_CID_HOST = 2;
export const VMADDR_PORT_ANY = 0xffffffff;

export const SOCKADDR_VM_SIZE = 16;
/** sizeof(struct sockaddr_un): u16 family + 108 bytes of path. */
export const SOCKADDR_UN_SIZE = 110;
const SUN_PATH_MAX = 108;

export interface VsockAddr {
  cid: number;
  port: number;
}

/**
 * struct sockaddr_vm: u16 svm_family, u16 svm_reserved1, u32 svm_port, u32 svm_cid,
 * u8 svm_flags, u8 svm_zero[3]; host byte order, which is little-endian on every target we build.
 */
export function packSockaddrVm({ cid, port }: VsockAddr, flags = 0): Uint8Array {
  checkU32("cid", cid);
  checkU32("port", port);
  const buf = new Uint8Array(SOCKADDR_VM_SIZE);
  const view = new DataView(buf.buffer);
  view.setUint16(0, AF_VSOCK, true);
  view.setUint32(4, port, true);
  view.setUint32(8, cid, true);
  view.setUint8(12, flags);
  return buf;
}

export function unpackSockaddrVm(buf: Uint8Array): VsockAddr {
  if (buf.byteLength < SOCKADDR_VM_SIZE) throw new RangeError(`sockaddr_vm needs ${SOCKADDR_VM_SIZE} bytes, got ${buf.byteLength}`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const family = view.getUint16(0, true);
  if (family !== AF_VSOCK) throw new RangeError(`not an AF_VSOCK address (family ${family})`);
  return { port: view.getUint32(4, true), cid: view.getUint32(8, true) };
}

/** struct sockaddr_un for a filesystem path; returns the bytes and the length to pass to bind/connect. */
export function packSockaddrUn(path: string): { addr: Uint8Array; len: number } {
  const bytes = new TextEncoder().encode(path);
  if (bytes.length === 0) throw new RangeError("unix socket path is empty");
  if (bytes.includes(0)) throw new RangeError("unix socket path contains a NUL byte");
  // Linux accepts exactly 108 path bytes without a terminator, but portable peers do not: keep one.
  if (bytes.length >= SUN_PATH_MAX) throw new RangeError(`unix socket path is ${bytes.length} bytes; the limit is ${SUN_PATH_MAX - 1}`);
  const addr = new Uint8Array(SOCKADDR_UN_SIZE);
  new DataView(addr.buffer).setUint16(0, AF_UNIX, true);
  addr.set(bytes, 2);
  return { addr, len: 2 + bytes.length + 1 };
}

function checkU32(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`${name} must be an integer 0..4294967295, got ${v}`);
}
