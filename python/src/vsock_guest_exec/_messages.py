"""What the host accepts from an agent (PROTOCOL.md §9 "What the host accepts"): every field typed and
bounded before the library keeps it, free text escaped. Pure functions; a bad body raises ProtocolError."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, NoReturn, Optional, Tuple

from ._frames import SAFE_INT_MAX, U32_MAX
from ._printable import printable
from .errors import ProtocolError

MAX_FACT = 256
MAX_WINDOW = 64 * 1024 * 1024
MAX_MESSAGE = 1024
MAX_LIST_ARGV = 256
MAX_LIST_ENTRIES = 4096
MAX_ENTRY_PATH = 4096
MAX_NAME = 255
_TOKEN = re.compile(r"[A-Z][A-Z0-9_+-]{0,31}")
_CAP = re.compile(r"[a-z0-9_-]{1,32}")
TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")

Body = Mapping[str, Any]


def _bad(what: str, msg: str) -> NoReturn:
    raise ProtocolError("EPROTO", f"{what} frame: {msg}")


def is_uint(v: Any, maximum: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= maximum


def _uint(what: str, v: Any, name: str, maximum: int = SAFE_INT_MAX) -> int:
    if not is_uint(v, maximum):
        _bad(what, f"{name} must be an integer 0..{maximum}")
    out: int = v
    return out


def _str(what: str, v: Any, name: str, maximum: int) -> str:
    if not isinstance(v, str):
        _bad(what, f"{name} must be a string")
    if len(v) > maximum:
        _bad(what, f"{name} is {len(v)} characters long; at most {maximum} are accepted")
    return v


def token(what: str, v: Any, name: str) -> str:
    if not isinstance(v, str) or not _TOKEN.fullmatch(v):
        _bad(what, f"{name} must be a name like ENOENT or SIGKILL")
    return v


def message(what: str, v: Any, name: str) -> str:
    if not isinstance(v, str):
        _bad(what, f"{name} must be a string")
    return printable(v, MAX_MESSAGE)


@dataclass(frozen=True)
class Welcome:
    """The guest's facts from its WELCOME."""

    version: int
    agent: str
    capabilities: Tuple[str, ...]
    hostname: str
    kernel: str
    arch: str
    initrd: bool
    pid: int
    max_payload: int
    window: int


def welcome(b: Body) -> Welcome:
    w = "WELCOME"
    if b.get("version") != 2 or isinstance(b.get("version"), bool):
        _bad(w, "the agent chose a version other than 2")
    caps = b.get("capabilities")
    if not isinstance(caps, list) or len(caps) > 64 or not all(isinstance(c, str) and _CAP.fullmatch(c) for c in caps):
        _bad(w, "capabilities must be at most 64 short lowercase names")
    if not isinstance(b.get("initrd"), bool):
        _bad(w, "initrd must be a boolean")
    pid = _uint(w, b.get("pid"), "pid", U32_MAX)
    mp = _uint(w, b.get("maxPayload"), "maxPayload", U32_MAX)
    win = _uint(w, b.get("window"), "window", MAX_WINDOW)
    if mp == 0 or win == 0:
        _bad(w, "maxPayload and window must be positive")
    return Welcome(
        version=2,
        agent=_str(w, b.get("agent"), "agent", 64),
        capabilities=tuple(caps),
        hostname=_str(w, b.get("hostname"), "hostname", MAX_FACT),
        kernel=_str(w, b.get("kernel"), "kernel", MAX_FACT),
        arch=_str(w, b.get("arch"), "arch", 32),
        initrd=bool(b["initrd"]),
        pid=pid,
        max_payload=mp,
        window=win,
    )


