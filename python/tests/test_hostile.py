"""A hostile guest: a fake agent that speaks the hello correctly, then lies. The host must fail the
connection with the right code, never hang, never write outside a target, and hold at most about one
window per stream whatever the guest sends (measured: this process's RSS)."""

from __future__ import annotations

import json
import os
import socket
import struct
import threading
import time
from pathlib import Path
from typing import Callable, Iterator, Optional

import pytest

from conftest import rss_kib
from vsock_guest_exec import FileError, GuestError, TcpError, connect
from vsock_guest_exec._frames import MAGIC, T, FrameDecoder, decode_json, encode, encode_json

WELCOME = {"version": 2, "agent": "fake", "capabilities": ["exec", "files", "dirs", "detach", "tcp", "ping", "flow"],
           "hostname": "h", "kernel": "k", "arch": "x64", "initrd": False, "pid": 1, "maxPayload": 262144, "window": 262144}


class FakeAgent:
    """Listens on a Unix socket; for the first host: hello, then `script(sock, next_frame)`."""

    def __init__(self, path: str, script: Callable[[socket.socket, Callable[[], "tuple[T, int, bytes]"]], None],
                 welcome: Optional[dict] = None) -> None:
        self.srv = socket.socket(socket.AF_UNIX)
        self.srv.bind(path)
        self.srv.listen(1)
        self.path = path
        self.script = script
        self.welcome = welcome or WELCOME
        self.error: Optional[BaseException] = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            c, _ = self.srv.accept()
            dec = FrameDecoder()
            magic = b""
            while len(magic) < 8:
                magic += c.recv(8 - len(magic))
            assert magic == MAGIC

            def next_frame() -> "tuple[T, int, bytes]":
                while True:
                    for f in dec.frames():
                        return f
                    d = c.recv(65536)
                    if not d:
                        raise EOFError
                    dec.push(d)

            ftype, _, _ = next_frame()
            assert ftype == T.HELLO
            c.sendall(encode_json(T.WELCOME, 0, self.welcome))
            try:
                self.script(c, next_frame)
            except (EOFError, OSError):
                pass
            time.sleep(0.2)
            c.close()
        except BaseException as e:  # reported by the test
            self.error = e

    def close(self) -> None:
        self.srv.close()
        self.thread.join(5)


@pytest.fixture
def fake(tmp: Path) -> Iterator[Callable[..., str]]:
    made = []

    def make(script: Callable[..., None], welcome: Optional[dict] = None) -> str:
        path = str(tmp / f"fake{len(made)}.sock")
        made.append(FakeAgent(path, script, welcome))
        return f"unix:{path}"

    yield make
    for f in made:
        f.close()


def _expect(next_frame: Callable[[], "tuple[T, int, bytes]"], ftype: T) -> "tuple[int, dict]":
    while True:
        t, fid, payload = next_frame()
        if t == ftype:
            return fid, (decode_json(payload) if payload[:1] == b"{" else {})


def test_output_past_the_window_fails_the_connection_and_memory_stays_bounded(fake: Callable[..., str]) -> None:
    def script(c: socket.socket, nf: Callable[[], "tuple[T, int, bytes]"]) -> None:
        fid, _ = _expect(nf, T.EXEC)
        c.sendall(encode_json(T.STARTED, fid, {"pid": 5}))
        chunk = encode(T.STDOUT, fid, b"x" * 65536)
        for _ in range(512):  # 32 MiB against a 256 KiB window
            c.sendall(chunk)

    addr = fake(script)
    before = rss_kib(os.getpid())
    with connect(addr) as g:
        p = g.exec(["x"], stdin=False)
        with pytest.raises(GuestError) as e:
            p.wait(20)
        assert e.value.code == "EFLOW"
    assert rss_kib(os.getpid()) - before < 16 * 1024


def test_credit_returned_beyond_what_was_sent_is_eflow(fake: Callable[..., str]) -> None:
    def script(c: socket.socket, nf: Callable[[], "tuple[T, int, bytes]"]) -> None:
        fid, _ = _expect(nf, T.EXEC)
        c.sendall(encode_json(T.STARTED, fid, {"pid": 5}) + encode(T.WINDOW, fid, struct.pack("<I", 1 << 20)))
        time.sleep(1)

    with connect(fake(script)) as g:
        p = g.exec(["x"])
        with pytest.raises(GuestError) as e:
            p.wait(10)
        assert e.value.code == "EFLOW"


