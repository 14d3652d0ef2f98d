"""The Python host package against a real guest: the dracut initrd's agent listening on vsock port 1024,
reached through vhost-device-vsock's Firecracker-style socket (argv[1]: fc:UDS:1024). Prints one JSON
report; test/guest/hosts.test.ts checks it (with
argv[2], it then releases the initrd's hold by creating that file)."""

import hashlib
import json
import os
import sys
import time

from vsock_guest_exec import FileError, connect

BB = "/usr/lib/vge-testroot/busybox"


def main() -> None:
    addr, release = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else None)
    end = time.monotonic() + 60
    while True:  # the agent may not listen yet: the VMM refuses CONNECT until it does
        try:
            g = connect(addr, timeout=10)
            break
        except Exception:
            if time.monotonic() > end:
                raise
            time.sleep(0.3)
    rep = {}
    with g:
        rep["info"] = {"initrd": g.info.initrd, "kernel": g.info.kernel, "version": g.info.version}
        r = g.run(["sh", "-c", "echo out; echo err >&2; exit 3"])
        rep["run"] = [r.returncode, r.stdout.decode(), r.stderr.decode()]
        data = os.urandom(300_000)
        rep["wc"] = g.run([BB, "wc", "-c"], input=data).stdout.decode().strip()
        blob = os.urandom(700_000)
        g.put_file("/run/vge-py-put", blob, mode=0o640)
        back = g.get_file("/run/vge-py-put")
        rep["file"] = hashlib.sha256(back).hexdigest() == hashlib.sha256(blob).hexdigest()
        rep["sum"] = g.run([BB, "sha256sum", "/run/vge-py-put"]).stdout.decode().split()[0] == hashlib.sha256(blob).hexdigest()
        t = g.run(["sh", "-c", "sleep 100 & sleep 100"], timeout=1)
        rep["timeout"] = [t.result.status, t.returncode]
        try:
            g.get_file("/run/no-such-file")
            rep["missing"] = "found"
        except FileError as e:
            rep["missing"] = e.code
        rep["ping"] = g.ping() < 5
        if release:
            g.run(["sh", "-c", f": > {release}"])
    print(json.dumps(rep))


main()
