#!/usr/bin/env bash
# Creates .venv (Debian python3 + its python3-torch, plus the official `rwkv` package and helpers from PyPI)
# for the tools in tools/ that generate reference fixtures. Never needed at build or run time.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
venv=${AVIARY_VENV:-$here/.venv}
# Debian packages the fixture and data tools use: torchaudio / scikit-learn references (audio), sox and
# espeak-ng (the synthetic audio set), OpenCV's Python binding (the synthetic vision set).
dev_pkgs=(python3-venv python3-torch python3-torchaudio python3-sklearn python3-opencv sox libsox-fmt-all espeak-ng)
missing=()
for p in "${dev_pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
if [ ! -x "$venv/bin/python" ]; then
  /usr/bin/python3 -m venv --system-site-packages "$venv"
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check "rwkv==0.8.32" "safetensors" "numpy<2" \
  "transformers==4.40.2" \
  "openai"  # the official OpenAI client, against `aviary serve` (tools/openai_client_check.py)
echo "$venv/bin/python"