def test_get_with_a_lying_size_is_eproto(fake: Callable[..., str], tmp: Path) -> None:
    def script(c: socket.socket, nf: Callable[[], "tuple[T, int, bytes]"]) -> None:
        fid, _ = _expect(nf, T.GET)
        c.sendall(encode(T.FILE_DATA, fid, b"abc") + encode_json(T.RESULT, fid, {"ok": True, "size": 100, "mode": 0o644}))
        time.sleep(1)

    with connect(fake(script)) as g:
        with pytest.raises(GuestError) as e:
            g.get_file("/etc/x")
        assert e.value.code == "EPROTO"


def test_get_past_max_size_is_eproto(fake: Callable[..., str]) -> None:
    def script(c: socket.socket, nf: Callable[[], "tuple[T, int, bytes]"]) -> None:
        fid, _ = _expect(nf, T.GET)
        c.sendall(encode(T.FILE_DATA, fid, b"a" * 100))
        time.sleep(1)

    with connect(fake(script)) as g:
        with pytest.raises(GuestError) as e:
            g.get_file("/x", max_size=10)
        assert e.value.code == "EPROTO"


def test_tree_escapes_write_nothing_outside(fake: Callable[..., str], tmp: Path) -> None:
    outside = tmp / "outside"
    outside.mkdir()

    def entry(fid: int, body: dict) -> bytes:
        return encode_json(T.DIR_ENTRY, fid, body)

    def script(c: socket.socket, nf: Callable[[], "tuple[T, int, bytes]"]) -> None:
        fid, _ = _expect(nf, T.GETDIR)
        c.sendall(entry(fid, {"type": "symlink", "path": "link", "mode": 0o777, "mtime": 0, "target": str(outside)}))
        c.sendall(entry(fid, {"type": "file", "path": "link/pwned", "mode": 0o4755, "mtime": 0, "size": 3}))
        c.sendall(encode(T.FILE_DATA, fid, b"bad") + encode(T.DIR_END, fid))
        c.sendall(encode_json(T.RESULT, fid, {"ok": True, "files": 1, "dirs": 0, "symlinks": 1, "bytes": 3, "skipped": 0}))
        time.sleep(1)

    with connect(fake(script)) as g:
        with pytest.raises(FileError) as e:
            g.get_dir("/srv", tmp / "dst")
        assert e.value.code in ("ELOOP", "ENOTDIR")
    assert list(outside.iterdir()) == []
    assert os.readlink(tmp / "dst" / "link") == str(outside)


def test_dotdot_entry_is_eproto(fake: Callable[..., str], tmp: Path) -> None:
    def script(c: socket.socket, nf: Callable[[], "tuple[T, int, bytes]"]) -> None:
        fid, _ = _expect(nf, T.GETDIR)
        c.sendall(encode_json(T.DIR_ENTRY, fid, {"type": "file", "path": "../escape", "mode": 0o644, "mtime": 0, "size": 0}))
        time.sleep(1)

    with connect(fake(script)) as g:
        with pytest.raises(GuestError) as e:
            g.get_dir("/srv", tmp / "dst")
        assert e.value.code == "EPROTO"
    assert not (tmp / "escape").exists()


def test_repeated_dir_entries_hold_one_fixup(fake: Callable[..., str], tmp: Path) -> None:
    n = 20000

    def script(c: socket.socket, nf: Callable[[], "tuple[T, int, bytes]"]) -> None:
        fid, _ = _expect(nf, T.GETDIR)
        frame = encode_json(T.DIR_ENTRY, fid, {"type": "dir", "path": "d", "mode": 0o755, "mtime": 0})
        sent = 0
        credit = 262144
        for _ in range(n):
            while credit < len(frame) - 9:
                t, _, p = nf()
                if t == T.WINDOW:
                    credit += struct.unpack("<I", p)[0]
            c.sendall(frame)
            credit -= len(frame) - 9
            sent += 1
        c.sendall(encode(T.DIR_END, fid) + encode_json(T.RESULT, fid, {"ok": True, "files": 0, "dirs": n, "symlinks": 0, "bytes": 0, "skipped": 0}))
        time.sleep(1)

    before = rss_kib(os.getpid())
    with connect(fake(script)) as g:
        counts = g.get_dir("/srv", tmp / "dst", timeout=60)
        assert counts.dirs == n
    assert rss_kib(os.getpid()) - before < 16 * 1024


