#!/usr/bin/env python3
"""A host for the legacy wire formats, in Python's standard library only.

It exists so that the agent's wire format is checked against an encoder that is not ours: the length
prefix here is struct.pack("<H", n), written the way a host author would write it from the README.

Listens on a Unix socket (the agent dials it with `--unix PATH`), accepts one connection, plays a script
of steps, then waits for the agent to close its side and reports what it saw as one JSON line.

    legacy_host.py --socket PATH --disposable 'echo hi'
    legacy_host.py --socket PATH --persistent 'echo one' 'echo two'
    legacy_host.py --socket PATH --spec '[{"frame": "echo hi"}, {"sleep_ms": 50}, {"shutdown": true}]'

Steps (one key each):
    {"send": TEXT}        raw UTF-8 bytes            {"send_hex": HEX}   raw bytes
    {"frame": TEXT}       u16 LE length + bytes      {"frame_hex": HEX}  same, bytes given in hex
    {"header": N}         only the 2-byte length N   {"sleep_ms": N}     pause
    {"shutdown": true}    shutdown(SHUT_WR)          {"close": true}     close both directions now

stdout: "listening PATH" once ready, then the report:
    {"sent": N, "eof_ms": MS or null, "received_hex": HEX, "error": TEXT or null}
eof_ms counts from the end of the last step to the agent's EOF; null if we closed first or it timed out.
Exit status 0 when the script ran, 1 when no agent connected in time, 2 for bad arguments.
"""

import argparse
import json
import os
import socket
import struct
import sys
import time


STEPS = ("send", "send_hex", "frame", "frame_hex", "header", "sleep_ms", "shutdown", "close")


def frame(body: bytes) -> bytes:
    if len(body) > 0xFFFF:
        raise ValueError(f"frame body is {len(body)} bytes; a u16 length holds at most 65535")
    return struct.pack("<H", len(body)) + body


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--socket", required=True, help="Unix socket path to listen on (must not exist)")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--disposable", metavar="CMD", help="send CMD raw, then half-close")
    what.add_argument("--persistent", metavar="CMD", nargs="*", help="send each CMD as a frame, then half-close")
    what.add_argument("--spec", metavar="JSON", help="a JSON list of steps (see above)")
    p.add_argument("--accept-timeout", type=float, default=20.0, metavar="S")
    p.add_argument("--eof-timeout", type=float, default=20.0, metavar="S")
    return p.parse_args(argv)


def steps_from(args):
    if args.disposable is not None:
        return [{"send": args.disposable}, {"shutdown": True}]
    if args.persistent is not None:
        return [{"frame": c} for c in args.persistent] + [{"shutdown": True}]
    steps = json.loads(args.spec)
    if not isinstance(steps, list):
        raise ValueError("--spec must be a JSON list of steps")
    for step in steps:
        if not isinstance(step, dict) or len(step) != 1 or next(iter(step)) not in STEPS:
            raise ValueError(f"a step is one of {', '.join(STEPS)} with its value: {step!r}")
    return steps


def play(conn: socket.socket, steps, report: dict) -> bool:
    """Runs the steps, counting sent bytes into report as it goes; True if the script closed the socket."""
    for step in steps:
        (kind, value), = step.items()
        if kind in ("send", "send_hex", "frame", "frame_hex", "header"):
            if kind == "send":
                data = value.encode()
            elif kind == "send_hex":
                data = bytes.fromhex(value)
            elif kind == "frame":
                data = frame(value.encode())
            elif kind == "frame_hex":
                data = frame(bytes.fromhex(value))
            else:
                data = struct.pack("<H", value)
            conn.sendall(data)
            report["sent"] += len(data)
        elif kind == "sleep_ms":
            time.sleep(value / 1000)
        elif kind == "shutdown":
            conn.shutdown(socket.SHUT_WR)
        else:  # close
            conn.close()
            return True
    return False


def wait_eof(conn: socket.socket, timeout: float):
    """Reads until the agent closes its side; returns (milliseconds waited or None, bytes received)."""
    started = time.monotonic()
    got = bytearray()
    conn.settimeout(timeout)
    try:
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                return (time.monotonic() - started) * 1000, bytes(got)
            got += chunk
    except socket.timeout:
        return None, bytes(got)
    except ConnectionResetError:
        return (time.monotonic() - started) * 1000, bytes(got)


def main(argv) -> int:
    try:
        args = parse_args(argv)
        steps = steps_from(args)
    except (ValueError, json.JSONDecodeError) as e:
        print(f"legacy_host: {e}", file=sys.stderr)
        return 2

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(args.socket)
    listener.listen(1)
    listener.settimeout(args.accept_timeout)
    print(f"listening {args.socket}", flush=True)
    try:
        conn, _ = listener.accept()
    except socket.timeout:
        print(json.dumps({"sent": 0, "eof_ms": None, "received_hex": "", "error": "no agent connected"}), flush=True)
        return 1
    finally:
        listener.close()
        os.unlink(args.socket)

    report = {"sent": 0, "eof_ms": None, "received_hex": "", "error": None}
    try:
        if not play(conn, steps, report):
            eof_ms, got = wait_eof(conn, args.eof_timeout)
            report["eof_ms"] = eof_ms
            report["received_hex"] = got.hex()
    except OSError as e:
        # The agent may rightly hang up while we still write (a refused command): report, do not crash.
        report["error"] = f"{type(e).__name__}: {e.strerror or e}"
    finally:
        conn.close()
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
