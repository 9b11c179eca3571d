#!/usr/bin/env bash
# Set up the project environment (.venv, from the committed uv.lock) and launch the app
# on the bundled demo study. Extra arguments go to `xai-study serve` (see --help).
set -euo pipefail
cd "$(dirname "$0")/.."
if command -v uv >/dev/null 2>&1; then UV=(uv); else
  python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install -q uv
  UV=(python3 -m uv)
fi
"${UV[@]}" sync --locked --compile-bytecode
exec "${UV[@]}" run --locked --no-sync python app.py "$@"
