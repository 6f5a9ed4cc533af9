#!/usr/bin/env bash
# Creates .venv (Debian python3 + its python3-torch, plus the official `rwkv` package and helpers from PyPI)
# for the tools in tools/ that generate reference fixtures. Never needed at build or run time.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
venv=${AVIARY_VENV:-$here/.venv}
if [ ! -x "$venv/bin/python" ]; then
  /usr/bin/python3 -m venv --system-site-packages "$venv"
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check "rwkv==0.8.32" "safetensors" "numpy<2"
echo "$venv/bin/python"
