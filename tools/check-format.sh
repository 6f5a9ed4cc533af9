#!/usr/bin/env bash
# The formatting check of STYLE.md: every C++/CUDA source the repository tracks must equal what clang-format 14
# makes of it with the repository's .clang-format. CI runs it (tools/run.sh test).
#   tools/check-format.sh         list the files that differ; exit 1 if any
#   tools/check-format.sh --fix   reformat them in place
set -euo pipefail
cd "$(dirname "$0")/.."
fmt=$(command -v clang-format-14 || command -v clang-format || true)
if [ -z "$fmt" ]; then
  echo "error: clang-format 14 not found (Debian package clang-format-14; tools/install-deps.sh installs it)" >&2
  exit 2
fi
mode=${1:-check}
case "$mode" in check|--fix) ;; *) echo "error: unknown option '$mode' (expected --fix or nothing)" >&2; exit 2 ;; esac
bad=()
while IFS= read -r -d '' f; do
  if [ "$mode" = --fix ]; then
    "$fmt" -i "$f"
  elif ! "$fmt" --dry-run -Werror "$f" >/dev/null 2>&1; then
    bad+=("$f")
  fi
done < <(git ls-files -z -- '*.cpp' '*.h' '*.cu' '*.cuh' '*.inc')
if [ ${#bad[@]} -gt 0 ]; then
  printf '%s\n' "${bad[@]}" >&2
  echo "error: ${#bad[@]} file(s) differ from .clang-format (fix: tools/check-format.sh --fix)" >&2
  exit 1
fi
[ "$mode" = --fix ] || echo "format: every tracked C++/CUDA source matches .clang-format"
