"""Token proofs (PROTOCOL.md §11): HMAC-SHA256 over both nonces, one label per direction."""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from typing import Union

from .errors import GuestError

AGENT_LABEL = b"vge2-auth agent\0"
HOST_LABEL = b"vge2-auth host\0"
NONCE_SIZE = 32
MIN_TOKEN = 16
MAX_TOKEN_FILE = 64 * 1024
_HEX64 = re.compile(r"[0-9a-f]{64}")


def proof(label: bytes, token: bytes, host_nonce: bytes, agent_nonce: bytes) -> bytes:
    return hmac.new(token, label + host_nonce + agent_nonce, hashlib.sha256).digest()


def new_nonce() -> bytes:
    return os.urandom(NONCE_SIZE)


def parse_hex32(v: object) -> bytes:
    """64 lowercase hex digits, else None-like failure: the caller refuses the peer (EAUTH)."""
    if not isinstance(v, str) or not _HEX64.fullmatch(v):
        raise GuestError("EAUTH", "the agent's nonce or proof is not 64 lowercase hex digits")
    return bytes.fromhex(v)


def token_from_file_bytes(contents: bytes) -> bytes:
    """One trailing LF or CR LF is not part of the token; nothing else is trimmed."""
    if contents.endswith(b"\r\n"):
        return contents[:-2]
    return contents[:-1] if contents.endswith(b"\n") else contents


def read_token_file(path: "Union[str, os.PathLike[str]]") -> bytes:
    """The token in `path`, checked as the agent checks it; GuestError EINVAL names the file, never its bytes."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_TOKEN_FILE + 1)
    except OSError as e:
        raise GuestError("EINVAL", f"token file {path}: {e.strerror}") from None
    if len(data) > MAX_TOKEN_FILE:
        raise GuestError("EINVAL", f"token file {path}: more than {MAX_TOKEN_FILE} bytes; a token is one short line")
    return check_token(token_from_file_bytes(data), f"token file {path}")


def check_token(token: bytes, where: str = "token") -> bytes:
    if len(token) < MIN_TOKEN:
        raise GuestError("EINVAL", f"{where}: {len(token)} bytes; at least {MIN_TOKEN} are needed (make one with: head -c 32 /dev/urandom | base64)")
    return token
