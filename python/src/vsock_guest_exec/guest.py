"""A guest agent on the other end of one v2 connection, and the two ways to get one: `connect()` to an
agent that listens, `listen()` for agents that dial the host."""

from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import IO, Any, BinaryIO, Iterator, List, Mapping, Optional, Sequence, Union

from ._auth import check_token, read_token_file
from ._conn import Connection
from ._frames import T, encode, encode_json
from ._hello import hello
from ._jobs import KillChannel, ListChannel, PingChannel
from ._messages import ExitResult, FileResult, JobInfo, Welcome
from ._request import exec_body, job_ref, offset
from ._transport import dial, listen_socket
from .address import Address, to_address
from .dirs import DirCounts, get_dir, put_dir
from .errors import ArgumentError, GuestError
from .files import DEFAULT_MAX_GET, FileSource, get_file, put_file
from .process import Process, _Channel
from .signals import signal_name
from .tcp import TcpStream, connect_tcp

PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class CompletedProcess:
    """What `Guest.run` returns: as subprocess.CompletedProcess, plus the whole ExitResult."""

    args: Any
    returncode: int
    stdout: bytes
    stderr: bytes
    result: ExitResult

    def check_returncode(self) -> None:
        if self.returncode != 0:
            raise ProcessError(self)


class ProcessError(GuestError):
    """`run(check=True)` of a command that did not exit 0."""

    def __init__(self, completed: CompletedProcess) -> None:
        r = completed.result
        how = {"exited": f"exited {r.code}", "signaled": f"killed by {r.signal}", "timeout": "timed out"}.get(r.status, f"could not start: {r.errno}")
        super().__init__(r.errno or "EEXIT", f"{completed.args!r} {how}")
        self.completed = completed


def _token(token: Optional[Union[bytes, str]], token_file: Optional[PathLike]) -> Optional[bytes]:
    if token is not None and token_file is not None:
        raise ArgumentError("pass token or token_file, not both")
    if token_file is not None:
        return read_token_file(token_file)
    if token is not None:
        return check_token(token.encode("utf-8") if isinstance(token, str) else bytes(token))
    return None


