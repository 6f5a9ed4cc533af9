#!/usr/bin/env bash
# ctest ServerOpenAIClient: starts `aviary serve` on a free loopback port with the shipped text and vision models and
# runs tools/openai_client_check.py (the official `openai` package) against it; then stops it with SIGTERM and checks
# that it exits 0. Exit 77 (skipped) when the venv of tools/setup-python.sh or its openai package is missing.
# Usage: tools/test_openai_client.sh AVIARY_BINARY SOURCE_DIR
set -euo pipefail
aviary=$1
root=$2
py=${AVIARY_VENV:-$root/.venv}/bin/python
if [ ! -x "$py" ] || ! "$py" -c "import openai" 2>/dev/null; then
  echo "skipped: no .venv with the openai package (run tools/setup-python.sh)"
  exit 77
fi
log=$(mktemp)
trap 'rm -f "$log"; [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null || true' EXIT
"$aviary" serve --model "$root/assets/models/music-eagle-L6-D256.safetensors" \
  --vision-model "$root/assets/models/vision-demo-rwkv6-L3-D64-vit-L3-D64h4-p8-64px.safetensors" \
  --port 0 --api-key sk-test 2>"$log" &
pid=$!
port=
for _ in $(seq 1 600); do
  port=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$log" | head -1)
  [ -n "$port" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$log"; echo "aviary serve exited early"; exit 1; }
  sleep 0.1
done
[ -n "$port" ] || { cat "$log"; echo "aviary serve did not start"; exit 1; }
"$py" "$root/tools/openai_client_check.py" --base-url "http://127.0.0.1:$port/v1" --api-key sk-test \
  --image "$root/tests/fixtures/vision/demo_heldout/images/test_00000.png"
kill -TERM "$pid"
status=0
wait "$pid" || status=$?
pid=
if [ "$status" -ne 0 ]; then cat "$log"; echo "aviary serve exited with $status after SIGTERM"; exit 1; fi
echo "aviary serve stopped cleanly"
