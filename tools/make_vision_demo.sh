#!/usr/bin/env bash
# Builds the shipped VisualRWKV demo model (docs/VISION.md): synthetic shape scenes with per-patch labels
# (tools/make_vision_scenes.py), then `aviary train vision`: ViT pretraining on the patch labels (the stand-in for
# CLIP pretraining), stage 0 (RWKV + embedding + proj from scratch, ViT frozen), stage 1 (proj only, frozen-CLIP
# feature cache) and stage 2 (RWKV + proj, CLIP frozen), held-out `aviary eval vqa`, and copies the model, recipe and
# logs into assets/models/. CPU only; run it niced in the background:  nice -n 10 tools/make_vision_demo.sh > demo.log 2>&1 &
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
AVIARY=${AVIARY:-$ROOT/build/vision/apps/cli/aviary}
DATA=${DATA:-$ROOT/data/vision_scenes}
OUT=${OUT:-$ROOT/data/vision_demo}
NAME=${NAME:-vision-demo-rwkv6-L3-D64-vit-L3-D64h4-p8-64px}
STEPSV=${STEPSV:-2000}
STEPS0=${STEPS0:-8000}
STEPS1=${STEPS1:-40}
STEPS2=${STEPS2:-40}
BATCH=${BATCH:-32}
LR0=${LR0:-2e-3}
LRF0=${LRF0:-2e-4}
POS=${POS:-last}
LIMIT=${LIMIT:-1200}
THREADS=${THREADS:-1}
RWKV=${RWKV:-3,64,256}
VIT=${VIT:-3,64,8,64,4}
TRAIN=${TRAIN:-30000}
[ -f "$DATA/train_patches.json" ] || ${PYTHON:-/usr/bin/python3} "$ROOT/tools/make_vision_scenes.py" --out "$DATA" \
  --train "$TRAIN" --test 300 --size 64 --seed 1 --patch-labels 8
mkdir -p "$OUT"
# ViT pretraining on per-patch colour/shape/size labels (fresh RWKV and proj ride along unchanged)
# a stage whose OUT/<stage>/model.safetensors exists is kept (re-running continues the pipeline after it)
[ -f "$OUT/vit/model.safetensors" ] || "$AVIARY" train vision --stage 0 --vit-pretrain --new-rwkv "$RWKV" --new-vit "$VIT" --data "$DATA/train_patches.json" \
  --image-folder "$DATA" --out "$OUT/vit" --steps "$STEPSV" --batch 64 --lr "$LR0" --lr-final "$LRF0" --warmup 50 \
  --position "$POS" --threads "$THREADS"
[ -f "$OUT/stage0/model.safetensors" ] || "$AVIARY" train vision --stage 0 --freeze-vit --model "$OUT/vit/model.safetensors" --data "$DATA/train.json" --image-folder "$DATA" \
  --out "$OUT/stage0" --steps "$STEPS0" --batch "$BATCH" --lr "$LR0" --lr-final "$LRF0" --warmup "${WARMUP0:-50}" --position "$POS" --threads "$THREADS"
"$AVIARY" train vision --stage 1 --model "$OUT/stage0/model.safetensors" --data "$DATA/train.json" \
  --image-folder "$DATA" --out "$OUT/stage1" --steps "$STEPS1" --batch "$BATCH" --position "$POS" --threads "$THREADS"
"$AVIARY" train vision --stage 2 --model "$OUT/stage1/model.safetensors" --data "$DATA/train.json" \
  --image-folder "$DATA" --out "$OUT/stage2" --steps "$STEPS2" --batch "$BATCH" \
  --feature-cache "$OUT/stage1/feature_cache.safetensors" --position "$POS" --threads "$THREADS"
"$AVIARY" eval vqa --model "$OUT/stage2/model.safetensors" --data "$DATA/test_vqa.jsonl" --max-tokens 8 \
  --position "$POS" --limit "$LIMIT" --threads "$THREADS" --out "$OUT/eval_test.json"
cp "$OUT/stage2/model.safetensors" "$ROOT/assets/models/$NAME.safetensors"
cat "$OUT"/{vit,stage0,stage1,stage2}/train_log.jsonl > "$ROOT/assets/models/$NAME.train_log.jsonl"
python3 - "$OUT/eval_test.json" "$ROOT/assets/models/$NAME.recipe.json" <<PY
import json, sys, collections
ev = json.load(open(sys.argv[1]))
kinds = {}
for line in open("$DATA/test_vqa.jsonl"):
    q = json.loads(line); kinds[str(q["question_id"])] = q["kind"]
by = collections.defaultdict(lambda: [0, 0])
for a in ev["answers"]:
    k = kinds.get(str(a["id"]), "?"); by[k][1] += 1
    by[k][0] += a["answer"].strip().lower().rstrip(".") == a["reference"].strip().lower()
recipe = {"data": "tools/make_vision_scenes.py --train $TRAIN --test 300 --size 64 --seed 1 --patch-labels 8",
          "rwkv": "RWKV-6 L,D,V = $RWKV (byte tokenizer)", "vit": "CLIP-style ViT L,D,patch,image = $VIT",
          "stages": [{"stage": "vit", "steps": $STEPSV, "batch": 64, "lr": "$LR0 -> $LRF0 cosine, warmup 50",
                      "trains": "ViT only, per-patch colour/shape/size cross-entropy (head not kept)"},
                     {"stage": 0, "steps": $STEPS0, "batch": $BATCH, "lr": "$LR0 -> $LRF0 cosine, warmup ${WARMUP0:-50}", "position": "$POS",
                      "trains": "RWKV + embedding + proj (ViT frozen)"},
                     {"stage": 1, "steps": $STEPS1, "batch": $BATCH, "lr": "1e-3 -> 1e-5 cosine (published)",
                      "position": "$POS", "trains": "proj"},
                     {"stage": 2, "steps": $STEPS2, "batch": $BATCH, "lr": "2e-5 constant (published)",
                      "position": "$POS", "trains": "RWKV + proj (emb, CLIP frozen)"}],
          "note": "${NOTE:-}",
          "eval": "aviary eval vqa --data test_vqa.jsonl --limit $LIMIT --position $POS --max-tokens 8",
          "held_out": {k: v for k, v in ev.items() if k != "answers"},
          "held_out_by_kind": {k: {"correct": c, "total": n, "accuracy": c / n} for k, (c, n) in sorted(by.items())}}
json.dump(recipe, open(sys.argv[2], "w"), indent=1)
print(json.dumps(recipe, indent=1))
PY
