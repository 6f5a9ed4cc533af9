#!/usr/bin/env bash
# Coverage-guided fuzzing of Aviary's parsers (tests/fuzz/, docs/RELIABILITY.md) with libFuzzer (clang-14 from Debian).
#   tools/fuzz.sh --list              names the targets
#   tools/fuzz.sh TARGET SECONDS      builds fuzz_TARGET (the `fuzz` preset: ASan + UBSan) and fuzzes it
#   tools/fuzz.sh --all SECONDS       each target in turn for SECONDS (what CI runs); non-zero if any found something
# The corpus is kept in build/fuzz/corpus/TARGET (seeded from tests/fuzz/seeds/TARGET and the fixtures below), findings
# go to build/fuzz/crashes/TARGET-*, the log to build/fuzz/logs/TARGET.log. Extra libFuzzer flags: $AVIARY_FUZZ_FLAGS.
# AVIARY_FUZZ_SKIP_BUILD=1 runs what is built; AVIARY_BUILD_LOCK=FILE takes that flock around the build (shared hosts).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
build=build/fuzz

targets() { ls tests/fuzz/fuzz_*.cpp | sed 's|.*/fuzz_||; s|\.cpp$||'; }

# Repository files that seed a target besides tests/fuzz/seeds/TARGET (kept small: libFuzzer's max_len follows the
# largest seed, and an execution costs about its input's length: docs/RELIABILITY.md, "Harness speed"). LLaVA's held-out
# VQA file (9 KB of one line shape) is seeds/llava/vqa_heldout.jsonl's four lines.
fixture_seeds() {
  case "$1" in
    pth) ls tests/fixtures/checkpoint/*.pth ;;
    safetensors) ls tests/fixtures/checkpoint/*.safetensors tests/fixtures/audio/bi_wkv.safetensors \
                    tests/fixtures/audio/map.safetensors ;;
    tokenizer_world|tokenizer_byte) echo tests/fixtures/tokenizer/world_tokenizer_cases.tsv ;;
    audioset_csv) echo assets/audio/class_labels_indices.csv ;;
    studio_settings) ls assets/configs/*.json ;;
    music_json) ls assets/models/*.recipe.json ;;
  esac
}

build_targets() {
  local lock=()
  [ -n "${AVIARY_BUILD_LOCK:-}" ] && lock=(flock "$AVIARY_BUILD_LOCK")
  [ -f "$build/CMakeCache.txt" ] || "${lock[@]}" cmake --preset fuzz
  "${lock[@]}" cmake --build "$build" -j "$(nproc)" --target "$@"
}

run_target() {
  local t=$1 seconds=$2 corpus="$build/corpus/$1" bin="$build/tests/fuzz/fuzz_$1"
  [ -x "$bin" ] || { echo "error: $bin is not built (is its module part of the fuzz build?)" >&2; return 1; }
  mkdir -p "$corpus" "$build/crashes" "$build/logs"
  if [ -z "$(ls -A "$corpus")" ]; then
    for f in tests/fuzz/seeds/"$t"/* $(fixture_seeds "$t"); do [ -f "$f" ] && cp "$f" "$corpus/"; done
  fi
  echo "fuzz: $t for ${seconds}s ($(ls "$corpus" | wc -l) inputs in $corpus)"
  local rc=0
  # One BLAS/OpenMP thread: a harness is one thread, and spinning BLAS workers on a busy host stall a harness's set-up
  # (a small model's orthogonal init) past the timeout. 25 s per input: set-up included, on a shared, niced core.
  # shellcheck disable=SC2086
  OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 \
  "$bin" "$corpus" -dict=tests/fuzz/aviary.dict -max_total_time="$seconds" -timeout=25 -rss_limit_mb=4096 \
    -artifact_prefix="$build/crashes/$t-" -print_final_stats=1 ${AVIARY_FUZZ_FLAGS:-} \
    > "$build/logs/$t.log" 2>&1 || rc=$?
  grep -E '^#[0-9]+[[:space:]]+DONE|^stat::number_of_executed_units|^stat::average_exec_per_sec|^Done ' "$build/logs/$t.log" || true
  if [ $rc -ne 0 ]; then
    echo "fuzz: $t FOUND A PROBLEM (exit $rc): see $build/logs/$t.log and $build/crashes/$t-*" >&2
    grep -E 'ERROR: |SUMMARY: |runtime error|property failed|terminate called|what\(\)' "$build/logs/$t.log" | head -5 >&2 || true
  fi
  return $rc
}

case "${1:-}" in
  --list) targets ;;
  --all)
    seconds=${2:?usage: tools/fuzz.sh --all SECONDS}
    all=$(targets)
    [ "${AVIARY_FUZZ_SKIP_BUILD:-0}" = 1 ] || build_targets $(printf 'fuzz_%s ' $all)
    failed=()
    for t in $all; do run_target "$t" "$seconds" || failed+=("$t"); done
    if [ ${#failed[@]} -gt 0 ]; then echo "error: fuzz findings in: ${failed[*]}" >&2; exit 1; fi ;;
  ""|-h|--help) sed -n '2,8p' "$0"; exit 2 ;;
  *)
    t=$1 seconds=${2:?usage: tools/fuzz.sh TARGET SECONDS}
    targets | grep -qx "$t" || { echo "error: unknown fuzz target '$t' (tools/fuzz.sh --list)" >&2; exit 2; }
    [ "${AVIARY_FUZZ_SKIP_BUILD:-0}" = 1 ] || build_targets "fuzz_$t"
    run_target "$t" "$seconds" ;;
esac
