#!/usr/bin/env python3
# Writes tests/fixtures/tokenizer/world_tokenizer_cases.tsv: token ids produced by the OFFICIAL RWKV World
# tokenizer (pip package rwkv==0.8.32, rwkv.rwkv_tokenizer.TRIE_TOKENIZER with its bundled
# rwkv_vocab_v20230424.txt) on a seeded multilingual corpus, plus decodes of random id lists.
# Usage: .venv/bin/python tools/make_tokenizer_fixtures.py [--shared-vocab ../shared/data/rwkv_vocab_v20230424.txt]
import argparse
import hashlib
import os
import random
from importlib.metadata import version

import rwkv
from rwkv.rwkv_tokenizer import TRIE_TOKENIZER

SEED = 20230424
EXPECTED_VERSION = "0.8.32"

HAND_WRITTEN = {
    "spec_eiffel": "The Eiffel tower is in the city of",
    "spec_chat": "User: hi\n\nAssistant:",
    "english": "It was the best of times, it was the worst of times; it was the age of wisdom...\n"
               "Don't panic! \"Quotes\" and 'apostrophes' -- em—dashes, ellipses…",
    "chinese": "我们的目标是星辰大海。人工智能正在改变世界，语言模型可以写诗、编程和翻译。",
    "japanese": "吾輩は猫である。名前はまだ無い。カタカナとひらがな、漢字が混ざった文章です。",
    "korean": "안녕하세요, 세계! 오늘 날씨가 정말 좋네요.",
    "arabic": "مرحبا بالعالم. اللغة العربية تكتب من اليمين إلى اليسار.",
    "hindi": "नमस्ते दुनिया। हिन्दी देवनागरी लिपि में लिखी जाती है।",
    "russian": "Привет, мир! Съешь же ещё этих мягких французских булок, да выпей чаю.",
    "emoji": "Hello 👋🏽 world 🌍! Family: 👨‍👩‍👧‍👦, flags: 🇫🇷🇯🇵, hearts ❤️💔, faces 😀😂🤣",
    "code_python": "def fib(n: int) -> int:\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n\n"
                   "print([fib(i) for i in range(10)])  # 0 1 1 2 3 5 8\n",
    "code_cpp": "#include <vector>\nint main() {\n\tstd::vector<int> v{1, 2, 3};\n\tfor (auto& x : v) x *= 2;\n"
                "\treturn v[0] == 2 ? 0 : 1; // ok\n}\n",
    "whitespace_runs": "a" + " " * 200 + "b\t\t\t\tc\n\n\n\n\nd" + " \n" * 7 + "\r\n\r\n" + "\t" * 33 + "end   ",
    "control_chars": "".join(chr(c) for c in range(0, 32)) + "\x7f" + "mid\x00null\x1b[31mred\x1b[0m",
    "numbers": "3.14159265358979 2024-06-01 1,000,000 0x7fffffff 1e-10 -42 ½ ⅓ ①②③",
    "urls": "https://github.com/BlinkDL/RWKV-LM/blob/main/README.md?x=1&y=2#section email@example.com",
    "math": "∀ε>0 ∃δ>0: |x−a|<δ ⇒ |f(x)−f(a)|<ε; ∑_{k=1}^{n} k² = n(n+1)(2n+1)/6; ∫₀^∞ e^{−x²} dx = √π/2",
    "mixed_scripts": "English, 中文, 日本語, 한국어, العربية, हिन्दी, ไทย, Ελληνικά, עברית, Tiếng Việt.",
    "long_dashes": "-" * 300 + "=" * 81 + "#" * 17,
    "single_char": "x",
    "newline_only": "\n",
}

HAND_WRITTEN_BYTES = {
    "invalid_utf8_lone": b"abc\x80\xff\xfe def \xc3 ghi \xe4\xb8 jkl \xf0\x9f\x98",
    "invalid_utf8_overlong": b"\xc0\xaf \xe0\x80\xaf \xed\xa0\x80 surrogate \xf4\x90\x80\x80 too big",
    "bytes_all": bytes(range(256)),
    "bytes_all_reversed": bytes(range(255, -1, -1)),
}


