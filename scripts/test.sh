#!/usr/bin/env bash
# Set up the project environment (.venv, from the committed uv.lock) and run the tests.
# Extra arguments go to pytest, e.g.  bash scripts/test.sh -m "not slow"
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages used by some tests (headless Chromium for browser tests, PostgreSQL for
# the database tests). Installed when we can (root + apt); otherwise those tests skip
# and say why.
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  missing=()
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing system packages: ${missing[*]}"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      --no-install-recommends "${missing[@]}" >/dev/null) \
      || echo "warning: could not install ${missing[*]}; their tests will be skipped"
  fi
fi

if command -v uv >/dev/null 2>&1; then UV=(uv); else
  python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install -q uv
  UV=(python3 -m uv)
fi
# --compile-bytecode: imports then read .pyc files instead of compiling every module
# in every process (a large share of the suite's time where bytecode is not written)
"${UV[@]}" sync --locked --compile-bytecode
exec "${UV[@]}" run --locked --no-sync pytest "$@"
