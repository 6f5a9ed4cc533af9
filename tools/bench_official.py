#!/usr/bin/env python3
"""CPU speed of the OFFICIAL `rwkv` pip package, timed the way `aviary bench` times Aviary.

Run with the project venv (torch 1.13 + rwkv 0.8.32):  .venv/bin/python tools/bench_official.py [options]

Model part (per version x strategy x thread count):
  * a random checkpoint of the 0.1B shape (L12 D768 H12x64 F2688 V65536, LoRA 32/64), built by
    tools/make_golden.py's make_checkpoint (official key names), saved as an fp32 .pth in a temp dir;
  * loaded with RWKV(strategy=...) under RWKV_JIT_ON=1, RWKV_CUDA_ON=0;
  * prefill: one model.forward(tokens_512, None) call, best of 2-5 (up to 5 within 2 s, as `aviary bench`) after
    one warm-up call;
  * decode batch 1: model.forward([tok], state) one token at a time, 3 warm-up steps then 32 timed
    steps, feeding back the argmax.
Tokenizer part (with --tokenizer-text FILE): rwkv.rwkv_tokenizer.TRIE_TOKENIZER encode/decode MB/s.
--write-text FILE writes a seeded English/code/CJK mixture built from the vocabulary, so that the
same file can be given to aviary-bench-tokenizer.

Every result is printed as a human line on stderr and one JSON line on stdout.
"""

import argparse
import gc
import json
import os
import random
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--versions", default="6", help="comma list of 6 and/or 5.2 (default 6)")
    p.add_argument("--strategies", default="cpu fp32,cpu bf16", help="comma list of official strategy strings")
    p.add_argument("--threads", default="2,1", help="comma list of torch thread counts (default 2,1)")
    p.add_argument("--prompt-tokens", type=int, default=512)
    p.add_argument("--decode-tokens", type=int, default=32)
    p.add_argument("--no-model", action="store_true", help="skip the model benchmark")
    p.add_argument("--tokenizer-text", help="time the official TRIE_TOKENIZER on this UTF-8 file")
    p.add_argument("--tokenizer-runs", type=int, default=3)
    p.add_argument("--write-text", help="write a seeded text mixture to this file and exit")
    p.add_argument("--mb", type=float, default=4.0, help="size of the --write-text mixture in MB")
    return p.parse_args()


ARGS = parse_args()

# tools/make_golden.py parses sys.argv and sets RWKV_JIT_ON / RWKV_CUDA_ON when imported, before it
# imports the official package: give it the arguments that select the JIT.
_argv = sys.argv
sys.argv = [os.path.join(HERE, "make_golden.py"), "--jit", "--quiet"]
sys.path.insert(0, HERE)
import make_golden  # noqa: E402
sys.argv = _argv
assert os.environ.get("RWKV_JIT_ON") == "1" and os.environ.get("RWKV_CUDA_ON") == "0"

import torch  # noqa: E402
import rwkv  # noqa: E402
from rwkv.model import RWKV  # noqa: E402
from rwkv.rwkv_tokenizer import TRIE_TOKENIZER  # noqa: E402

VOCAB_FILE = os.path.join(os.path.dirname(rwkv.__file__), "rwkv_vocab_v20230424.txt")
SHAPE = dict(L=12, D=768, head_size=64, V=65536, Lm=32, Ld=64)  # the 0.1B shape


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def emit(obj):
    print(json.dumps(obj), flush=True)


# ------------------------------------------------------------------------------------------------
# Model speed
# ------------------------------------------------------------------------------------------------


def bench_model(pth, version, strategy, threads):
    torch.set_num_threads(threads)
    try:
        model = RWKV(model=pth[:-4], strategy=strategy, verbose=False)
    except Exception as e:  # e.g. a strategy the package cannot run on this CPU
        return {"error": f"load failed: {type(e).__name__}: {e}"}
    g = torch.Generator().manual_seed(7)
    V = SHAPE["V"]
    prompt = torch.randint(1, V, (ARGS.prompt_tokens,), generator=g).tolist()
    try:
        model.forward(prompt, None)  # warm-up (also lets the TorchScript profiling executor specialise)
        best, spent, rep = float("inf"), 0.0, 0
        while rep < 5 and (rep < 2 or spent < 2.0):  # as `aviary bench`: the best of 2-5 runs, up to 5 within 2 s
            t0 = time.perf_counter()
            model.forward(prompt, None)
            t = time.perf_counter() - t0
            best, spent, rep = min(best, t), spent + t, rep + 1
        prefill = ARGS.prompt_tokens / best

        tok = int(torch.randint(1, V, (1,), generator=g))
        state = None
        for _ in range(3):  # warm-up
            _, state = model.forward([tok], state)
        t0 = time.perf_counter()
        for _ in range(ARGS.decode_tokens):
            logits, state = model.forward([tok], state)
            tok = int(logits.argmax(-1))
        decode = ARGS.decode_tokens / (time.perf_counter() - t0)
    except Exception as e:
        return {"error": f"forward failed: {type(e).__name__}: {e}"}
    finally:
        del model
        gc.collect()
    return {"prefill_tok_s": prefill, "decode_tok_s": decode}


