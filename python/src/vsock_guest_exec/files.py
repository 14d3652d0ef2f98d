"""PUT and GET (PROTOCOL.md §8): a file to or from the guest as a stream under flow control, so either
side holds at most one window of it."""

from __future__ import annotations

import io
import os
import threading
from typing import BinaryIO, Optional, Union

from ._conn import Channel, Connection
from ._credit import ReceiveWindow, SendCredit
from ._frames import CHUNK, T, decode_json, decode_window, encode, encode_json, header
from ._messages import FileResult, file_result
from ._request import abs_path
from ._stream import Inbox
from .errors import ArgumentError, FileError, GuestError, ProtocolError

DEFAULT_MAX_GET = 1024**3
FileSource = Union[bytes, bytearray, memoryview, str, BinaryIO]


class _FileChannel(Channel):
    def __init__(self, conn: Connection, fid: int, window: int, max_size: int = 0) -> None:
        self.conn, self.id = conn, fid
        self.cond = threading.Condition()
        self.credit = SendCredit(window)
        self.window = ReceiveWindow(window)
        self.data = Inbox(self.cond, self._give_back)
        self.max_size = max_size
        self.received = 0
        self.result: Optional[FileResult] = None
        self.error: Optional[GuestError] = None

    def _give_back(self, n: int) -> None:
        with self.cond:
            give = self.window.consumed(n)
        self.conn.send_window(self.id, give)

    def on_frame(self, ftype: T, payload: bytes) -> bool:
        what = f"file request {self.id}"
        if ftype == T.WINDOW:
            self.credit.grant(decode_window(payload), what)
            return False
        if ftype == T.FILE_DATA and self.max_size:
            with self.cond:
                self.window.received(len(payload), what)
                self.received += len(payload)
                if self.received > self.max_size:
                    raise ProtocolError("EPROTO", f"{what}: the guest sent more than the {self.max_size} bytes asked for")
            self.data.put(payload)
            return False
        if ftype == T.RESULT:
            res = file_result(decode_json(payload))
            if res.ok and self.max_size and res.size != self.received:
                raise ProtocolError("EPROTO", f"{what}: RESULT says {res.size} bytes, {self.received} were sent")
            with self.cond:
                self.result = res
                self.cond.notify_all()
            self.data.end(None if res.ok else FileError(res.errno or "EIO", res.message or "", res.path))
            self.credit.close(GuestError("ECLOSED", "the request has ended"))
            return True
        raise ProtocolError("EPROTO", f"{what}: unexpected {ftype.name} frame")

    def on_close(self, err: GuestError) -> None:
        with self.cond:
            if self.result is not None:
                return
            self.error = err
            self.cond.notify_all()
        self.data.end(err)
        self.credit.close(err)

    def wait(self, timeout: Optional[float]) -> FileResult:
        with self.cond:
            if not self.cond.wait_for(lambda: self.result is not None or self.error is not None, timeout):
                raise GuestError("ETIMEDOUT", "no answer in time")
            if self.result is None:
                assert self.error is not None
                raise self.error
            return self.result


def _source(data: FileSource, size: Optional[int]) -> "tuple[BinaryIO, int]":
    if isinstance(data, str):
        data = data.encode("utf-8")
    if isinstance(data, (bytes, bytearray, memoryview)):
        return io.BytesIO(bytes(data)), len(data)
    if size is not None:
        return data, size
    try:
        return data, os.fstat(data.fileno()).st_size - data.tell()
    except (AttributeError, OSError, io.UnsupportedOperation):
        pass
    try:
        here = data.tell()
        end = data.seek(0, io.SEEK_END)
        data.seek(here)
        return data, end - here
    except (AttributeError, OSError, io.UnsupportedOperation):
        raise ArgumentError("pass size= for a stream whose length cannot be told") from None


def _end_short(conn: Connection, ch: "_FileChannel") -> None:
    """The local source failed or ended early: FILE_END now, short of the size announced, so that the agent
    refuses the PUT and removes its temporary file at once instead of holding it until the connection ends."""
    try:
        conn.send(encode(T.FILE_END, ch.id))
    except GuestError:
        pass  # the connection is gone: the agent drops the PUT with it


def put_file(conn: Connection, path: str, data: FileSource, *, mode: int = 0o644, uid: Optional[int] = None,
             gid: Optional[int] = None, size: Optional[int] = None, timeout: Optional[float] = None) -> int:
    abs_path(path)
    if isinstance(mode, bool) or not isinstance(mode, int) or not 0 <= mode <= 0o7777:
        raise ArgumentError("mode must be 0..0o7777")
    src, total = _source(data, size)
    body = {"path": path, "size": total, "mode": mode}
    if uid is not None:
        body["uid"] = uid
    if gid is not None:
        body["gid"] = gid
    ch = conn.open(lambda fid: _FileChannel(conn, fid, conn.window))
    assert isinstance(ch, _FileChannel)
    conn.send(encode_json(T.PUT, ch.id, body))
    sent = 0
    try:
        while sent < total:
            n = ch.credit.take(min(CHUNK, total - sent))
            try:
                chunk = src.read(n)
            except BaseException as e:
                _end_short(conn, ch)
                if isinstance(e, OSError):
                    raise FileError("EIO", f"reading the local source after {sent} of {total} bytes: {e}") from e
                raise
            if not chunk:
                _end_short(conn, ch)
                raise FileError("EIO", f"the local source ended after {sent} of {total} bytes")
            if len(chunk) < n:
                ch.credit.grant(n - len(chunk), "local")  # a short read: keep what it did not use
            conn.send(header(T.FILE_DATA, ch.id, len(chunk)), chunk)
            sent += len(chunk)
        conn.send(encode(T.FILE_END, ch.id))
    except GuestError:
        if ch.result is None:
            raise
    res = ch.wait(timeout)
    if not res.ok:
        raise FileError(res.errno or "EIO", f"put {path}: {res.message}")
    return res.size


def get_file(conn: Connection, path: str, dst: Optional[BinaryIO] = None, *, max_size: int = DEFAULT_MAX_GET,
             timeout: Optional[float] = None) -> "tuple[bytes, FileResult]":
    abs_path(path)
    if isinstance(max_size, bool) or not isinstance(max_size, int) or not 1 <= max_size <= 2**53 - 1:
        raise ArgumentError("max_size must be a positive byte count")
    ch = conn.open(lambda fid: _FileChannel(conn, fid, conn.window, max_size))
    assert isinstance(ch, _FileChannel)
    conn.send(encode_json(T.GET, ch.id, {"path": path, "maxSize": max_size}))
    out = io.BytesIO() if dst is None else dst
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    try:
        while True:
            n = ch.data.read_into(view, timeout)
            if n == 0:
                break
            out.write(view[:n])
    except FileError as e:
        raise FileError(e.code, f"get {path}: {e.message}") from None
    res = ch.wait(timeout)
    return (out.getvalue() if isinstance(out, io.BytesIO) and dst is None else b""), res
