"""Requests answered by a few frames: LIST and KILL of detached executions (PROTOCOL.md §5.1) and PING.
ATTACH follows a job like an execution (process.py)."""

from __future__ import annotations

import threading
from typing import List, Optional, Tuple

from ._conn import Channel
from ._frames import T, decode_json
from ._messages import MAX_LIST_ENTRIES, JobInfo, detached, listing
from .errors import GuestError, ProtocolError


class _Answer(Channel):
    """A channel whose caller waits for it to be complete."""

    def __init__(self, fid: int) -> None:
        self.id = fid
        self.cond = threading.Condition()
        self.complete = False
        self.error: Optional[GuestError] = None

    def on_close(self, err: GuestError) -> None:
        with self.cond:
            self.error = err
            self.cond.notify_all()

    def _done(self) -> bool:
        with self.cond:
            self.complete = True
            self.cond.notify_all()
        return True

    def wait(self, timeout: Optional[float]) -> None:
        with self.cond:
            if not self.cond.wait_for(lambda: self.complete or self.error is not None, timeout):
                raise GuestError("ETIMEDOUT", "no answer in time")
            if not self.complete:
                assert self.error is not None
                raise self.error


class ListChannel(_Answer):
    def __init__(self, fid: int) -> None:
        super().__init__(fid)
        self.jobs: List[JobInfo] = []

    def on_frame(self, ftype: T, payload: bytes) -> bool:
        if ftype != T.LISTING:
            raise ProtocolError("EPROTO", f"LIST: unexpected {ftype.name} frame")
        jobs, more = listing(decode_json(payload))
        if len(self.jobs) + len(jobs) > MAX_LIST_ENTRIES:
            raise ProtocolError("EPROTO", f"LIST: more than {MAX_LIST_ENTRIES} jobs")
        self.jobs.extend(jobs)
        return False if more else self._done()


class KillChannel(_Answer):
    def __init__(self, fid: int) -> None:
        super().__init__(fid)
        self.answer: Tuple[Optional[str], str] = (None, "")

    def on_frame(self, ftype: T, payload: bytes) -> bool:
        if ftype != T.DETACHED:
            raise ProtocolError("EPROTO", f"KILL: unexpected {ftype.name} frame")
        self.answer = detached(decode_json(payload))
        return self._done()


class PingChannel(_Answer):
    def __init__(self, fid: int) -> None:
        super().__init__(fid)
        self.payload = b""

    def on_frame(self, ftype: T, payload: bytes) -> bool:
        if ftype != T.PONG:
            raise ProtocolError("EPROTO", f"PING: unexpected {ftype.name} frame")
        self.payload = payload
        return self._done()
