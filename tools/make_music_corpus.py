#!/usr/bin/env python3
# Extracts public-domain ABC tunes from the music21 package's corpus (Ryan's Mammoth
# Collection, Aird's Airs and the other public-domain ABC books; never essenFolksong,
# whose licence is non-commercial), normalises and dedupes them, splits train/validation
# by tune (seeded) and writes JSONL {"text": "\x02<tune>\x03"} — the official RWKV music
# framing BOS 2 … EOS 3 (multimodal_spec.md part C) — plus recipe.json with the counts.
# Usage: .venv/bin/python tools/make_music_corpus.py --out data/music [--seed 42 --val-frac 0.05]
import argparse
import hashlib
import json
import os
import random
import re
import sys

# Folders of music21/corpus holding ABC tune books; essenFolksong is excluded on purpose.
# The 19th-century books; the rest of music21/corpus is ignored (Essen: non-commercial licence,
# nottingham-dataset: licence not stated in the package).
ABC_BOOKS = ["ryansMammoth", "airdsAirs", "oneills1850", "miscFolk"]
EXCLUDED = {"essenFolksong", "nottingham-dataset"}
HEADER_RE = re.compile(r"^[A-Za-z]:")
KEEP_HEADERS = set("XTMLKQR")  # headers kept; the rest (S:, Z:, N:, B:, O:, H:, W:, w:) dropped


def find_abc_files(corpus_root):
    files = []
    for book in sorted(os.listdir(corpus_root)):
        if book in EXCLUDED or book not in ABC_BOOKS:
            continue
        book_dir = os.path.join(corpus_root, book)
        if not os.path.isdir(book_dir):
            continue
        for root, _, names in os.walk(book_dir):
            for name in sorted(names):
                if name.lower().endswith(".abc"):
                    files.append((book, os.path.join(root, name)))
    return files


def split_tunes(text):
    tunes, cur = [], None
    for line in text.splitlines():
        if line.startswith("X:"):
            if cur:
                tunes.append(cur)
            cur = [line]
        elif cur is not None:
            cur.append(line)
    if cur:
        tunes.append(cur)
    return tunes


def normalise(lines):
    """Returns the tune as text (X:1 renumbered) or None when it is unusable."""
    out, seen_k = [], False
    for raw in lines:
        line = raw.split("%", 1)[0].rstrip() if not raw.startswith("%%") else ""
        if not line:
            if seen_k and out and out[-1] != "":
                break  # a blank line ends a tune in ABC
            continue
        if HEADER_RE.match(line) and not line.startswith("|"):
            field = line[0]
            line = field + ":" + line[2:].strip()
            if field in "wW":
                continue  # lyrics
            if not seen_k:
                if field not in KEEP_HEADERS:
                    continue
                if field == "X":
                    line = "X:1"
                if field == "K":
                    seen_k = True
                out.append(line)
                continue
            if field in "KML" or line.startswith("P:"):
                out.append(line)  # inline key/meter/length changes in the body
            continue
        if not seen_k:
            continue
        out.append(line)
    while out and out[-1] == "":
        out.pop()
    if not seen_k or not out or not out[0].startswith("X:"):
        return None
    heads = {l[0] for l in out if HEADER_RE.match(l)}
    if "M" not in heads or "L" not in heads:
        # L: defaults by meter in ABC; write it explicitly so every tune carries M:, L:, K:.
        if "M" not in heads:
            return None
        kpos = next(i for i, l in enumerate(out) if l.startswith("K:"))
        out.insert(kpos, "L:1/8")
    body = [l for l in out if not HEADER_RE.match(l)]
    if sum(len(l) for l in body) < 16 or any(ord(c) > 126 or ord(c) < 32 for l in out for c in l):
        return None
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="data/music")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--val-frac", type=float, default=0.05)
    ap.add_argument("--max-bytes", type=int, default=3000, help="drop tunes longer than this")
    a = ap.parse_args()
    import music21  # imported late so --help works without it

    root = os.path.join(os.path.dirname(music21.__file__), "corpus")
    files = find_abc_files(root)
    counts, tunes, seen = {}, [], set()
    for book, path in files:
        with open(path, "r", encoding="latin-1") as f:
            text = f.read()
        for lines in split_tunes(text):
            t = normalise(lines)
            if t is None or len(t) > a.max_bytes:
                continue
            key = hashlib.sha1(re.sub(r"^[XT]:.*\n", "", t, flags=re.M).encode()).hexdigest()
            if key in seen:
                continue
            seen.add(key)
            tunes.append(t)
            counts[book] = counts.get(book, 0) + 1
    rng = random.Random(a.seed)
    rng.shuffle(tunes)
    n_val = max(1, int(len(tunes) * a.val_frac))
    val, train = tunes[:n_val], tunes[n_val:]
    os.makedirs(a.out, exist_ok=True)
    for name, part in (("train.jsonl", train), ("validation.jsonl", val)):
        with open(os.path.join(a.out, name), "w") as f:
            for t in part:
                f.write(json.dumps({"text": "\x02" + t + "\x03"}) + "\n")
    recipe = {
        "source": "music21 %s corpus (public-domain ABC tune books)" % music21.__version__,
        "books": counts,
        "excluded": sorted(EXCLUDED),
        "files": len(files),
        "tunes": len(tunes),
        "train_tunes": len(train),
        "validation_tunes": len(val),
        "train_bytes": sum(len(t) + 2 for t in train),
        "validation_bytes": sum(len(t) + 2 for t in val),
        "seed": a.seed,
        "framing": "BOS 2 + tune + EOS 3 per JSONL document",
        "max_bytes": a.max_bytes,
    }
    with open(os.path.join(a.out, "recipe.json"), "w") as f:
        json.dump(recipe, f, indent=2)
    print(json.dumps(recipe, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
