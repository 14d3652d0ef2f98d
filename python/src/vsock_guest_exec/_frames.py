"""The v2 frame codec (PROTOCOL.md §2-3): pure functions over bytes, no I/O."""

from __future__ import annotations

import enum
import json
import struct
from typing import Any, Dict, Iterator, List, Optional, Tuple

from .errors import ArgumentError, ProtocolError

MAGIC = b"\xff\xffVGE2\r\n"
MAX_PAYLOAD = 256 * 1024
CHUNK = 64 * 1024
WINDOW = 256 * 1024
_HEADER = struct.Struct("<IBI")  # length (of type + id + payload), type, id
HEADER_SIZE = _HEADER.size
U32_MAX = 0xFFFFFFFF
SAFE_INT_MAX = 2**53 - 1


class T(enum.IntEnum):
    """Frame types."""

    HELLO = 0x01
    WELCOME = 0x02
    AUTH = 0x03
    EXEC = 0x10
    STARTED = 0x11
    STDIN = 0x12
    STDIN_EOF = 0x13
    STDOUT = 0x14
    STDERR = 0x15
    SIGNAL = 0x16
    RESIZE = 0x17
    EXIT = 0x18
    WINDOW = 0x19
    LIST = 0x1A
    LISTING = 0x1B
    ATTACH = 0x1C
    ATTACHED = 0x1D
    DETACHED = 0x1E
    KILL = 0x1F
    PUT = 0x20
    GET = 0x21
    FILE_DATA = 0x22
    FILE_END = 0x23
    RESULT = 0x24
    PUTDIR = 0x25
    GETDIR = 0x26
    DIR_ENTRY = 0x27
    DIR_END = 0x28
    PING = 0x30
    PONG = 0x31
    TCP_OPEN = 0x40
    TCP_OPENED = 0x41
    TCP_DATA = 0x42
    TCP_EOF = 0x43
    TCP_RESET = 0x44
    TCP_CLOSED = 0x45
    ERROR = 0x7F


_KNOWN = frozenset(int(t) for t in T)
JSON_TYPES = frozenset(
    {
        T.HELLO, T.WELCOME, T.AUTH, T.EXEC, T.STARTED, T.SIGNAL, T.RESIZE, T.EXIT, T.LIST, T.LISTING,
        T.ATTACH, T.ATTACHED, T.DETACHED, T.KILL, T.PUT, T.GET, T.RESULT, T.PUTDIR, T.GETDIR, T.DIR_ENTRY,
        T.TCP_OPEN, T.TCP_OPENED, T.TCP_CLOSED, T.ERROR,
    }
)

Frame = Tuple[T, int, bytes]


def encode(ftype: T, fid: int, payload: bytes = b"") -> bytes:
    """One frame. A payload over MAX_PAYLOAD or an id outside u32 is our bug, not the peer's: ValueError."""
    if len(payload) > MAX_PAYLOAD:
        raise ArgumentError(f"payload of {len(payload)} bytes is over {MAX_PAYLOAD}")
    if not 0 <= fid <= U32_MAX:
        raise ArgumentError(f"id {fid} is not a u32")
    return _HEADER.pack(5 + len(payload), int(ftype), fid) + payload


def header(ftype: T, fid: int, size: int) -> bytes:
    """The 9 header bytes of a frame whose payload is sent separately (no copy of the payload)."""
    if size > MAX_PAYLOAD:
        raise ArgumentError(f"payload of {size} bytes is over {MAX_PAYLOAD}")
    return _HEADER.pack(5 + size, int(ftype), fid)


def encode_json(ftype: T, fid: int, body: Dict[str, Any]) -> bytes:
    # Compact, key order kept, non-ASCII as UTF-8: the bytes JSON.stringify produces.
    return encode(ftype, fid, json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def encode_window(fid: int, credit: int) -> bytes:
    return encode(T.WINDOW, fid, struct.pack("<I", credit))


def decode_json(payload: bytes) -> Dict[str, Any]:
    try:
        body = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise ProtocolError("EPROTO", f"payload is not UTF-8 JSON: {e}") from None
    if not isinstance(body, dict):
        raise ProtocolError("EPROTO", "payload is not a JSON object")
    return body


def decode_window(payload: bytes) -> int:
    if len(payload) != 4:
        raise ProtocolError("EPROTO", f"WINDOW payload must be 4 bytes, got {len(payload)}")
    n: int = struct.unpack("<I", payload)[0]
    return n


class FrameDecoder:
    """Bytes in any pieces, whole frames out. The header is checked as soon as it is there, so a hostile
    length or type fails before its body is waited for, and at most one frame is ever buffered."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def push(self, data: bytes) -> None:
        self._buf += data

    def frames(self) -> Iterator[Frame]:
        """Frames complete so far, one at a time, as far as the caller takes them."""
        while True:
            frame = self._next()
            if frame is None:
                return
            yield frame

    def _next(self) -> Optional[Frame]:
        buf = self._buf
        if len(buf) < 4:
            return None
        (length,) = struct.unpack_from("<I", buf)
        if not 5 <= length <= 5 + MAX_PAYLOAD:
            raise ProtocolError("EPROTO", f"frame length {length} is outside 5..{5 + MAX_PAYLOAD}")
        if len(buf) >= 5 and buf[4] not in _KNOWN:
            raise ProtocolError("EPROTO", f"unknown frame type 0x{buf[4]:02x}")
        if len(buf) < 4 + length:
            return None
        _, ftype, fid = _HEADER.unpack_from(buf)
        payload = bytes(buf[HEADER_SIZE : 4 + length])
        del buf[: 4 + length]
        return T(ftype), fid, payload

    @property
    def pending(self) -> int:
        return len(self._buf)


def decode_all(data: bytes) -> List[Frame]:
    d = FrameDecoder()
    d.push(data)
    return list(d.frames())
