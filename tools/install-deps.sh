#!/usr/bin/env bash
# Installs what Aviary builds and runs with, from Debian packages only (run as root on Debian 12), and
# obtains the official World vocabulary (rwkv_vocab_v20230424.txt) from the official `rwkv` package on PyPI
# into assets/vocab/ (md5-checked; falls back to ../shared/data when offline). Idempotent.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
pkgs=(build-essential cmake ninja-build ccache pkg-config
      libtorch-dev libopenblas0-pthread
      libopencv-dev libsndfile1-dev libsamplerate0-dev
      libimgui-dev libglfw3-dev libgl-dev
      libgtest-dev libgmock-dev nlohmann-json3-dev libcli11-dev libfmt-dev
      libcpp-httplib-dev  # aviary serve (HTTP server and the tests' client)
      libgloo-dev libdnnl-dev
      clang-format-14  # tools/check-format.sh (CI)
      clang-14 libclang-rt-14-dev  # the fuzz preset (libFuzzer + ASan/UBSan runtimes): tools/fuzz.sh, CI's sanitize step
      python3 ca-certificates
      # Optional at run time (aviary music --midi/--wav/--svg and its validity check); the music tests use them.
      abcmidi abcm2ps fluidsynth fluid-soundfont-gm
      # aviary-studio's smoke test (a virtual X display with Mesa) and its sheet-music view (SVG -> PNG).
      xvfb xauth libgl1-mesa-dri librsvg2-bin)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# LibTorch is much faster with OpenBLAS than with the reference BLAS (measured ~10x on matmul): select it.
if command -v update-alternatives >/dev/null; then
  for alt in libblas.so.3-x86_64-linux-gnu liblapack.so.3-x86_64-linux-gnu; do
    cand=$(update-alternatives --list "$alt" 2>/dev/null | grep openblas-pthread | head -1 || true)
    if [ -n "$cand" ] && [ "$(id -u)" -eq 0 ]; then update-alternatives --set "$alt" "$cand" >/dev/null; fi
  done
fi

# The official World vocabulary, from the official rwkv wheel on PyPI (Apache-2.0).
vocab_dir="$root/assets/vocab"
vocab="$vocab_dir/rwkv_vocab_v20230424.txt"
want_md5=dd1946a66e1721abeac49f9c75a1e844
if [ ! -f "$vocab" ] || [ "$(md5sum < "$vocab" | cut -d' ' -f1)" != "$want_md5" ]; then
  mkdir -p "$vocab_dir"
  if /usr/bin/python3 - "$vocab" 2>/dev/null <<'PY'
import hashlib, io, re, sys, urllib.request, zipfile
# PyPI's simple index lists each file with its sha256; take the 0.8.32 wheel and check it.
index = urllib.request.urlopen("https://pypi.org/simple/rwkv/", timeout=60).read().decode()
url, sha = re.search(r'href="([^"#]*rwkv-0\.8\.32-py3-none-any\.whl)#sha256=([0-9a-f]+)"', index).groups()
data = urllib.request.urlopen(url, timeout=120).read()
assert hashlib.sha256(data).hexdigest() == sha, "sha256 mismatch for " + url
with zipfile.ZipFile(io.BytesIO(data)) as wheel:
    text = wheel.read("rwkv/rwkv_vocab_v20230424.txt")
open(sys.argv[1], "wb").write(text.replace(b"\r\n", b"\n"))  # the wheel's copy has CRLF line endings
PY
  then
    echo "install-deps: World vocabulary from the rwkv 0.8.32 wheel (PyPI)"
  elif [ -f "$root/../shared/data/rwkv_vocab_v20230424.txt" ]; then
    cp "$root/../shared/data/rwkv_vocab_v20230424.txt" "$vocab"
    echo "install-deps: PyPI unreachable; World vocabulary copied from ../shared/data"
  else
    echo "error: could not obtain rwkv_vocab_v20230424.txt (no network); pass --vocab FILE to aviary" >&2
  fi
  if [ -f "$vocab" ] && [ "$(md5sum < "$vocab" | cut -d' ' -f1)" != "$want_md5" ]; then
    echo "error: $vocab has an unexpected md5 (expected $want_md5)" >&2
    rm -f "$vocab"
    exit 1
  fi
fi
echo "install-deps: done"
