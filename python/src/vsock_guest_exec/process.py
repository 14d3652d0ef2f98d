"""A process running in the guest, shaped after subprocess.Popen: `stdin` (write, close → half-close),
`stdout`/`stderr` (buffered readers that return credit as they are read), `wait()`, `communicate()`,
`kill()`, `resize()`. Also the follower of a detached job (`Guest.attach`)."""

from __future__ import annotations

import io
import threading
from typing import IO, Any, Dict, List, Optional, Tuple, Union

from ._conn import Channel, Connection
from ._credit import ReceiveWindow, SendCredit
from ._frames import CHUNK, T, decode_json, decode_window, encode, encode_json
from ._messages import Attached, ExitResult, attached, detached, exit_result, started
from ._stream import Inbox, InboxReader
from .errors import ArgumentError, GuestError, ProtocolError
from .signals import signal_name


class _Channel(Channel):
    def __init__(self, conn: Connection, fid: int, window: int, attach: bool) -> None:
        self.conn, self.id = conn, fid
        self.cond = threading.Condition()
        self.window = ReceiveWindow(window)
        # A follower sends no stdin before ATTACHED, and then only what is left of the job's one window.
        self.stdin_credit = SendCredit(window, 0 if attach else None)
        self.stdout = Inbox(self.cond, self._give_back)
        self.stderr = Inbox(self.cond, self._give_back)
        self.attach = attach
        self.started = False
        self.pid: Optional[int] = None
        self.job: Optional[int] = None
        self.tag: Optional[str] = None
        self.replay: Optional[Attached] = None
        self.result: Optional[ExitResult] = None
        self.error: Optional[GuestError] = None
        self._credit_lock = threading.Lock()

    def _give_back(self, n: int) -> None:
        with self._credit_lock:
            give = self.window.consumed(n)
        self.conn.send_window(self.id, give)

    def on_frame(self, ftype: T, payload: bytes) -> bool:
        what = f"execution {self.id}"
        if ftype in (T.STDOUT, T.STDERR):
            with self._credit_lock:
                self.window.received(len(payload), what)
            (self.stdout if ftype == T.STDOUT else self.stderr).put(payload)
            return False
        if ftype == T.WINDOW:
            self.stdin_credit.grant(decode_window(payload), f"{what} stdin")
            return False
        if ftype == T.STARTED and not self.attach:
            if self.started:
                raise ProtocolError("EPROTO", f"{what}: a second STARTED")
            pid, job, tag = started(decode_json(payload))
            with self.cond:
                self.started, self.pid, self.job, self.tag = True, pid, job, tag
                self.cond.notify_all()
            return False
        if ftype == T.ATTACHED and self.attach:
            if self.started:
                raise ProtocolError("EPROTO", f"{what}: a second ATTACHED")
            a = attached(decode_json(payload))
            if a.stdin is not None and a.stdin > self.stdin_credit.window:
                raise ProtocolError("EPROTO", f"{what}: ATTACHED stdin {a.stdin} is over the window")
            self.stdin_credit.grant(self.stdin_credit.window if a.stdin is None else a.stdin, what)
            with self.cond:
                self.started, self.replay, self.pid, self.job, self.tag = True, a, a.pid, a.job, a.tag
                self.cond.notify_all()
            return False
        if ftype == T.EXIT:
            res = exit_result(decode_json(payload))
            self._finish(res, None)
            return True
        if ftype == T.DETACHED:
            errno, msg = detached(decode_json(payload))
            self._finish(None, GuestError(errno or "EBUSY", msg or "the job is followed elsewhere now"))
            return True
        raise ProtocolError("EPROTO", f"{what}: unexpected {ftype.name} frame")

    def _finish(self, res: Optional[ExitResult], err: Optional[GuestError]) -> None:
        with self.cond:
            self.result, self.error = res, err
            self.cond.notify_all()
        self.stdout.end(err)
        self.stderr.end(err)
        self.stdin_credit.close(err or GuestError("ECLOSED", "the process has exited"))

    def on_close(self, err: GuestError) -> None:
        with self.cond:
            if self.result is not None or self.error is not None:
                return
        self._finish(None, err)


class StdinWriter(io.RawIOBase):
    """The process's stdin: `write()` blocks until the guest has credit (back-pressure into the guest);
    `close()` sends STDIN_EOF, the half-close a program reading to EOF waits for."""

    def __init__(self, ch: _Channel) -> None:
        super().__init__()
        self._ch = ch
        self.name = "stdin"

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        if self.closed:
            raise ArgumentError("write to a closed stdin")
        return self._ch.conn.send_credited(T.STDIN, self._ch.id, self._ch.stdin_credit, b)

    def close(self) -> None:
        if not self.closed:
            try:
                with self._ch.cond:
                    done = self._ch.result is not None or self._ch.error is not None
                if not done:
                    self._ch.conn.send(encode(T.STDIN_EOF, self._ch.id))
            except GuestError:
                pass  # the connection is gone: there is nobody to half-close to
        super().close()


