#!/usr/bin/env bash
# The Python host's test environment: a venv (.cache/py) with pytest and mypy, and the package installed
# into it from python/ as a user installs it (`pip install ./python`), so the tests import what users get.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "python-deps: $*"; }
venv=${VGE_PY_VENV:-.cache/py}
if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  say "installing python3-venv (Debian)"
  apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
fi
if [ ! -x "$venv/bin/python" ]; then
  say "making $venv"
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check pytest mypy
# --force-reinstall: the tree changes between runs while the version stays the same.
"$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps --force-reinstall ./python
say "ready: $("$venv/bin/python" -c 'import vsock_guest_exec, sys; print(vsock_guest_exec.__file__, sys.version.split()[0])')"
