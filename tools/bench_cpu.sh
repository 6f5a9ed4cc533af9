#!/usr/bin/env bash
# CPU benchmark: Aviary (`aviary bench`, `aviary-bench-tokenizer`) against the official `rwkv` pip package
# (tools/bench_official.py), one after another, on random weights of the 0.1B shape.
#
# Usage: tools/bench_cpu.sh [OUT_DIR]
#   env: AVIARY_BUILD (default /work/build; needs apps/cli/aviary and bench/aviary-bench-tokenizer, i.e. a
#        build configured with -DAVIARY_BUILD_BENCH=ON), PY (default <repo>/.venv/bin/python),
#        THREADS (default 2), MAX_WAIT_S (default 1200), SKIP_WAIT=1 to measure without waiting.
# Before each measurement it waits (polling every 30 s, at most MAX_WAIT_S) until no compiler runs, and
# records the load average next to the result. Results: OUT_DIR/results.jsonl, then a Markdown table.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${AVIARY_BUILD:-/work/build}
PY=${PY:-$ROOT/.venv/bin/python}
THREADS=${THREADS:-2}
MAX_WAIT_S=${MAX_WAIT_S:-1200}
OUT=${1:-$(mktemp -d /tmp/aviary_bench_cpu.XXXXXX)}
AVIARY=$BUILD/apps/cli/aviary
TOKBENCH=$BUILD/bench/aviary-bench-tokenizer
RESULTS=$OUT/results.jsonl
mkdir -p "$OUT"
: >"$RESULTS"

for f in "$AVIARY" "$TOKBENCH" "$PY"; do
    [[ -x $f ]] || { echo "bench_cpu.sh: missing $f" >&2; exit 1; }
done

compilers() { pgrep -c -x 'cc1plus|cc1|cicc|ptxas|ld|collect2' || true; }

wait_quiet() {
    [[ ${SKIP_WAIT:-0} == 1 ]] && return 0
    local waited=0
    while [[ $(compilers) -gt 0 ]]; do
        if ((waited >= MAX_WAIT_S)); then
            echo "bench_cpu.sh: compilers still running after ${MAX_WAIT_S}s; measuring anyway" >&2
            return 0
        fi
        echo "bench_cpu.sh: $(compilers) compiler process(es) running, load $(cut -d' ' -f1-3 /proc/loadavg); waiting" >&2
        sleep 30
        waited=$((waited + 30))
    done
}

# record CMD...: waits for quiet, runs CMD, and appends its JSON lines (lines starting with '{'), each
# annotated with the command, the load average and compiler count seen just before it started.
record() {
    wait_quiet
    local load ncc log
    load=$(cut -d' ' -f1-3 /proc/loadavg)
    ncc=$(compilers)
    log=$OUT/run_$(wc -l <"$RESULTS").log
    echo "+ $* (load $load, compilers $ncc)" >&2
    "$@" >"$log" 2>&1 || { echo "bench_cpu.sh: failed: $* (see $log)" >&2; return 1; }
    grep '^{' "$log" | jq -c --arg cmd "$*" --arg load "$load" --argjson ncc "$ncc" \
        '. + {cmd: $cmd, loadavg_before: $load, compilers_before: $ncc}' >>"$RESULTS"
}

# aviary-bench-tokenizer prints text; turn its encode/decode lines into one JSON line.
tokbench_json() {
    local out
    out=$("$TOKBENCH" "$@")
    echo "$out" >&2
    echo "$out" | awk -v file="${*: -1}" '
        /^input:/  { mb = $2; tokens = $0; sub(/.*\), /, "", tokens); sub(/ tokens.*/, "", tokens) }
        /^encode:/ { enc = $2; enc_tok = $4 }
        /^decode:/ { dec = $2 }
        END { printf "{\"bench\":\"tokenizer\",\"impl\":\"aviary-bench-tokenizer\",\"file\":\"%s\",\"mb\":%s,\"tokens\":%s,\"encode_mb_s\":%s,\"encode_mtok_s\":%s,\"decode_mb_s\":%s}\n", file, mb, tokens, enc, enc_tok, dec }'
}

{
    echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "git: $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD -- 2>/dev/null || echo ' (dirty tree)')"
    lscpu | grep -E '^Model name|^CPU\(s\)'
    grep MemTotal /proc/meminfo
} | tee "$OUT/machine.txt" >&2

# Aviary model speed (aviary bench: prefill 512 in one call, decode batch 1 and 8, bandwidth floor).
record "$AVIARY" bench --shape 0.1b --version 6 --threads "$THREADS" --dtype fp32 --json
record "$AVIARY" bench --shape 0.1b --version 6 --threads "$THREADS" --dtype bf16 --json
record "$AVIARY" bench --shape 0.1b --version 5 --threads "$THREADS" --dtype fp32 --json
record "$AVIARY" bench --shape 0.1b --version 6 --threads 1 --dtype fp32 --json

# Tokenizers on the same 4 MB English/code/CJK mixture.
"$PY" "$ROOT/tools/bench_official.py" --write-text "$OUT/tok_mix.txt" --mb 4
record tokbench_json --runs 5 "$OUT/tok_mix.txt"
record "$PY" "$ROOT/tools/bench_official.py" --no-model --tokenizer-text "$OUT/tok_mix.txt" --tokenizer-runs 3

# Official package: RWKV-6 and 5.2, cpu fp32 and bf16, THREADS and 1 thread.
for v in 6 5.2; do
    for s in "cpu fp32" "cpu bf16"; do
        record "$PY" "$ROOT/tools/bench_official.py" --versions "$v" --strategies "$s" --threads "$THREADS,1"
    done
done

echo >&2
echo "results: $RESULTS" >&2
jq -r -s '
  def f1: if . == null then "–" else (. * 10 | round / 10 | tostring) end;
  "| implementation | model | weights | threads | prefill 512 (tok/s) | decode b1 (tok/s) | decode b8 (tok/s) | load before |",
  "|---|---|---|---|---|---|---|---|",
  (.[] | select(.bench == null and .prefill_tok_s != null) |
    "| Aviary (LibTorch) | RWKV-\(.version) 0.1B | \(.dtype) | \(.threads) | \(.prefill_tok_s|f1) | \(.decode_tok_s|f1) | \(.decode_batch8_tok_s|f1) | \(.loadavg_before) |"),
  (.[] | select(.bench == "model") |
    "| official \(.impl) | RWKV-\(.version) 0.1B | \(.strategy) | \(.threads) | \(if .error then .error else (.prefill_tok_s|f1) end) | \(.decode_tok_s|f1) | – | \(.loadavg_before) |"),
  "",
  "| Aviary bench | read GB/s | weight MB/token | floor tok/s | decode b1 / floor |",
  "|---|---|---|---|---|",
  (.[] | select(.bench == null and .read_gbps != null) |
    "| RWKV-\(.version) \(.dtype) \(.threads) thr | \(.read_gbps|f1) | \(.weight_bytes_per_token / 1e6|f1) | \(.floor_decode_tok_s|f1) | \(.floor_fraction * 100 | round)% |"),
  "",
  "| tokenizer | text | tokens | encode MB/s | decode MB/s | load before |",
  "|---|---|---|---|---|---|",
  (.[] | select(.bench == "tokenizer") |
    "| \(.impl) | \(.mb|f1) MB mixture | \(.tokens) | \(.encode_mb_s|f1) | \(.decode_mb_s|f1) | \(.loadavg_before) |")
' "$RESULTS"
