"""The asyncio face of the library: the same operations as awaitables. Each runs the synchronous call in
a worker thread (asyncio.to_thread), so the event loop never blocks on the guest."""

from __future__ import annotations

import asyncio
import functools
import io
import os
from typing import IO, Any, Callable, List, Optional, Sequence, TypeVar, Union

from . import guest as _sync
from ._messages import ExitResult, JobInfo, Welcome
from .address import Address
from .dirs import DirCounts
from .errors import GuestError
from .process import Process
from .tcp import TcpStream

R = TypeVar("R")


async def _run(fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, functools.partial(fn, *args, **kwargs))


def _read(f: IO[bytes], n: int) -> bytes:
    return f.read() if n < 0 else f.read1(n) if isinstance(f, io.BufferedReader) else f.read(n)


class AsyncProcess:
    """A Process for asyncio: `await p.wait()`, `await p.communicate(b"...")`, `await p.read_stdout(n)`."""

    def __init__(self, p: Process) -> None:
        self.sync = p

    @property
    def pid(self) -> Optional[int]:
        return self.sync.pid

    async def wait(self, timeout: Optional[float] = None) -> ExitResult:
        return await _run(self.sync.wait, timeout)

    async def communicate(self, input: Optional[bytes] = None, timeout: Optional[float] = None) -> "tuple[bytes, bytes]":
        return await _run(self.sync.communicate, input, timeout)

    async def read_stdout(self, n: int = -1) -> bytes:
        """Up to n bytes as soon as some are there (all of it to EOF with n < 0); b"" at EOF."""
        return await _run(_read, self.sync.stdout, n)

    async def read_stderr(self, n: int = -1) -> bytes:
        return await _run(_read, self.sync.stderr, n)

    async def write_stdin(self, data: bytes) -> None:
        assert self.sync.stdin is not None, "the process was started with stdin=False"
        await _run(self.sync.stdin.write, data)
        await _run(self.sync.stdin.flush)

    async def close_stdin(self) -> None:
        if self.sync.stdin is not None:
            await _run(self.sync.stdin.close)

    def kill(self, sig: Union[str, int] = "SIGKILL") -> None:
        self.sync.kill(sig)


class AsyncGuest:
    """A Guest for asyncio. `async with await aio.connect(addr) as g: r = await g.run(["uname"])`."""

    def __init__(self, g: _sync.Guest) -> None:
        self.sync = g

    @property
    def info(self) -> Welcome:
        return self.sync.info

    async def run(self, argv: Union[str, Sequence[str]], **options: Any) -> _sync.CompletedProcess:
        return await _run(self.sync.run, argv, **options)

    async def exec(self, argv: Union[str, Sequence[str]], **options: Any) -> AsyncProcess:
        return AsyncProcess(self.sync.exec(argv, **options))

    async def attach(self, job: Union[str, int], **options: Any) -> AsyncProcess:
        return AsyncProcess(self.sync.attach(job, **options))

    async def jobs(self) -> List[JobInfo]:
        return await _run(self.sync.jobs)

    async def kill_job(self, job: Union[str, int], sig: Union[str, int] = "SIGTERM") -> None:
        await _run(self.sync.kill_job, job, sig)

    async def put_file(self, path: str, data: Any, **options: Any) -> int:
        return await _run(self.sync.put_file, path, data, **options)

    async def get_file(self, path: str, **options: Any) -> bytes:
        return await _run(self.sync.get_file, path, **options)

    async def put_dir(self, local: "Union[str, os.PathLike[str]]", remote: str) -> DirCounts:
        return await _run(self.sync.put_dir, local, remote)

    async def get_dir(self, remote: str, local: "Union[str, os.PathLike[str]]", **options: Any) -> DirCounts:
        return await _run(self.sync.get_dir, remote, local, **options)

    async def connect_tcp(self, host: str, port: int) -> TcpStream:
        return await _run(self.sync.connect_tcp, host, port)

    async def ping(self) -> float:
        return await _run(self.sync.ping)

    async def close(self) -> None:
        await _run(self.sync.close)

    async def __aenter__(self) -> "AsyncGuest":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def connect(address: Union[str, Address], **options: Any) -> AsyncGuest:
    return AsyncGuest(await _run(_sync.connect, address, **options))


class AsyncListener:
    def __init__(self, lst: _sync.Listener) -> None:
        self.sync = lst

    async def accept(self, timeout: Optional[float] = None) -> AsyncGuest:
        return AsyncGuest(await _run(self.sync.accept, timeout))

    def __aiter__(self) -> "AsyncListener":
        return self

    async def __anext__(self) -> AsyncGuest:
        try:
            return await self.accept()
        except GuestError as e:
            if e.code == "ECLOSED":
                raise StopAsyncIteration from None
            raise

    def close(self) -> None:
        self.sync.close()

    async def __aenter__(self) -> "AsyncListener":
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


def listen(address: Union[str, Address], **options: Any) -> AsyncListener:
    return AsyncListener(_sync.listen(address, **options))


__all__ = ["AsyncGuest", "AsyncListener", "AsyncProcess", "connect", "listen"]
