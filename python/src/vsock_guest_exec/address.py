"""The one address syntax of every vsock-guest-exec host (PROTOCOL.md §10), parsed strictly:

    vsock:CID:PORT            dial an agent listening on AF_VSOCK (`vsock_guest_exec --listen`)
    vsock-listen:[CID:]PORT   wait for agents that dial the host on AF_VSOCK (QEMU vhost-vsock)
    unix:PATH                 dial a Unix socket where an agent (or a proxy) listens
    unix-listen:PATH          wait for agents on a Unix socket (vfkit, krunkit, libkrun per-port sockets)
    fc:UDS_PATH:PORT          Firecracker / Cloud Hypervisor / vhost-device-vsock: `CONNECT PORT\\n` → `OK …`
    fc-listen:UDS_PATH:PORT   the same as unix-listen:UDS_PATH_PORT, where those VMMs forward guest port PORT
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NoReturn, Optional, Tuple

from .errors import AddressError

ADDRESS_FORMS = ("vsock:CID:PORT", "vsock-listen:[CID:]PORT", "unix:PATH", "unix-listen:PATH", "fc:UDS_PATH:PORT", "fc-listen:UDS_PATH:PORT")
CID_ANY = 0xFFFFFFFF
_UNIX_PATH_MAX = 107


@dataclass(frozen=True)
class Address:
    """A parsed address. `kind` is one of the six forms; `path` for Unix-based kinds, `cid`/`port` where they apply."""

    kind: str
    path: str = ""
    cid: int = 0
    port: int = 0

    @property
    def listens(self) -> bool:
        """Listen addresses wait for guests to dial in; the others dial a listening guest."""
        return self.kind in ("vsock-listen", "unix-listen", "fc-listen")

    @property
    def socket_path(self) -> str:
        """The Unix socket this address dials or listens on (fc-listen: UDS_PATH_PORT)."""
        return f"{self.path}_{self.port}" if self.kind == "fc-listen" else self.path

    def __str__(self) -> str:
        if self.kind == "vsock":
            return f"vsock:{self.cid}:{self.port}"
        if self.kind == "vsock-listen":
            return f"vsock-listen:{self.port}" if self.cid == CID_ANY else f"vsock-listen:{self.cid}:{self.port}"
        if self.kind in ("unix", "unix-listen"):
            return f"{self.kind}:{self.path}"
        return f"{self.kind}:{self.path}:{self.port}"


def _bad(text: str, why: str) -> NoReturn:
    raise AddressError(text, why)


def _u32(text: str, what: str, value: str, any_ok: bool = False) -> int:
    if any_ok and value == "-1":
        return CID_ANY
    if not value.isdigit() or not value.isascii():
        _bad(text, f"{what} must be a whole number 0..{CID_ANY - 1}{' or -1' if any_ok else ''}, got {value!r}")
    n = int(value)
    if n >= CID_ANY:
        _bad(text, f"{what} must be 0..{CID_ANY - 1}, got {value}")
    return n


def _unix_path(text: str, path: str) -> str:
    if path == "":
        _bad(text, "the socket path is empty")
    if "\0" in path:
        _bad(text, "the socket path contains a NUL byte")
    n = len(path.encode("utf-8", "surrogateescape"))
    if n > _UNIX_PATH_MAX:
        _bad(text, f"the socket path is {n} bytes; Unix sockets allow {_UNIX_PATH_MAX}")
    return path


def _path_and_port(text: str, rest: str) -> Tuple[str, int]:
    path, colon, port = rest.rpartition(":")
    if not colon:
        _bad(text, "expected UDS_PATH:PORT")
    return _unix_path(text, path), _u32(text, "port", port)


def parse_address(text: str) -> Address:
    """`text` as an Address; AddressError (code EINVAL) with one line saying what was expected."""
    scheme, colon, rest = text.partition(":")
    if not colon:
        _bad(text, f"expected one of {', '.join(ADDRESS_FORMS)}")
    if scheme == "vsock":
        parts = rest.split(":")
        if len(parts) != 2:
            _bad(text, "expected vsock:CID:PORT")
        return Address("vsock", cid=_u32(text, "CID", parts[0]), port=_u32(text, "port", parts[1]))
    if scheme == "vsock-listen":
        parts = rest.split(":")
        if len(parts) > 2:
            _bad(text, "expected vsock-listen:PORT or vsock-listen:CID:PORT")
        cid = _u32(text, "CID", parts[0], any_ok=True) if len(parts) == 2 else CID_ANY
        return Address("vsock-listen", cid=cid, port=_u32(text, "port", parts[-1]))
    if scheme in ("unix", "unix-listen"):
        return Address(scheme, path=_unix_path(text, rest))
    if scheme in ("fc", "fc-listen"):
        path, port = _path_and_port(text, rest)
        a = Address(scheme, path=path, port=port)
        if scheme == "fc-listen":
            _unix_path(text, a.socket_path)
        return a
    _bad(text, f"unknown kind {scheme!r}; expected one of {', '.join(ADDRESS_FORMS)}")


def to_address(a: "str | Address") -> Address:
    return a if isinstance(a, Address) else parse_address(a)


def optional_address(a: "Optional[str | Address]") -> Optional[Address]:
    return None if a is None else to_address(a)
