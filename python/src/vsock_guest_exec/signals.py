"""Signal names as the guest (Linux) numbers them: names travel on the wire, numbers are Linux numbers
whatever the host OS."""

from __future__ import annotations

from typing import Dict, Union

from .errors import ArgumentError

LINUX: Dict[str, int] = {
    "SIGHUP": 1, "SIGINT": 2, "SIGQUIT": 3, "SIGILL": 4, "SIGTRAP": 5, "SIGABRT": 6, "SIGBUS": 7, "SIGFPE": 8,
    "SIGKILL": 9, "SIGUSR1": 10, "SIGSEGV": 11, "SIGUSR2": 12, "SIGPIPE": 13, "SIGALRM": 14, "SIGTERM": 15,
    "SIGSTKFLT": 16, "SIGCHLD": 17, "SIGCONT": 18, "SIGSTOP": 19, "SIGTSTP": 20, "SIGTTIN": 21, "SIGTTOU": 22,
    "SIGURG": 23, "SIGXCPU": 24, "SIGXFSZ": 25, "SIGVTALRM": 26, "SIGPROF": 27, "SIGWINCH": 28, "SIGIO": 29,
    "SIGPWR": 30, "SIGSYS": 31,
}
_BY_NUMBER = {v: k for k, v in LINUX.items()}


def signal_name(sig: Union[str, int]) -> str:
    """"TERM", "sigterm", "SIGTERM", 15 or signal.SIGTERM → "SIGTERM"; ValueError for anything else."""
    if isinstance(sig, bool):
        raise ArgumentError(f"not a signal: {sig!r}")
    if isinstance(sig, int):
        name = _BY_NUMBER.get(int(sig))
        if name is None:
            raise ArgumentError(f"not a Linux signal number: {sig}")
        return name
    up = sig.upper()
    up = up if up.startswith("SIG") else "SIG" + up
    if up not in LINUX:
        raise ArgumentError(f"not a Linux signal name: {sig!r}")
    return up
