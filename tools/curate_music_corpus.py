#!/usr/bin/env python3
# Curates the music corpus of tools/make_music_corpus.py for training (docs/MUSIC.md, "Curated corpus"):
#  1. spells out the bowing shorthand of the 19th-century books: a `u` / `v` decoration before a note, bar or
#     group in the tune body becomes `!upbow!` / `!downbow!` (ABC 2.1 §4.14 lists both spellings; abc2midi 4.84
#     rejects the short one as "Malformed note"). Header fields, "quoted" text and !decorations! are untouched;
#  2. drops every tune that abc2midi (Debian abcmidi) still reports an `Error` for (abc2midi exits 0 on errors,
#     so its messages are read, as `aviary music` does).
# The train/validation split of the input is kept; recipe.json records the counts and the reasons for drops.
# Usage: python3 tools/curate_music_corpus.py --data data/music --out data/music_clean
import argparse
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

HEADER_RE = re.compile(r"^[A-Za-z]:")
# u/v directly before what a decoration may precede: a note, rest, accidental, group, chord, slur, tuplet, bar.
BOWING_RE = re.compile(r"(?<![A-Za-z!\"])([uv])(?=[A-Ga-gzx^_=(\[{|.~HLMOPSTuv])")


def spell_bowing(tune):
    out, in_body = [], False
    for line in tune.split("\n"):
        if not in_body or HEADER_RE.match(line) or line.startswith("%"):
            in_body = in_body or line.startswith("K:")
            out.append(line)
            continue
        # Leave "quoted text" and !decorations! alone.
        parts = re.split(r"(\"[^\"]*\"|![^!]*!)", line)
        for i in range(0, len(parts), 2):
            parts[i] = BOWING_RE.sub(lambda m: "!upbow!" if m.group(1) == "u" else "!downbow!", parts[i])
        out.append("".join(parts))
    return "\n".join(out)


def abc2midi_errors(tune, work):
    path = os.path.join(work, "t.abc")
    with open(path, "w", encoding="ascii") as f:
        f.write(tune + "\n")
    r = subprocess.run(["abc2midi", path, "-o", os.path.join(work, "t.mid")], capture_output=True, text=True,
                       errors="replace")
    return [l for l in (r.stdout + r.stderr).splitlines() if l.startswith("Error")]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="data/music", help="folder with train.jsonl and validation.jsonl")
    ap.add_argument("--out", default="data/music_clean")
    args = ap.parse_args()
    if shutil.which("abc2midi") is None:
        sys.exit("error: abc2midi not found (Debian package abcmidi)")
    os.makedirs(args.out, exist_ok=True)
    recipe = {"source": os.path.join(args.data, "recipe.json"), "tool": "tools/curate_music_corpus.py",
              "abc2midi": subprocess.run(["abc2midi", "-ver"], capture_output=True, text=True).stdout.strip(),
              "splits": {}}
    with tempfile.TemporaryDirectory() as work:
        for split in ("train", "validation"):
            kept, bowing, reasons, total = [], 0, collections.Counter(), 0
            for line in open(os.path.join(args.data, split + ".jsonl"), encoding="utf-8"):
                text = json.loads(line)["text"]
                total += 1
                tune = text.strip("\x02\x03").strip("\n")
                spelled = spell_bowing(tune)
                bowing += spelled != tune
                errors = abc2midi_errors(spelled, work)
                if errors:
                    reasons[errors[0].split(":", 2)[-1].strip()[:48]] += 1
                    continue
                kept.append(json.dumps({"text": "\x02" + spelled + "\x03"}))
            with open(os.path.join(args.out, split + ".jsonl"), "w", encoding="utf-8") as f:
                f.write("\n".join(kept) + "\n")
            recipe["splits"][split] = {"tunes_in": total, "tunes_kept": len(kept), "bowing_spelled_out": bowing,
                                       "dropped_by_first_abc2midi_error": dict(reasons.most_common())}
            print(f"{split}: kept {len(kept)}/{total} tunes ({bowing} with bowing spelled out)", file=sys.stderr)
    with open(os.path.join(args.out, "recipe.json"), "w") as f:
        json.dump(recipe, f, indent=2)


if __name__ == "__main__":
    main()
