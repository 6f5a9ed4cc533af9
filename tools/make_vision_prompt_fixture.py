#!/usr/bin/env python3
"""Expected VisualRWKV-6 prompt tokens for tests/vision (prompt assembly, token by token).

Rules restated from the spec (shared/reference/multimodal_spec.md A.5/A.6, VisualRWKV v6.0 src/dataset.py): turns
"{User|Assistant}: {value}\n\n", values stripped with blank-line runs collapsed to "\n", the image split out of
its human turn (first: "<image>\n{text}", middle: "{all human text}\n<image>\n{text}", last: "{text}\n<image>"),
the LLaVA short-answer suffix dropped from the sandwich text, human turns and the first 3 assistant tokens
("Assistant:") unsupervised. Tokens from the official `rwkv` package's TRIE_TOKENIZER (pip `rwkv`).
Run: .venv/bin/python tools/make_vision_prompt_fixture.py
"""
import json
import os
import re

import rwkv
from rwkv.rwkv_tokenizer import TRIE_TOKENIZER

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUFFIX = "Answer the question using a single word or phrase."
tok = TRIE_TOKENIZER(os.path.join(os.path.dirname(rwkv.__file__), "rwkv_vocab_v20230424.txt"))


def clean(v):
    return re.sub(r"\n(\s*\n)+", "\n", v.strip())


def render(turns, position, open_assistant):
    sandwich = "\n".join(x for x in (clean(t["value"].replace("<image>", "").replace(SUFFIX, ""))
                                     for t in turns if t["from"] == "human") if x)
    before, after, sup, image_at = [], [], [], -1
    ids, sup = [], []
    all_turns = turns + ([{"from": "gpt", "value": None}] if open_assistant else [])
    for t in all_turns:
        if t["from"] == "gpt":
            if t["value"] is None:
                piece = tok.encode("Assistant:")
                ids += piece
                sup += [0] * len(piece)
            else:
                piece = tok.encode("Assistant: " + clean(t["value"]) + "\n\n")
                ids += piece
                sup += [0] * 3 + [1] * (len(piece) - 3)
            continue
        text = clean(t["value"].replace("<image>", ""))
        if "<image>" not in t["value"]:
            piece = tok.encode("User: " + text + "\n\n")
            ids += piece
            sup += [0] * len(piece)
            continue
        b, a = {"first": ("", "\n" + text), "middle": (sandwich + "\n", "\n" + text), "last": (text + "\n", "")}[position]
        piece = tok.encode("User: " + b)
        ids += piece
        sup += [0] * len(piece)
        image_at = len(ids)
        piece = tok.encode(a + "\n\n")
        ids += piece
        sup += [0] * len(piece)
    return {"ids": ids, "supervised": sup, "image_at": image_at}


CASES = [
    ("single_middle", [{"from": "human", "value": "<image>\nWhat colour is the triangle?"},
                       {"from": "gpt", "value": "red"}], "middle", False),
    ("multi_middle", [{"from": "human", "value": "Describe the picture.\n\n\n   <image>\nBe brief.  "},
                      {"from": "gpt", "value": "A cat.\n\n  \nOn a mat."},
                      {"from": "human", "value": "Why is it there?"},
                      {"from": "gpt", "value": "Because it is warm."}], "middle", False),
    ("multi_first", None, "first", False),
    ("multi_last", None, "last", False),
    ("suffix_middle", [{"from": "human", "value": "<image>\nWhat is it?\n" + SUFFIX},
                       {"from": "gpt", "value": "A dog"}], "middle", False),
    ("question_middle_open", [{"from": "human", "value": "<image>\nHow many circles are there?"}], "middle", True),
    ("text_only", [{"from": "human", "value": "Hello there"}, {"from": "gpt", "value": "Hi!"}], "middle", False),
]


def main():
    out = []
    for name, turns, pos, open_a in CASES:
        if turns is None:
            turns = CASES[1][1]
        r = render(turns, pos, open_a)
        out.append({"name": name, "turns": turns, "position": pos, "open_assistant": open_a, **r})
    path = os.path.join(ROOT, "tests", "fixtures", "vision", "prompt_cases.json")
    with open(path, "w") as f:
        json.dump({"generator": "tools/make_vision_prompt_fixture.py (rwkv package TRIE_TOKENIZER)",
                   "assistant_ids": tok.encode("Assistant:"), "double_newline_ids": tok.encode("\n\n"),
                   "cases": out}, f, indent=0)
    print("wrote", path)


if __name__ == "__main__":
    main()
