"""The codec against the committed vectors (test/vectors/v2.json), the ones every implementation checks."""

from __future__ import annotations

import json

import pytest

from conftest import REPO
from vsock_guest_exec import _auth, _frames, _messages
from vsock_guest_exec.errors import ProtocolError

DOC = json.loads((REPO / "test" / "vectors" / "v2.json").read_text())


def test_magic_and_limits() -> None:
    assert bytes.fromhex(DOC["magic_hex"]) == _frames.MAGIC
    assert DOC["max_payload"] == _frames.MAX_PAYLOAD


@pytest.mark.parametrize("v", DOC["vectors"], ids=[v["name"] for v in DOC["vectors"]])
def test_vector_round_trip(v: dict) -> None:
    wire = bytes.fromhex(v["hex"])
    frames = _frames.decode_all(wire)
    assert len(frames) == 1
    ftype, fid, payload = frames[0]
    assert ftype.name == v["type"] and fid == v["id"]
    if "json" in v:
        assert ftype in _frames.JSON_TYPES
        assert _frames.decode_json(payload) == v["json"]
        again = _frames.encode_json(ftype, fid, v["json"])
    elif "credit" in v:
        assert _frames.decode_window(payload) == v["credit"]
        again = _frames.encode_window(fid, v["credit"])
    else:
        assert payload == bytes.fromhex(v["data_hex"])
        again = _frames.encode(ftype, fid, payload)
    assert again == wire
    # Fed one byte at a time, the frame comes out once, at its last byte.
    d = _frames.FrameDecoder()
    for i, b in enumerate(wire):
        d.push(bytes([b]))
        got = list(d.frames())
        assert bool(got) == (i == len(wire) - 1)


@pytest.mark.parametrize("v", DOC["invalid"], ids=[v["name"] for v in DOC["invalid"]])
def test_invalid_frames_are_refused(v: dict) -> None:
    with pytest.raises(ProtocolError) as e:
        _frames.decode_all(bytes.fromhex(v["hex"]))
    assert e.value.code == "EPROTO"
    assert v["reason"] in str(e.value)


@pytest.mark.parametrize("v", DOC["invalid_entries"], ids=[v["name"] for v in DOC["invalid_entries"]])
def test_invalid_entries_are_refused(v: dict) -> None:
    (_, _, payload), = _frames.decode_all(bytes.fromhex(v["hex"]))
    with pytest.raises(ProtocolError):
        _messages.entry(_frames.decode_json(payload))


def test_auth_proofs() -> None:
    a = DOC["auth"]
    token = _auth.token_from_file_bytes(bytes.fromhex(a["token_file_hex"]))
    assert token.hex() == a["token_hex"]
    hn, an = bytes.fromhex(a["host_nonce_hex"]), bytes.fromhex(a["agent_nonce_hex"])
    assert _auth.AGENT_LABEL.hex() == a["agent_label_hex"] and _auth.HOST_LABEL.hex() == a["host_label_hex"]
    assert _auth.proof(_auth.AGENT_LABEL, token, hn, an).hex() == a["agent_proof_hex"]
    assert _auth.proof(_auth.HOST_LABEL, token, hn, an).hex() == a["host_proof_hex"]


def test_dir_entry_vectors_decode_as_entries() -> None:
    for v in DOC["vectors"]:
        if v["type"] == "DIR_ENTRY":
            e = _messages.entry(v["json"])
            assert e.path == v["json"]["path"] and e.type == v["json"]["type"]


def test_exit_usage_vector() -> None:
    v = next(v for v in DOC["vectors"] if v["name"] == "exit with usage")
    r = _messages.exit_result(v["json"])
    assert r.oom is True and r.usage is not None and r.usage.source == "cgroup" and r.usage.memory_peak == v["json"]["usage"]["memoryPeak"]
