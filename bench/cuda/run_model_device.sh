#!/usr/bin/env bash
# One device call for the GPU model path and the benchmarks of issue 9 (run from the repo root on the GPU machine:
# bash bench/cuda/run_model_device.sh [budget seconds, default 340]). Builds core + kernels + tests + the `aviary`
# CLI against the CUDA LibTorch of the installed PyTorch (GoogleTest, nlohmann-json and CLI11 from third_party/debs,
# tools/fetch-device-debs.sh), then, each step skipped when the budget runs short:
#   tests   aviary_kernels_tests (kernels, op, ModelGpuVsCpu_CUDA, DecoderGraphMatchesStep_CUDA)
#   model   aviary bench --device cuda, bf16, shapes 1.6b and 7b, decode batch 1 and 16 (CUDA graph)
#   kernel  aviary-bench-wkv-cuda --paper (B 8, D 4096, T 1k–16k), then SDPA FlashAttention and FLA chunk_rwkv6
#           (bench_attention_peers.py; FLA from third_party/debs/wheels, installed with --no-deps into /tmp)
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

step "versions"
{
    date -u
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv || true
    if ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then echo "nvcc from /usr/local/cuda"; fi
    [ -z "${SKIP_PEERS:-}" ] && python3 -c 'import torch, triton; print("torch", torch.__version__, "cuda",
torch.version.cuda, "triton", triton.__version__, "cxx11abi", torch._C._GLIBCXX_USE_CXX11_ABI)' || true
} 2>&1 | tee "$OUT/versions.log"
if ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then export PATH="/usr/local/cuda/bin:$PATH"; fi
TORCH_CMAKE="$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')"
TORCH_ABI="$(python3 -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))')"
PREFIX="$TORCH_CMAKE;$DEBS/usr"
EXTRA=("-Dnlohmann_json_DIR=$DEBS/usr/share/cmake/nlohmann_json" "-DCLI11_DIR=$DEBS/usr/share/cmake/CLI11")
if [ "$TORCH_ABI" = "0" ]; then
    step "GoogleTest with the old C++ ABI"
    (cmake -S "$DEBS/usr/src/googletest" -B "$BUILD/gtest" -DCMAKE_BUILD_TYPE=Release -DBUILD_GMOCK=OFF \
        -DINSTALL_GTEST=ON -DCMAKE_INSTALL_PREFIX="$BUILD/gtest-prefix" -DCMAKE_INSTALL_LIBDIR=lib \
        -DCMAKE_CXX_FLAGS=-D_GLIBCXX_USE_CXX11_ABI=0 -DCMAKE_POSITION_INDEPENDENT_CODE=ON &&
        cmake --build "$BUILD/gtest" -j16 && cmake --install "$BUILD/gtest") >> "$OUT/build.log" 2>&1
    EXTRA+=("-DGTest_DIR=$BUILD/gtest-prefix/lib/cmake/GTest")
else
    EXTRA+=("-DGTest_DIR=$DEBS/usr/lib/x86_64-linux-gnu/cmake/GTest")
fi

step "configure + build (aviary_kernels_tests aviary aviary-bench-wkv-cuda, -j16)"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DAVIARY_BUILD_APPS=ON -DAVIARY_BUILD_STUDIO=OFF \
    -DAVIARY_BUILD_VISION=OFF -DAVIARY_BUILD_AUDIO=OFF -DAVIARY_BUILD_MUSIC=OFF -DAVIARY_BUILD_BENCH=ON \
    -DAVIARY_BUILD_TESTS=ON -DAVIARY_CUDA=ON -DAVIARY_USE_CCACHE=OFF -DCMAKE_CUDA_ARCHITECTURES=90 \
    -DCMAKE_CUDA_COMPILER="$(command -v nvcc)" -DCMAKE_PREFIX_PATH="$PREFIX" "${EXTRA[@]}" \
    -DAVIARY_NCCL_INCLUDE_DIR=AVIARY_NCCL_INCLUDE_DIR-NOTFOUND -DAVIARY_GLOO_INCLUDE_DIR=AVIARY_GLOO_INCLUDE_DIR-NOTFOUND \
    >> "$OUT/build.log" 2>&1 ||
    { record build "configure FAILED"; tail -40 "$OUT/build.log"; exit 1; }
grep "LibTorch with CUDA" "$OUT/build.log" | tail -1
# Keep going on errors so that every target that can be built is built; each is checked below.
cmake --build "$BUILD" -j16 --target aviary_kernels_tests aviary aviary-bench-wkv-cuda -- -k >> "$OUT/build.log" 2>&1
grep -E "error|Error" "$OUT/build.log" | head -30
for t in tests/aviary_kernels_tests apps/cli/aviary bench/cuda/aviary-bench-wkv-cuda; do
    [ -x "$BUILD/$t" ] && record "build $(basename $t)" ok || record "build $(basename $t)" FAILED
done
step "build done"
AVIARY="$BUILD/apps/cli/aviary"
BENCH="$BUILD/bench/cuda/aviary-bench-wkv-cuda"

run_step tests 25 90 "$BUILD/tests/aviary_kernels_tests" --gtest_output="json:$OUT/tests.json" \
    --gtest_filter="${TEST_FILTER:-*}"
for shape in 1.6b 7b; do
    run_step "model_$shape" 25 100 bash -c "set -o pipefail; '$AVIARY' bench --shape $shape --version 6 --dtype bf16 --device cuda \
        --decode-batch 16 --decode-tokens 64 --json | tee /dev/stderr | tail -1 > '$OUT/model_$shape.json'"
done
run_step kernel_paper 30 60 "$BENCH" --paper "$OUT/kernel_paper.json"
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
