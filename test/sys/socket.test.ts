// The FFI socket layer against the real kernel: Unix sockets end to end, AF_VSOCK only as far as listen
// (this machine is a VM: nothing here may connect() an AF_VSOCK socket).
import { afterAll, describe, expect, test } from "bun:test";
import { SyscallError } from "../../src/sys/_errno.ts";
import { AF_UNIX, AF_VSOCK, VMADDR_CID_ANY, VMADDR_PORT_ANY } from "../../src/sys/sockaddr.ts";
import { POLLIN, SHUT_WR, close, listen, poll, read, setCloexec, shutdown, socket, write } from "../../src/sys/socket.ts";
import { unixAccept, unixConnect, unixListen, vsockAccept, vsockListen, vsockLocalAddr, waitFd } from "../../src/sys/vsock.ts";
import { O_CLOEXEC, O_NONBLOCK, fdFlags, socketFds } from "../helpers/fd.ts";
import { tempDir } from "../helpers/tmp.ts";

const dir = tempDir();
afterAll(() => dir.remove());
let n = 0;
const sockPath = () => dir.file(`s${n++}.sock`);

/** The SyscallError a call throws or rejects with (fails the test if it succeeds). */
async function syscallError(call: () => unknown): Promise<SyscallError> {
  try {
    const fd = await call();
    if (typeof fd === "number") close(fd);
  } catch (e) {
    expect(e).toBeInstanceOf(SyscallError);
    return e as SyscallError;
  }
  throw new Error("expected a SyscallError, the call succeeded");
}

/** A connected pair through a real listener: [client, server side]. */
async function pair(): Promise<{ client: number; server: number; listener: number }> {
  const path = sockPath();
  const listener = unixListen(path);
  const client = await unixConnect(path, { timeoutMs: 5000 });
  expect(await waitFd(listener, POLLIN, { timeoutMs: 5000 })).toBeTruthy();
  const server = unixAccept(listener);
  expect(server).not.toBeNull();
  return { client, server: server!, listener };
}

describe("unix sockets end to end", () => {
  test("listen, connect, accept, write, read, half-close", async () => {
    const { client, server, listener } = await pair();
    expect(server).toBeGreaterThan(2);

    const buf = new Uint8Array(64);
    expect(read(server, buf)).toBeNull(); // non-blocking, nothing sent yet
    expect(write(client, new TextEncoder().encode("hello"))).toBe(5);
    expect(poll([{ fd: server, events: POLLIN }], 1000)[0]! & POLLIN).toBe(POLLIN);
    const got = read(server, buf)!;
    expect(new TextDecoder().decode(buf.subarray(0, got))).toBe("hello");

    shutdown(client, SHUT_WR);
    await waitFd(server, POLLIN, { timeoutMs: 5000 });
    expect(read(server, buf)).toBe(0); // EOF
    expect(write(server, new Uint8Array([1]))).toBe(1); // the other direction still works
    expect(read(client, buf)).toBe(1);

    for (const fd of [client, server, listener]) close(fd);
  });

  test("accept on a listener with nothing pending is null, not an error", () => {
    const listener = unixListen(sockPath());
    expect(unixAccept(listener)).toBeNull();
    close(listener);
  });

  test("zero-length read and write do not call the kernel", () => {
    expect(read(-1, new Uint8Array(0))).toBe(0);
    expect(write(-1, new Uint8Array(0))).toBe(0);
  });
});

