"""Sockets for every address kind: a connected stream socket, or a listening one to accept guests from.
Only this module knows socket families; everything above it sees a connected socket."""

from __future__ import annotations

import os
import socket
import stat
import time
from typing import Optional

from .address import CID_ANY, Address
from .errors import GuestError

_FC_MAX_LINE = 64


def _connect(family: int, target: "str | tuple[int, int]", where: str, timeout: Optional[float]) -> socket.socket:
    """A connected stream socket, closed again on any failure; errors name the address and the errno."""
    s = socket.socket(family, socket.SOCK_STREAM)
    try:
        s.settimeout(timeout)
        s.connect(target)
        s.settimeout(None)
        return s
    except socket.timeout:
        s.close()
        raise GuestError("ETIMEDOUT", f"{where}: no connection within {timeout} s") from None
    except OSError as e:
        s.close()
        raise GuestError(_errno_name(e), f"{where}: connect: {e.strerror}") from None


def _connect_unix(path: str, timeout: Optional[float]) -> socket.socket:
    return _connect(socket.AF_UNIX, path, f"unix:{path}", timeout)


def _errno_name(e: OSError) -> str:
    import errno as _errno

    return _errno.errorcode.get(e.errno or 0, "EIO")


def _fc_handshake(s: socket.socket, port: int, where: str, timeout: Optional[float]) -> None:
    """`CONNECT PORT\\n`, then `OK <host port>\\n` read byte by byte so no guest byte is consumed."""
    s.sendall(f"CONNECT {port}\n".encode())
    s.settimeout(timeout if timeout is not None else 10.0)
    line = bytearray()
    try:
        while len(line) < _FC_MAX_LINE:
            b = s.recv(1)
            if not b:
                raise GuestError("EHANDSHAKE", f"{where}: the VMM closed the connection after CONNECT {port} (is the agent listening on guest port {port}?)")
            if b == b"\n":
                break
            line += b
    except socket.timeout:
        raise GuestError("EHANDSHAKE", f"{where}: no answer to CONNECT {port}") from None
    finally:
        s.settimeout(None)
    text = line.decode("latin-1")
    parts = text.split(" ")
    if len(parts) != 2 or parts[0] != "OK" or not parts[1].isdigit():
        raise GuestError("EHANDSHAKE", f"{where}: expected \"OK <port>\" after CONNECT {port}, got {text[:64]!r}")


def dial(addr: Address, timeout: Optional[float] = None) -> socket.socket:
    """A connected socket to a listening agent (vsock, unix, fc)."""
    if addr.kind == "unix":
        return _connect_unix(addr.path, timeout)
    if addr.kind == "fc":
        s = _connect_unix(addr.path, timeout)
        try:
            _fc_handshake(s, addr.port, str(addr), timeout)
            return s
        except BaseException:
            s.close()
            raise
    if addr.kind == "vsock":
        family = getattr(socket, "AF_VSOCK", None)
        if family is None:
            raise GuestError("ENOTSUP", f"{addr}: this Python has no AF_VSOCK (Linux only)")
        return _connect(family, (addr.cid, addr.port), str(addr), timeout)
    raise GuestError("EINVAL", f"{addr} is a listen address: use listen()")


def listen_socket(addr: Address, backlog: int = 64) -> socket.socket:
    """A bound, listening socket for a listen address. A stale Unix socket file (nobody accepting on it)
    is replaced; any other file at the path is left alone and refused."""
    if addr.kind in ("unix-listen", "fc-listen"):
        path = addr.socket_path
        _remove_stale_socket(path)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.bind(path)
            s.listen(backlog)
            return s
        except OSError as e:
            s.close()
            raise GuestError(_errno_name(e), f"{addr}: listen: {e.strerror}") from None
    if addr.kind == "vsock-listen":
        family = getattr(socket, "AF_VSOCK", None)
        if family is None:
            raise GuestError("ENOTSUP", f"{addr}: this Python has no AF_VSOCK (Linux only)")
        s = socket.socket(family, socket.SOCK_STREAM)
        try:
            s.bind((addr.cid if addr.cid != CID_ANY else getattr(socket, "VMADDR_CID_ANY", CID_ANY), addr.port))
            s.listen(backlog)
            return s
        except OSError as e:
            s.close()
            raise GuestError(_errno_name(e), f"{addr}: listen: {e.strerror}") from None
    raise GuestError("EINVAL", f"{addr} is not a listen address: use connect()")


def _remove_stale_socket(path: str) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise GuestError("EEXIST", f"{path} exists and is not a socket; not replacing it")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        os.unlink(path)  # nobody listens: a socket file left by a process that died
        return
    finally:
        probe.close()
    raise GuestError("EADDRINUSE", f"{path}: another process is listening there")


def deadline(timeout: Optional[float]) -> Optional[float]:
    return None if timeout is None else time.monotonic() + timeout


def remaining(at: Optional[float]) -> Optional[float]:
    return None if at is None else max(0.0, at - time.monotonic())
