"""Exceptions of the library. Every one carries `code`, the protocol's errno-style name (PROTOCOL.md §9),
so callers can branch on `e.code == "EFLOW"` the way they would on `OSError.errno`."""

from __future__ import annotations

from typing import Optional


class GuestError(Exception):
    """The connection to the guest failed or a request to it was refused.

    Codes: ECLOSED (the connection is gone), EPROTO (the guest broke the protocol), EFLOW (it sent beyond the
    credit), EAUTH (token proof failed either way), EVERSION, ETIMEDOUT, EBUSY, ENOTSUP, EINVAL, ENOENT,
    ESRCH, EEXIST, EAGAIN, or the code an agent's ERROR frame carried.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class ProtocolError(GuestError):
    """A frame or field the peer sent is malformed (EPROTO), over its credit (EFLOW) or unauthenticated (EAUTH)."""


class ArgumentError(GuestError, ValueError):
    """A value this host was asked to send is out of range (code EINVAL), refused before anything is sent:
    still a ValueError, as Python code expects, and a GuestError with a code, as the other hosts give."""

    def __init__(self, message: str) -> None:
        super().__init__("EINVAL", message)


class AddressError(GuestError, ValueError):
    """An address string that is not one of the forms in `ADDRESS_FORMS`."""

    def __init__(self, text: str, why: str) -> None:
        super().__init__("EINVAL", f'bad address "{text}": {why}')


class FileError(GuestError):
    """A PUT, GET or directory copy the agent (or the local side) refused: `code` is the errno name,
    `path` the entry at fault (relative to the target) when a directory copy names one."""

    def __init__(self, code: str, message: str, path: Optional[str] = None) -> None:
        super().__init__(code, message)
        self.path = path


class TcpError(GuestError):
    """A TCP stream the guest could not open or that ended with an error (ECONNREFUSED, ENOTFOUND, ...)."""
