#!/usr/bin/env python3
"""Synthetic visual-QA scenes for the Aviary vision demo (docs/VISION.md): coloured shapes drawn with OpenCV.

Each scene: 1-4 non-overlapping shapes (circle, square, triangle) in 4 colours and 2 sizes on a noisy light
background. Questions (one LLaVA item per question, several per image):
  "What colour is the triangle?"            -> red | green | blue | yellow   (shape appears once)
  "How many circles are there?"             -> zero | one | two | three
  "Is the square left of the circle?"       -> yes | no                       (both appear once)
  "What shape is the blue object?"          -> circle | square | triangle     (colour appears once)
  "Is the circle large or small?"           -> large | small                  (shape appears once)
  "Is there a red square?"                  -> yes | no                       (POPE-style)
Writes OUT/images/*.png, OUT/train.json and OUT/test.json (LLaVA format), OUT/test_vqa.jsonl (aviary eval vqa);
with --captions also OUT/train_captioned.json (the questions plus one caption per training image), with
--patch-labels P also OUT/train_patches.json (per-patch labels for ViT pretraining).
Usage (Debian python3 with python3-opencv): /usr/bin/python3 tools/make_vision_scenes.py --out data/vision_scenes --train 3000 --test 300 --size 64 --seed 1
"""
import argparse
import json
import os
import random

import cv2
import numpy as np

COLOURS = {"red": (220, 30, 30), "green": (30, 170, 40), "blue": (30, 60, 220), "yellow": (230, 210, 20)}
SHAPES = ["circle", "square", "triangle"]
NUMBERS = ["zero", "one", "two", "three", "four"]


def draw_scene(rng, size):
    img = np.full((size, size, 3), 235, np.uint8)
    img = np.clip(img.astype(np.int16) + rng.randint(-12, 12), 0, 255).astype(np.uint8)
    noise = np.random.RandomState(rng.randint(0, 2**31 - 1)).randint(-8, 9, img.shape)
    img = np.clip(img.astype(np.int16) + noise, 0, 255).astype(np.uint8)
    n = rng.choice([1, 2, 2, 3, 3, 4])
    objs = []
    tries = 0
    while len(objs) < n and tries < 200:
        tries += 1
        large = rng.random() < 0.5
        r = (size * rng.uniform(0.15, 0.19)) if large else (size * rng.uniform(0.08, 0.11))
        cx, cy = rng.uniform(r + 1, size - r - 1), rng.uniform(r + 1, size - r - 1)
        if any((cx - o["x"]) ** 2 + (cy - o["y"]) ** 2 < (r + o["r"] + 2) ** 2 for o in objs):
            continue
        # left/right questions need a clear horizontal gap
        if any(abs(cx - o["x"]) < 3 for o in objs):
            continue
        objs.append({"shape": rng.choice(SHAPES), "colour": rng.choice(list(COLOURS)), "large": large, "x": cx,
                     "y": cy, "r": r})
    for o in objs:
        col = COLOURS[o["colour"]][::-1]  # BGR
        x, y, r = o["x"], o["y"], o["r"]
        if o["shape"] == "circle":
            cv2.circle(img, (int(round(x)), int(round(y))), int(round(r)), col, -1, cv2.LINE_AA)
        elif o["shape"] == "square":
            h = r * 0.85
            cv2.rectangle(img, (int(round(x - h)), int(round(y - h))), (int(round(x + h)), int(round(y + h))), col, -1)
        else:
            pts = np.array([[x, y - r], [x - r * 0.95, y + r * 0.8], [x + r * 0.95, y + r * 0.8]], np.int32)
            cv2.fillPoly(img, [pts], col, cv2.LINE_AA)
    return img, objs


def questions(rng, objs):
    qs = []
    by_shape = {s: [o for o in objs if o["shape"] == s] for s in SHAPES}
    by_colour = {c: [o for o in objs if o["colour"] == c] for c in COLOURS}
    for s in SHAPES:
        if len(by_shape[s]) == 1:
            qs.append(("colour", "What colour is the %s?" % s, by_shape[s][0]["colour"]))
            qs.append(("size", "Is the %s large or small?" % s, "large" if by_shape[s][0]["large"] else "small"))
        qs.append(("count", "How many %ss are there?" % s, NUMBERS[len(by_shape[s])]))
    for c in COLOURS:
        if len(by_colour[c]) == 1:
            qs.append(("shape", "What shape is the %s object?" % c, by_colour[c][0]["shape"]))
    uniq = [s for s in SHAPES if len(by_shape[s]) == 1]
    for a in uniq:
        for b in uniq:
            if a != b:
                left = by_shape[a][0]["x"] < by_shape[b][0]["x"]
                qs.append(("left", "Is the %s left of the %s?" % (a, b), "yes" if left else "no"))
    s, c = rng.choice(SHAPES), rng.choice(list(COLOURS))
    present = any(o["shape"] == s and o["colour"] == c for o in objs)
    if not present and objs and rng.random() < 0.5:  # balance yes/no: ask about an object that is there
        o = rng.choice(objs)
        s, c, present = o["shape"], o["colour"], True
    qs.append(("exists", "Is there a %s %s?" % (c, s), "yes" if present else "no"))
    return qs


