#!/usr/bin/env bash
# One-shot check of the CUDA WKV path on a GPU machine (run from the repo root: bash bench/cuda/run_device.sh):
# builds core + kernels + tests against the CUDA LibTorch of the installed PyTorch, runs aviary_kernels_tests,
# reruns a subset under compute-sanitizer, then aviary-bench-wkv-cuda. Needs no network: GoogleTest and
# nlohmann-json come from third_party/debs/ (tools/fetch-device-debs.sh) when the machine lacks them.
# Everything lands in $OUT (default ./out/device), eight files: run.log summary.txt build.log tests.log tests.json
# sanitizer.log bench.log bench_wkv_cuda.json.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT="$PWD"
OUT="${OUT:-$ROOT/out/device}"
mkdir -p "$OUT"
BUILD="$ROOT/build-device"
DEBS="$ROOT/third_party/debs"
LOG="$OUT/run.log"
SUMMARY="$OUT/summary.txt"
: > "$LOG"
: > "$SUMMARY"
for f in build tests sanitizer bench; do : > "$OUT/$f.log"; done
START=$SECONDS

step() { echo "=== [$(date +%T) +$((SECONDS - START))s] $*" | tee -a "$LOG"; }
record() { echo "$1: $2" | tee -a "$SUMMARY" >> "$LOG"; }
fail() { echo "error: $*" | tee -a "$LOG" >&2; record "fatal" "$*"; exit 1; }
# Runs "$@" with its output appended to $OUT/<name>.log (and the terminal); returns its exit status.
run_logged() {
    local name="$1"
    shift
    set +e
    echo "--- $*" >> "$OUT/$name.log"
    "$@" 2>&1 | tee -a "$OUT/$name.log"
    local rc=${PIPESTATUS[0]}
    set -e
    return "$rc"
}

step "versions"
{
    uname -a
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv || true
    command -v cmake >/dev/null && cmake --version | head -1 || echo "cmake: MISSING"
    command -v g++ >/dev/null && g++ --version | head -1 || echo "g++: MISSING"
    command -v nvcc >/dev/null && nvcc --version | tail -2 || echo "nvcc: MISSING (PATH=$PATH)"
    python3 -c 'import torch, sys; print("python", sys.version.split()[0], "torch", torch.__version__, "cuda",
torch.version.cuda, "cxx11abi", torch._C._GLIBCXX_USE_CXX11_ABI, "gpu", torch.cuda.is_available())' || true
} 2>&1 | tee -a "$LOG"

if ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then export PATH="/usr/local/cuda/bin:$PATH"; fi
command -v cmake >/dev/null || fail "cmake not found"
command -v g++ >/dev/null || fail "g++ not found"
command -v nvcc >/dev/null || fail "nvcc not found (looked in PATH and /usr/local/cuda/bin)"
TORCH_CMAKE="$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')" || fail "python3 cannot import torch"
TORCH_ABI="$(python3 -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))')"
python3 -c 'import torch; assert torch.version.cuda' || fail "the installed torch has no CUDA"
NPROC=16

# GoogleTest must use the C++ ABI of LibTorch: Debian's static gtest is new-ABI, so rebuild it from the carried
# sources when torch uses the old ABI. nlohmann-json is header-only.
PREFIX="$TORCH_CMAKE"
EXTRA=()
if [ -d "$DEBS/usr" ]; then
    PREFIX="$PREFIX;$DEBS/usr"
    EXTRA+=("-Dnlohmann_json_DIR=$DEBS/usr/share/cmake/nlohmann_json")
    if [ "$TORCH_ABI" = "0" ]; then
        step "building GoogleTest with -D_GLIBCXX_USE_CXX11_ABI=0 (torch uses the old ABI)"
        run_logged build bash -c "cmake -S '$DEBS/usr/src/googletest' -B '$BUILD/gtest' -DCMAKE_BUILD_TYPE=Release \
            -DBUILD_GMOCK=OFF -DINSTALL_GTEST=ON -DCMAKE_INSTALL_PREFIX='$BUILD/gtest-prefix' \
            -DCMAKE_INSTALL_LIBDIR=lib \
            -DCMAKE_CXX_FLAGS=-D_GLIBCXX_USE_CXX11_ABI=0 -DCMAKE_POSITION_INDEPENDENT_CODE=ON \
            && cmake --build '$BUILD/gtest' -j$NPROC && cmake --install '$BUILD/gtest'" ||
            fail "GoogleTest build failed"
        EXTRA+=("-DGTest_DIR=$BUILD/gtest-prefix/lib/cmake/GTest")
    elif [ "$(uname -m)" = "x86_64" ]; then
        EXTRA+=("-DGTest_DIR=$DEBS/usr/lib/x86_64-linux-gnu/cmake/GTest")
    fi
