from __future__ import annotations

import pytest

from vsock_guest_exec import AddressError, parse_address
from vsock_guest_exec.address import CID_ANY


@pytest.mark.parametrize("text,kind,path,cid,port", [
    ("vsock:3:1024", "vsock", "", 3, 1024),
    ("vsock-listen:1024", "vsock-listen", "", CID_ANY, 1024),
    ("vsock-listen:-1:1024", "vsock-listen", "", CID_ANY, 1024),
    ("vsock-listen:2:5", "vsock-listen", "", 2, 5),
    ("unix:/tmp/a:b", "unix", "/tmp/a:b", 0, 0),
    ("unix-listen:/tmp/x.sock", "unix-listen", "/tmp/x.sock", 0, 0),
    ("fc:/run/v:s.sock:1024", "fc", "/run/v:s.sock", 0, 1024),
    ("fc-listen:/run/v.sock:52", "fc-listen", "/run/v.sock", 0, 52),
])
def test_forms(text: str, kind: str, path: str, cid: int, port: int) -> None:
    a = parse_address(text)
    assert (a.kind, a.path, a.cid, a.port) == (kind, path, cid, port)
    assert str(a) == text.replace("vsock-listen:-1:", "vsock-listen:")


def test_fc_listen_socket_path() -> None:
    assert parse_address("fc-listen:/run/v.sock:52").socket_path == "/run/v.sock_52"


@pytest.mark.parametrize("text,why", [
    ("nonsense", "expected one of"),
    ("vsock:3", "vsock:CID:PORT"),
    ("vsock:x:1", "CID must be"),
    ("vsock:3:4294967295", "port must be"),
    ("unix:", "empty"),
    ("unix:/a\0b", "NUL"),
    ("unix:/" + "a" * 200, "Unix sockets allow"),
    ("fc:/a", "UDS_PATH:PORT"),
    ("tcp:1.2.3.4:5", "unknown kind"),
])
def test_bad_addresses(text: str, why: str) -> None:
    with pytest.raises(AddressError) as e:
        parse_address(text)
    assert e.value.code == "EINVAL" and why in str(e.value)
    assert "\n" not in str(e.value)