def patch_labels(objs, size, patch):
    """Per-patch labels for `aviary train vision --stage 0 --vit-pretrain` (the stand-in for CLIP pretraining):
    the object covering most of each patch (at least 8 pixels, drawn without anti-aliasing into an id mask with the
    scene's own geometry) gives [colour, shape, size] class ids, 0 = none; patches row-major."""
    mask = np.zeros((size, size), np.int32)
    for n, o in enumerate(objs, start=1):
        x, y, r = o["x"], o["y"], o["r"]
        if o["shape"] == "circle":
            cv2.circle(mask, (int(round(x)), int(round(y))), int(round(r)), n, -1)
        elif o["shape"] == "square":
            h = r * 0.85
            cv2.rectangle(mask, (int(round(x - h)), int(round(y - h))), (int(round(x + h)), int(round(y + h))), n, -1)
        else:
            pts = np.array([[x, y - r], [x - r * 0.95, y + r * 0.8], [x + r * 0.95, y + r * 0.8]], np.int32)
            cv2.fillPoly(mask, [pts], n)
    g = size // patch
    out = []
    for py in range(g):
        for px in range(g):
            counts = np.bincount(mask[py * patch:(py + 1) * patch, px * patch:(px + 1) * patch].ravel(),
                                 minlength=len(objs) + 1)
            counts[0] = 0
            n = int(counts.argmax())
            if counts[n] < 8:
                out.append([0, 0, 0])
            else:
                o = objs[n - 1]
                out.append([1 + list(COLOURS).index(o["colour"]), 1 + SHAPES.index(o["shape"]), 2 if o["large"] else 1])
    return out


def caption(objs):
    """'Describe the picture.' -> the objects from left to right, e.g. 'a large red circle, a small blue square'.
    Deterministic (draws no random numbers), so --captions leaves the images and questions unchanged."""
    return ", ".join("a %s %s %s" % ("large" if o["large"] else "small", o["colour"], o["shape"])
                     for o in sorted(objs, key=lambda o: o["x"]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="data/vision_scenes")
    ap.add_argument("--train", type=int, default=3000, help="training images")
    ap.add_argument("--test", type=int, default=300, help="held-out images")
    ap.add_argument("--per-image", type=int, default=4, help="questions per image (at most)")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--patch-labels", type=int, default=0, metavar="PATCH",
                    help="also write OUT/train_patches.json: per-patch colour/shape/size labels for a ViT with this "
                         "patch size (aviary train vision --stage 0 --vit-pretrain)")
    ap.add_argument("--captions", action="store_true",
                    help="also write OUT/train_captioned.json: the training questions plus one 'Describe the "
                         "picture.' caption per image (dense supervision for training from scratch)")
    a = ap.parse_args()
    os.makedirs(os.path.join(a.out, "images"), exist_ok=True)
    for split, count in [("train", a.train), ("test", a.test)]:
        # one random stream per split: the held-out set does not depend on --train
        rng = random.Random(a.seed if split == "train" else a.seed + 1_000_003)
        items, vqa, captions, patches = [], [], [], []
        for i in range(count):
            img, objs = draw_scene(rng, a.size)
            name = "images/%s_%05d.png" % (split, i)
            cv2.imwrite(os.path.join(a.out, name), img)
            qs = questions(rng, objs)
            if a.patch_labels and split == "train":
                patches.append({"image": name, "labels": patch_labels(objs, a.size, a.patch_labels)})
            captions.append({"id": "%s_%05d_c" % (split, i), "image": name, "kind": "caption",
                             "conversations": [{"from": "human", "value": "<image>\nDescribe the picture."},
                                               {"from": "gpt", "value": caption(objs)}]})
            # favour the kinds that are rarer (left/colour/shape) over the many count questions
            rng.shuffle(qs)
            kinds_seen, chosen = set(), []
            for q in qs:
                if q[0] not in kinds_seen:
                    kinds_seen.add(q[0])
                    chosen.append(q)
            for q in qs:
                if len(chosen) >= a.per_image:
                    break
                if q not in chosen:
                    chosen.append(q)
            for k, (kind, q, ans) in enumerate(chosen[: a.per_image]):
                qid = "%s_%05d_%d" % (split, i, k)
                items.append({"id": qid, "image": name, "kind": kind,
                              "conversations": [{"from": "human", "value": "<image>\n" + q},
                                                {"from": "gpt", "value": ans}]})
                vqa.append({"question_id": qid, "image": name, "question": q, "answer": ans, "kind": kind})
        with open(os.path.join(a.out, split + ".json"), "w") as f:
            json.dump(items, f, indent=0)
        if a.patch_labels and split == "train":
            with open(os.path.join(a.out, "train_patches.json"), "w") as f:
                json.dump({"grid": a.size // a.patch_labels,
                           "groups": [["none"] + list(COLOURS), ["none"] + SHAPES, ["none", "small", "large"]],
                           "items": patches}, f)
        if a.captions and split == "train":
            mixed = items + captions
            random.Random(a.seed + 7).shuffle(mixed)
            with open(os.path.join(a.out, "train_captioned.json"), "w") as f:
                json.dump(mixed, f, indent=0)
        with open(os.path.join(a.out, split + "_vqa.jsonl"), "w") as f:
            for v in vqa:
                f.write(json.dumps(v) + "\n")
        print(split, count, "images", len(items), "questions")


if __name__ == "__main__":
    main()
