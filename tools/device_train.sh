#!/usr/bin/env bash
# One GPU-machine call that trains what the CPU machines are too slow for (run from the repo root there:
# bash tools/device_train.sh [budget seconds, default 540]; carry third_party/debs and data/music):
#   music-eagle, music-finch   `aviary train music` with assets/configs/music-{eagle,finch}-L6-D256.json (#4)
#   ablate-*                   Finch with the same data and settings through `train text --ablate` (#10)
#   mqar-T*                    `aviary research mqar` grid, processes by sequence length and architecture (#10)
# All runs share the GPU as separate processes and stop (checkpoint + model saved) at the budget. Afterwards the
# ablation models are scored on the validation tunes, the two music models are converted to bf16, and everything
# small is packed: $OUT/train_results.tgz, $OUT/music-{eagle,finch}-L6-D256.safetensors.
# Sizes via env: MUSIC_STEPS (config's steps), MQAR_STEPS (1000), MQAR_BATCH (64),
# MQAR_SEQS ("64 128"), MQAR_ARCHS ("4 5 6"), MQAR_VOCAB (128), MQAR_LR (2e-3).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
FINAL_OUT="${OUT:-$ROOT/out/device-train}"
OUT="$(mktemp -d)"
mkdir -p "$FINAL_OUT"
BUDGET="${1:-540}"
BUILD="$ROOT/build-model-device"
R="$OUT/runs"
mkdir -p "$R"
START=$SECONDS
left() { echo $((BUDGET - (SECONDS - START))); }
step() { echo "=== [$(date +%T) +$((SECONDS - START))s] $*" | tee -a "$OUT/run.log"; }
record() { echo "$1: $2" | tee -a "$OUT/summary.txt"; }

# The model of a run folder: model.safetensors when it finished, else the newest checkpoint's.
model_of() {
    if [ -f "$1/model.safetensors" ]; then echo "$1/model.safetensors"; return; fi
    ls -d "$1"/checkpoints/*/model.safetensors 2>/dev/null | sort | tail -1
}

pack() {
    step "pack"
    for m in eagle finch; do
        local f
        f="$(model_of "$R/music-$m/run")"
        [ -n "$f" ] && "$AVIARY" convert "$f" "$FINAL_OUT/music-$m-L6-D256.safetensors" --dtype bf16 >/dev/null &&
            record "music-$m model" "$f"
    done
    cp "$OUT/run.log" "$OUT/summary.txt" "$R/" 2>/dev/null
    find "$R" -name checkpoints -type d -prune -exec rm -rf {} + 2>/dev/null
    find "$R" -name '*.safetensors' -delete
    tar czf "$FINAL_OUT/train_results.tgz" -C "$OUT" runs build.log versions.log 2>/dev/null
    ls -la "$FINAL_OUT"
}

source "$ROOT/bench/cuda/device_build.sh"
device_build || { pack; exit 1; }

# A tiny run that rotates checkpoints (keep-last 1): the ablation runs of an earlier call died with SIGSEGV right
# after their first rotation on this machine; under cuda-gdb for a backtrace if it happens again.
step "checkpoint-rotation check"
timeout 90 cuda-gdb -batch -ex run -ex bt --args "$AVIARY" train text --model init:2,64,6 --device cuda --tokenizer byte \
    --data tests/fixtures/music/validation --ctx-len 128 --batch 4 --steps 7 --save-every 2 --keep-last 1 -q \
    --out "$R/rotation-check/run" > "$OUT/rotation_check.log" 2>&1
record rotation-check "exit $?"
tail -30 "$OUT/rotation_check.log"
cp "$OUT/rotation_check.log" "$R/" 2>/dev/null

# Every run gets the same deadline: the budget less a reserve for scoring and packing. SIGTERM makes the trainers
# save a checkpoint and the model; the MQAR command keeps the results of the runs it finished.
RESERVE=50
deadline=$(( $(left) - RESERVE ))
step "training, ${deadline}s per run"
launch() {  # launch NAME cmd...
    local name="$1"
    shift
    mkdir -p "$R/$name"
    echo "\$ $*" > "$R/$name/command.txt"
    timeout -s TERM -k 20 "$deadline" "$@" > "$R/$name/stdout.log" 2> "$R/$name/stderr.log" &
    echo "$name $!" >> "$OUT/pids"
}
MUSIC=(--device cuda --data data/music/train.jsonl --validation data/music/validation.jsonl -q)
[ -n "${MUSIC_STEPS:-}" ] && MUSIC+=(--steps "$MUSIC_STEPS")
launch music-eagle "$AVIARY" train music "${MUSIC[@]}" --config assets/configs/music-eagle-L6-D256.json \
    --out "$R/music-eagle/run"
launch music-finch "$AVIARY" train music "${MUSIC[@]}" --config assets/configs/music-finch-L6-D256.json \
    --out "$R/music-finch/run"
# The same recipe through `train text` (the token stream equals train music's: tests/music), Finch with and
# without its data-dependent parts.
TEXT=(--device cuda --tokenizer byte --data data/music/train --ctx-len 1024 --batch 16
      --steps "${MUSIC_STEPS:-400}" --lr 1.5e-3 --lr-final 1e-4 --warmup 50 --weight-decay 0.1 --seed 1
      --save-every 100 --keep-last 8 -q)
launch ablate-none "$AVIARY" train text --model init:6,256,6 "${TEXT[@]}" --out "$R/ablate-none/run"
launch ablate-dd-token-shift "$AVIARY" train text --model init:6,256,6 "${TEXT[@]}" --ablate dd-token-shift \
    --out "$R/ablate-dd-token-shift/run"
launch ablate-dd-decay "$AVIARY" train text --model init:6,256,6 "${TEXT[@]}" --ablate dd-decay \
    --out "$R/ablate-dd-decay/run"
launch ablate-both "$AVIARY" train text --model init:6,256,6 "${TEXT[@]}" --ablate dd-token-shift,dd-decay \
    --out "$R/ablate-both/run"
# One process per (length, architecture): RWKV-4's parallel WKV is quadratic in T and the slowest.
for T in ${MQAR_SEQS:-64 128}; do
    for A in ${MQAR_ARCHS:-4 5 6}; do
        launch "mqar-T$T-a$A" "$AVIARY" research mqar --device cuda --threads 1 --arch "$A" --dims 64,128,256 \
            --seq "$T" --steps "${MQAR_STEPS:-1000}" --batch "${MQAR_BATCH:-64}" --vocab "${MQAR_VOCAB:-128}" \
            --lr "${MQAR_LR:-2e-3}" --out "$R/mqar-T$T-a$A/result"
    done
done
while read -r name pid; do
    wait "$pid"
    record "$name" "exit $? at +$((SECONDS - START))s"
done < "$OUT/pids"
nvidia-smi --query-gpu=memory.used,utilization.gpu --format=csv >> "$OUT/run.log" 2>&1

step "validation loss of every checkpoint and model"
for d in "$R"/ablate-* "$R"/music-*; do
    for m in "$d"/run/checkpoints/*/model.safetensors "$d/run/model.safetensors"; do
        [ -f "$m" ] || continue
        v="$(timeout 30 "$AVIARY" eval text --device cuda --model "$m" --tokenizer byte \
            --data tests/fixtures/music/validation --ctx-len 1024 2>> "$d/validation.err")"
        echo "{\"model\": \"${m#"$d"/}\", \"eval\": $v}" >> "$d/validation.jsonl"
        record "$(basename "$d") ${m#"$d"/run/}" "$v"
    done
done
pack
step "done in $((SECONDS - START))s"
