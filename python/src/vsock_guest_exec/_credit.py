"""Flow control (PROTOCOL.md §7) for one stream, both directions."""

from __future__ import annotations

import threading
from typing import Optional

from .errors import GuestError, ProtocolError


class ReceiveWindow:
    """Credit this host granted for a stream the guest sends. Bytes beyond it are the guest's EFLOW (the
    connection fails); consumed bytes go back in batches of half a window, so a fast stream costs one
    WINDOW frame per 128 KiB, not one per chunk."""

    def __init__(self, window: int) -> None:
        self.window = window
        self._outstanding = window  # credit the guest holds now
        self._unreturned = 0  # consumed, not yet given back

    def received(self, n: int, what: str) -> None:
        if n > self._outstanding:
            raise ProtocolError("EFLOW", f"{what}: the guest sent {n} bytes with {self._outstanding} of credit")
        self._outstanding -= n

    def consumed(self, n: int) -> int:
        """Credit to return now (0 while the batch is small)."""
        self._unreturned += n
        if self._unreturned < max(1, self.window // 2):
            return 0
        give, self._unreturned = self._unreturned, 0
        self._outstanding += give
        return give


class SendCredit:
    """Credit the guest gave us for a stream we send: writers wait for it; a WINDOW that would raise it past
    the window we started with is the guest's EFLOW."""

    def __init__(self, window: int, initial: Optional[int] = None) -> None:
        self.window = window
        self._credit = window if initial is None else initial
        self._cond = threading.Condition()
        self._error: Optional[GuestError] = None

    def grant(self, n: int, what: str) -> None:
        with self._cond:
            if self._credit + n > self.window:
                raise ProtocolError("EFLOW", f"{what}: the guest returned {n} bytes of credit; {self.window - self._credit} were outstanding")
            self._credit += n
            self._cond.notify_all()

    def take(self, want: int, timeout: Optional[float] = None) -> int:
        """Up to `want` bytes of credit, waiting while there is none; GuestError once the stream is closed."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._credit > 0 or self._error is not None, timeout):
                raise GuestError("ETIMEDOUT", "no credit from the guest in time")
            if self._error is not None:
                raise self._error
            n = min(want, self._credit)
            self._credit -= n
            return n

    def close(self, err: GuestError) -> None:
        with self._cond:
            if self._error is None:
                self._error = err
            self._cond.notify_all()
