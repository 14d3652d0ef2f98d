#!/usr/bin/env bash
# The test command (README "Run the tests"): installs what the tests need on a fresh Debian machine,
# builds the agent, runs every test level (units, the compiled binary, real QEMU guests) and ends with
# the line "N passed, N failed" read from bun's junit report.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v bun >/dev/null 2>&1; then
  echo "test.sh: installing bun from npm"
  npm install -g bun@1.4.5 >/dev/null
fi
bash scripts/guest-deps.sh
# Go for test/go (go/): /usr/local/go on CI machines, or the newest golang-1.2x-go from apt.
debian_go=$(find /usr/lib -maxdepth 2 -path "/usr/lib/go-1.2*/bin" 2>/dev/null | sort -V | tail -n 1)
export PATH="$PATH:/usr/local/go/bin:$debian_go"
bash bench/deps.sh
bash scripts/python-deps.sh
bun install --frozen-lockfile
bun run build
bunx tsc --noEmit -p .

# In CI nothing may be skipped for want of QEMU, a kernel or the backend: the steps above install them.
if [ -n "${CI:-}" ]; then export VGE_REQUIRE_GUEST=1; fi

mkdir -p test-results
rm -f test-results/junit.xml
status=0
# bunfig.toml's [test] timeout is not applied by bun 1.4.5; the flag is.
bun test --timeout 60000 --reporter=junit --reporter-outfile=test-results/junit.xml "$@" || status=$?
summary=0
bun scripts/junit-summary.ts test-results/junit.xml || summary=$?
[ "$status" -eq 0 ] && [ "$summary" -eq 0 ]