class Guest:
    """One connection to a guest agent. Thread-safe: executions, files and streams run concurrently on it.
    Use as a context manager, or call close()."""

    def __init__(self, sock: socket.socket, where: str, token: Optional[bytes] = None, timeout: Optional[float] = 30.0) -> None:
        """Runs the hello on an already connected socket (connect() and listen() do this for you)."""
        try:
            welcome, dec, self.authenticated = hello(sock, where, token, timeout)
        except BaseException:
            sock.close()
            raise
        self._conn = Connection(sock, welcome, dec, where)

    @property
    def info(self) -> Welcome:
        """The guest's facts from its WELCOME: hostname, kernel, arch, initrd, capabilities, ..."""
        return self._conn.welcome

    @property
    def closed(self) -> bool:
        return self._conn.error is not None

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> "Guest":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _need(self, cap: str) -> None:
        if cap not in self.info.capabilities:
            raise GuestError("ENOTSUP", f"the agent ({self.info.agent}) has no {cap!r} capability")

    # --- executions ----------------------------------------------------------------------------------

    def exec(self, argv: Union[str, Sequence[str]], *, shell: bool = False, stdin: bool = True,
             env: Optional[Mapping[str, Optional[str]]] = None, clear_env: bool = False, cwd: Optional[str] = None,
             user: Optional[Union[str, int]] = None, uid: Optional[int] = None, gid: Optional[int] = None,
             pty: Optional[Mapping[str, Any]] = None, merge: bool = False, timeout: Optional[float] = None,
             kill_signal: Optional[Union[str, int]] = None, detach: Optional[Mapping[str, Any]] = None,
             limits: Optional[Mapping[str, Any]] = None, usage: bool = False) -> Process:
        """Starts a process (argv list, or a shell command with shell=True / a str). `timeout` (seconds) is
        enforced by the agent: it kills the process group and the result's status is "timeout". `limits`
        (`memory_bytes`, `pids`, `cpu`) cap the whole tree on an agent with --cgroup (else the result is an
        error ENOTSUP and nothing runs); `usage=True` (or any limit) fills `result.usage`."""
        if detach is not None:
            self._need("detach")
        body = exec_body(argv, shell=shell, env=env, clear_env=clear_env, cwd=cwd, user=user, uid=uid, gid=gid,
                         stdin=stdin, pty=pty, merge=merge, timeout=timeout, kill_signal=kill_signal, detach=detach,
                         limits=limits, usage=usage)
        conn = self._conn
        ch = conn.open(lambda fid: _Channel(conn, fid, conn.window, attach=False))
        assert isinstance(ch, _Channel)
        try:
            conn.send(encode_json(T.EXEC, ch.id, body))
        except GuestError:
            conn.release(ch.id)
            raise
        return Process(ch, stdin, argv)

    def run(self, argv: Union[str, Sequence[str]], *, input: Optional[Union[bytes, str]] = None, check: bool = False,
            shell: bool = False, **options: Any) -> CompletedProcess:
        """Runs to completion and collects the output, as subprocess.run(capture_output=True)."""
        data = input.encode("utf-8") if isinstance(input, str) else input
        p = self.exec(argv, shell=shell, stdin=data is not None, **options)
        out, err = p.communicate(data)
        r = p.wait()
        done = CompletedProcess(argv, r.returncode, out, err, r)
        if check:
            done.check_returncode()
        return done

    # --- detached executions -------------------------------------------------------------------------

    def jobs(self, timeout: Optional[float] = 30.0) -> List[JobInfo]:
        """The agent's detached executions, running and recently finished."""
        self._need("detach")
        ch = self._conn.open(ListChannel)
        assert isinstance(ch, ListChannel)
        self._conn.send(encode_json(T.LIST, ch.id, {}))
        ch.wait(timeout)
        return ch.jobs

    def attach(self, job: Union[str, int], *, from_offsets: Optional[Mapping[str, int]] = None) -> Process:
        """Follows a detached execution (by tag, job number or "%N"): the output it kept, then live. The
        newest attach takes over; the one before ends with GuestError EBUSY."""
        self._need("detach")
        body = job_ref(job)
        if from_offsets:
            body["from"] = {k: offset(v, f"from_offsets[{k!r}]") for k, v in from_offsets.items() if k in ("stdout", "stderr")}
        conn = self._conn
        ch = conn.open(lambda fid: _Channel(conn, fid, conn.window, attach=True))
        assert isinstance(ch, _Channel)
        conn.send(encode_json(T.ATTACH, ch.id, body))
        return Process(ch, True, job)

    def kill_job(self, job: Union[str, int], sig: Union[str, int] = "SIGTERM", timeout: Optional[float] = 30.0) -> None:
        """Signals a detached execution's process group without attaching (GuestError ENOENT / ESRCH)."""
        self._need("detach")
        body = {**job_ref(job), "signal": signal_name(sig)}
        ch = self._conn.open(KillChannel)
        assert isinstance(ch, KillChannel)
        self._conn.send(encode_json(T.KILL, ch.id, body))
        ch.wait(timeout)
        errno, msg = ch.answer
        if errno is not None:
            raise GuestError(errno, msg or f"cannot signal job {job!r}")

    # --- files ---------------------------------------------------------------------------------------

    def put_file(self, path: str, data: FileSource, *, mode: int = 0o644, uid: Optional[int] = None,
                 gid: Optional[int] = None, size: Optional[int] = None, timeout: Optional[float] = None) -> int:
        """Writes a guest file atomically (temporary name, fsync, rename) from bytes, a str or a binary file
        object (`size` when its length cannot be told); returns the size written."""
        return put_file(self._conn, path, data, mode=mode, uid=uid, gid=gid, size=size, timeout=timeout)

    def get_file(self, path: str, dst: Optional[BinaryIO] = None, *, max_size: int = DEFAULT_MAX_GET,
                 timeout: Optional[float] = None) -> bytes:
        """A guest file's bytes, or written into `dst` (then b"" is returned). FileError EFBIG over max_size."""
        data, _ = get_file(self._conn, path, dst, max_size=max_size, timeout=timeout)
        return data

    def stat_get(self, path: str, dst: BinaryIO, *, max_size: int = DEFAULT_MAX_GET) -> FileResult:
        """get_file into `dst`, returning the RESULT (size, mode, mtime) for callers that keep them."""
        return get_file(self._conn, path, dst, max_size=max_size)[1]

    def put_dir(self, local: PathLike, remote: str, timeout: Optional[float] = None) -> DirCounts:
        """Copies a local tree to `remote` (made if missing, merged into if present): files, directories,
        symlinks as links, modes and mtimes; no tar needed in the guest."""
        self._need("dirs")
        return put_dir(self._conn, local, remote, timeout)

    def get_dir(self, remote: str, local: PathLike, *, preserve_mode: bool = False, timeout: Optional[float] = None) -> DirCounts:
        """Copies a guest tree into `local`, never writing outside it; modes under the umask unless
        preserve_mode, never setuid/setgid/sticky."""
        self._need("dirs")
        return get_dir(self._conn, remote, local, preserve_mode=preserve_mode, timeout=timeout)

    # --- streams and liveness ------------------------------------------------------------------------

    def connect_tcp(self, host: str, port: int, timeout: Optional[float] = 30.0) -> TcpStream:
        """A TCP connection made by the agent inside the guest (its 127.0.0.1 is the guest's own)."""
        self._need("tcp")
        return connect_tcp(self._conn, host, port, timeout)

    def ping(self, data: bytes = b"", timeout: Optional[float] = 10.0) -> float:
        """Round trip to the agent, in seconds."""
        if len(data) > 64:
            raise ArgumentError("a PING carries at most 64 bytes")
        ch = self._conn.open(PingChannel)
        assert isinstance(ch, PingChannel)
        start = time.monotonic()
        self._conn.send(encode(T.PING, ch.id, data))
        ch.wait(timeout)
        if ch.payload != data:
            raise GuestError("EPROTO", "PONG does not carry the PING's bytes")
        return time.monotonic() - start


