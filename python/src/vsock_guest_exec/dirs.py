"""Directory copies (PROTOCOL.md §12): a whole tree as one stream under flow control.

Receiving (`get_dir`) treats the guest as hostile. Every directory on the way to an entry is opened
relative to the one above it with O_NOFOLLOW|O_DIRECTORY and every file, symlink and rename is made
relative to that held directory fd, so no check can go stale: a symlink anywhere below the target,
whether the stream made it or a local process swapped it in meanwhile, fails the operation (ELOOP /
ENOTDIR) instead of being followed. setuid, setgid and sticky bits never come from the guest."""

from __future__ import annotations

import collections
import errno as _errno
import os
import stat
import threading
from dataclasses import dataclass
from typing import Deque, Dict, Iterator, List, Optional, Tuple

from ._conn import Channel, Connection
from ._credit import ReceiveWindow, SendCredit
from ._frames import CHUNK, T, decode_json, decode_window, encode, encode_json, header
from ._messages import Entry, FileResult, dir_result, entry
from ._request import abs_path
from .errors import FileError, GuestError, ProtocolError

# One fix-up (mode, mtime) per distinct directory, applied at DIR_END; more distinct directories than this
# in one stream is the sender's EPROTO, so a hostile stream cannot grow the list without bound.
MAX_DIRS = 1 << 16
_O_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


@dataclass
class DirCounts:
    files: int = 0
    dirs: int = 0
    symlinks: int = 0
    bytes: int = 0
    skipped: int = 0


class _DirChannel(Channel):
    """Frames of one directory stream, queued for the caller's thread within the window it granted."""

    def __init__(self, conn: Connection, fid: int, window: int) -> None:
        self.conn, self.id = conn, fid
        self.cond = threading.Condition()
        self.credit = SendCredit(window)
        self.window = ReceiveWindow(window)
        self.queue: Deque[Tuple[T, bytes]] = collections.deque()
        self.result: Optional[FileResult] = None
        self.error: Optional[GuestError] = None

    def on_frame(self, ftype: T, payload: bytes) -> bool:
        what = f"directory stream {self.id}"
        if ftype == T.WINDOW:
            self.credit.grant(decode_window(payload), what)
            return False
        if ftype in (T.DIR_ENTRY, T.FILE_DATA, T.DIR_END):
            with self.cond:
                if ftype != T.DIR_END:
                    self.window.received(len(payload), what)
                self.queue.append((ftype, payload))
                self.cond.notify_all()
            return False
        if ftype == T.RESULT:
            res = dir_result(decode_json(payload))
            with self.cond:
                self.result = res
                self.cond.notify_all()
            self.credit.close(GuestError("ECLOSED", "the copy has ended"))
            return True
        raise ProtocolError("EPROTO", f"{what}: unexpected {ftype.name} frame")

    def on_close(self, err: GuestError) -> None:
        with self.cond:
            if self.result is None:
                self.error = err
            self.cond.notify_all()
        self.credit.close(err)

    def next(self, timeout: Optional[float]) -> Optional[Tuple[T, bytes]]:
        """The next queued frame, or None once the RESULT came with nothing queued before it."""
        with self.cond:
            if not self.cond.wait_for(lambda: bool(self.queue) or self.result is not None or self.error is not None, timeout):
                raise GuestError("ETIMEDOUT", "the directory stream stalled")
            if self.queue:
                return self.queue.popleft()
            if self.error is not None:
                raise self.error
            return None

    def consumed(self, n: int) -> None:
        with self.cond:
            give = self.window.consumed(n)
        self.conn.send_window(self.id, give)

    def wait(self, timeout: Optional[float]) -> FileResult:
        with self.cond:
            if not self.cond.wait_for(lambda: self.result is not None or self.error is not None, timeout):
                raise GuestError("ETIMEDOUT", "no RESULT in time")
            if self.result is None:
                assert self.error is not None
                raise self.error
            return self.result


# --- sending ---------------------------------------------------------------------------------------------


