#!/usr/bin/env python3
"""A second implementation of the vsock-guest-exec v2 protocol, from PROTOCOL.md, in Python's stdlib only.

It exists so that the agent's v2 wire format is checked against a codec that is not ours: frames here come
from struct and json as a host author would write them from the spec, not from src/protocol.

    v2_host.py vectors test/vectors/v2.json        decode, re-encode and reject the committed vectors
    v2_host.py listen PATH --script JSON|@FILE     listen on PATH; the agent dials it (`--unix PATH`)
    v2_host.py connect PATH --script JSON|@FILE    dial an agent started with `--listen --unix PATH`

A script is a JSON object: {"ops": [OP, ...], "timeout_s": 30, "hello": {"versions": [2]}, "linger_ms": 0}
("linger_ms": go on reading that long after the last op is done, e.g. for an ERROR). With "token_hex"
the host authenticates (PROTOCOL.md §11): a nonce in HELLO, the agent's proof checked, AUTH sent;
"auth_proof_hex" sends that proof instead of the right one and "ignore_agent_proof" skips the check
(hostile hosts, for tests). Ops start
once WELCOME has arrived (or at once with "no_wait_welcome": true), concurrently, each when the ops named
in its "after" list are done and a further "delay_ms" has passed. Every op has a non-zero "id".

    {"op": "exec", "id": 1, "req": {ExecRequest},       sent as given: "limits" and "usage" too (§5.2);
                                                    the EXIT's "usage" and "oom" are reported as received
     "stdin": TEXT | "stdin_hex": HEX | "stdin_gen": {"size": N, "seed": S},   sent within stdin credit
     "eof": true,                                   STDIN_EOF once all stdin is sent
     "ignore_credit": true,                         send stdin regardless of credit (to provoke EFLOW)
     "credit": "auto" | {"rate_bps": N} | {"hold_until_done": [IDS]} | "never",
     "signals": [{"signal": "SIGTERM", "after_ms": N}],   after STARTED
     "resizes": [{"cols": C, "rows": R, "after_ms": N}],  after STARTED
     "keep": N}                                     bytes of each stream kept as text (default 65536)
    {"op": "put", "id": 2, "req": {"path", "mode"?, "uid"?, "gid"?}, "size"?: N (default: the data's),
     "data": TEXT | "data_hex": HEX | "gen": {"size", "seed"}, "chunk": N, "chunk_delay_ms": N, "no_end": true,
     "ignore_credit": true}
    {"op": "get", "id": 3, "req": {"path", "maxSize"?}, "credit": as for exec}
    {"op": "ping", "id": 4, "data_hex": HEX}
    {"op": "tcp", "id": 6, "host": H, "port": P, "data": TEXT | "data_hex": HEX | "gen": {"size", "seed"},
     "eof": true (default: TCP_EOF after the data), "credit": as for exec}
    {"op": "raw", "id": 5, "hex": HEX}              bytes as they are, for malformed-input tests

stdout: "listening PATH" (listen mode), then one JSON report line:
    {"ok", "welcome", "error", "closed_by_agent", "timed_out", "elapsed_ms", "ops": {ID: {...}}, "stray": [...],
     "authenticated" (AUTH was sent), "refused_agent" (why this host refused the agent's WELCOME, or null)}
Exit status: 0 the script ran (read "ok" for its outcome), 1 no connection, 2 bad arguments or script,
3 a vectors check failed.
"""

import argparse
import hashlib
import hmac
import json
import os
import random
import selectors
import socket
import struct
import sys
import time

# --- the codec (PROTOCOL.md §2–3) --------------------------------------------------------------------

MAGIC = b"\xff\xffVGE2\r\n"
MAX_PAYLOAD = 256 * 1024
CHUNK = 64 * 1024
DEFAULT_WINDOW = 256 * 1024
HEADER = struct.Struct("<IBI")  # length (type + id + payload), type, id

TYPES = {
    "HELLO": 0x01, "WELCOME": 0x02, "AUTH": 0x03,
    "EXEC": 0x10, "STARTED": 0x11, "STDIN": 0x12, "STDIN_EOF": 0x13, "STDOUT": 0x14, "STDERR": 0x15,
    "SIGNAL": 0x16, "RESIZE": 0x17, "EXIT": 0x18, "WINDOW": 0x19,
    "LIST": 0x1A, "LISTING": 0x1B, "ATTACH": 0x1C, "ATTACHED": 0x1D, "DETACHED": 0x1E, "KILL": 0x1F,
    "PUT": 0x20, "GET": 0x21, "FILE_DATA": 0x22, "FILE_END": 0x23, "RESULT": 0x24,
    "PUTDIR": 0x25, "GETDIR": 0x26, "DIR_ENTRY": 0x27, "DIR_END": 0x28,
    "PING": 0x30, "PONG": 0x31,
    "TCP_OPEN": 0x40, "TCP_OPENED": 0x41, "TCP_DATA": 0x42, "TCP_EOF": 0x43, "TCP_RESET": 0x44, "TCP_CLOSED": 0x45,
    "ERROR": 0x7F,
}
NAMES = {v: k for k, v in TYPES.items()}
JSON_TYPES = {"HELLO", "WELCOME", "AUTH", "EXEC", "STARTED", "SIGNAL", "RESIZE", "EXIT", "PUT", "GET", "RESULT", "ERROR",
              "PUTDIR", "GETDIR", "DIR_ENTRY", "LIST", "LISTING", "ATTACH", "ATTACHED", "DETACHED", "KILL",
              "TCP_OPEN", "TCP_OPENED", "TCP_CLOSED"}