@dataclass(frozen=True)
class ExitResult:
    """How an execution ended (PROTOCOL.md §6). `status` is "exited", "signaled", "timeout" or "error"."""

    status: str
    code: Optional[int] = None
    signal: Optional[str] = None
    signo: Optional[int] = None
    errno: Optional[str] = None
    message: Optional[str] = None
    usage: Optional["Usage"] = None
    oom: bool = False

    @property
    def returncode(self) -> int:
        """The shell's way to say it: the code, 128+n after signal n, 124 after a timeout, 127/126 when the
        program could not start."""
        if self.status == "exited":
            return self.code or 0
        if self.status == "signaled":
            return 128 + (self.signo or 0)
        if self.status == "timeout":
            return 124
        return 127 if self.errno == "ENOENT" else 126


@dataclass(frozen=True)
class Usage:
    """What an execution used (PROTOCOL.md §5.2), when the EXEC asked for it."""

    user_usec: int
    system_usec: int
    memory_peak: Optional[int]
    source: str  # "cgroup" (the whole tree) or "rusage" (the leader and its waited-for children)


def _usage(w: str, v: Any) -> Optional[Usage]:
    if v is None:
        return None
    if not isinstance(v, dict) or v.get("from") not in ("cgroup", "rusage"):
        _bad(w, 'usage must be an object with from "cgroup" or "rusage"')
    peak = v.get("memoryPeak")
    return Usage(_uint(w, v.get("userUsec"), "usage.userUsec"), _uint(w, v.get("systemUsec"), "usage.systemUsec"),
                 None if peak is None else _uint(w, peak, "usage.memoryPeak"), str(v["from"]))


def exit_result(b: Body) -> ExitResult:
    from dataclasses import replace

    r = _exit_result(b)
    oom = b.get("oom")
    if oom is not None and not isinstance(oom, bool):
        _bad("EXIT", "oom must be a boolean")
    return replace(r, usage=_usage("EXIT", b.get("usage")), oom=bool(oom))


def _exit_result(b: Body) -> ExitResult:
    w = "EXIT"
    status = b.get("status")
    if status == "exited":
        return ExitResult("exited", code=_uint(w, b.get("code"), "code", 255))
    if status in ("signaled", "timeout"):
        sig, signo = token(w, b.get("signal"), "signal"), _uint(w, b.get("signo"), "signo", 127)
        code = b.get("code")
        if status == "timeout" and code is not None and not is_uint(code, 255):
            _bad(w, "code must be 0..255 or null")
        return ExitResult(str(status), signal=sig, signo=signo, code=code if status == "timeout" else None)
    if status == "error":
        return ExitResult("error", errno=token(w, b.get("errno"), "errno"), message=message(w, b.get("message"), "message"))
    _bad(w, "unknown status")


@dataclass(frozen=True)
class FileResult:
    ok: bool
    size: int = 0
    mode: Optional[int] = None
    mtime: Optional[float] = None
    errno: Optional[str] = None
    message: Optional[str] = None
    path: Optional[str] = None
    counts: Dict[str, int] = field(default_factory=dict)


def file_result(b: Body) -> FileResult:
    w = "RESULT"
    if b.get("ok") is False:
        p = b.get("path")
        return FileResult(False, errno=token(w, b.get("errno"), "errno"), message=message(w, b.get("message"), "message"),
                          path=printable(p, MAX_ENTRY_PATH) if isinstance(p, str) else None)
    if b.get("ok") is not True:
        _bad(w, "ok must be a boolean")
    mode, mtime = b.get("mode"), b.get("mtime")
    if mode is not None and not is_uint(mode, 0o7777):
        _bad(w, "mode must be permission bits 0..0o7777")
    if mtime is not None and (isinstance(mtime, bool) or not isinstance(mtime, (int, float)) or not math.isfinite(mtime) or mtime < 0):
        _bad(w, "mtime must be seconds since the epoch")
    size = b.get("size", 0)
    return FileResult(True, size=_uint(w, size, "size"), mode=mode, mtime=mtime)


def dir_result(b: Body) -> FileResult:
    """RESULT of a directory copy: counts of what the other side wrote (or sent)."""
    if b.get("ok") is not True:
        return file_result(b)
    w = "RESULT"
    counts = {k: _uint(w, b.get(k, 0), k) for k in ("files", "dirs", "symlinks", "bytes", "skipped")}
    return FileResult(True, size=counts["bytes"], counts=counts)


