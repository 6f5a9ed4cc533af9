#!/usr/bin/env bash
# CPU decode-engine benchmark matrix: `aviary bench` on random official shapes for every version, weight format and
# thread count asked for; one JSON line per run (with the load average before it) in OUT/results.jsonl, then a
# Markdown table (prefill with its GEMM path and compute floor, decode batch 1 and 8, bandwidth floor and achieved
# fraction, by the mean and by the median step). Re-run on a quiet machine for the
# numbers in docs/BENCHMARKS.md ("CPU decode engine").
#
# Usage: bench/cpu_decode.sh [OUT_DIR]
#   env: AVIARY (default build/cpu/apps/cli/aviary, else build/release/apps/cli/aviary), SHAPES (default
#        "0.1b 0.4b"), VERSIONS ("6 5"), DTYPES ("fp32 bf16 int8"), THREADS ("1 2"), DECODE_TOKENS (64),
#        PROMPT_TOKENS (512)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
AVIARY=${AVIARY:-}
if [[ -z $AVIARY ]]; then
    for c in "$ROOT/build/cpu/apps/cli/aviary" "$ROOT/build/release/apps/cli/aviary"; do
        [[ -x $c ]] && { AVIARY=$c; break; }
    done
fi
[[ -x ${AVIARY:-} ]] || { echo "cpu_decode.sh: no aviary binary (set AVIARY=...)" >&2; exit 1; }
command -v jq >/dev/null || { echo "cpu_decode.sh: needs jq" >&2; exit 1; }
OUT=${1:-$(mktemp -d /tmp/aviary_cpu_decode.XXXXXX)}
mkdir -p "$OUT"
RESULTS=$OUT/results.jsonl
: >"$RESULTS"
{
    echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "git: $(git -C "$ROOT" rev-parse --short HEAD)"
    lscpu | grep -E '^Model name|^Model:|^CPU family|^CPU\(s\)'
    lscpu | grep -E '^Flags' | tr ' ' '\n' | grep -E '^(avx2|avx512f|avx512_bf16|avx512_vnni|amx_tile|amx_bf16|amx_int8)$' |
        paste -sd' ' | sed 's/^/ISA: /'
    "$AVIARY" info --system | jq -c '{blas: .blas.core, blas_how: .blas.how, onednn: .onednn.isa, engine: .engine}'
} | tee "$OUT/machine.txt" >&2

for shape in ${SHAPES:-0.1b 0.4b}; do
    for v in ${VERSIONS:-6 5}; do
        for dt in ${DTYPES:-fp32 bf16 int8}; do
            for th in ${THREADS:-1 2}; do
                load=$(cut -d' ' -f1-3 /proc/loadavg)
                log=$OUT/${shape}_v${v}_${dt}_t${th}.log
                echo "+ bench --shape $shape --version $v --dtype $dt --threads $th (load $load)" >&2
                if "$AVIARY" bench --shape "$shape" --version "$v" --dtype "$dt" --threads "$th" \
                    --decode-tokens "${DECODE_TOKENS:-64}" --prompt-tokens "${PROMPT_TOKENS:-512}" --json >"$log" 2>&1; then
                    tail -n 1 "$log" | jq -c --arg shape "$shape" --arg load "$load" \
                        '. + {shape: $shape, loadavg_before: $load}' >>"$RESULTS"
                else
                    echo "cpu_decode.sh: failed, see $log" >&2
                fi
            done
        done
    done
done

jq -r -s '
  def f1: (. * 10 | round / 10 | tostring);
  "| shape | version | weights | threads | kernels | prefill GEMM | prefill tok/s | prefill floor tok/s | prefill / floor | decode b1 tok/s | decode b8 tok/s (total) | MB/token | DRAM read GB/s | working-set read GB/s | decode floor tok/s | b1 / floor | b1 median step / floor | load before |",
  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
  (.[] | "| \(.shape) | \(.version) | \(.dtype) | \(.threads) | \(.decode_engine) | \(.prefill_gemm // "-") \((.gemm_gflops // 0)|round) GFLOP/s | \(.prefill_tok_s|f1) | \((.floor_prefill_tok_s // 0)|f1) | \(((.prefill_floor_fraction // 0)*100)|round)% | \(.decode_tok_s|f1) | \(.decode_batch8_tok_s // .decode_batch_tok_s|f1) | \(.weight_bytes_per_token/1e6|f1) | \(.read_gbps|f1) | \((.read_gbps_working_set // .read_gbps)|f1) | \(.floor_decode_tok_s|f1) | \(.floor_fraction*100|round)% | \(if .floor_fraction_median then "\(.floor_fraction_median*100|round)%" else "-" end) | \(.loadavg_before) |")
' "$RESULTS" | tee "$OUT/table.md"