class Process:
    """A running (or finished) execution in the guest."""

    def __init__(self, ch: _Channel, stdin: bool, argv: Any) -> None:
        self._ch = ch
        self.args = argv
        self.stdin: Optional[IO[bytes]] = io.BufferedWriter(StdinWriter(ch), CHUNK) if stdin else None
        self.stdout: IO[bytes] = io.BufferedReader(InboxReader(ch.stdout, "stdout"), CHUNK)
        self.stderr: IO[bytes] = io.BufferedReader(InboxReader(ch.stderr, "stderr"), CHUNK)

    @property
    def id(self) -> int:
        return self._ch.id

    def wait_started(self, timeout: Optional[float] = None) -> "Process":
        """Until the guest said the process runs (STARTED / ATTACHED); GuestError if it never will (an
        EXIT with status "error" is not an exception here: see `wait()`)."""
        ch = self._ch
        with ch.cond:
            if not ch.cond.wait_for(lambda: ch.started or ch.result is not None or ch.error is not None, timeout):
                raise GuestError("ETIMEDOUT", "the process did not start in time")
            if not ch.started and ch.error is not None:
                raise ch.error
        return self

    @property
    def pid(self) -> Optional[int]:
        """The guest pid once started (None before, and for a process that never started)."""
        return self._ch.pid

    @property
    def job(self) -> Optional[int]:
        """The agent's job number of a detached execution."""
        return self._ch.job

    @property
    def tag(self) -> Optional[str]:
        return self._ch.tag

    @property
    def replay(self) -> Optional[Attached]:
        """For an attach: where each stream's replay starts and how many bytes were dropped before it."""
        return self._ch.replay

    @property
    def offsets(self) -> Dict[str, int]:
        """How far each stream has been received, counted from the job's first byte: pass to a later
        `attach(..., from_offsets=...)` to continue without loss or repetition."""
        r = self._ch.replay
        return {"stdout": (r.stdout.start if r else 0) + self._ch.stdout.received,
                "stderr": (r.stderr.start if r else 0) + self._ch.stderr.received}

    @property
    def result(self) -> Optional[ExitResult]:
        return self._ch.result

    @property
    def returncode(self) -> Optional[int]:
        """As in subprocess: None while running, else the shell-style status (ExitResult.returncode)."""
        r = self._ch.result
        return None if r is None else r.returncode

    def poll(self) -> Optional[int]:
        return self.returncode

    def wait(self, timeout: Optional[float] = None) -> ExitResult:
        """The exit result. Like Popen.wait with pipes: read stdout/stderr meanwhile (or use communicate()),
        since a process whose output nobody reads blocks once the window is full."""
        ch = self._ch
        with ch.cond:
            if not ch.cond.wait_for(lambda: ch.result is not None or ch.error is not None, timeout):
                raise GuestError("ETIMEDOUT", f"the process did not exit within {timeout} s")
            if ch.result is None:
                assert ch.error is not None
                raise ch.error
            return ch.result

    def communicate(self, input: Optional[bytes] = None, timeout: Optional[float] = None) -> Tuple[bytes, bytes]:
        """Writes `input` (then closes stdin), reads both streams to their end, waits for the exit."""
        outs: List[bytes] = [b"", b""]
        errors: List[BaseException] = []

        def slurp(i: int, f: IO[bytes]) -> None:
            try:
                outs[i] = f.read()
            except BaseException as e:  # reported below, on the caller's thread
                errors.append(e)

        threads = [threading.Thread(target=slurp, args=(0, self.stdout), daemon=True),
                   threading.Thread(target=slurp, args=(1, self.stderr), daemon=True)]
        for t in threads:
            t.start()
        if self.stdin is not None:
            try:
                if input:
                    self.stdin.write(input)
                self.stdin.close()
            except (GuestError, BrokenPipeError, ValueError):
                pass  # the process exited before reading all of its input, as `yes | head -1`
        for t in threads:
            t.join(timeout)
            if t.is_alive():
                raise GuestError("ETIMEDOUT", f"the process did not finish within {timeout} s")
        self.wait(timeout)
        if errors:
            raise errors[0]
        return outs[0], outs[1]

    def send_signal(self, sig: Union[str, int] = "SIGTERM") -> None:
        """To the process group in the guest (names or Linux numbers: 15, "TERM", "SIGTERM")."""
        body = {"signal": signal_name(sig)}
        if self.returncode is None:
            self._ch.conn.send(encode_json(T.SIGNAL, self._ch.id, body))

    def kill(self, sig: Union[str, int] = "SIGKILL") -> None:
        self.send_signal(sig)

    def terminate(self) -> None:
        self.send_signal("SIGTERM")

    def resize(self, cols: int, rows: int) -> None:
        for n, v in (("cols", cols), ("rows", rows)):
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 65535:
                raise ArgumentError(f"{n} must be 1..65535")
        self._ch.conn.send(encode_json(T.RESIZE, self._ch.id, {"cols": cols, "rows": rows}))

    def __enter__(self) -> "Process":
        return self

    def __exit__(self, *exc: object) -> None:
        """Closes stdin and stops reading; waits for the exit as Popen does (kill() first to not wait)."""
        if self.stdin is not None and not self.stdin.closed:
            self.stdin.close()
        self.stdout.close()
        self.stderr.close()
        try:
            self.wait()
        except GuestError:
            pass