def error_code(b: Body) -> Tuple[str, str]:
    """An ERROR body: its code (EREMOTE when it is not a plain name) and escaped message."""
    code = b.get("code")
    msg = b.get("message")
    return (code if isinstance(code, str) and _TOKEN.fullmatch(code) else "EREMOTE",
            printable(msg, MAX_MESSAGE) if isinstance(msg, str) else "")


def started(b: Body) -> Tuple[int, Optional[int], Optional[str]]:
    w = "STARTED"
    pid = _uint(w, b.get("pid"), "pid", U32_MAX)
    job = b.get("job")
    if job is not None and (not is_uint(job, U32_MAX) or job == 0):
        _bad(w, "job must be a positive u32")
    return pid, job, _tag(w, b.get("tag"))


def _tag(what: str, v: Any) -> Optional[str]:
    if v is None:
        return None
    if not isinstance(v, str) or not TAG.fullmatch(v):
        _bad(what, "tag must be 1..64 of A-Z a-z 0-9 . _ -")
    return v


@dataclass(frozen=True)
class Replay:
    start: int
    dropped: int


@dataclass(frozen=True)
class Attached:
    job: int
    tag: Optional[str]
    pid: Optional[int]
    state: str
    stdout: Replay
    stderr: Replay
    stdin: Optional[int] = None  # what is left of the job's one stdin window (None: an agent before the field)


def _state(what: str, v: Any) -> str:
    if v not in ("running", "exited"):
        _bad(what, 'state must be "running" or "exited"')
    return str(v)


def _replay(what: str, v: Any, name: str) -> Replay:
    if not isinstance(v, dict):
        _bad(what, f"{name} must be an object")
    return Replay(_uint(what, v.get("from"), f"{name}.from"), _uint(what, v.get("dropped"), f"{name}.dropped"))


def attached(b: Body) -> Attached:
    w = "ATTACHED"
    pid = b.get("pid")
    return Attached(_uint(w, b.get("job"), "job", U32_MAX), _tag(w, b.get("tag")),
                    None if pid is None else _uint(w, pid, "pid", U32_MAX), _state(w, b.get("state")),
                    _replay(w, b.get("stdout"), "stdout"), _replay(w, b.get("stderr"), "stderr"),
                    None if b.get("stdin") is None else _uint(w, b.get("stdin"), "stdin", MAX_WINDOW))


def detached(b: Body) -> Tuple[Optional[str], str]:
    if b.get("errno") is None:
        return None, ""
    m = b.get("message")
    return token("DETACHED", b.get("errno"), "errno"), message("DETACHED", m, "message") if m is not None else ""


@dataclass(frozen=True)
class StreamCounts:
    total: int
    kept: int


@dataclass(frozen=True)
class JobInfo:
    """One detached execution as LIST reports it."""

    job: int
    tag: Optional[str]
    pid: Optional[int]
    argv: Tuple[str, ...]
    started_at: int
    state: str
    attached: bool
    stdout: StreamCounts
    stderr: StreamCounts
    ended_at: Optional[int] = None
    exit: Optional[ExitResult] = None


def _counts(what: str, v: Any, name: str) -> StreamCounts:
    if not isinstance(v, dict):
        _bad(what, f"{name} must be an object")
    return StreamCounts(_uint(what, v.get("total"), f"{name}.total"), _uint(what, v.get("kept"), f"{name}.kept"))


