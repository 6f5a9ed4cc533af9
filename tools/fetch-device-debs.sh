#!/usr/bin/env bash
# Prepares third_party/debs/: the Debian packages the GPU machine may lack (GoogleTest headers, static libs and
# sources; nlohmann-json headers), fetched with `apt-get download` and unpacked with `dpkg -x` (no root needed).
# bench/cuda/run_device.sh adds third_party/debs/usr to CMAKE_PREFIX_PATH. Run from the repository root.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/third_party/debs"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
rm -rf "$dest"
mkdir -p "$dest"
cd "$work"
# googletest carries /usr/src/googletest, used to rebuild gtest when the device's LibTorch uses the old C++ ABI.
# libcli11-dev (header-only) lets the `aviary` command line be built on the device as well.
apt-get download libgtest-dev googletest nlohmann-json3-dev libcli11-dev
for deb in ./*.deb; do
    echo "unpacking $(basename "$deb")"
    dpkg -x "$deb" "$dest"
    dpkg-deb -f "$deb" Package Version >> "$dest/VERSIONS.txt"
done
echo "prepared $dest ($(du -sh "$dest" | cut -f1)); versions in $dest/VERSIONS.txt"