def run_models():
    versions = [v.strip() for v in ARGS.versions.split(",") if v.strip()]
    strategies = [s.strip() for s in ARGS.strategies.split(",") if s.strip()]
    threads = [int(t) for t in ARGS.threads.split(",") if t.strip()]
    with tempfile.TemporaryDirectory(prefix="aviary_bench_official_") as tmp:
        for version in versions:
            assert version in ("6", "5.2"), version
            t0 = time.perf_counter()
            sd, dims = make_golden.make_checkpoint(version, 1, **SHAPE)
            pth = os.path.join(tmp, f"rwkv{version}_0.1b.pth")
            torch.save(sd, pth)
            del sd
            gc.collect()
            log(f"official: built random RWKV-{version} 0.1B checkpoint {dims} in {time.perf_counter() - t0:.1f} s")
            for strategy in strategies:
                for n in threads:
                    r = bench_model(pth, version, strategy, n)
                    rec = {"bench": "model", "impl": f"rwkv {make_golden.RWKV_VERSION}", "model": "shape 0.1b",
                           "version": version, "strategy": strategy, "threads": n,
                           "prompt_tokens": ARGS.prompt_tokens, "decode_tokens": ARGS.decode_tokens,
                           "jit": os.environ["RWKV_JIT_ON"], "torch": torch.__version__}
                    rec.update(r)
                    if "error" in r:
                        log(f"official RWKV-{version} '{strategy}' {n} thr: {r['error']}")
                    else:
                        log(f"official RWKV-{version} '{strategy}' {n} thr: prefill {r['prefill_tok_s']:.1f} tok/s, "
                            f"decode {r['decode_tok_s']:.1f} tok/s")
                    emit(rec)
            os.remove(pth)


# ------------------------------------------------------------------------------------------------
# Tokenizer speed
# ------------------------------------------------------------------------------------------------


def write_text(path, mb):
    """Seeded mixture from the vocabulary: ~60% English sentences, ~20% code lines, ~20% CJK runs."""
    tok = TRIE_TOKENIZER(VOCAB_FILE)
    words, cjk = [], []
    for idx, b in tok.idx2token.items():
        if idx < 257:
            continue
        if 3 <= len(b) <= 10 and b[0:1] == b" " and all(97 <= c <= 122 for c in b[1:]):
            words.append(b.decode())
        elif len(b) in (3, 6) and 0xE4 <= b[0] <= 0xE9:
            try:
                cjk.append(b.decode("utf-8"))
            except UnicodeDecodeError:
                pass
    code = ["    for (size_t j = 0; j < rows; ++j) {\n", "        acc += a[j] * b[j];\n", "    }\n",
            "def step(self, token, state):\n", "        return logits, state\n", "import numpy as np\n",
            "    if (err != 0) { return err; }\n"]
    rng = random.Random(1234)
    parts, size, limit = [], 0, int(mb * 1e6)
    while size < limit:
        k = rng.random()
        if k < 0.6:
            s = "A" + "".join(rng.choice(words) for _ in range(rng.randint(8, 27))) + rng.choice([".\n", ", then"])
        elif k < 0.8:
            s = rng.choice(code)
        else:
            s = "".join(rng.choice(cjk) for _ in range(rng.randint(10, 39))) + "\u3002\n"
        parts.append(s)
        size += len(s.encode("utf-8"))
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(parts))
    log(f"wrote {size / 1e6:.2f} MB mixture to {path}")


def run_tokenizer(path):
    t0 = time.perf_counter()
    tok = TRIE_TOKENIZER(VOCAB_FILE)
    load_s = time.perf_counter() - t0
    with open(path, "r", encoding="utf-8") as f:
        text = f.read()
    mbytes = len(text.encode("utf-8")) / 1e6
    enc_best = dec_best = float("inf")
    ids = back = None
    for _ in range(ARGS.tokenizer_runs):
        t0 = time.perf_counter()
        ids = tok.encode(text)
        enc_best = min(enc_best, time.perf_counter() - t0)
    for _ in range(ARGS.tokenizer_runs):
        t0 = time.perf_counter()
        back = tok.decode(ids)
        dec_best = min(dec_best, time.perf_counter() - t0)
    assert back == text, "official decode(encode(text)) differs from the input"
    rec = {"bench": "tokenizer", "impl": f"rwkv {make_golden.RWKV_VERSION} TRIE_TOKENIZER (Python)",
           "file": path, "mb": mbytes, "tokens": len(ids), "runs": ARGS.tokenizer_runs, "load_s": load_s,
           "encode_mb_s": mbytes / enc_best, "decode_mb_s": mbytes / dec_best,
           "encode_mtok_s": len(ids) / enc_best / 1e6}
    log(f"official tokenizer: {mbytes:.2f} MB, {len(ids)} tokens; encode {rec['encode_mb_s']:.2f} MB/s, "
        f"decode {rec['decode_mb_s']:.2f} MB/s")
    emit(rec)


def main():
    if ARGS.write_text:
        write_text(ARGS.write_text, ARGS.mb)
        return
    if ARGS.tokenizer_text:
        run_tokenizer(ARGS.tokenizer_text)
    if not ARGS.no_model:
        run_models()


if __name__ == "__main__":
    main()
