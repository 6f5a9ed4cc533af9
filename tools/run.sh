#!/usr/bin/env bash
# One entry point for the README's set-up contract (DESIGN.md):
#   tools/run.sh demo   install (apt, as root) + build + the demo on the models in assets/
#   tools/run.sh test   install + build + the whole test suite + the format check (what .ci/run calls)
#   tools/run.sh build  install + build only
#   tools/run.sh sanitize  install + the `sanitize`-labelled tests under the asan preset + every fuzz target briefly
#                          (what .ci/run calls after `test`; docs/RELIABILITY.md has the subset and its measured cost)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
what=${1:-test}
preset=${AVIARY_PRESET:-release}
tools/install-deps.sh
if [ "$what" = sanitize ]; then
  # AddressSanitizer + UBSan (reports fatal) on the test executables labelled `sanitize`: every parser (core readers,
  # tokenizers, state, binidx, training checkpoints; music; AudioSet; all fuzz harnesses replaying their seeds and
  # regressions), the CPU engine and the trainer. Then each fuzz target for AVIARY_FUZZ_SECONDS (20) from its seeds.
  cmake --preset asan -DAVIARY_BUILD_BENCH=OFF
  cmake --build --preset asan -j "$(nproc)" --target aviary_core_tests aviary_music_tests aviary_audio_tests \
    aviary_fuzz_regression_tests
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ctest --preset asan -j "$(nproc)" -L sanitize
  tools/fuzz.sh --all "${AVIARY_FUZZ_SECONDS:-20}"
  exit 0
fi
# AVIARY_WERROR=ON in the environment makes warnings errors (CI sets it; cmake/AviaryWarnings.cmake).
cmake --preset "$preset" ${AVIARY_WERROR:+-DAVIARY_WERROR=$AVIARY_WERROR}
cmake --build --preset "$preset" -j "$(nproc)"
case "$what" in
  build) ;;
  test)
    status=0
    ctest --preset "$preset" -j "$(nproc)" || status=$?
    tools/check-format.sh || status=$?
    exit "$status" ;;
  demo) tools/demo.sh "build/$preset" ;;
  *) echo "error: unknown action '$what' (expected demo, test, build or sanitize)" >&2; exit 2 ;;
esac