MAX_ENTRY_PATH = 4096
MAX_NAME = 255


class ProtocolError(Exception):
    pass


def encode(ftype: int, fid: int, payload: bytes = b"") -> bytes:
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes is over {MAX_PAYLOAD}")
    if not 0 <= fid <= 0xFFFFFFFF:
        raise ValueError(f"id {fid} is not a u32")
    return HEADER.pack(5 + len(payload), ftype, fid) + payload


def encode_json(ftype: int, fid: int, body) -> bytes:
    # Compact, key order kept, non-ASCII as UTF-8: the bytes a JSON.stringify peer produces.
    return encode(ftype, fid, json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode())


def encode_window(fid: int, credit: int) -> bytes:
    return encode(TYPES["WINDOW"], fid, struct.pack("<I", credit))


def decode_json(payload: bytes):
    try:
        body = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise ProtocolError(f"payload is not UTF-8 JSON: {e}")
    if not isinstance(body, dict):
        raise ProtocolError("payload is not a JSON object")
    return body


def decode_window(payload: bytes) -> int:
    if len(payload) != 4:
        raise ProtocolError(f"WINDOW payload must be 4 bytes, got {len(payload)}")
    return struct.unpack("<I", payload)[0]


def _u8len(s: str) -> int:
    return len(s.encode("utf-8"))


def decode_entry(payload: bytes) -> dict:
    """A DIR_ENTRY header (PROTOCOL.md section 11), checked field by field; the mode keeps 0o7777 only."""
    b = decode_json(payload)
    path = b.get("path")
    if not isinstance(path, str) or path == "":
        raise ProtocolError("DIR_ENTRY: path must be a non-empty string")
    if _u8len(path) > MAX_ENTRY_PATH or "\0" in path or path.startswith("/"):
        raise ProtocolError(f"DIR_ENTRY: path {path!r} is too long, has NUL or is absolute")
    for c in path.split("/"):
        if c in ("", ".", "..") or _u8len(c) > MAX_NAME:
            raise ProtocolError(f"DIR_ENTRY: path {path!r} has a bad component {c!r}")
    mode, mtime = b.get("mode"), b.get("mtime")
    if isinstance(mode, bool) or not isinstance(mode, int) or not 0 <= mode <= 0xFFFFFFFF:
        raise ProtocolError("DIR_ENTRY: mode must be a u32")
    if isinstance(mtime, bool) or not isinstance(mtime, (int, float)) or mtime != mtime or mtime in (float("inf"), float("-inf")):
        raise ProtocolError("DIR_ENTRY: mtime must be a finite number")
    out = {"type": b.get("type"), "path": path, "mode": mode & 0o7777, "mtime": mtime}
    if b.get("type") == "file":
        size = b.get("size")
        if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= 2 ** 53 - 1:
            raise ProtocolError("DIR_ENTRY: size must be a non-negative safe integer")
        out["size"] = size
    elif b.get("type") == "symlink":
        t = b.get("target")
        if not isinstance(t, str) or t == "" or "\0" in t or _u8len(t) > MAX_ENTRY_PATH:
            raise ProtocolError("DIR_ENTRY: target must be a non-empty string without NUL")
        out["target"] = t
    elif b.get("type") != "dir":
        raise ProtocolError("DIR_ENTRY: type must be file, dir or symlink")
    return out


class Decoder:
    """Bytes in any pieces, whole frames out as (type, id, payload). Checks the header before the body."""

    def __init__(self):
        self.buf = bytearray()

    def push(self, data: bytes):
        self.buf += data
        frames = []
        while True:
            if len(self.buf) >= 4:
                (length,) = struct.unpack_from("<I", self.buf)
                if not 5 <= length <= 5 + MAX_PAYLOAD:
                    raise ProtocolError(f"frame length {length} is outside 5..{5 + MAX_PAYLOAD}")
            if len(self.buf) >= 5 and self.buf[4] not in NAMES:
                raise ProtocolError(f"unknown frame type 0x{self.buf[4]:02x}")
            if len(self.buf) < HEADER.size or len(self.buf) < 4 + length:
                return frames
            _, ftype, fid = HEADER.unpack_from(self.buf)
            frames.append((ftype, fid, bytes(self.buf[HEADER.size:4 + length])))
            del self.buf[:4 + length]

    @property
    def pending(self) -> int:
        return len(self.buf)


