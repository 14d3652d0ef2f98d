"""Conformance driver for the Python package: runs every scenario of scenarios.json through
vsock_guest_exec's public API (as installed in the venv of scripts/python-deps.sh) against the agents named
in $VGE_CONF (conformance.test.ts starts them) and prints one JSON line {"id", "result"} per scenario. The
TypeScript and Go drivers do the same with their libraries."""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
import time
from typing import Any, Dict, Optional

from vsock_guest_exec import Guest, GuestError, ProcessError, connect, listen

Result = Dict[str, Any]
conf: Dict[str, Any] = json.loads(os.environ["VGE_CONF"])


def pattern(n: int) -> bytes:
    return bytes(i % 251 for i in range(n)) if n < 251 else (bytes(range(251)) * (n // 251 + 1))[:n]


def sha256(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def open_guest(name: str, token: Optional[str] = None) -> Guest:
    """Dials a named address; for a listen address, waits for the agent to dial in."""
    tok = conf["tokens"][token] if token else None
    address = conf["addresses"][name]
    if "-listen:" not in address:
        return connect(address, token=tok)
    with listen(address, token=tok) as lst:
        return lst.accept(60)


def run(g: Guest, s: Dict[str, Any]) -> Result:
    argv = s.get("argv") or s["shell"]
    opts: Dict[str, Any] = {}
    for key in ("env", "clear_env", "cwd", "merge", "pty"):
        if key in s:
            opts[key] = s[key]
    if "timeout_ms" in s:
        opts["timeout"] = s["timeout_ms"] / 1000
    if "signal" in s:
        p = g.exec(argv, shell="argv" not in s, stdin=False, **opts)
        p.wait_started()
        p.send_signal(s["signal"])
        out, err = p.communicate()
        r = p.wait()
    else:
        data = pattern(s["stdin_size"]) if "stdin_size" in s else None
        done = g.run(argv, shell="argv" not in s, input=data, **opts)
        out, err, r = done.stdout, done.stderr, done.result
    res: Result = {"status": r.status, "returncode": r.returncode, "stdout_len": len(out),
                   "stdout_sha256": sha256(out), "stderr_len": len(err)}
    if len(out) <= 65536:
        res["stdout"] = out.decode(errors="replace")
    if len(err) <= 65536:
        res["stderr"] = err.decode(errors="replace")
    if r.signal:
        res["signal"] = r.signal
    if r.errno:
        res["errno"] = r.errno
    if s.get("check_child_gone"):
        res["child_gone"] = child_gone(g, out.decode().strip())
    return res


def child_gone(g: Guest, pid: str) -> bool:
    """A killed process may linger a moment as a zombie before it is reaped: ask `kill -0` a few times."""
    for _ in range(50):
        if g.run(["kill", "-0", pid]).returncode != 0:
            return True
        time.sleep(0.1)
    return False


def file_roundtrip(g: Guest, s: Dict[str, Any]) -> Result:
    path = os.path.join(conf["work"], f"file-{s['id']}")
    g.put_file(path, pattern(s["size"]), mode=int(s["mode"], 8))
    buf = io.BytesIO()
    kw = {"max_size": s["max_size"]} if "max_size" in s else {}
    info = g.stat_get(path, buf, **kw)
    return {"size": info.size, "mode": format(info.mode or 0, "o"), "sha256": sha256(buf.getvalue())}


def dir_roundtrip(g: Guest, s: Dict[str, Any]) -> Result:
    src = os.path.join(conf["work"], "tree-src")
    os.makedirs(os.path.join(src, "bin"))
    os.mkdir(os.path.join(src, "empty"), 0o700)
    for name, text, mode in (("a.txt", "alpha\n", 0o644), ("bin/run.sh", "#!/bin/sh\n", 0o755)):
        with open(os.path.join(src, name), "w") as f:
            f.write(text)
        os.chmod(os.path.join(src, name), mode)
    os.chmod(os.path.join(src, "empty"), 0o700)
    os.symlink("a.txt", os.path.join(src, "link"))
    remote = os.path.join(conf["work"], "tree-remote")
    back = os.path.join(conf["work"], "tree-back")
    g.put_dir(src, remote)
    g.get_dir(remote, back, preserve_mode=True)
    def listing(d: str) -> str:
        return g.run(["sh", "-c", s["list"], "sh", d]).stdout.decode()
    return {"remote": listing(remote), "back": listing(back)}


def jobs(s: Dict[str, Any]) -> Result:
    """Detach on one connection, then list, attach and kill on another: the job outlives the first."""
    tag = f"{conf['tag']}-{s['id']}"
    with open_guest("unix") as first:
        first.exec(s["shell"], shell=True, stdin=False, detach={"tag": tag}).wait_started()
    with open_guest("unix") as g:
        listed = None
        for _ in range(100):
            job = next((j for j in g.jobs() if j.tag == tag), None)
            listed = job.state if job else None
            if job and job.stdout.total >= 3:
                break
            time.sleep(0.05)
        p = g.attach(tag)
        p.wait_started()
        g.kill_job(tag, "SIGKILL")
        replay, _ = p.communicate()
        r = p.wait()
        return {"listed": listed, "replay": replay.decode(), "status": r.status, "signal": r.signal, "returncode": r.returncode}


def jobs_taken(g: Guest, s: Dict[str, Any]) -> Result:
    """A second job with the tag of a running one does not start (EEXIST); the first runs on until killed."""
    tag = f"{conf['tag']}-{s['id']}"
    g.exec(s["shell"], shell=True, stdin=False, detach={"tag": tag}).wait_started()
    second = g.run(s["shell"], shell=True, detach={"tag": tag})
    listed = next((j.state for j in g.jobs() if j.tag == tag), None)
    g.kill_job(tag, "SIGKILL")
    return {"first": listed, "status": second.result.status, "errno": second.result.errno}


def tcp_echo(g: Guest, s: Dict[str, Any]) -> Result:
    with g.connect_tcp("127.0.0.1", conf["echo_port"]) as t:
        def send() -> None:
            t.sendall(pattern(s["size"]))
            t.shutdown()
        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        got = t.read_all()
        sender.join()
    return {"len": len(got), "sha256": sha256(got)}


def hello(s: Dict[str, Any]) -> Result:
    with open_guest(s["address"], s.get("token")) as g:
        return {"stdout": g.run(["echo", "ok"]).stdout.decode()}


def scenario(g: Guest, s: Dict[str, Any]) -> Result:
    op = s["op"]
    try:
        if op == "run":
            return run(g, s)
        if op == "file_roundtrip":
            return file_roundtrip(g, s)
        if op == "file_get":
            return {"size": len(g.get_file(s["path"]))}
        if op == "dir_roundtrip":
            return dir_roundtrip(g, s)
        if op == "jobs":
            return jobs(s)
        if op == "jobs_taken":
            return jobs_taken(g, s)
        if op == "dir_get":
            return {"files": g.get_dir(s["path"], os.path.join(conf["work"], f"dir-{s['id']}")).files}
        if op == "tcp_echo":
            return tcp_echo(g, s)
        if op == "tcp_refused":
            g.connect_tcp("127.0.0.1", conf["refused_port"]).close()
            return {"opened": True}
        if op == "tcp_open":
            g.connect_tcp(s["host"], s["port"]).close()
            return {"opened": True}
        if op == "file_put":
            return {"size": g.put_file(s["path"], pattern(s["size"]))}
        if op == "kill_job":
            g.kill_job(s["tag"], "SIGKILL")
            return {"killed": True}
        if op == "attach":
            p = g.attach(s["tag"])
            p.wait_started()
            return {"status": p.wait().status}
        if op == "hello":
            return hello(s)
        return {"unknown_op": op}
    except (GuestError, ProcessError) as e:
        # A bad argument is an ArgumentError: a ValueError with code EINVAL.
        return {"error": e.code}


def main() -> None:
    with open(conf["scenarios"]) as f:
        scenarios = json.load(f)["scenarios"]
    with open_guest("unix") as g:
        for s in scenarios:
            try:
                result = scenario(g, s)
            except Exception as e:  # noqa: BLE001 — reported as the scenario's result, then on to the next
                result = {"exception": repr(e)}
            print(json.dumps({"id": s["id"], "result": result}), flush=True)


if __name__ == "__main__":
    main()