else
    echo "note: $DEBS not carried; relying on system GoogleTest and nlohmann-json" | tee -a "$LOG"
fi

step "configure (core + kernels + tests, CUDA on, sm_90)"
run_logged build cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
    -DAVIARY_BUILD_APPS=OFF -DAVIARY_BUILD_STUDIO=OFF -DAVIARY_BUILD_VISION=OFF -DAVIARY_BUILD_AUDIO=OFF \
    -DAVIARY_BUILD_MUSIC=OFF -DAVIARY_BUILD_BENCH=ON -DAVIARY_BUILD_TESTS=ON -DAVIARY_CUDA=ON -DAVIARY_USE_CCACHE=OFF \
    -DCMAKE_CUDA_ARCHITECTURES=90 -DCMAKE_CUDA_COMPILER="$(command -v nvcc)" -DCMAKE_PREFIX_PATH="$PREFIX" \
    "${EXTRA[@]}" || fail "configure failed (see $OUT/build.log)"
grep -q "LibTorch with CUDA ON" "$OUT/build.log" || fail "CMake did not find a CUDA LibTorch (see build.log)"

step "build aviary_kernels_tests (-j$NPROC)"
run_logged build cmake --build "$BUILD" -j"$NPROC" --target aviary_kernels_tests ||
    fail "build of aviary_kernels_tests failed (see $OUT/build.log)"
record "build tests" "ok"

TESTS="$BUILD/tests/aviary_kernels_tests"
step "run aviary_kernels_tests"
if run_logged tests "$TESTS" --gtest_output="json:$OUT/tests.json"; then record "tests" "PASS"; else
    record "tests" "FAIL (rc $?)"; fi

SANITIZER="$(command -v compute-sanitizer || true)"
[ -z "$SANITIZER" ] && [ -x /usr/local/cuda/bin/compute-sanitizer ] && SANITIZER=/usr/local/cuda/bin/compute-sanitizer
if [ -n "$SANITIZER" ]; then
    # Without the caching allocator every tensor is its own cudaMalloc, so memcheck sees out-of-bounds accesses.
    export PYTORCH_NO_CUDA_MEMORY_CACHING=1
    for tool in memcheck racecheck; do
        step "compute-sanitizer --tool $tool (launcher tests)"
        if run_logged sanitizer timeout 240 "$SANITIZER" --tool "$tool" --error-exitcode 9 "$TESTS" \
            --gtest_filter='WkvCudaLaunchers.*:WkvCudaOp.BroadcastLogDecayGradient_CUDA'; then
            record "compute-sanitizer $tool" "clean"
        else
            record "compute-sanitizer $tool" "FAIL (rc $?)"
        fi
    done
    unset PYTORCH_NO_CUDA_MEMORY_CACHING
else
    record "compute-sanitizer" "not found, skipped"
fi

step "build and run aviary-bench-wkv-cuda"
if run_logged build cmake --build "$BUILD" -j"$NPROC" --target aviary-bench-wkv-cuda; then
    if run_logged bench timeout 240 "$BUILD/bench/cuda/aviary-bench-wkv-cuda" "$OUT/bench_wkv_cuda.json"; then
        record "bench" "ok"
    else
        record "bench" "FAIL (rc $?)"
    fi
else
    record "bench" "build failed (see build.log)"
fi

step "done in $((SECONDS - START))s"
cat "$SUMMARY"
grep -q "FAIL" "$SUMMARY" && exit 1
exit 0