def connect(address: Union[str, Address], *, token: Optional[Union[bytes, str]] = None,
            token_file: Optional[PathLike] = None, timeout: Optional[float] = 30.0) -> Guest:
    """Dials an agent that listens (vsock:, unix:, fc:) and runs the hello. A listen address waits for
    the first guest that dials in instead."""
    addr = to_address(address)
    tok = _token(token, token_file)
    if addr.listens:
        with Listener(addr, token=tok) as lst:
            return lst.accept(timeout)
    return Guest(dial(addr, timeout), str(addr), tok, timeout)


class Listener:
    """Waits for agents that dial the host (vsock-listen:, unix-listen:, fc-listen:); iterate it or call
    accept(). A connection that fails its hello is dropped and the listener keeps waiting."""

    def __init__(self, address: Union[str, Address], *, token: Optional[Union[bytes, str]] = None,
                 token_file: Optional[PathLike] = None, hello_timeout: Optional[float] = 30.0) -> None:
        self.address = to_address(address)
        self._token = _token(token, token_file)
        self._hello_timeout = hello_timeout
        self._sock = listen_socket(self.address)
        self._lock = threading.Lock()
        self.last_error: Optional[GuestError] = None

    def accept(self, timeout: Optional[float] = None) -> Guest:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            self._sock.settimeout(left)
            try:
                sock, _ = self._sock.accept()
            except socket.timeout:
                raise GuestError("ETIMEDOUT", f"{self.address}: no guest connected within {timeout} s") from None
            except OSError as e:
                raise GuestError("ECLOSED", f"{self.address}: the listener is closed ({e.strerror or e})") from None
            sock.settimeout(None)
            try:
                return Guest(sock, str(self.address), self._token, self._hello_timeout)
            except GuestError as e:
                if e.code == "EAUTH":
                    raise
                self.last_error = e  # not a v2 agent, or it went away mid-hello: wait for the next

    def __iter__(self) -> Iterator[Guest]:
        while True:
            try:
                yield self.accept()
            except GuestError as e:
                if e.code == "ECLOSED":
                    return
                raise

    def close(self) -> None:
        self._sock.close()
        if self.address.kind in ("unix-listen", "fc-listen"):
            try:
                os.unlink(self.address.socket_path)
            except OSError:
                pass

    def __enter__(self) -> "Listener":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def listen(address: Union[str, Address], *, token: Optional[Union[bytes, str]] = None,
           token_file: Optional[PathLike] = None, hello_timeout: Optional[float] = 30.0) -> Listener:
    return Listener(address, token=token, token_file=token_file, hello_timeout=hello_timeout)
