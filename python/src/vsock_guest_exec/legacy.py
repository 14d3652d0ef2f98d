"""The original tool's two formats (PROTOCOL.md §1), for agents started without v2 hosts in mind and for
the original provisioning flow. They carry no status and no authentication."""

from __future__ import annotations

import socket
import struct
from typing import Iterable, Optional, Union

from ._transport import dial, listen_socket
from .address import Address, to_address
from .errors import ArgumentError

MAX_COMMAND = 2048


def _command(cmd: Union[str, bytes]) -> bytes:
    data = cmd.encode("utf-8") if isinstance(cmd, str) else bytes(cmd)
    if len(data) > MAX_COMMAND:
        raise ArgumentError(f"a command is at most {MAX_COMMAND} bytes; this one is {len(data)}")
    if b"\0" in data:
        raise ArgumentError("a command cannot contain a NUL byte")
    return data


def _peer(address: Union[str, Address], timeout: Optional[float]) -> socket.socket:
    addr = to_address(address)
    if not addr.listens:
        return dial(addr, timeout)
    lst = listen_socket(addr, backlog=1)
    try:
        lst.settimeout(timeout)
        sock, _ = lst.accept()
        sock.settimeout(None)
        return sock
    finally:
        lst.close()


def disposable(address: Union[str, Address], command: Union[str, bytes], *, timeout: Optional[float] = 30.0,
               wait: bool = True) -> None:
    """Sends one command (the agent runs `/bin/sh -c COMMAND` and exits) and half-closes; with `wait`,
    returns once the command has finished (the agent's side of the socket closes then)."""
    data = _command(command)
    with _peer(address, timeout) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        if wait:
            s.settimeout(None)
            while s.recv(4096):
                pass


def persistent(address: Union[str, Address], commands: Iterable[Union[str, bytes]], *,
               timeout: Optional[float] = 30.0) -> int:
    """Sends `u16 length` + command frames, run in order by the agent; returns how many were sent."""
    n = 0
    with _peer(address, timeout) as s:
        for cmd in commands:
            data = _command(cmd)
            s.sendall(struct.pack("<H", len(data)) + data)
            n += 1
    return n
