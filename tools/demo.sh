#!/usr/bin/env bash
# The demo (README command one): aviary-studio when a display exists (AVIARY_DEMO=terminal forces the terminal),
# otherwise a terminal demo of every modality on the models and samples shipped in assets/.
# With AVIARY_MODEL=/path/to/RWKV-x060-World-*.pth (or a model in assets/models/) it chat-style generates.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build/release}
aviary="$build/apps/cli/aviary"
[ -x "$aviary" ] || { echo "error: $aviary not built (run tools/run.sh build)" >&2; exit 1; }
studio="$build/apps/studio/aviary-studio"
if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] && [ -x "$studio" ] && [ "${AVIARY_DEMO:-}" != terminal ]; then
  echo "Starting aviary-studio (AVIARY_DEMO=terminal tools/demo.sh for the terminal demo)"
  exec "$studio"
fi
echo "== World tokenizer =="
echo "Aviary speaks RWKV: 你好, こんにちは, مرحبا 👋" | tee /dev/stderr | "$aviary" tokenize
echo "== Music: a tune from the shipped Eagle ABC model =="
tunes=$(mktemp -d /tmp/aviary-demo-tunes.XXXXXX)
"$aviary" music --count 1 --seed 7 --out "$tunes"   # streams the tune; files in $tunes
echo "== Audio: AudioRWKV-Tiny demo model (synthetic sounds) tags the shipped samples =="
"$aviary" tag --top-k 3 "$root"/assets/samples/*.wav
echo "== Vision: VisualRWKV demo model (synthetic shape scenes) answers about assets/samples/scene.png =="
"$aviary" vqa --image "$root/assets/samples/scene.png" --question "What colour is the square?"
model=${AVIARY_MODEL:-}
if [ -z "$model" ]; then
  model=$(ls "$root"/assets/models/*.pth 2>/dev/null | head -1 || true)
fi
if [ -n "$model" ]; then
  echo "== Model =="
  "$aviary" info --model "$model"
  echo "== Generation =="
  "$aviary" generate --model "$model" --prompt $'User: What is the RWKV architecture?\n\nAssistant:' \
    --max-tokens 80 --stop $'\n\n' --stats
else
  echo "== Model (official-layout test checkpoint with random weights) =="
  "$aviary" info --model "$root/tests/fixtures/golden/v6_fp32.pth"
  "$aviary" forward --model "$root/tests/fixtures/golden/v6_fp32.pth" --tokens 1,2,3 --out /tmp/aviary-demo-logits.npy \
    && echo "wrote /tmp/aviary-demo-logits.npy (logits [3, 512])"
  echo
  echo "No World text model is shipped (too large). Point AVIARY_MODEL at an official RWKV-5/6 World"
  echo "checkpoint (.pth) to generate text:  AVIARY_MODEL=RWKV-x060-World-1B6.pth tools/demo.sh"
fi
