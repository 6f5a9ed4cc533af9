#!/usr/bin/env bash
# One entry point for the README's set-up contract (DESIGN.md):
#   tools/run.sh demo   install (apt, as root) + build + the demo on the models in assets/
#   tools/run.sh test   install + build + the whole test suite + the format check (what .ci/run calls)
#   tools/run.sh build  install + build only
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
what=${1:-test}
preset=${AVIARY_PRESET:-release}
tools/install-deps.sh
cmake --preset "$preset"
cmake --build --preset "$preset" -j "$(nproc)"
case "$what" in
  build) ;;
  test)
    status=0
    ctest --preset "$preset" -j "$(nproc)" || status=$?
    tools/check-format.sh || status=$?
    exit "$status" ;;
  demo) tools/demo.sh "build/$preset" ;;
  *) echo "error: unknown action '$what' (expected demo, test or build)" >&2; exit 2 ;;
esac