def _walk(root: str, rel: str, counts: DirCounts) -> Iterator[Tuple[str, os.stat_result]]:
    try:
        names = sorted(os.listdir(os.path.join(root, rel) if rel else root))
    except FileNotFoundError:
        counts.skipped += 1  # a directory that vanished while the tree was walked
        return
    for name in names:
        path = f"{rel}/{name}" if rel else name
        try:
            path.encode("utf-8")
        except UnicodeEncodeError:
            counts.skipped += 1  # a name that is not UTF-8 cannot travel in a JSON header
            continue
        try:
            st = os.lstat(os.path.join(root, path))
        except FileNotFoundError:
            counts.skipped += 1
            continue
        yield path, st
        if stat.S_ISDIR(st.st_mode):
            yield from _walk(root, path, counts)


def _take(ch: _DirChannel, n: int) -> None:
    got = 0
    while got < n:
        got += ch.credit.take(n - got)


def _send_tree(ch: _DirChannel, root: str) -> DirCounts:
    counts = DirCounts()
    conn = ch.conn
    for path, st in _walk(root, "", counts):
        abs_ = os.path.join(root, path)
        base = {"path": path, "mode": st.st_mode & 0o7777, "mtime": st.st_mtime_ns / 1e6}
        if stat.S_ISDIR(st.st_mode):
            body = {"type": "dir", **base}
        elif stat.S_ISLNK(st.st_mode):
            try:
                target = os.readlink(abs_)
            except FileNotFoundError:
                counts.skipped += 1
                continue
            body = {"type": "symlink", **base, "target": target}
        elif stat.S_ISREG(st.st_mode):
            try:
                fd = os.open(abs_, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
            except FileNotFoundError:
                counts.skipped += 1
                continue
            try:
                _send_file(ch, {"type": "file", **base, "size": st.st_size}, fd, st.st_size, path)
            finally:
                os.close(fd)
            counts.files += 1
            counts.bytes += st.st_size
            continue
        else:
            counts.skipped += 1
            continue
        frame = encode_json(T.DIR_ENTRY, ch.id, body)
        _take(ch, len(frame) - 9)
        conn.send(frame)
        if body["type"] == "dir":
            counts.dirs += 1
        else:
            counts.symlinks += 1
    conn.send(encode(T.DIR_END, ch.id))
    return counts


def _send_file(ch: _DirChannel, body: Dict[str, object], fd: int, size: int, path: str) -> None:
    frame = encode_json(T.DIR_ENTRY, ch.id, body)
    _take(ch, len(frame) - 9)
    ch.conn.send(frame)
    sent = 0
    while sent < size:
        n = ch.credit.take(min(CHUNK, size - sent))
        data = os.read(fd, n)
        if not data:
            raise FileError("EIO", f"{path}: shrank to {sent} bytes while being sent (announced {size})", path)
        if len(data) < n:
            ch.credit.grant(n - len(data), "local")
        ch.conn.send(header(T.FILE_DATA, ch.id, len(data)), data)
        sent += len(data)


def put_dir(conn: Connection, local: "str | os.PathLike[str]", remote: str, timeout: Optional[float] = None) -> DirCounts:
    abs_path(remote)
    root = os.fspath(local)
    if not os.path.isdir(root):
        raise FileError("ENOTDIR", f"{root}: not a directory")
    ch = conn.open(lambda fid: _DirChannel(conn, fid, conn.window))
    assert isinstance(ch, _DirChannel)
    conn.send(encode_json(T.PUTDIR, ch.id, {"path": remote}))
    try:
        counts = _send_tree(ch, root)
    except FileError:
        try:
            conn.send(encode(T.DIR_END, ch.id))  # the agent sees a file cut short and removes it
        except GuestError:
            pass
        ch.wait(timeout)
        raise
    except GuestError:
        if ch.result is None:
            raise
        counts = DirCounts()
    res = ch.wait(timeout)
    if not res.ok:
        raise FileError(res.errno or "EIO", f"put {remote}: {res.message}", res.path)
    counts.skipped = max(counts.skipped, res.counts.get("skipped", 0))
    return counts


# --- receiving -------------------------------------------------------------------------------------------


class _Target:
    """A local directory tree written only through directory fds held under its root."""

    def __init__(self, root: str, preserve_mode: bool) -> None:
        try:
            os.mkdir(root, 0o700)
        except FileExistsError:
            pass
        self.root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
        self.root = root
        self.preserve = preserve_mode
        umask = os.umask(0)
        os.umask(umask)
        self.umask = umask
        self.fixups: Dict[str, Tuple[int, float]] = {}

    def close(self) -> None:
        os.close(self.root_fd)

    def _mode(self, mode: int) -> int:
        m = mode & 0o777  # never setuid, setgid or sticky from the guest
        return m if self.preserve else m & ~self.umask

    def open_dir(self, parts: List[str], make: bool) -> int:
        """An fd of the directory `parts` below the root, each component opened O_NOFOLLOW|O_DIRECTORY
        relative to the one before (made 0700 when missing and `make`)."""
        fd = os.dup(self.root_fd)
        try:
            for name in parts:
                try:
                    nfd = os.open(name, _O_DIR, dir_fd=fd)
                except FileNotFoundError:
                    if not make:
                        raise
                    try:
                        os.mkdir(name, 0o700, dir_fd=fd)
                        self._record("/".join(parts[: parts.index(name) + 1]), 0o755, None)
                    except FileExistsError:
                        pass
                    nfd = os.open(name, _O_DIR, dir_fd=fd)
                os.close(fd)
                fd = nfd
            return fd
        except BaseException:
            os.close(fd)
            raise

    def _record(self, path: str, mode: int, mtime: Optional[float]) -> None:
        if path not in self.fixups and len(self.fixups) >= MAX_DIRS:
            raise ProtocolError("EPROTO", f"the stream names more than {MAX_DIRS} directories")
        self.fixups[path] = (mode, mtime if mtime is not None else -1.0)

    def dir(self, e: Entry) -> None:
        *parents, name = e.path.split("/")
        pfd = self.open_dir(parents, True)
        try:
            try:
                os.mkdir(name, 0o700, dir_fd=pfd)
            except FileExistsError:
                st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
                if not stat.S_ISDIR(st.st_mode):
                    raise FileError("ELOOP" if stat.S_ISLNK(st.st_mode) else "EEXIST", f"{e.path}: exists and is not a directory", e.path) from None
            self._record(e.path, e.mode, e.mtime)
        finally:
            os.close(pfd)

    def _tmp(self, name: str) -> str:
        return f".{name[:40]}.vge-{os.urandom(6).hex()}"

    def symlink(self, e: Entry) -> None:
        *parents, name = e.path.split("/")
        pfd = self.open_dir(parents, True)
        try:
            tmp = self._tmp(name)
            os.symlink(e.target, tmp, dir_fd=pfd)
            try:
                ns = int(e.mtime * 1e6)
                os.utime(tmp, ns=(ns, ns), dir_fd=pfd, follow_symlinks=False)
                os.rename(tmp, name, src_dir_fd=pfd, dst_dir_fd=pfd)
            except BaseException:
                _unlink_quiet(tmp, pfd)
                raise
        finally:
            os.close(pfd)

    def file(self, e: Entry, chunks: "Iterator[bytes]") -> None:
        *parents, name = e.path.split("/")
        pfd = self.open_dir(parents, True)
        try:
            tmp = self._tmp(name)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), 0o600, dir_fd=pfd)
            try:
                written = 0
                for data in chunks:
                    if written + len(data) > e.size:
                        raise ProtocolError("EPROTO", f"{e.path}: more bytes than its size {e.size}")
                    os.write(fd, data)
                    written += len(data)
                if written != e.size:
                    raise ProtocolError("EPROTO", f"{e.path}: {written} of {e.size} bytes before the next entry")
                os.fchmod(fd, self._mode(e.mode))
                ns = int(e.mtime * 1e6)
                os.utime(fd, ns=(ns, ns))
                os.fsync(fd)
                os.close(fd)
                fd = -1
                os.rename(tmp, name, src_dir_fd=pfd, dst_dir_fd=pfd)
            except BaseException:
                if fd >= 0:
                    os.close(fd)
                _unlink_quiet(tmp, pfd)
                raise
        finally:
            os.close(pfd)

    def finish(self) -> None:
        """Directory modes and mtimes, deepest first, each through an fd opened O_NOFOLLOW."""
        for path in sorted(self.fixups, key=lambda p: -p.count("/")):
            mode, mtime = self.fixups[path]
            fd = self.open_dir(path.split("/"), False)
            try:
                os.fchmod(fd, self._mode(mode))
                if mtime >= 0:
                    ns = int(mtime * 1e6)
                    os.utime(fd, ns=(ns, ns))
            finally:
                os.close(fd)