describe("errors name the syscall and the errno", () => {
  test("connect to a path nobody created: connect: ENOENT", async () => {
    const e = await syscallError(() => unixConnect(dir.file("missing.sock")));
    expect(e.message).toBe("connect: ENOENT");
    expect([e.syscall, e.code, e.errno]).toEqual(["connect", "ENOENT", 2]);
  });

  test("connect to a socket file whose listener is gone: connect: ECONNREFUSED", async () => {
    const path = sockPath();
    close(unixListen(path)); // the file stays, nobody listens
    expect((await syscallError(() => unixConnect(path))).message).toBe("connect: ECONNREFUSED");
  });

  test("listen on a path in use: bind: EADDRINUSE", async () => {
    const path = sockPath();
    const fd = unixListen(path);
    expect((await syscallError(() => unixListen(path))).message).toBe("bind: EADDRINUSE");
    close(fd);
  });

  test("listen in a directory that does not exist: bind: ENOENT", async () => {
    expect((await syscallError(() => unixListen(dir.file("no/such/dir.sock")))).message).toBe("bind: ENOENT");
  });

  test("listen on a socket that was never bound: listen: EINVAL", async () => {
    const fd = socket(AF_UNIX);
    expect((await syscallError(() => listen(fd))).message).toBe("listen: EINVAL");
    close(fd);
  });

  test("an unknown address family: socket: EAFNOSUPPORT", async () => {
    expect((await syscallError(() => socket(9999))).message).toBe("socket: EAFNOSUPPORT");
  });

  test("read from a closed fd: read: EBADF", async () => {
    const fd = socket(AF_UNIX);
    close(fd);
    expect((await syscallError(() => read(fd, new Uint8Array(1)))).message).toBe("read: EBADF");
  });

  // On AF_UNIX a non-blocking connect() returns EAGAIN when the listener's backlog is full. Nothing is in
  // progress then: taking it for EINPROGRESS gave an fd that was never connected (the agent waited on it
  // forever). It must fail as `connect: EAGAIN`, which dial() retries.
  test("connect to a listener whose backlog is full: connect: EAGAIN, not an unconnected fd", async () => {
    const path = sockPath();
    const listener = unixListen(path, 0);
    const queued: number[] = [];
    let err: unknown;
    try {
      // Fill the backlog; the first connect the kernel cannot queue must fail, not "succeed".
      for (let i = 0; i < 8; i++) queued.push(await unixConnect(path, { timeoutMs: 1000 }));
    } catch (e) {
      err = e;
    }
    for (const fd of queued) close(fd);
    close(listener);
    expect(err).toBeInstanceOf(SyscallError);
    expect((err as Error).message).toBe("connect: EAGAIN");
  });

  test("a failed connect or bind leaves no socket fd behind", async () => {
    const taken = sockPath();
    const fd = unixListen(taken);
    const stale = sockPath();
    close(unixListen(stale));
    const before = socketFds();
    for (let i = 0; i < 20; i++) {
      await syscallError(() => unixConnect(dir.file("missing.sock")));
      await syscallError(() => unixConnect(stale));
      await syscallError(() => unixListen(taken));
    }
    const leaked = [...socketFds()].filter((x) => !before.has(x));
    expect(leaked).toEqual([]);
    close(fd);
  });
});

describe("close-on-exec on every fd the layer makes", () => {
  test("socket(), listeners, connected and accepted fds: O_CLOEXEC set, O_NONBLOCK where asked", async () => {
    const plain = socket(AF_UNIX);
    expect(fdFlags(plain) & O_CLOEXEC).toBe(O_CLOEXEC);
    expect(fdFlags(plain) & O_NONBLOCK).toBe(0);
    const nb = socket(AF_UNIX, undefined, { nonblock: true });
    expect(fdFlags(nb) & O_NONBLOCK).toBe(O_NONBLOCK);

    const { client, server, listener } = await pair();
    for (const fd of [nb, client, server, listener]) expect(fdFlags(fd) & (O_CLOEXEC | O_NONBLOCK)).toBe(O_CLOEXEC | O_NONBLOCK);
    for (const fd of [plain, nb, client, server, listener]) close(fd);
  });

  test("setCloexec clears it (for the one fd meant to survive execve) and sets it again", () => {
    const fd = socket(AF_UNIX);
    setCloexec(fd, false);
    expect(fdFlags(fd) & O_CLOEXEC).toBe(0);
    setCloexec(fd, true);
    expect(fdFlags(fd) & O_CLOEXEC).toBe(O_CLOEXEC);
    close(fd);
  });
});

// bind() and listen() on AF_VSOCK are harmless here; connect() is not and is never called.
const vsockReason = (() => {
  try {
    close(socket(AF_VSOCK));
    return undefined;
  } catch (e) {
    return `no AF_VSOCK in this kernel (${(e as Error).message}): load the vsock module to run these`;
  }
})();

describe.skipIf(vsockReason !== undefined)("AF_VSOCK listeners (bind/listen only)", () => {
  test("listen on any CID, kernel-chosen port: getsockname agrees with our sockaddr_vm; a second bind fails cleanly", () => {
    const fd = vsockListen({ cid: VMADDR_CID_ANY, port: VMADDR_PORT_ANY });
    const local = vsockLocalAddr(fd);
    expect(local.cid).toBe(VMADDR_CID_ANY);
    expect(local.port).not.toBe(VMADDR_PORT_ANY);
    expect(fdFlags(fd) & (O_CLOEXEC | O_NONBLOCK)).toBe(O_CLOEXEC | O_NONBLOCK);
    expect(vsockAccept(fd)).toBeNull(); // nothing pending: null, not EAGAIN

    // A second listener on that port: bind: EADDRINUSE, and the new fd is closed again.
    const before = socketFds();
    let err: unknown;
    try {
      close(vsockListen(local));
    } catch (e) {
      err = e;
    }
    expect((err as Error).message).toBe("bind: EADDRINUSE");
    expect([...socketFds()].filter((x) => !before.has(x))).toEqual([]);
    close(fd);
  });
});

if (vsockReason) test.skip(`AF_VSOCK listeners: ${vsockReason}`, () => {});
