"""One v2 connection after its hello: a reader thread turns bytes into frames and hands each to the
channel (execution, file, stream) that owns its id; any thread may send. Channel handlers run on the
reader thread and never block, so a slow consumer holds back only its own stream's credit."""

from __future__ import annotations

import socket
import threading
from typing import Any, Callable, Dict, Optional

from ._credit import SendCredit
from ._frames import CHUNK, T, WINDOW, FrameDecoder, decode_json, encode, encode_window, header
from ._messages import Welcome, error_code
from .errors import GuestError, ProtocolError

MAX_ID = 0xFFFFFFFE


class Channel:
    """What one id receives. `on_frame` returns True when the id is done (its last frame came)."""

    def on_frame(self, ftype: T, payload: bytes) -> bool:
        raise NotImplementedError

    def on_close(self, err: GuestError) -> None:
        raise NotImplementedError


class Connection:
    def __init__(self, sock: socket.socket, welcome: Welcome, leftover: FrameDecoder, where: str) -> None:
        self.sock = sock
        self.welcome = welcome
        # The credit for each stream, both ways (PROTOCOL.md §7): 262144, or less if the WELCOME says so;
        # never more, as the Go and TypeScript hosts read it.
        self.window = min(welcome.window, WINDOW)
        self.where = where
        self._decoder = leftover
        self._channels: Dict[int, Channel] = {}
        self._lock = threading.Lock()
        self._wlock = threading.Lock()
        self._next_id = 1
        self._error: Optional[GuestError] = None
        self._closed = threading.Event()
        self._wcond = threading.Condition()
        self._windows: Dict[int, int] = {}
        self._window_thread: Optional[threading.Thread] = None
        self._reader = threading.Thread(target=self._read_loop, name=f"vge-reader {where}", daemon=True)
        self._reader.start()

    # --- ids -----------------------------------------------------------------------------------------

    def open(self, make: Callable[[int], Channel]) -> Channel:
        """A new channel on a fresh id (ids are never reused while open)."""
        with self._lock:
            if self._error is not None:
                raise self._error
            for _ in range(MAX_ID):
                fid = self._next_id
                self._next_id = 1 if fid >= MAX_ID else fid + 1
                if fid not in self._channels:
                    break
            else:
                raise GuestError("EAGAIN", "every id is in use")
            ch = make(fid)
            self._channels[fid] = ch
            return ch

    def release(self, fid: int) -> None:
        with self._lock:
            self._channels.pop(fid, None)

    # --- sending -------------------------------------------------------------------------------------

    def send(self, frame: bytes, payload: bytes = b"") -> None:
        """One frame (or a header and its payload), whole, before any other thread's."""
        with self._wlock:
            if self._error is not None:
                raise self._error
            try:
                if len(payload) > 16 * 1024:
                    self.sock.sendall(frame)  # a large payload is not copied into a joined buffer
                    self.sock.sendall(payload)
                else:
                    self.sock.sendall(frame + payload)
            except OSError as e:
                err = GuestError("ECLOSED", f"{self.where}: the connection failed while sending: {e.strerror or e}")
                self.fail(err)
                raise err from None


    def send_credited(self, type_: T, stream_id: int, credit: SendCredit, data: Any) -> int:
        """`data` as frames of `type_` of at most CHUNK bytes, each sent once the guest has given credit for
        it (stdin, TCP data): a writer waits here rather than the guest buffering past its window."""
        view = memoryview(data).cast("B")
        sent = 0
        while sent < len(view):
            n = credit.take(min(CHUNK, len(view) - sent))
            self.send(header(type_, stream_id, n), bytes(view[sent : sent + n]))
            sent += n
        return sent
    def send_data(self, ftype: T, fid: int, data: "bytes | memoryview") -> None:
        """Data frames of at most CHUNK bytes each, header then payload (no copy into a new frame)."""
        view = memoryview(data)
        for i in range(0, len(view), CHUNK):
            part = view[i : i + CHUNK]
            self.send(header(ftype, fid, len(part)), bytes(part))

    def send_window(self, fid: int, credit: int) -> None:
        """Returns credit without blocking the caller: WINDOW frames go out from a thread of their own, so the
        reader thread (which may return credit for a stream nobody reads) never waits on the socket while a
        writer holds it; credit for one id posted meanwhile is summed into one frame."""
        if credit <= 0:
            return
        with self._wcond:
            self._windows[fid] = self._windows.get(fid, 0) + credit
            if self._window_thread is None:
                self._window_thread = threading.Thread(target=self._window_loop, name=f"vge-credit {self.where}", daemon=True)
                self._window_thread.start()
            self._wcond.notify()

    def _window_loop(self) -> None:
        while True:
            with self._wcond:
                self._wcond.wait_for(lambda: bool(self._windows) or self._error is not None)
                if self._error is not None:
                    return
                pending, self._windows = self._windows, {}
            try:
                for fid, credit in pending.items():
                    self.send(encode_window(fid, credit))
            except GuestError:
                return  # the connection is gone; every channel hears about it from fail()

    # --- receiving -----------------------------------------------------------------------------------

    def _read_loop(self) -> None:
        err: GuestError
        try:
            self._dispatch()  # frames the hello read ahead
            while True:
                try:
                    data = self.sock.recv(256 * 1024)
                except OSError as e:
                    if self._closed.is_set():
                        raise GuestError("ECLOSED", f"{self.where}: the connection was closed") from None
                    raise GuestError("ECLOSED", f"{self.where}: the connection failed: {e.strerror or e}") from None
                if not data:
                    raise GuestError("ECLOSED", f"{self.where}: the guest closed the connection")
                self._decoder.push(data)
                self._dispatch()
        except GuestError as e:
            err = e
        except Exception as e:  # a bug of ours must not leave callers waiting forever
            err = GuestError("EINTERNAL", f"{self.where}: {type(e).__name__}: {e}")
        self.fail(err)

    def _dispatch(self) -> None:
        for ftype, fid, payload in self._decoder.frames():
            if fid == 0:
                self._connection_frame(ftype, payload)
                continue
            with self._lock:
                ch = self._channels.get(fid)
            if ch is None:
                continue  # an id we do not hold (released after its last frame): dropped unread
            if ch.on_frame(ftype, payload):
                self.release(fid)

    def _connection_frame(self, ftype: T, payload: bytes) -> None:
        if ftype == T.ERROR:
            code, msg = error_code(decode_json(payload))
            raise GuestError(code, f"{self.where}: the agent ended the connection: {msg}")
        raise ProtocolError("EPROTO", f"{self.where}: unexpected {ftype.name} frame on id 0")

    # --- ending --------------------------------------------------------------------------------------

    def fail(self, err: GuestError) -> None:
        with self._lock:
            if self._error is not None:
                return
            self._error = err
            channels = list(self._channels.values())
            self._channels.clear()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        for ch in channels:
            ch.on_close(err)
        with self._wcond:
            self._wcond.notify_all()
        self._closed.set()

    @property
    def error(self) -> Optional[GuestError]:
        return self._error

    def close(self) -> None:
        self._closed.set()
        self.fail(GuestError("ECLOSED", f"{self.where}: closed by this host"))
        if threading.current_thread() is not self._reader:
            self._reader.join(5)
        self.sock.close()

    def wait_closed(self, timeout: Optional[float] = None) -> bool:
        return self._closed.wait(timeout)


def send_json(conn: Connection, ftype: T, fid: int, body: Dict[str, object]) -> None:
    from ._frames import encode_json

    conn.send(encode_json(ftype, fid, body))


def send_empty(conn: Connection, ftype: T, fid: int) -> None:
    conn.send(encode(ftype, fid))
