#!/usr/bin/env bash
# One device call for the GPU model path and the benchmarks of issue 9 (run from the repo root on the GPU machine:
# bash bench/cuda/run_model_device.sh [budget seconds, default 340]). Builds core + kernels + music + tests + the
# `aviary` CLI against the CUDA LibTorch of the installed PyTorch (bench/cuda/device_build.sh), then, each step
# skipped when the budget runs short:
#   tests   aviary_kernels_tests (kernels, op, ModelGpuVsCpu_CUDA, DecoderGraphMatchesStep_CUDA)
#   model   aviary bench --device cuda, bf16, shapes 1.6b and 7b, decode batch 1 and 16 (CUDA graph)
#   probe   40 steps of the GPU music recipe and 30 of the largest MQAR runs (sizes the training call)
#   kernel  (unless SKIP_KERNEL) aviary-bench-wkv-cuda --paper (B 8, D 4096, T 1k–16k), then SDPA FlashAttention and FLA chunk_rwkv6
#           (unless SKIP_PEERS; bench_attention_peers.py; FLA from third_party/debs/wheels, installed with --no-deps into /tmp)
#   cli     aviary forward --device cuda on a golden fixture, seq vs rnn
# Everything lands in $OUT (default ./out/model-device): *.log, *.json, summary.txt, results.md.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT="$PWD"
OUT="${OUT:-$ROOT/out/model-device}"
mkdir -p "$OUT"
BUDGET="${1:-340}"
BUILD="$ROOT/build-model-device"
DEBS="$ROOT/third_party/debs"
SUMMARY="$OUT/summary.txt"
: > "$SUMMARY"
START=$SECONDS
left() { echo $((BUDGET - (SECONDS - START))); }
step() { echo "=== [$(date +%T) +$((SECONDS - START))s] $*" | tee -a "$OUT/run.log"; }
record() { echo "$1: $2" | tee -a "$SUMMARY"; }
# run_step NAME MIN_SECONDS TIMEOUT cmd...: runs when at least MIN_SECONDS of budget are left, output to NAME.log.
run_step() {
    local name="$1" need="$2" limit="$3"
    shift 3
    if [ "$(left)" -lt "$need" ]; then
        record "$name" "SKIPPED (only $(left)s of budget left)"
        return 0
    fi
    [ "$limit" -gt "$(left)" ] && limit="$(left)"
    step "$name: $* (timeout ${limit}s)"
    echo "\$ $*" >> "$OUT/$name.log"
    timeout "$limit" "$@" >> "$OUT/$name.log" 2>&1
    local rc=$?
    tail -25 "$OUT/$name.log"
    if [ $rc -eq 0 ]; then record "$name" "ok"; else record "$name" "FAIL (rc $rc)"; fi
    return 0
}

source "$ROOT/bench/cuda/device_build.sh"
device_build aviary_kernels_tests aviary-bench-wkv-cuda || exit 1
for t in tests/aviary_kernels_tests bench/cuda/aviary-bench-wkv-cuda; do
    [ -x "$BUILD/$t" ] && record "build $(basename $t)" ok || record "build $(basename $t)" FAILED
done
AVIARY="$BUILD/apps/cli/aviary"
BENCH="$BUILD/bench/cuda/aviary-bench-wkv-cuda"

run_step tests 25 90 "$BUILD/tests/aviary_kernels_tests" --gtest_output="json:$OUT/tests.json" \
    --gtest_filter="${TEST_FILTER:-*}"
for shape in 1.6b 7b; do
    run_step "model_$shape" 25 100 bash -c "set -o pipefail; '$AVIARY' bench --shape $shape --version 6 --dtype bf16 --device cuda \
        --decode-batch 16 --decode-tokens 64 --json | tee /dev/stderr | tail -1 > '$OUT/model_$shape.json'"
done
# Training on the GPU, briefly: steps/s of the music recipe and of the largest MQAR run (sizes tools/device_train.sh).
run_step probe_music 20 90 "$AVIARY" train music --device cuda --data data/music/train.jsonl \
    --validation data/music/validation.jsonl --config assets/configs/music-finch-L6-D256.json --steps 40 \
    --out "$BUILD/probe-music"
run_step probe_mqar 20 60 "$AVIARY" research mqar --device cuda --arch 4,6 --dims 256 --seq 512 --steps 30 \
    --batch 32 --out "$BUILD/probe-mqar"
[ -z "${SKIP_KERNEL:-}" ] && run_step kernel_paper 30 60 "$BENCH" --paper "$OUT/kernel_paper.json"
[ -z "${SKIP_PEERS:-}" ] && run_step sdpa 25 60 python3 bench/cuda/bench_attention_peers.py sdpa "$OUT/sdpa.json"
FIX="$ROOT/tests/fixtures/golden/v6_fp32.pth"
run_step cli_forward 10 30 bash -c "'$AVIARY' forward --model '$FIX' --device cuda --tokens 1,5,77,300 --mode seq \
    -o '$OUT/fwd_seq.npy' && '$AVIARY' forward --model '$FIX' --device cuda --tokens 1,5,77,300 --mode rnn \
    -o '$OUT/fwd_rnn.npy' && python3 -c \"import numpy as n; a=n.load('$OUT/fwd_seq.npy'); b=n.load('$OUT/fwd_rnn.npy'); \
print('seq vs rnn max rel', abs(a-b).max()/abs(a).max())\""

if [ -z "${SKIP_PEERS:-}" ] && ls "$DEBS"/wheels/*.whl >/dev/null 2>&1; then
    pip install --no-deps --no-index --target /tmp/fla "$DEBS"/wheels/*.whl > "$OUT/fla_install.log" 2>&1
    run_step fla 40 150 env PYTHONPATH=/tmp/fla python3 bench/cuda/bench_attention_peers.py fla "$OUT/fla.json"
fi
step "results"
python3 bench/cuda/summarize_model_device.py "$OUT" > "$OUT/results.md" 2>> "$OUT/run.log" || true
cat "$OUT/results.md"
cat "$SUMMARY"
step "done in $((SECONDS - START))s"