# --- authentication (PROTOCOL.md §11) ------------------------------------------------------------------

AGENT_LABEL = b"vge2-auth agent\0"
HOST_LABEL = b"vge2-auth host\0"
NONCE_SIZE = 32


def proof(label: bytes, token: bytes, host_nonce: bytes, agent_nonce: bytes) -> bytes:
    return hmac.new(token, label + host_nonce + agent_nonce, hashlib.sha256).digest()


def token_from_file(contents: bytes) -> bytes:
    """One trailing LF or CR LF is not part of the token."""
    if contents.endswith(b"\r\n"):
        return contents[:-2]
    return contents[:-1] if contents.endswith(b"\n") else contents


def check_auth(doc: dict) -> list:
    a, failures = doc["auth"], []
    token = token_from_file(bytes.fromhex(a["token_file_hex"]))
    if token.hex() != a["token_hex"]:
        failures.append("auth: token from the file differs")
    if AGENT_LABEL.hex() != a["agent_label_hex"] or HOST_LABEL.hex() != a["host_label_hex"]:
        failures.append("auth: labels differ")
    hn, an = bytes.fromhex(a["host_nonce_hex"]), bytes.fromhex(a["agent_nonce_hex"])
    ap, hp = proof(AGENT_LABEL, token, hn, an), proof(HOST_LABEL, token, hn, an)
    if ap.hex() != a["agent_proof_hex"]:
        failures.append(f"auth: agent proof {ap.hex()}, expected {a['agent_proof_hex']}")
    if hp.hex() != a["host_proof_hex"]:
        failures.append(f"auth: host proof {hp.hex()}, expected {a['host_proof_hex']}")
    by_name = {v["name"]: v.get("json") for v in doc["vectors"]}
    if by_name.get("hello with auth", {}).get("auth", {}).get("nonce") != hn.hex():
        failures.append("auth: HELLO vector does not carry the host nonce")
    if by_name.get("welcome with auth", {}).get("auth") != {"nonce": an.hex(), "proof": ap.hex()}:
        failures.append("auth: WELCOME vector does not carry the agent nonce and proof")
    if by_name.get("auth") != {"proof": hp.hex()}:
        failures.append("auth: AUTH vector does not carry the host proof")
    return failures


# --- vectors -----------------------------------------------------------------------------------------

