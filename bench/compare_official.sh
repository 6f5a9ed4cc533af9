#!/usr/bin/env bash
# Aviary's CPU decode engine against the official `rwkv` pip package (0.8.32) in one run, on the same random RWKV-6
# 0.1B-shape weights, the same thread count, prompt 512 and greedy decode: prints both and the speed-ups.
# The official package is installed into a venv (VENV, default /tmp/aviary-official-venv, with the system torch
# 1.13 through --system-site-packages) unless it is already importable there or from PY.
#
# Usage: bench/compare_official.sh [OUT_DIR]
#   env: AVIARY (aviary binary; default build/cpu or build/release), THREADS (2), VERSION (6), PY (a python that
#        already has rwkv; skips the venv), VENV, RWKV_PIP_VERSION (0.8.32)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
THREADS=${THREADS:-2}
VERSION=${VERSION:-6}
OUT=${1:-$(mktemp -d /tmp/aviary_compare_official.XXXXXX)}
mkdir -p "$OUT"
AVIARY=${AVIARY:-}
if [[ -z $AVIARY ]]; then
    for c in "$ROOT/build/cpu/apps/cli/aviary" "$ROOT/build/release/apps/cli/aviary"; do
        [[ -x $c ]] && { AVIARY=$c; break; }
    done
fi
[[ -x ${AVIARY:-} ]] || { echo "compare_official.sh: no aviary binary (set AVIARY=...)" >&2; exit 1; }
command -v jq >/dev/null || { echo "compare_official.sh: needs jq" >&2; exit 1; }

if [[ -z ${PY:-} ]]; then
    VENV=${VENV:-/tmp/aviary-official-venv}
    if [[ ! -x $VENV/bin/python ]]; then
        /usr/bin/python3 -m venv --system-site-packages "$VENV"
    fi
    PY=$VENV/bin/python
    if ! "$PY" -c 'import rwkv, safetensors' 2>/dev/null; then
        "$PY" -m pip install --quiet "rwkv==${RWKV_PIP_VERSION:-0.8.32}" safetensors
    fi
fi
"$PY" -c 'import torch, rwkv, safetensors' ||
    { echo "compare_official.sh: $PY cannot import torch, rwkv and safetensors" >&2; exit 1; }

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)" | tee "$OUT/load.txt" >&2
V=$([[ $VERSION == 5 ]] && echo 5.2 || echo 6)
: >"$OUT/aviary.jsonl"
for dt in fp32 bf16 int8; do
    "$AVIARY" bench --shape 0.1b --version "$VERSION" --dtype "$dt" --threads "$THREADS" --json 2>"$OUT/aviary_$dt.err" |
        tail -n 1 >>"$OUT/aviary.jsonl"
done
"$PY" "$ROOT/tools/bench_official.py" --versions "$V" --strategies "cpu fp32,cpu bf16" --threads "$THREADS" \
    >"$OUT/official.jsonl" 2>"$OUT/official.err" || { cat "$OUT/official.err" >&2; exit 1; }
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/load.txt" >&2

jq -r -s --slurpfile off "$OUT/official.jsonl" '
  def f1: (. * 10 | round / 10 | tostring);
  ([$off[] | select(.prefill_tok_s != null) | .prefill_tok_s] | max) as $op |
  ([$off[] | select(.decode_tok_s != null) | .decode_tok_s] | max) as $od |
  "| runtime | weights | threads | prefill 512 tok/s | decode b1 tok/s | × official best (prefill / decode) |",
  "|---|---|---|---|---|---|",
  ($off[] | select(.prefill_tok_s != null) |
    "| official rwkv \(.impl // "") | \(.strategy) | \(.threads) | \(.prefill_tok_s|f1) | \(.decode_tok_s|f1) | – |"),
  (.[] | "| Aviary | \(.dtype) | \(.threads) | \(.prefill_tok_s|f1) | \(.decode_tok_s|f1) | \(.prefill_tok_s/$op|f1)× / \(.decode_tok_s/$od|f1)× |")
' "$OUT/aviary.jsonl" | tee "$OUT/table.md"
