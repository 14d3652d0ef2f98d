"""TCP streams opened by the agent inside the guest (PROTOCOL.md §13), as a socket-like object: `recv`,
`sendall`, `shutdown(SHUT_WR)` (half-close), `close()`. Each direction holds at most one window."""

from __future__ import annotations

import ipaddress
import re
import socket
import threading
from typing import Any, List, Optional

from ._conn import Channel, Connection
from ._credit import ReceiveWindow, SendCredit
from ._frames import CHUNK, T, decode_json, decode_window, encode, encode_json
from ._messages import tcp_closed, tcp_opened
from ._stream import Inbox
from .errors import ArgumentError, GuestError, ProtocolError, TcpError

_LABEL = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?")


def check_host(host: str) -> str:
    """A DNS name, an IPv4 or an IPv6 address (no brackets, no zone), as §13 allows."""
    if not isinstance(host, str) or not host:
        raise ArgumentError("host must be a non-empty str")
    try:
        ipaddress.ip_address(host)
        if "%" not in host:
            return host
    except ValueError:
        pass
    if len(host) > 253 or not all(_LABEL.fullmatch(label) and len(label) <= 63 for label in host.split(".")):
        raise ArgumentError(f"{host!r} is neither a DNS name nor an IP address")
    return host


class _TcpChannel(Channel):
    def __init__(self, conn: Connection, fid: int, window: int) -> None:
        self.conn, self.id = conn, fid
        self.cond = threading.Condition()
        self.recv_window = ReceiveWindow(window)
        self.send_credit = SendCredit(window)
        self.inbox = Inbox(self.cond, self._give_back)
        self.opened = False
        self.address: Optional[str] = None
        self.port: Optional[int] = None
        self.closed = False
        self.error: Optional[GuestError] = None
        self.eof_seen = False

    def _give_back(self, n: int) -> None:
        with self.cond:
            give = 0 if self.closed else self.recv_window.consumed(n)
        self.conn.send_window(self.id, give)

    def on_frame(self, ftype: T, payload: bytes) -> bool:
        what = f"TCP stream {self.id}"
        if ftype == T.TCP_OPENED:
            if self.opened:
                raise ProtocolError("EPROTO", f"{what}: a second TCP_OPENED")
            addr, port = tcp_opened(decode_json(payload))
            with self.cond:
                self.opened, self.address, self.port = True, addr, port
                self.cond.notify_all()
            return False
        if ftype == T.TCP_DATA:
            if not self.opened or self.eof_seen:
                raise ProtocolError("EPROTO", f"{what}: TCP_DATA {'before TCP_OPENED' if not self.opened else 'after TCP_EOF'}")
            with self.cond:
                self.recv_window.received(len(payload), what)
            self.inbox.put(payload)
            return False
        if ftype == T.TCP_EOF:
            self.eof_seen = True
            self.inbox.end()
            return False
        if ftype == T.WINDOW:
            self.send_credit.grant(decode_window(payload), what)
            return False
        if ftype == T.TCP_CLOSED:
            ok, errno, msg = tcp_closed(decode_json(payload))
            err = None if ok else TcpError(errno or "EIO", msg)
            # ok without TCP_OPENED is no stream at all: the caller's connect fails rather than waiting.
            if ok and not self.opened:
                err = TcpError("ECONNRESET", "the guest closed the stream before it opened")
            self._end(err)
            return True
        raise ProtocolError("EPROTO", f"{what}: unexpected {ftype.name} frame")

    def _end(self, err: Optional[GuestError]) -> None:
        with self.cond:
            self.closed = True
            self.error = err
            self.cond.notify_all()
        self.inbox.end(err)
        self.send_credit.close(err or GuestError("EPIPE", "the stream is closed"))

    def on_close(self, err: GuestError) -> None:
        if not self.closed:
            self._end(err)


class TcpStream:
    """One TCP connection made from inside the guest."""

    def __init__(self, ch: _TcpChannel) -> None:
        self._ch = ch
        self._wr_closed = False

    @property
    def peer(self) -> "tuple[Optional[str], Optional[int]]":
        """The address and port the guest connected to."""
        return self._ch.address, self._ch.port

    def recv(self, bufsize: int = CHUNK, timeout: Optional[float] = None) -> bytes:
        """Up to `bufsize` bytes; b"" once the guest's server shut down its side."""
        buf = bytearray(min(bufsize, CHUNK))
        n = self._ch.inbox.read_into(memoryview(buf), timeout)
        return bytes(buf[:n])

    def read_all(self) -> bytes:
        parts: List[bytes] = []
        while True:
            b = self.recv()
            if not b:
                return b"".join(parts)
            parts.append(b)

    def sendall(self, data: Any) -> None:
        if self._wr_closed:
            raise GuestError("EPIPE", "the stream was shut down for writing")
        self._ch.conn.send_credited(T.TCP_DATA, self._ch.id, self._ch.send_credit, data)

    def shutdown(self, how: int = socket.SHUT_WR) -> None:
        """SHUT_WR (or SHUT_RDWR) half-closes: the guest's server reads EOF and may still answer."""
        if how in (socket.SHUT_WR, socket.SHUT_RDWR) and not self._wr_closed and not self._ch.closed:
            self._wr_closed = True
            self._ch.conn.send(encode(T.TCP_EOF, self._ch.id))

    def wait_closed(self, timeout: Optional[float] = None) -> None:
        """Until the stream has ended both ways; TcpError if it ended with an error."""
        ch = self._ch
        with ch.cond:
            if not ch.cond.wait_for(lambda: ch.closed, timeout):
                raise GuestError("ETIMEDOUT", "the stream did not close in time")
            if ch.error is not None:
                raise ch.error

    def reset(self) -> None:
        """Drops the stream at once (TCP_RESET)."""
        if not self._ch.closed:
            try:
                self._ch.conn.send(encode(T.TCP_RESET, self._ch.id))
            except GuestError:
                pass
        self._ch.inbox.discard()

    def close(self) -> None:
        """Half-closes, then stops reading: what the guest still sends is dropped with its credit returned."""
        if not self._ch.closed:
            try:
                self.shutdown()
            except GuestError:
                pass
        self._ch.inbox.discard()

    def __enter__(self) -> "TcpStream":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect_tcp(conn: Connection, host: str, port: int, timeout: Optional[float] = None) -> TcpStream:
    check_host(host)
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ArgumentError("port must be 1..65535")
    ch = conn.open(lambda fid: _TcpChannel(conn, fid, conn.window))
    assert isinstance(ch, _TcpChannel)
    conn.send(encode_json(T.TCP_OPEN, ch.id, {"host": host, "port": port}))
    with ch.cond:
        if not ch.cond.wait_for(lambda: ch.opened or ch.closed, timeout):
            raise TcpError("ETIMEDOUT", f"{host}:{port}: the guest did not connect in time")
        if not ch.opened:
            assert ch.error is not None
            raise TcpError(ch.error.code, f"guest {host}:{port}: {ch.error.message}")
    return TcpStream(ch)