def _job(v: Any) -> JobInfo:
    w = "LISTING"
    if not isinstance(v, dict):
        _bad(w, "each job must be an object")
    argv = v.get("argv")
    if not isinstance(argv, list) or len(argv) > MAX_LIST_ARGV or not all(isinstance(a, str) for a in argv) \
            or sum(len(a) for a in argv) > MAX_LIST_ARGV + 16:
        _bad(w, f"argv must be strings of at most {MAX_LIST_ARGV} characters in all")
    if not isinstance(v.get("attached"), bool):
        _bad(w, "attached must be a boolean")
    pid = v.get("pid")
    ended = v.get("endedAt")
    ex = v.get("exit")
    if ex is not None and not isinstance(ex, dict):
        _bad(w, "exit must be an EXIT body")
    return JobInfo(
        job=_uint(w, v.get("job"), "job", U32_MAX), tag=_tag(w, v.get("tag")),
        pid=None if pid is None else _uint(w, pid, "pid", U32_MAX), argv=tuple(argv),
        started_at=_uint(w, v.get("startedAt"), "startedAt"), state=_state(w, v.get("state")),
        attached=bool(v["attached"]), stdout=_counts(w, v.get("stdout"), "stdout"),
        stderr=_counts(w, v.get("stderr"), "stderr"),
        ended_at=None if ended is None else _uint(w, ended, "endedAt"),
        exit=None if ex is None else exit_result(ex),
    )


def listing(b: Body) -> Tuple[List[JobInfo], bool]:
    jobs, more = b.get("jobs"), b.get("more")
    if not isinstance(jobs, list):
        _bad("LISTING", "jobs must be an array")
    if not isinstance(more, bool):
        _bad("LISTING", "more must be a boolean")
    return [_job(j) for j in jobs], more


def tcp_opened(b: Body) -> Tuple[Optional[str], Optional[int]]:
    w = "TCP_OPENED"
    addr, port = b.get("address"), b.get("port")
    if addr is not None:
        addr = _str(w, addr, "address", 64)
        if not re.fullmatch(r"[0-9A-Fa-f.:]{1,64}", addr):
            _bad(w, "address must be an IP address")
    if port is not None:
        port = _uint(w, port, "port", 65535)
    return addr, port


def tcp_closed(b: Body) -> Tuple[bool, Optional[str], str]:
    w = "TCP_CLOSED"
    if b.get("ok") is True:
        return True, None, ""
    if b.get("ok") is not False:
        _bad(w, "ok must be a boolean")
    return False, token(w, b.get("errno"), "errno"), message(w, b.get("message"), "message")


@dataclass(frozen=True)
class Entry:
    """A DIR_ENTRY header (PROTOCOL.md §12)."""

    type: str
    path: str
    mode: int
    mtime: float
    size: int = 0
    target: str = ""


def _u8len(s: str) -> int:
    return len(s.encode("utf-8", "surrogatepass"))


def entry(b: Body) -> Entry:
    w = "DIR_ENTRY"
    path = b.get("path")
    if not isinstance(path, str) or path == "" or "\0" in path or path.startswith("/") or _u8len(path) > MAX_ENTRY_PATH:
        _bad(w, "path must be a relative path without NUL of at most 4096 bytes")
    for c in path.split("/"):
        if c in ("", ".", "..") or _u8len(c) > MAX_NAME:
            _bad(w, f"path {printable(path, 128)!r} has a bad component")
    mode = _uint(w, b.get("mode"), "mode", U32_MAX)
    mtime = b.get("mtime")
    if isinstance(mtime, bool) or not isinstance(mtime, (int, float)) or not math.isfinite(mtime):
        _bad(w, "mtime must be a finite number")
    t = b.get("type")
    if t == "file":
        return Entry("file", path, mode & 0o7777, float(mtime), size=_uint(w, b.get("size"), "size"))
    if t == "symlink":
        target = b.get("target")
        if not isinstance(target, str) or target == "" or "\0" in target or _u8len(target) > MAX_ENTRY_PATH:
            _bad(w, "target must be a non-empty string without NUL")
        return Entry("symlink", path, mode & 0o7777, float(mtime), target=target)
    if t == "dir":
        return Entry("dir", path, mode & 0o7777, float(mtime))
    _bad(w, "type must be file, dir or symlink")
