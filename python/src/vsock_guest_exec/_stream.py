"""Incoming byte streams (an execution's stdout and stderr, a TCP stream, a GET) as blocking file-like
readers. Bytes are queued only within the credit the host granted; credit goes back as the caller reads."""

from __future__ import annotations

import collections
import io
import threading
from typing import Callable, Deque, Optional

from .errors import GuestError


class Inbox:
    """Chunks the reader thread delivered for one stream, until the consumer takes them. `give_back(n)` is
    called (outside the lock) after the consumer took n bytes: it returns credit to the guest."""

    def __init__(self, cond: threading.Condition, give_back: Callable[[int], None]) -> None:
        self._cond = cond
        self._chunks: Deque[bytes] = collections.deque()
        self._eof = False
        self._error: Optional[GuestError] = None
        self._give_back = give_back
        self._discard = False
        self.received = 0

    # reader thread side (the caller holds no lock)
    def put(self, data: bytes) -> None:
        with self._cond:
            self.received += len(data)
            if not self._discard:
                self._chunks.append(data)
                self._cond.notify_all()
                return
        self._give_back(len(data))  # nobody reads this stream any more: its bytes are dropped, credit flows

    def end(self, err: Optional[GuestError] = None) -> None:
        with self._cond:
            if not self._eof:
                self._eof = True
                self._error = err
            self._cond.notify_all()

    # consumer side
    def read_into(self, buf: memoryview, timeout: Optional[float] = None) -> int:
        with self._cond:
            if not self._cond.wait_for(lambda: bool(self._chunks) or self._eof, timeout):
                raise GuestError("ETIMEDOUT", "no data within the timeout")
            if not self._chunks:
                if self._error is not None:
                    raise self._error
                return 0
            chunk = self._chunks[0]
            n = min(len(buf), len(chunk))
            buf[:n] = chunk[:n]
            if n == len(chunk):
                self._chunks.popleft()
            else:
                self._chunks[0] = chunk[n:]
        self._give_back(n)
        return n

    def discard(self) -> int:
        """From now on the stream's bytes are dropped as they come (the consumer went away), with their credit
        returned, so the guest's process never blocks on a reader that is gone."""
        with self._cond:
            self._discard = True
            n = sum(len(c) for c in self._chunks)
            self._chunks.clear()
        if n:
            self._give_back(n)
        return n


class InboxReader(io.RawIOBase):
    """A readable raw stream over an Inbox: `read()` blocks until bytes or EOF, and returns credit as it
    reads. Wrap in io.BufferedReader (as `Process.stdout` is) for readline() and iteration."""

    def __init__(self, inbox: Inbox, name: str) -> None:
        super().__init__()
        self._inbox = inbox
        self.name = name

    def readable(self) -> bool:
        return True

    def readinto(self, b: "bytearray | memoryview") -> int:  # type: ignore[override]
        return self._inbox.read_into(memoryview(b).cast("B"))

    def close(self) -> None:
        if not self.closed:
            self._inbox.discard()
        super().close()