@pytest.mark.parametrize("raw,code", [
    (struct.pack("<IBI", 5, 0x66, 1), "EPROTO"),            # unknown type
    (struct.pack("<IBI", 1 << 30, 0x14, 1), "EPROTO"),      # absurd length
    (encode(T.EXIT, 1, b"{not json"), "EPROTO"),           # bad JSON
    (encode_json(T.EXIT, 1, {"status": "exited", "code": 999}), "EPROTO"),
    (encode_json(T.STARTED, 1, {"pid": -1}), "EPROTO"),
    (encode_json(T.ERROR, 0, {"code": "EBUSY", "message": "x"}), "EBUSY"),
])
def test_malformed_frames(fake: Callable[..., str], raw: bytes, code: str) -> None:
    def script(c: socket.socket, nf: Callable[[], "tuple[T, int, bytes]"]) -> None:
        _expect(nf, T.EXEC)
        c.sendall(raw)
        time.sleep(1)

    with connect(fake(script)) as g:
        p = g.exec(["x"])
        with pytest.raises(GuestError) as e:
            p.wait(10)
        assert e.value.code == code


def test_tcp_closed_without_opened_settles(fake: Callable[..., str]) -> None:
    def script(c: socket.socket, nf: Callable[[], "tuple[T, int, bytes]"]) -> None:
        fid, _ = _expect(nf, T.TCP_OPEN)
        c.sendall(encode_json(T.TCP_CLOSED, fid, {"ok": True}))
        time.sleep(1)

    with connect(fake(script)) as g:
        start = time.monotonic()
        with pytest.raises(TcpError):
            g.connect_tcp("127.0.0.1", 80, timeout=10)
        assert time.monotonic() - start < 5


def test_absurd_welcome_is_refused(fake: Callable[..., str]) -> None:
    with pytest.raises(GuestError) as e:
        connect(fake(lambda c, nf: time.sleep(1), {**WELCOME, "window": 1 << 30}))
    assert e.value.code == "EPROTO"


def test_guest_text_is_escaped(fake: Callable[..., str]) -> None:
    def script(c: socket.socket, nf: Callable[[], "tuple[T, int, bytes]"]) -> None:
        fid, _ = _expect(nf, T.EXEC)
        c.sendall(encode_json(T.EXIT, fid, {"status": "error", "errno": "ENOENT", "message": "\x1b]0;owned\x07" + "y" * 5000}))
        time.sleep(1)

    with connect(fake(script)) as g:
        r = g.exec(["x"]).wait(10)
        assert r.message is not None and "\x1b" not in r.message and "\\e" in r.message and len(r.message) < 1100


def test_a_larger_announced_window_gets_no_more_than_262144_of_stdin(fake: Callable[..., str]) -> None:
    """WELCOME's window is at most 262144 in this version (PROTOCOL.md §7): an agent announcing 4 MiB is
    sent 262144 bytes of stdin before any WINDOW, as the Go and TypeScript hosts do."""
    got = [0]

    def script(c: socket.socket, nf: Callable[[], "tuple[T, int, bytes]"]) -> None:
        fid, _ = _expect(nf, T.EXEC)
        c.sendall(encode_json(T.STARTED, fid, {"pid": 5}))
        c.settimeout(1.0)
        try:
            while True:
                ftype, _, payload = nf()
                if ftype == T.STDIN:
                    got[0] += len(payload)
        except (socket.timeout, EOFError, OSError):
            pass

    with connect(fake(script, {**WELCOME, "window": 4 << 20})) as g:
        p = g.exec(["cat"])
        assert p.stdin is not None
        writer = threading.Thread(target=lambda: _ignore(lambda: p.stdin.write(b"\0" * (1 << 20))), daemon=True)  # type: ignore[union-attr]
        writer.start()
        time.sleep(2)
    assert got[0] == 262144


def _ignore(f: Callable[[], object]) -> None:
    try:
        f()
    except Exception:
        pass