def random_corpus(rng, tok, pieces):
    cases = {}
    # Mixtures of the hand-written pieces, cut at random byte positions (so UTF-8 may be split).
    for k in range(24):
        parts = [rng.choice(pieces) for _ in range(rng.randint(2, 8))]
        blob = "".join(parts).encode("utf-8")
        a = rng.randint(0, len(blob) // 3)
        b = rng.randint(2 * len(blob) // 3, len(blob))
        cases[f"mix_{k:02d}"] = blob[a:b]
    # Concatenations of random vocabulary tokens: greedy matching across token boundaries.
    ids = sorted(tok.idx2token)
    for k in range(16):
        cases[f"vocab_concat_{k:02d}"] = b"".join(tok.idx2token[rng.choice(ids)] for _ in range(rng.randint(5, 60)))
    # Long tokens (by length) with a random byte inserted or a prefix cut, to exercise backtracking.
    long_ids = [i for i in ids if len(tok.idx2token[i]) >= 12]
    for k in range(8):
        t = tok.idx2token[rng.choice(long_ids)]
        cut = rng.randint(1, len(t) - 1)
        cases[f"vocab_long_cut_{k:02d}"] = t[:cut] + bytes([rng.randrange(256)]) + t[cut:] + t[: len(t) - cut]
    # Random bytes (mostly invalid UTF-8) and random code points.
    for k in range(6):
        cases[f"random_bytes_{k:02d}"] = bytes(rng.randrange(256) for _ in range(rng.randint(50, 400)))
    for k in range(6):
        cps = []
        while len(cps) < rng.randint(30, 200):
            cp = rng.choice([rng.randint(0x20, 0x7E), rng.randint(0xA0, 0x2FFF), rng.randint(0x3000, 0x9FFF),
                             rng.randint(0xAC00, 0xD7A3), rng.randint(0x1F300, 0x1FAFF)])
            cps.append(chr(cp))
        cases[f"random_codepoints_{k:02d}"] = "".join(cps).encode("utf-8")
    return cases


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--shared-vocab", default=os.path.join(here, "..", "..", "shared", "data",
                                                           "rwkv_vocab_v20230424.txt"))
    ap.add_argument("--out", default=os.path.join(here, "..", "tests", "fixtures", "tokenizer",
                                                  "world_tokenizer_cases.tsv"))
    args = ap.parse_args()

    pkg_version = version("rwkv")
    assert pkg_version == EXPECTED_VERSION, f"expected rwkv=={EXPECTED_VERSION}, found {pkg_version}"
    vocab = os.path.join(os.path.dirname(rwkv.__file__), "rwkv_vocab_v20230424.txt")
    md5_pkg = hashlib.md5(open(vocab, "rb").read()).hexdigest()
    print(f"rwkv {pkg_version} vocab {vocab} md5 {md5_pkg}")
    if os.path.exists(args.shared_vocab):
        md5_shared = hashlib.md5(open(args.shared_vocab, "rb").read()).hexdigest()
        print(f"shared vocab {args.shared_vocab} md5 {md5_shared}: {'EQUAL' if md5_shared == md5_pkg else 'DIFFERENT'}")
        # The pip copy has CRLF line endings (spec §5.1); compare the content with '\r' removed.
        md5_pkg_lf = hashlib.md5(open(vocab, "rb").read().replace(b"\r", b"")).hexdigest()
        md5_shared_lf = hashlib.md5(open(args.shared_vocab, "rb").read().replace(b"\r", b"")).hexdigest()
        print(f"without CR: package {md5_pkg_lf}, shared {md5_shared_lf}: "
              f"{'EQUAL' if md5_pkg_lf == md5_shared_lf else 'DIFFERENT'}")

    tok = TRIE_TOKENIZER(vocab)
    rng = random.Random(SEED)
    cases = {name: text.encode("utf-8") for name, text in HAND_WRITTEN.items()}
    cases.update(HAND_WRITTEN_BYTES)
    cases.update(random_corpus(rng, tok, list(HAND_WRITTEN.values())))

    lines = [
        "# RWKV World tokenizer golden cases, generated by tools/make_tokenizer_fixtures.py",
        f"# official tokenizer: pip rwkv=={pkg_version}, rwkv.rwkv_tokenizer.TRIE_TOKENIZER, bundled "
        f"rwkv_vocab_v20230424.txt (md5 {md5_pkg}); seed {SEED}",
        "# columns (tab-separated): kind (encode|decode), name, bytes as hex, token ids (space-separated)",
        "# encode: ids = TRIE_TOKENIZER.encodeBytes(bytes); decode: bytes = TRIE_TOKENIZER.decodeBytes(ids)",
    ]
    for name, blob in cases.items():
        ids = tok.encodeBytes(blob)
        lines.append(f"encode\t{name}\t{blob.hex()}\t{' '.join(map(str, ids))}")
    ids_all = sorted(tok.idx2token)
    for k in range(8):
        ids = [rng.choice(ids_all) for _ in range(rng.randint(1, 40))]
        lines.append(f"decode\tdecode_{k:02d}\t{tok.decodeBytes(ids).hex()}\t{' '.join(map(str, ids))}")
    with open(args.out, "w", encoding="ascii") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {len(lines) - 4} cases to {args.out}")


if __name__ == "__main__":
    main()
