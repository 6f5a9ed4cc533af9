#!/usr/bin/env bash
# Regenerates docs/studio/*.png, the screenshots of docs/STUDIO.md, from the models shipped in assets/: runs
# aviary-studio's scripted mode (tests/studio/docs_screenshots.txt) under Xvfb (Mesa llvmpipe, 1280x800), with its
# own settings and cache directories so the user's settings are neither read nor changed.
#   tools/make_studio_screenshots.sh [BUILD_DIR]      (default build/release; the studio must be built there)
# Needs xvfb-run and Xvfb (Debian package xvfb). Writes into a temporary directory first and copies the PNGs into
# docs/studio only when the whole script succeeded, so a failed run leaves the old screenshots in place.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$root/build/release}"
studio="$build/apps/studio/aviary-studio"
script="$root/tests/studio/docs_screenshots.txt"
[[ -x "$studio" ]] || { echo "error: '$studio' not found: build the studio first (cmake --build --preset release)" >&2; exit 1; }
for tool in xvfb-run Xvfb; do
  command -v "$tool" >/dev/null || { echo "error: $tool not found: install the Debian package xvfb" >&2; exit 1; }
done
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# The script opens repository files by relative path (tests/fixtures/…, assets/samples/…): run from the root.
cd "$root"
XDG_CONFIG_HOME="$tmp/config" XDG_CACHE_HOME="$tmp/cache" \
  timeout 600 xvfb-run -a -s '-screen 0 1280x800x24' \
  "$studio" --script "$script" --screenshot-dir "$tmp/shots" --size 1280x800
mkdir -p "$root/docs/studio"
cp "$tmp"/shots/*.png "$root/docs/studio/"
ls -l "$root"/docs/studio/*.png