def check_vectors(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    failures = []
    if bytes.fromhex(doc["magic_hex"]) != MAGIC:
        failures.append(f"magic is {doc['magic_hex']}, expected {MAGIC.hex()}")
    if doc.get("max_payload") != MAX_PAYLOAD:
        failures.append(f"max_payload is {doc.get('max_payload')}, expected {MAX_PAYLOAD}")
    for v in doc["vectors"]:
        name, wire = v["name"], bytes.fromhex(v["hex"])
        try:
            frames = Decoder().push(wire)
        except ProtocolError as e:
            failures.append(f"{name}: rejected: {e}")
            continue
        if len(frames) != 1:
            failures.append(f"{name}: decoded {len(frames)} frames, expected 1")
            continue
        ftype, fid, payload = frames[0]
        if NAMES.get(ftype) != v["type"]:
            failures.append(f"{name}: type {NAMES.get(ftype)}, expected {v['type']}")
        if fid != v["id"]:
            failures.append(f"{name}: id {fid}, expected {v['id']}")
        if "json" in v:
            if v["type"] not in JSON_TYPES:
                failures.append(f"{name}: {v['type']} is not a JSON frame")
            if decode_json(payload) != v["json"]:
                failures.append(f"{name}: JSON differs")
            if v["type"] == "DIR_ENTRY":
                try:
                    if decode_entry(payload) != v["json"]:
                        failures.append(f"{name}: entry decodes differently")
                except ProtocolError as e:
                    failures.append(f"{name}: entry refused: {e}")
            again = encode_json(TYPES[v["type"]], v["id"], v["json"])
        elif "credit" in v:
            if decode_window(payload) != v["credit"]:
                failures.append(f"{name}: credit {decode_window(payload)}, expected {v['credit']}")
            again = encode_window(v["id"], v["credit"])
        else:
            if payload != bytes.fromhex(v["data_hex"]):
                failures.append(f"{name}: data differs")
            again = encode(TYPES[v["type"]], v["id"], bytes.fromhex(v["data_hex"]))
        if again != wire:
            failures.append(f"{name}: re-encoded as {again.hex()}, expected {v['hex']}")
        # The same frame fed one byte at a time must come out once, at the last byte.
        dec, got = Decoder(), []
        for i in range(len(wire)):
            got += dec.push(wire[i:i + 1])
            if got and i != len(wire) - 1:
                failures.append(f"{name}: frame complete after {i + 1} of {len(wire)} bytes")
                break
        if got != frames:
            failures.append(f"{name}: byte-by-byte decoding differs")
    for v in doc["invalid"]:
        try:
            Decoder().push(bytes.fromhex(v["hex"]))
            failures.append(f"invalid {v['name']}: accepted")
        except ProtocolError as e:
            if v["reason"] not in str(e):
                failures.append(f"invalid {v['name']}: rejected for '{e}', expected a {v['reason']} error")
    failures += check_auth(doc)
    for v in doc.get("invalid_entries", []):
        frames = Decoder().push(bytes.fromhex(v["hex"]))
        try:
            decode_entry(frames[0][2])
            failures.append(f"invalid entry {v['name']}: accepted")
        except ProtocolError:
            pass
    return {"vectors": len(doc["vectors"]), "invalid": len(doc["invalid"]),
            "invalid_entries": len(doc.get("invalid_entries", [])), "failures": failures}


# --- scenario ops ------------------------------------------------------------------------------------

class Stream:
    """Bytes of one stream, hashed as they come; the first `keep` bytes kept as text."""

    def __init__(self, keep: int):
        self.keep, self.n, self.frames, self.head = keep, 0, 0, bytearray()
        self.sha = hashlib.sha256()

    def add(self, data: bytes):
        self.n += len(data)
        self.frames += 1
        self.sha.update(data)
        if len(self.head) < self.keep:
            self.head += data[:self.keep - len(self.head)]

    def report(self) -> dict:
        return {"bytes": self.n, "frames": self.frames, "sha256": self.sha.hexdigest(), "text": self.head.decode("utf-8", "replace")}


class Source:
    """Bytes to send: given literally or generated from a seed (random.Random is stable across runs)."""

    def __init__(self, spec: dict, text_key: str, hex_key: str, gen_key: str):
        self.sha = hashlib.sha256()
        if gen_key in spec:
            self.size, self.rng, self.data = spec[gen_key]["size"], random.Random(spec[gen_key]["seed"]), None
        else:
            self.data = bytes.fromhex(spec[hex_key]) if hex_key in spec else spec.get(text_key, "").encode()
            self.size, self.rng = len(self.data), None
        self.sent = 0

    @property
    def remaining(self) -> int:
        return self.size - self.sent

    def take(self, n: int) -> bytes:
        n = min(n, self.remaining)
        chunk = self.rng.randbytes(n) if self.rng else self.data[self.sent:self.sent + n]
        self.sent += n
        self.sha.update(chunk)
        return chunk


class Credit:
    """The host's side of an output window: what was consumed, and when it is given back (§7)."""

    def __init__(self, spec, sess):
        self.spec = spec if spec is not None else "auto"
        self.sess = sess
        self.consumed = self.returned = 0
        self.t_first = None

    def consume(self, n: int, now: float):
        if self.t_first is None:
            self.t_first = now
        self.consumed += n

    def owed(self, now: float) -> int:
        s = self.spec
        owed = self.consumed - self.returned
        if s == "never":
            return 0
        if isinstance(s, dict) and "hold_until_done" in s:
            if not all(self.sess.done(i) for i in s["hold_until_done"]):
                return 0
        if isinstance(s, dict) and "rate_bps" in s and self.t_first is not None:
            # Consumed no faster than rate_bps since the first byte; small WINDOWs are batched to 16 KiB.
            allowed = min(owed, int(s["rate_bps"] * (now - self.t_first)) - self.returned)
            owed = allowed if allowed >= min(owed, 16384) else 0
        return max(owed, 0)


class Op:
    def __init__(self, sess, spec: dict):
        self.sess, self.spec, self.id = sess, spec, spec["id"]
        self.started_at = None
        self.done = False
        self.rep = {"kind": spec["op"], "done": False}

    def ms(self, now):
        return round((now - self.sess.t0) * 1000, 1)

    def start(self, now):
        self.started_at = now
        self.rep["t_start_ms"] = self.ms(now)

    def finish(self, now):
        self.done = True
        self.rep["done"] = True
        self.rep["t_done_ms"] = self.ms(now)

    def on_frame(self, ftype, payload, now):
        self.rep.setdefault("unexpected", []).append(NAMES.get(ftype, ftype))

    def tick(self, now):
        return None

    def report(self):
        return self.rep


class ExecOp(Op):
    def __init__(self, sess, spec):
        super().__init__(sess, spec)
        keep = spec.get("keep", 65536)
        self.out, self.err = Stream(keep), Stream(keep)
        self.stdin = Source(spec, "stdin", "stdin_hex", "stdin_gen")
        self.stdin_credit = sess.window
        self.eof_sent = False
        self.credit = Credit(spec.get("credit"), sess)
        self.t_started = None
        self.timers = [("SIGNAL", s) for s in spec.get("signals", [])] + [("RESIZE", r) for r in spec.get("resizes", [])]
        self.rep.update(order=[], after_exit=0, window_frames=0)

    def start(self, now):
        super().start(now)
        self.sess.send(encode_json(TYPES["EXEC"], self.id, self.spec["req"]))

    def on_frame(self, ftype, payload, now):
        name = NAMES[ftype]
        if "exit" in self.rep:
            self.rep["after_exit"] += 1
        order = self.rep["order"]
        if not order or order[-1] != name:
            order.append(name)  # runs of one type collapsed: STARTED, STDOUT, STDERR, STDOUT, EXIT
        if ftype == TYPES["STARTED"]:
            self.rep["started"] = decode_json(payload)
            self.t_started = now
            self.rep["t_started_ms"] = self.ms(now)
        elif ftype in (TYPES["STDOUT"], TYPES["STDERR"]):
            (self.out if ftype == TYPES["STDOUT"] else self.err).add(payload)
            self.credit.consume(len(payload), now)
            self.rep["max_outstanding"] = max(self.rep.get("max_outstanding", 0), self.credit.consumed - self.credit.returned)
        elif ftype == TYPES["WINDOW"]:
            self.stdin_credit += decode_window(payload)
            self.rep["window_frames"] += 1
        elif ftype == TYPES["EXIT"]:
            self.rep["exit"] = decode_json(payload)
            self.rep["t_exit_ms"] = self.ms(now)
            self.finish(now)
        else:
            super().on_frame(ftype, payload, now)

    def tick(self, now):
        wake = None
        ignore = self.spec.get("ignore_credit", False)
        while self.stdin.remaining and (ignore or self.stdin_credit > 0) and self.sess.out_room():
            chunk = self.stdin.take(CHUNK if ignore else min(CHUNK, self.stdin_credit))
            self.stdin_credit -= len(chunk)
            self.sess.send(encode(TYPES["STDIN"], self.id, chunk))
        if not self.stdin.remaining and self.spec.get("eof") and not self.eof_sent:
            self.eof_sent = True
            self.sess.send(encode(TYPES["STDIN_EOF"], self.id))
        if self.t_started is not None:
            for t in list(self.timers):
                kind, body = t
                due = self.t_started + body.get("after_ms", 0) / 1000
                if now >= due:
                    self.timers.remove(t)
                    msg = {"signal": body["signal"]} if kind == "SIGNAL" else {"cols": body["cols"], "rows": body["rows"]}
                    self.sess.send(encode_json(TYPES[kind], self.id, msg))
                else:
                    wake = due if wake is None else min(wake, due)
        if not self.done:
            owed = self.credit.owed(now)
            if owed:
                self.credit.returned += owed
                self.sess.send(encode_window(self.id, owed))
            elif self.credit.consumed > self.credit.returned:
                wake = now + 0.01 if wake is None else min(wake, now + 0.01)
        return wake

    def report(self):
        r = self.rep
        r["stdout"], r["stderr"] = self.out.report(), self.err.report()
        r["stdin"] = {"bytes": self.stdin.sent, "sha256": self.stdin.sha.hexdigest()}
        return r


class PutOp(Op):
    def __init__(self, sess, spec):
        super().__init__(sess, spec)
        self.data = Source(spec, "data", "data_hex", "gen")
        self.credit = sess.window
        self.next_at = 0.0
        self.end_sent = False

    def start(self, now):
        super().start(now)
        body = dict(self.spec["req"])
        body["size"] = self.spec.get("size", self.data.size)
        self.sess.send(encode_json(TYPES["PUT"], self.id, body))

    def on_frame(self, ftype, payload, now):
        if ftype == TYPES["WINDOW"]:
            self.credit += decode_window(payload)
        elif ftype == TYPES["RESULT"]:
            self.rep["result"] = decode_json(payload)
            self.rep["data"] = {"bytes": self.data.sent, "sha256": self.data.sha.hexdigest()}
            self.finish(now)
        else:
            super().on_frame(ftype, payload, now)

    def tick(self, now):
        chunk_size = self.spec.get("chunk", CHUNK)
        delay = self.spec.get("chunk_delay_ms", 0) / 1000
        ignore = self.spec.get("ignore_credit", False)
        while self.data.remaining and (ignore or self.credit > 0) and self.sess.out_room():
            if now < self.next_at:
                return self.next_at
            chunk = self.data.take(chunk_size if ignore else min(chunk_size, self.credit))
            self.credit -= len(chunk)
            self.sess.send(encode(TYPES["FILE_DATA"], self.id, chunk))
            self.next_at = now + delay
        if not self.data.remaining and not self.end_sent and not self.spec.get("no_end"):
            if now < self.next_at:
                return self.next_at
            self.end_sent = True
            self.sess.send(encode(TYPES["FILE_END"], self.id))
        return None


class GetOp(Op):
    def __init__(self, sess, spec):
        super().__init__(sess, spec)
        self.data = Stream(spec.get("keep", 4096))
        self.credit = Credit(spec.get("credit"), sess)

    def start(self, now):
        super().start(now)
        self.sess.send(encode_json(TYPES["GET"], self.id, self.spec["req"]))

    def on_frame(self, ftype, payload, now):
        if ftype == TYPES["FILE_DATA"]:
            self.data.add(payload)
            self.credit.consume(len(payload), now)
            self.rep["max_outstanding"] = max(self.rep.get("max_outstanding", 0), self.credit.consumed - self.credit.returned)
        elif ftype == TYPES["RESULT"]:
            self.rep["result"] = decode_json(payload)
            self.finish(now)
        else:
            super().on_frame(ftype, payload, now)

    def tick(self, now):
        owed = self.credit.owed(now)
        if owed and not self.done:
            self.credit.returned += owed
            self.sess.send(encode_window(self.id, owed))
        return now + 0.01 if self.credit.consumed > self.credit.returned else None

    def report(self):
        self.rep["data"] = self.data.report()
        return self.rep


class PingOp(Op):
    def start(self, now):
        super().start(now)
        self.payload = bytes.fromhex(self.spec.get("data_hex", ""))
        self.sess.send(encode(TYPES["PING"], self.id, self.payload))

    def on_frame(self, ftype, payload, now):
        if ftype != TYPES["PONG"]:
            return super().on_frame(ftype, payload, now)
        self.rep["rtt_ms"] = round((now - self.started_at) * 1000, 3)
        self.rep["echo_ok"] = payload == self.payload
        self.finish(now)


class RawOp(Op):
    def start(self, now):
        super().start(now)
        self.sess.send(bytes.fromhex(self.spec["hex"]))
        self.finish(now)


class TcpOp(Op):
    """A TCP stream (§13): TCP_OPEN, data within credit once TCP_OPENED came, TCP_EOF, until TCP_CLOSED."""

    def __init__(self, sess, spec):
        super().__init__(sess, spec)
        self.data = Source(spec, "data", "data_hex", "gen")
        self.recv = Stream(spec.get("keep", 4096))
        self.credit = Credit(spec.get("credit"), sess)
        self.send_credit = sess.window
        self.opened = False
        self.eof_sent = False
        self.rep.update(order=[])

    def start(self, now):
        super().start(now)
        self.sess.send(encode_json(TYPES["TCP_OPEN"], self.id, {"host": self.spec["host"], "port": self.spec["port"]}))

    def on_frame(self, ftype, payload, now):
        name = NAMES[ftype]
        if name != "WINDOW" and (not self.rep["order"] or self.rep["order"][-1] != name):
            self.rep["order"].append(name)
        if ftype == TYPES["TCP_OPENED"]:
            self.opened = True
            self.rep["opened"] = decode_json(payload)
        elif ftype == TYPES["TCP_DATA"]:
            self.recv.add(payload)
            self.credit.consume(len(payload), now)
            self.rep["max_outstanding"] = max(self.rep.get("max_outstanding", 0), self.credit.consumed - self.credit.returned)
        elif ftype == TYPES["WINDOW"]:
            self.send_credit += decode_window(payload)
        elif ftype == TYPES["TCP_EOF"]:
            self.rep["eof"] = True
        elif ftype == TYPES["TCP_CLOSED"]:
            self.rep["closed"] = decode_json(payload)
            self.finish(now)
        else:
            super().on_frame(ftype, payload, now)

    def tick(self, now):
        if self.opened and not self.done:
            while self.data.remaining and self.send_credit > 0 and self.sess.out_room():
                chunk = self.data.take(min(CHUNK, self.send_credit))
                self.send_credit -= len(chunk)
                self.sess.send(encode(TYPES["TCP_DATA"], self.id, chunk))
            if not self.data.remaining and self.spec.get("eof", True) and not self.eof_sent:
                self.eof_sent = True
                self.sess.send(encode(TYPES["TCP_EOF"], self.id))
        owed = self.credit.owed(now)
        if owed and not self.done:
            self.credit.returned += owed
            self.sess.send(encode_window(self.id, owed))
        return now + 0.01 if self.credit.consumed > self.credit.returned else None

    def report(self):
        self.rep["data"] = self.recv.report()
        self.rep["sent"] = {"bytes": self.data.sent, "sha256": self.data.sha.hexdigest()}
        return self.rep


OPS = {"exec": ExecOp, "put": PutOp, "get": GetOp, "ping": PingOp, "raw": RawOp, "tcp": TcpOp}


# --- one connection ----------------------------------------------------------------------------------

class Session:
    OUT_HIGH = 1 << 20  # stop producing input while this much is queued for the socket

    def __init__(self, sock: socket.socket, script: dict):
        self.sock, self.script = sock, script
        self.t0 = time.monotonic()
        self.dec = Decoder()
        self.outbuf = bytearray()
        self.window = DEFAULT_WINDOW
        self.welcome = None
        self.error = None
        self.closed_by_agent = False
        self.write_failed = False
        self.stray = []
        self.ops = {}
        self.waiting = []
        for spec in script.get("ops", []):
            if spec.get("op") not in OPS or not isinstance(spec.get("id"), int):
                raise ValueError(f"an op needs a known 'op' and an integer 'id': {spec!r}")
            self.waiting.append(OPS[spec["op"]](self, spec))
        self.ready_at = None
        self.token = bytes.fromhex(script["token_hex"]) if "token_hex" in script else None
        self.host_nonce = os.urandom(NONCE_SIZE)
        self.authenticated = False
        self.refused_agent = None

    def on_welcome(self, body: dict) -> bool:
        """True when `body` is the full WELCOME; otherwise the agent's proof, answered with AUTH."""
        if self.token is None or self.authenticated:
            return True
        a = body.get("auth")
        if not isinstance(a, dict):
            self.refused_agent = "the agent does not authenticate"
            return False
        an = bytes.fromhex(a["nonce"])
        expected = proof(AGENT_LABEL, self.token, self.host_nonce, an)
        if not hmac.compare_digest(expected, bytes.fromhex(a["proof"])) and not self.script.get("ignore_agent_proof"):
            self.refused_agent = "wrong proof from the agent"
            return False
        mine = bytes.fromhex(self.script["auth_proof_hex"]) if "auth_proof_hex" in self.script else proof(HOST_LABEL, self.token, self.host_nonce, an)
        self.send(encode_json(TYPES["AUTH"], 0, {"proof": mine.hex()}))
        self.authenticated = True
        return False

    def send(self, data: bytes):
        # Once the agent has stopped reading (it closes after an ERROR), what we would send is moot.
        if not self.write_failed:
            self.outbuf += data

    def out_room(self) -> bool:
        return len(self.outbuf) < self.OUT_HIGH

    def done(self, op_id) -> bool:
        op = self.ops.get(op_id)
        return op is not None and op.done

    def dispatch(self, ftype, fid, payload, now):
        if ftype == TYPES["WELCOME"] and fid == 0:
            body = decode_json(payload)
            if not self.on_welcome(body):
                return
            self.welcome = body
            self.window = self.welcome.get("window", DEFAULT_WINDOW)
            return
        if ftype == TYPES["ERROR"]:
            self.error = decode_json(payload)
            return
        op = self.ops.get(fid)
        if op is None:
            self.stray.append({"type": NAMES[ftype], "id": fid, "bytes": len(payload)})
        else:
            op.on_frame(ftype, payload, now)

    def start_due(self, now):
        if self.ready_at is None:
            if self.welcome is None and not self.script.get("no_wait_welcome"):
                return None
            self.ready_at = now
        wake = None
        for op in list(self.waiting):
            after = op.spec.get("after", [])
            if not all(self.done(i) for i in after):
                continue
            # delay_ms counts from the later of the session's start and the last of its "after" ops.
            base = max([self.ready_at] + [self.ops[i].rep.get("t_done_ms", 0) / 1000 + self.t0 for i in after])
            due = base + op.spec.get("delay_ms", 0) / 1000
            if now < due:
                wake = due if wake is None else min(wake, due)
                continue
            self.waiting.remove(op)
            self.ops[op.id] = op
            op.start(now)
        return wake

    def run(self, timeout_s: float) -> dict:
        hello = dict(self.script.get("hello", {"versions": [2], "client": "v2_host.py"}))
        if self.token is not None:
            hello["auth"] = {"nonce": self.host_nonce.hex()}
        self.send(MAGIC + encode_json(TYPES["HELLO"], 0, hello))
        self.sock.setblocking(False)
        sel = selectors.DefaultSelector()
        sel.register(self.sock, selectors.EVENT_READ)
        deadline = self.t0 + timeout_s
        timed_out = False
        linger_end = None
        while True:
            now = time.monotonic()
            if now > deadline:
                timed_out = True
                break
            wakes = [self.start_due(now)] + [op.tick(now) for op in self.ops.values()]
            if self.error is not None or self.closed_by_agent or self.refused_agent:
                break
            if self.write_failed and not self.outbuf and self.error is None and not self.closed_by_agent:
                pass  # wait below for the agent's last frames and its EOF
            elif not self.waiting and all(op.done for op in self.ops.values()) and self.welcome is not None and not self.outbuf:
                # "linger_ms": keep reading a while after the last op (an ERROR may still be on its way).
                linger_end = linger_end or now + self.script.get("linger_ms", 0) / 1000
                if now >= linger_end:
                    break
                wakes.append(linger_end)
            wakes = [w for w in wakes if w is not None]
            wait = max(0.0, min([deadline] + wakes) - now)
            sel.modify(self.sock, selectors.EVENT_READ | (selectors.EVENT_WRITE if self.outbuf else 0))
            for _, events in sel.select(min(wait, 0.1)):
                if events & selectors.EVENT_WRITE and self.outbuf:
                    try:
                        n = self.sock.send(self.outbuf)
                        del self.outbuf[:n]
                    except BlockingIOError:
                        pass
                    except OSError:
                        # EPIPE: the agent closed. Keep reading: its ERROR may still be queued for us.
                        self.write_failed = True
                        self.outbuf.clear()
                if events & selectors.EVENT_READ:
                    try:
                        data = self.sock.recv(1 << 20)
                    except BlockingIOError:
                        continue
                    except OSError:  # ECONNRESET: closed with our bytes unread
                        data = b""
                    if not data:
                        self.closed_by_agent = True
                        continue
                    t = time.monotonic()
                    for ftype, fid, payload in self.dec.push(data):
                        self.dispatch(ftype, fid, payload, t)
        # After an ERROR the agent closes: wait a little for that so the report can say so.
        if self.error is not None and not self.closed_by_agent:
            self.sock.setblocking(True)
            self.sock.settimeout(2)
            try:
                while self.sock.recv(65536):
                    pass
                self.closed_by_agent = True
            except ConnectionResetError:
                # It closed with some of our bytes unread: a Unix socket reports that as a reset.
                self.closed_by_agent = True
            except OSError:
                pass
        sel.close()
        ops = {**{op.id: op for op in self.waiting}, **self.ops}
        return {
            "ok": not timed_out and self.error is None and not self.refused_agent and all(op.done for op in ops.values()),
            "authenticated": self.authenticated,
            "refused_agent": self.refused_agent,
            "welcome": self.welcome,
            "error": self.error,
            "closed_by_agent": self.closed_by_agent,
            "timed_out": timed_out,
            "elapsed_ms": round((time.monotonic() - self.t0) * 1000, 1),
            "ops": {str(i): op.report() for i, op in ops.items()},
            "stray": self.stray,
        }


# --- CLI -----------------------------------------------------------------------------------------------

def load_script(text: str) -> dict:
    if text.startswith("@"):
        with open(text[1:], encoding="utf-8") as f:
            text = f.read()
    script = json.loads(text)
    if not isinstance(script, dict):
        raise ValueError("a script is a JSON object")
    return script


def main(argv) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="mode", required=True)
    v = sub.add_parser("vectors", help="check the codec against the committed test vectors")
    v.add_argument("file")
    for mode in ("listen", "connect"):
        s = sub.add_parser(mode)
        s.add_argument("path", help="Unix socket path")
        s.add_argument("--script", required=True, help="JSON, or @FILE")
        s.add_argument("--accept-timeout", type=float, default=20.0, metavar="S")
    args = p.parse_args(argv)

    if args.mode == "vectors":
        result = check_vectors(args.file)
        print(json.dumps(result), flush=True)
        return 3 if result["failures"] else 0

    try:
        script = load_script(args.script)
        timeout_s = float(script.get("timeout_s", 30))
    except (ValueError, OSError) as e:
        print(f"v2_host: bad script: {e}", file=sys.stderr)
        return 2

    if args.mode == "listen":
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(args.path)
        listener.listen(1)
        listener.settimeout(args.accept_timeout)
        print(f"listening {args.path}", flush=True)
        try:
            sock, _ = listener.accept()
        except socket.timeout:
            print(json.dumps({"ok": False, "error": {"code": "host", "message": "no agent connected"}}), flush=True)
            return 1
        finally:
            listener.close()
            os.unlink(args.path)
    else:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        end = time.monotonic() + args.accept_timeout
        while True:
            try:
                sock.connect(args.path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                if time.monotonic() > end:
                    print(json.dumps({"ok": False, "error": {"code": "host", "message": "agent not listening"}}), flush=True)
                    return 1
                time.sleep(0.05)

    try:
        report = Session(sock, script).run(timeout_s)
    except ValueError as e:
        print(f"v2_host: bad script: {e}", file=sys.stderr)
        return 2
    except ProtocolError as e:
        report = {"ok": False, "error": {"code": "host", "message": f"agent sent a malformed frame: {e}"}}
    finally:
        sock.close()
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