def _unlink_quiet(name: str, dir_fd: int) -> None:
    try:
        os.unlink(name, dir_fd=dir_fd)
    except OSError:
        pass


def get_dir(conn: Connection, remote: str, local: "str | os.PathLike[str]", *, preserve_mode: bool = False,
            timeout: Optional[float] = None) -> DirCounts:
    abs_path(remote)
    ch = conn.open(lambda fid: _DirChannel(conn, fid, conn.window))
    assert isinstance(ch, _DirChannel)
    conn.send(encode_json(T.GETDIR, ch.id, {"path": remote}))
    target = _Target(os.fspath(local), preserve_mode)
    counts = DirCounts()
    failure: Optional[FileError] = None
    pending: Optional[Tuple[T, bytes]] = None

    def frames() -> Iterator[Tuple[T, bytes]]:
        nonlocal pending
        while True:
            if pending is not None:
                f, pending = pending, None
            else:
                got = ch.next(timeout)
                if got is None:
                    return
                f = got
            yield f

    def file_chunks(it: Iterator[Tuple[T, bytes]], size: int) -> Iterator[bytes]:
        nonlocal pending
        left = size
        while left > 0:
            f = next(it, None)
            if f is None:
                return
            if f[0] != T.FILE_DATA:
                pending = f
                return
            left -= len(f[1])
            yield f[1]
            ch.consumed(len(f[1]))

    try:
        it = frames()
        for ftype, payload in it:
            if ftype == T.DIR_END:
                if failure is None:
                    target.finish()
                continue
            if ftype == T.FILE_DATA:
                ch.consumed(len(payload))
                if failure is None:
                    raise ProtocolError("EPROTO", "FILE_DATA outside a file entry")
                continue
            e = entry(decode_json(payload))
            ch.consumed(len(payload))
            if failure is not None:
                continue  # refused earlier: keep returning credit until the agent's RESULT
            try:
                if e.type == "dir":
                    target.dir(e)
                    counts.dirs += 1
                elif e.type == "symlink":
                    target.symlink(e)
                    counts.symlinks += 1
                else:
                    target.file(e, file_chunks(it, e.size))
                    counts.files += 1
                    counts.bytes += e.size
            except OSError as err:
                code = _errno.errorcode.get(err.errno or 0, "EIO")
                failure = FileError(code, f"{e.path}: {err.strerror}", e.path)
    except ProtocolError as err:
        conn.fail(err)
        raise
    finally:
        target.close()
    res = ch.wait(timeout)
    if failure is not None:
        raise failure
    if not res.ok:
        raise FileError(res.errno or "EIO", f"get {remote}: {res.message}", res.path)
    want = res.counts
    if (want.get("files"), want.get("dirs"), want.get("symlinks"), want.get("bytes")) != (counts.files, counts.dirs, counts.symlinks, counts.bytes):
        raise ProtocolError("EPROTO", "the agent's RESULT counts differ from what it sent")
    counts.skipped = want.get("skipped", 0)
    return counts
