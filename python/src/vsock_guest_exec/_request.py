"""Requests this host sends, checked before they leave (PROTOCOL.md §3): a bad value is the caller's
ValueError here, not an EPROTO that ends the whole connection at the agent."""

from __future__ import annotations

import math
from typing import Any, Dict, Mapping, Optional, Sequence, Union

from ._frames import SAFE_INT_MAX, U32_MAX
from ._messages import TAG
from .signals import signal_name
from .errors import ArgumentError

MAX_KEEP = 64 * 1024 * 1024


def _nonul(v: Any, what: str, allow_empty: bool = True) -> str:
    if not isinstance(v, str):
        raise TypeError(f"{what} must be a str, got {type(v).__name__}")
    if "\0" in v:
        raise ArgumentError(f"{what} contains a NUL byte")
    if not allow_empty and v == "":
        raise ArgumentError(f"{what} is empty")
    return v


def _id(v: Any, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= U32_MAX - 1:
        raise ArgumentError(f"{what} must be an integer 0..{U32_MAX - 1}")
    return v


def exec_body(
    argv: Union[str, Sequence[str]],
    *,
    shell: bool = False,
    env: Optional[Mapping[str, Optional[str]]] = None,
    clear_env: bool = False,
    cwd: Optional[str] = None,
    user: Optional[Union[str, int]] = None,
    uid: Optional[int] = None,
    gid: Optional[int] = None,
    stdin: bool = True,
    pty: Optional[Mapping[str, Any]] = None,
    merge: bool = False,
    timeout: Optional[float] = None,
    kill_signal: Optional[Union[str, int]] = None,
    detach: Optional[Mapping[str, Any]] = None,
    limits: Optional[Mapping[str, Any]] = None,
    usage: bool = False,
) -> Dict[str, Any]:
    body: Dict[str, Any] = {}
    if shell or isinstance(argv, str):
        if not isinstance(argv, str):
            raise TypeError("with shell=True, pass the command as one str")
        body["shell"] = _nonul(argv, "the shell command")
    else:
        items = list(argv)
        if not items:
            raise ArgumentError("argv is empty")
        body["argv"] = [_nonul(a, f"argv[{i}]") for i, a in enumerate(items)]
    if env:
        out: Dict[str, Optional[str]] = {}
        for k, v in env.items():
            _nonul(k, "an env name", allow_empty=False)
            if "=" in k:
                raise ArgumentError(f"env name {k!r} contains '='")
            out[k] = None if v is None else _nonul(v, f"env[{k!r}]")
        body["env"] = out
    if clear_env:
        body["clearEnv"] = True
    if cwd is not None:
        body["cwd"] = _nonul(cwd, "cwd", allow_empty=False)
    if user is not None:
        body["user"] = str(_id(user, "user")) if isinstance(user, int) else _nonul(user, "user", allow_empty=False)
    if uid is not None:
        body["uid"] = _id(uid, "uid")
    if gid is not None:
        body["gid"] = _id(gid, "gid")
    if not stdin:
        body["stdin"] = "closed"
    if pty is not None:
        cols, rows = pty.get("cols", 80), pty.get("rows", 24)
        for n, v in (("cols", cols), ("rows", rows)):
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 65535:
                raise ArgumentError(f"pty {n} must be 1..65535")
        p: Dict[str, Any] = {"cols": cols, "rows": rows}
        if pty.get("term") is not None:
            p["term"] = _nonul(pty["term"], "pty term", allow_empty=False)
        body["pty"] = p
    if merge:
        body["merge"] = True
    if timeout is not None:
        ms = timeout_ms(timeout)
        body["timeoutMs"] = ms
    if kill_signal is not None:
        body["killSignal"] = signal_name(kill_signal)
    if detach is not None:
        d: Dict[str, Any] = {}
        tag, keep = detach.get("tag"), detach.get("keep")
        if tag is not None:
            if not isinstance(tag, str) or not TAG.fullmatch(tag):
                raise ArgumentError(f"tag {tag!r} is not 1..64 of A-Z a-z 0-9 . _ - starting with a letter or digit")
            d["tag"] = tag
        if keep is not None:
            if isinstance(keep, bool) or not isinstance(keep, int) or not 0 <= keep <= MAX_KEEP:
                raise ArgumentError(f"keep must be 0..{MAX_KEEP} bytes")
            d["keep"] = keep
        body["detach"] = d
    if limits is not None:
        body["limits"] = limits_body(limits)
    if usage:
        body["usage"] = True
    return body


_LIMITS = {"memory_bytes": ("memoryBytes", 1 << 20, SAFE_INT_MAX), "pids": ("pids", 1, 4194304), "cpu": ("cpu", 0.01, 4096)}


def limits_body(limits: Mapping[str, Any]) -> Dict[str, Any]:
    """`{"memory_bytes": 256 << 20, "pids": 64, "cpu": 0.5}` (each optional) as PROTOCOL.md §5.2's `limits`."""
    out: Dict[str, Any] = {}
    for k, v in limits.items():
        if k not in _LIMITS:
            raise ArgumentError(f"unknown limit {k!r}; expected memory_bytes, pids or cpu")
        name, lo, hi = _LIMITS[k]
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and lo <= v <= hi and (k == "cpu" or isinstance(v, int))
        if not ok:
            raise ArgumentError(f"limit {k} must be {lo}..{hi}")
        out[name] = v
    return out


def timeout_ms(seconds: float) -> int:
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or math.isnan(seconds) or seconds <= 0:
        raise ArgumentError("timeout must be a positive number of seconds")
    return min(U32_MAX, max(1, math.ceil(seconds * 1000)))


def abs_path(p: str, what: str = "path") -> str:
    _nonul(p, what, allow_empty=False)
    if not p.startswith("/"):
        raise ArgumentError(f"{what} {p!r} must be absolute in the guest")
    return p


def job_ref(ref: Union[str, int]) -> Dict[str, Any]:
    """A detached job by tag, or by number (int, or "%N" as vge writes it)."""
    if isinstance(ref, int) and not isinstance(ref, bool):
        if not 1 <= ref <= U32_MAX:
            raise ArgumentError("a job number is 1..4294967295")
        return {"job": ref}
    if isinstance(ref, str) and ref.startswith("%") and ref[1:].isdigit():
        return job_ref(int(ref[1:]))
    if not isinstance(ref, str) or not TAG.fullmatch(ref):
        raise ArgumentError(f"{ref!r} is neither a tag nor a job number")
    return {"tag": ref}


def offset(v: Any, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= SAFE_INT_MAX:
        raise ArgumentError(f"{what} must be an integer 0..2^53-1")
    return v
