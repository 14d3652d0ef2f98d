"""The library against the real compiled agent, over Unix sockets: the conformance scenarios."""

from __future__ import annotations

import errno
import io
import os
import random
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import Agent, listening_agent, wait_socket
from vsock_guest_exec import FileError, Guest, GuestError, TcpError, connect, listen


def test_exit_codes_and_streams(guest: Guest) -> None:
    r = guest.run(["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert (r.returncode, r.stdout, r.stderr) == (3, b"out\n", b"err\n")
    assert r.result.status == "exited" and r.result.code == 3
    assert guest.run("echo $((1+2))", shell=True).stdout == b"3\n"


def test_program_not_found_and_not_executable(guest: Guest, tmp: Path) -> None:
    r = guest.run(["/nonexistent/prog"])
    assert r.result.status == "error" and r.result.errno == "ENOENT" and r.returncode == 127
    f = tmp / "noexec"
    f.write_text("#!/bin/sh\n")
    r = guest.run([str(f)])
    assert r.result.status == "error" and r.returncode == 126


def test_signal_reaches_the_process(guest: Guest) -> None:
    p = guest.exec(["sleep", "30"], stdin=False).wait_started(10)
    p.terminate()
    r = p.wait(10)
    assert (r.status, r.signal, r.signo, r.returncode) == ("signaled", "SIGTERM", 15, 143)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    st = Path(f"/proc/{pid}/stat").read_text().split()
    return st[2] != "Z"


def test_timeout_kills_the_whole_tree(guest: Guest) -> None:
    p = guest.exec(["sh", "-c", "sleep 60 & echo $!; wait"], timeout=0.5)
    child = int(p.stdout.readline())
    assert _alive(child)
    r = p.wait(10)
    assert r.status == "timeout" and r.returncode == 124
    end = time.monotonic() + 5
    while _alive(child) and time.monotonic() < end:
        time.sleep(0.05)
    assert not _alive(child)


def test_stdin_half_close_in_a_loop_of_sizes(guest: Guest) -> None:
    """The path users take every day: pipe bytes in, read the count back. 120 runs, sizes 0..4 MiB."""
    rng = random.Random(7)
    sizes = [0, 1, 4095, 65536, 65537, 262144, 1 << 20, 4 << 20] + [rng.randrange(0, 300_000) for _ in range(112)]
    start = time.monotonic()
    for n in sizes:
        r = guest.run(["wc", "-c"], input=bytes(n), timeout=30)
        assert r.stdout.strip() == str(n).encode(), n
    assert time.monotonic() - start < 120


def test_stdin_written_in_pieces_then_closed(guest: Guest) -> None:
    p = guest.exec(["sha256sum"])
    assert p.stdin is not None
    import hashlib

    h = hashlib.sha256()
    for i in range(50):
        chunk = os.urandom(random.randrange(1, 20000))
        h.update(chunk)
        p.stdin.write(chunk)
    p.stdin.close()
    assert p.stdout.read().split()[0].decode() == h.hexdigest()
    assert p.wait(10).code == 0


def test_env_cwd_merge(guest: Guest, tmp: Path) -> None:
    r = guest.run(["sh", "-c", "echo $FOO; pwd; echo e >&2"], env={"FOO": "bar"}, cwd=str(tmp), merge=True)
    assert r.stdout == f"bar\n{tmp}\ne\n".encode() and r.stderr == b""
    r = guest.run(["sh", "-c", "echo ${HOME-unset}"], clear_env=True, env={"PATH": "/usr/bin:/bin"})
    assert r.stdout == b"unset\n"


def test_pty_and_resize(guest: Guest) -> None:
    p = guest.exec(["sh", "-c", "tty; stty size; read x; stty size"], pty={"cols": 100, "rows": 30})
    first = p.stdout.readline() + p.stdout.readline()
    assert b"/dev/pts/" in first and b"30 100" in first
    p.resize(120, 40)
    assert p.stdin is not None
    p.stdin.write(b"go\n")
    p.stdin.flush()
    rest = p.stdout.read()
    assert b"40 120" in rest
    assert p.wait(10).code == 0


def test_files(guest: Guest, tmp: Path) -> None:
    data = os.urandom(3 << 20)
    assert guest.put_file(str(tmp / "f.bin"), data, mode=0o640) == len(data)
    assert (tmp / "f.bin").read_bytes() == data and (tmp / "f.bin").stat().st_mode & 0o777 == 0o640
    assert guest.get_file(str(tmp / "f.bin")) == data
    with open(tmp / "src", "wb") as f:
        f.write(data[:1000])
    with open(tmp / "src", "rb") as f:
        guest.put_file(str(tmp / "g"), f)
    assert (tmp / "g").read_bytes() == data[:1000]
    with pytest.raises(FileError) as e:
        guest.get_file(str(tmp / "missing"))
    assert e.value.code == "ENOENT"
    with pytest.raises(FileError) as e:
        guest.get_file(str(tmp / "f.bin"), max_size=10)
    assert e.value.code == "EFBIG"
    assert not [p for p in os.listdir(tmp) if ".vge-" in p]


class _FailingSource(io.RawIOBase):
    """A local source that gives `good` bytes, then fails as a broken disk or pipe would."""

    def __init__(self, good: int) -> None:
        self.left = good

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if self.left == 0:
            raise OSError(errno.EIO, "Input/output error")
        n = min(len(b), self.left)
        b[:n] = b"x" * n
        self.left -= n
        return n


def test_put_file_from_a_failing_or_short_source_fails_at_once_and_leaves_nothing(guest: Guest, tmp: Path) -> None:
    for src, want in ((_FailingSource(300_000), "Input/output error"), (io.BytesIO(b"y" * 1000), "ended after 1000")):
        t0 = time.monotonic()
        with pytest.raises(FileError) as e:
            guest.put_file(str(tmp / "partial"), src, size=1 << 20, timeout=30)
        assert e.value.code == "EIO" and want in str(e.value)
        assert time.monotonic() - t0 < 10
        # The agent removed its temporary file on the short FILE_END, with the connection still open.
        for _ in range(100):
            if not [p for p in os.listdir(tmp) if ".vge-" in p or p == "partial"]:
                break
            time.sleep(0.05)
        assert not [p for p in os.listdir(tmp) if ".vge-" in p or p == "partial"]
    assert guest.run(["true"]).returncode == 0


def test_dirs_round_trip(guest: Guest, tmp: Path) -> None:
    src = tmp / "src"
    (src / "a" / "b").mkdir(parents=True)
    (src / "a" / "b" / "f.txt").write_bytes(b"x" * 70000)
    (src / "top").write_text("top")
    (src / "a" / "exe").write_text("#!/bin/sh\n")
    os.chmod(src / "a" / "exe", 0o755)
    os.symlink("../top", src / "a" / "link")
    put = guest.put_dir(src, str(tmp / "in-guest"))
    assert (put.files, put.dirs, put.symlinks) == (3, 2, 1)
    back = guest.get_dir(str(tmp / "in-guest"), tmp / "back")
    assert (back.files, back.dirs, back.symlinks, back.bytes) == (3, 2, 1, 70000 + 3 + 10)
    assert (tmp / "back" / "a" / "b" / "f.txt").read_bytes() == b"x" * 70000
    assert os.readlink(tmp / "back" / "a" / "link") == "../top"
    assert (tmp / "back" / "a" / "exe").stat().st_mode & 0o111


def test_detach_attach_kill(agent: Agent, tmp: Path) -> None:
    addr = f"unix:{agent.sock}"
    with connect(addr) as g:
        p = g.exec(["sh", "-c", "echo first; read x; echo got $x; sleep 60"], detach={"tag": "job1", "keep": 65536})
        p.wait_started(10)
        assert p.job is not None and p.tag == "job1"
        assert p.stdout.readline() == b"first\n"
    with connect(addr) as g2:
        jobs = g2.jobs()
        assert [j.tag for j in jobs] == ["job1"] and jobs[0].state == "running"
        q = g2.attach("job1")
        q.wait_started(10)
        assert q.replay is not None and q.replay.stdout.dropped == 0
        assert q.stdout.readline() == b"first\n"
        assert q.stdin is not None
        q.stdin.write(b"hello\n")
        q.stdin.flush()
        assert q.stdout.readline() == b"got hello\n"
        g2.kill_job("job1", "SIGKILL")
        r = q.wait(10)
        assert r.status == "signaled" and r.signal == "SIGKILL"
        with pytest.raises(GuestError) as e:
            g2.kill_job("nosuch")
        assert e.value.code == "ENOENT"


def test_second_attach_takes_over(guest: Guest) -> None:
    p = guest.exec(["sleep", "30"], stdin=False, detach={"tag": "t2"})
    p.wait_started(10)
    a = guest.attach("t2").wait_started(10)
    b = guest.attach("t2").wait_started(10)
    with pytest.raises(GuestError) as e:
        a.wait(10)
    assert e.value.code == "EBUSY"
    guest.kill_job("t2", "KILL")
    assert b.wait(10).signal == "SIGKILL"


def _echo_server() -> "tuple[socket.socket, int]":
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)

    def serve() -> None:
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            with c:
                while True:
                    b = c.recv(65536)
                    if not b:
                        break
                    c.sendall(b)

    threading.Thread(target=serve, daemon=True).start()
    return srv, srv.getsockname()[1]


def test_tcp_stream(guest: Guest) -> None:
    srv, port = _echo_server()
    try:
        data = os.urandom(1 << 20)
        with guest.connect_tcp("127.0.0.1", port) as s:
            t = threading.Thread(target=lambda: (s.sendall(data), s.shutdown()))
            t.start()
            got = s.read_all()
            t.join()
            s.wait_closed(10)
        assert got == data
    finally:
        srv.close()
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    port = dead.getsockname()[1]
    dead.close()
    with pytest.raises(TcpError) as e:
        guest.connect_tcp("127.0.0.1", port)
    assert e.value.code == "ECONNREFUSED"


def test_token(tmp: Path) -> None:
    tok = tmp / "vge.token"
    tok.write_bytes(b"0123456789abcdef0123456789\n")
    os.chmod(tok, 0o600)
    a = listening_agent(tmp, "--token-file", str(tok))
    try:
        with connect(f"unix:{a.sock}", token_file=tok) as g:
            assert g.authenticated and g.run(["true"]).returncode == 0
        with pytest.raises(GuestError) as e:
            connect(f"unix:{a.sock}")
        assert e.value.code == "EAUTH"
        with pytest.raises(GuestError) as e:
            connect(f"unix:{a.sock}", token=b"another token of 16+ bytes")
        assert e.value.code == "EAUTH"
    finally:
        a.stop()


def test_agent_dials_the_host(tmp: Path) -> None:
    """unix-listen and fc-listen: the agent dials in, as from the initrd."""
    for form in ("unix-listen", "fc-listen"):
        base = str(tmp / f"{form}.sock")
        addr = f"unix-listen:{base}" if form == "unix-listen" else f"fc-listen:{base}:1024"
        with listen(addr) as lst:
            path = lst.address.socket_path
            a = Agent(["--unix", path, "persistent", "--retry", "10"])
            try:
                g = lst.accept(20)
                with g:
                    assert g.run(["echo", form]).stdout == f"{form}\n".encode()
            finally:
                a.stop()


def _fc_proxy(uds: str, target: str, port: int) -> socket.socket:
    """A Firecracker-style muxer: `CONNECT port\\n` → `OK 1073741824\\n`, then relay to the agent."""
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(uds)
    srv.listen(4)

    def relay(a: socket.socket, b: socket.socket) -> None:
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    b.shutdown(socket.SHUT_WR)
                    return
                b.sendall(d)
        except OSError:
            return

    def serve() -> None:
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            line = b""
            while not line.endswith(b"\n"):
                line += c.recv(1)
            assert line == f"CONNECT {port}\n".encode()
            up = socket.socket(socket.AF_UNIX)
            up.connect(target)
            c.sendall(b"OK 1073741824\n")
            threading.Thread(target=relay, args=(c, up), daemon=True).start()
            threading.Thread(target=relay, args=(up, c), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return srv


def test_firecracker_connect(agent: Agent, tmp: Path) -> None:
    assert agent.sock is not None
    srv = _fc_proxy(str(tmp / "fc.sock"), agent.sock, 1024)
    try:
        with connect(f"fc:{tmp / 'fc.sock'}:1024") as g:
            assert g.run(["echo", "fc"]).stdout == b"fc\n"
    finally:
        srv.close()


def test_legacy_formats(tmp: Path) -> None:
    from vsock_guest_exec import legacy

    path = str(tmp / "legacy.sock")
    out = tmp / "out"
    lst_thread_result: list = []

    def host() -> None:
        lst_thread_result.append(legacy.persistent(f"unix-listen:{path}", [f"echo one >> {out}", f"echo two >> {out}"]))

    t = threading.Thread(target=host)
    t.start()
    time.sleep(0.2)
    a = Agent(["--unix", path, "persistent", "--retry", "10"])
    t.join(20)
    try:
        a.proc.wait(20)
        assert lst_thread_result == [2]
        assert out.read_text() == "one\ntwo\n"
    finally:
        a.stop()
    # Disposable: one command, the agent exits with its status.
    path2 = str(tmp / "disp.sock")
    t = threading.Thread(target=lambda: legacy.disposable(f"unix-listen:{path2}", f"echo three > {out}; exit 5"))
    t.start()
    time.sleep(0.2)
    a = Agent(["--unix", path2, "--retry", "10"])
    t.join(20)
    try:
        assert a.proc.wait(20) == 5
        assert out.read_text() == "three\n"
    finally:
        a.stop()


def test_asyncio(agent: Agent) -> None:
    import asyncio

    from vsock_guest_exec import aio

    async def main() -> bytes:
        async with await aio.connect(f"unix:{agent.sock}") as g:
            p = await g.exec(["cat"])
            out, _ = await p.communicate(b"async")
            r = await g.run(["echo", "hi"])
            assert r.stdout == b"hi\n"
            return out

    assert asyncio.run(main()) == b"async"


def test_limits_refused_without_cgroup_and_usage_from_rusage(guest: Guest) -> None:
    r = guest.run(["true"], limits={"memory_bytes": 64 << 20, "pids": 16})
    assert r.result.status == "error" and r.result.errno == "ENOTSUP"
    r = guest.run("i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done", shell=True, usage=True)
    assert r.returncode == 0 and r.result.usage is not None and r.result.usage.source == "rusage"
    assert r.result.usage.user_usec + r.result.usage.system_usec > 0
    from vsock_guest_exec import ArgumentError

    with pytest.raises(ArgumentError):
        guest.exec(["true"], limits={"memory_bytes": 1})
    with pytest.raises(ValueError):
        guest.exec(["true"], limits={"gpus": 1})
