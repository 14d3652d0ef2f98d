"""The hello (PROTOCOL.md §4 and §11): magic and HELLO, the agent's WELCOME, and with a token the proofs
both ways before anything else is sent."""

from __future__ import annotations

import hmac
import socket
from typing import Any, Dict, Optional, Tuple

from . import __version__
from ._auth import AGENT_LABEL, HOST_LABEL, new_nonce, parse_hex32, proof
from ._frames import MAGIC, T, FrameDecoder, decode_json, encode_json
from ._messages import Welcome, error_code, welcome
from ._transport import deadline, remaining
from .errors import GuestError, ProtocolError


def _next_frame(sock: socket.socket, dec: FrameDecoder, at: Optional[float], where: str) -> Tuple[T, int, bytes]:
    while True:
        for frame in dec.frames():
            return frame
        sock.settimeout(remaining(at))
        try:
            data = sock.recv(65536)
        except socket.timeout:
            raise GuestError("ETIMEDOUT", f"{where}: the agent did not complete the hello in time") from None
        except OSError as e:
            raise GuestError("ECLOSED", f"{where}: the connection failed during the hello: {e.strerror or e}") from None
        finally:
            sock.settimeout(None)
        if not data:
            raise GuestError("ECLOSED", f"{where}: the agent closed the connection during the hello (an original-format agent, or one that refused this host)")
        dec.push(data)


def _welcome_frame(sock: socket.socket, dec: FrameDecoder, at: Optional[float], where: str) -> Dict[str, Any]:
    ftype, fid, payload = _next_frame(sock, dec, at, where)
    if ftype == T.ERROR:
        code, msg = error_code(decode_json(payload))
        raise GuestError(code, f"{where}: the agent refused the hello: {msg}")
    if ftype != T.WELCOME or fid != 0:
        raise ProtocolError("EPROTO", f"{where}: expected WELCOME, got {ftype.name}")
    return decode_json(payload)


def hello(sock: socket.socket, where: str, token: Optional[bytes], timeout: Optional[float]) -> Tuple[Welcome, FrameDecoder, bool]:
    """Runs the hello on a connected socket; returns the guest's facts, the decoder (with any frames read
    ahead) and whether both sides proved the token."""
    at = deadline(timeout)
    dec = FrameDecoder()
    body: Dict[str, Any] = {"versions": [2], "client": f"vge-python/{__version__}"}
    host_nonce = new_nonce() if token is not None else None
    if host_nonce is not None:
        body["auth"] = {"nonce": host_nonce.hex()}
    sock.sendall(MAGIC + encode_json(T.HELLO, 0, body))
    first = _welcome_frame(sock, dec, at, where)
    if token is None:
        return welcome(first), dec, False
    assert host_nonce is not None
    auth = first.get("auth")
    if not isinstance(auth, dict):
        raise GuestError("EAUTH", f"{where}: the agent does not authenticate (it has no token); refused")
    agent_nonce = parse_hex32(auth.get("nonce"))
    claimed = parse_hex32(auth.get("proof"))
    if not hmac.compare_digest(claimed, proof(AGENT_LABEL, token, host_nonce, agent_nonce)):
        raise GuestError("EAUTH", f"{where}: the agent's proof is wrong: it does not hold this token; refused")
    sock.sendall(encode_json(T.AUTH, 0, {"proof": proof(HOST_LABEL, token, host_nonce, agent_nonce).hex()}))
    return welcome(_welcome_frame(sock, dec, at, where)), dec, True
