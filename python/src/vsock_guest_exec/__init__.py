"""vsock-guest-exec for Python: run commands, copy files and trees, follow detached jobs and open TCP
streams in a Linux guest whose agent speaks protocol v2 (PROTOCOL.md), over AF_VSOCK, Firecracker /
Cloud Hypervisor Unix sockets or per-port Unix sockets.

    from vsock_guest_exec import connect
    with connect("fc:/run/vm/v.sock:1024", token_file="vge.token") as guest:
        r = guest.run(["uname", "-r"])
        print(r.returncode, r.stdout)
"""

__version__ = "0.2.0"

from .address import ADDRESS_FORMS, Address, parse_address  # noqa: E402
from .dirs import DirCounts  # noqa: E402
from .errors import AddressError, ArgumentError, FileError, GuestError, ProtocolError, TcpError  # noqa: E402
from .guest import CompletedProcess, Guest, Listener, ProcessError, connect, listen  # noqa: E402
from ._messages import Attached, ExitResult, JobInfo, Usage, Welcome  # noqa: E402
from .process import Process  # noqa: E402
from .tcp import TcpStream  # noqa: E402

__all__ = [
    "ADDRESS_FORMS", "Address", "AddressError", "ArgumentError", "Attached", "CompletedProcess", "DirCounts", "ExitResult",
    "FileError", "Guest", "GuestError", "JobInfo", "Listener", "Process", "ProcessError", "ProtocolError",
    "TcpError", "TcpStream", "Usage", "Welcome", "connect", "listen", "parse_address",
]
