"""Fixtures: the compiled agent, always on a Unix socket (this machine is itself a VM: nothing here may
dial AF_VSOCK), always killed by its PID at the end."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator, List, Optional

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE.parent / "src")) if os.environ.get("VGE_PY_INSTALLED") != "1" else None


def agent_binary() -> str:
    path = os.environ.get("VGE_AGENT") or str(REPO / "dist" / "vsock_guest_exec-linux-x64")
    if not os.access(path, os.X_OK):
        pytest.fail(f"no agent binary at {path}: run `bun run build` first (or set VGE_AGENT)")
    return path


def wait_socket(path: str, proc: subprocess.Popen, timeout: float = 15.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if os.path.exists(path):
            return
        if proc.poll() is not None:
            raise RuntimeError(f"the agent exited {proc.returncode} before listening on {path}")
        time.sleep(0.02)
    raise RuntimeError(f"the agent did not listen on {path} within {timeout} s")


class Agent:
    def __init__(self, args: List[str], sock: Optional[str] = None) -> None:
        assert "--unix" in args, "the agent must never run without --unix here"
        # The log goes to a file: a pipe nobody reads would stop the agent once 64 KiB of log lines filled it.
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([agent_binary(), *args], stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=self.log, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
        self.sock = sock

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self.log.close()

    def log_text(self) -> str:
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")


@pytest.fixture
def tmp() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="vge-py-") as d:
        yield Path(d)


def listening_agent(tmp: Path, *extra: str) -> Agent:
    path = str(tmp / "agent.sock")
    a = Agent(["--listen", "--unix", path, *extra], path)
    wait_socket(path, a.proc)
    return a


@pytest.fixture
def agent(tmp: Path) -> Iterator[Agent]:
    a = listening_agent(tmp)
    yield a
    a.stop()


@pytest.fixture
def guest(agent: Agent) -> Iterator["object"]:
    from vsock_guest_exec import connect

    g = connect(f"unix:{agent.sock}", timeout=20)
    yield g
    g.close()


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
