#!/usr/bin/env python3
"""Golden fixtures for the RWKV-4 baseline (issue 10) from the OFFICIAL `rwkv` pip package.

Builds a small seeded random RWKV-4 checkpoint in the official RWKV-LM v4neo layout (L=2, D=128, V=512;
time_decay/time_first (A), time_mix_k/v/r (1,1,D), no gate/ln_x), saves it as tests/fixtures/golden/v4_fp32.pth,
runs rwkv.model.RWKV (strategy "cpu fp32", RWKV_JIT_ON=0, RWKV_CUDA_ON=0) in sequence mode, RNN mode and a
split run, and writes v4_fp32.expected.safetensors with the same tensor names as tools/make_golden.py
(state.{l}.wkv is the package's (aa, bb, pp) stacked as (3, A)).

Usage:  tools/setup-python.sh && .venv/bin/python tools/make_golden_v4.py [--out DIR]
"""
import argparse
import collections
import math
import os

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures", "golden"))
ARGS = ap.parse_args()
os.environ["RWKV_JIT_ON"] = "0"
os.environ["RWKV_CUDA_ON"] = "0"
os.environ.pop("RWKV_V7_ON", None)
os.environ.pop("RWKV_RESCALE_LAYER", None)

import rwkv  # noqa: E402
from rwkv.model import RWKV  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

SEED = 20240611 + 10
T_TOKENS, SPLIT_AT = 12, 5
L, D, V = 2, 128, 512
F = int((D * 3.5) // 32 * 32)
torch.set_num_threads(1)


def main():
    g = torch.Generator().manual_seed(SEED)

    def normal(shape, std, mean=0.0):
        return torch.randn(*shape, generator=g, dtype=torch.float64).mul_(std).add_(mean).float()

    def uniform(shape, lo, hi):
        return torch.rand(*shape, generator=g, dtype=torch.float64).mul_(hi - lo).add_(lo).float()

    sd = collections.OrderedDict()
    sd["emb.weight"] = normal((V, D), 1.0)
    for l in range(L):
        b = f"blocks.{l}."
        for n in (["ln1", "ln2"] + (["ln0"] if l == 0 else [])):
            sd[b + n + ".weight"] = normal((D,), 0.1, 1.0)
            sd[b + n + ".bias"] = normal((D,), 0.1)
        a = b + "att."
        # decay per step exp(-exp(time_decay)) in (0.3, 0.999); bonus in (-1, 1)
        sd[a + "time_decay"] = uniform((D,), math.log(-math.log(0.999)), math.log(-math.log(0.3)))
        sd[a + "time_first"] = uniform((D,), -1.0, 1.0)
        for c in "kvr":
            sd[a + f"time_mix_{c}"] = uniform((1, 1, D), 0.0, 1.0)
        for m in ("key", "value", "receptance"):
            sd[a + m + ".weight"] = normal((D, D), 1.0 / math.sqrt(D))
        sd[a + "output.weight"] = normal((D, D), 1.0 / math.sqrt(D))
        f = b + "ffn."
        sd[f + "time_mix_k"] = uniform((1, 1, D), 0.0, 1.0)
        sd[f + "time_mix_r"] = uniform((1, 1, D), 0.0, 1.0)
        sd[f + "key.weight"] = normal((F, D), 1.0 / math.sqrt(D))
        sd[f + "receptance.weight"] = normal((D, D), 1.0 / math.sqrt(D))
        sd[f + "value.weight"] = normal((D, F), 1.0 / math.sqrt(F))
    sd["ln_out.weight"] = normal((D,), 0.1, 1.0)
    sd["ln_out.bias"] = normal((D,), 0.1)
    sd["head.weight"] = normal((V, D), 1.0 / math.sqrt(D))

    os.makedirs(ARGS.out, exist_ok=True)
    pth = os.path.join(ARGS.out, "v4_fp32.pth")
    torch.save(sd, pth)
    model = RWKV(model=pth[:-4], strategy="cpu fp32", verbose=False)
    assert model.version == 4, model.version
    tokens = torch.randint(0, V, (T_TOKENS,), generator=torch.Generator().manual_seed(SEED + 1))
    tok = [int(t) for t in tokens]

    logits_seq, state_seq = model.forward(tok, None, full_output=True)
    state, rows = None, []
    for t in tok:
        out, state = model.forward([t], state)
        rows.append(out.float().clone())
    logits_rnn = torch.stack(rows)
    out, st = model.forward(tok[:SPLIT_AT], None, full_output=True)
    rows = [r.clone() for r in out.float()]
    for t in tok[SPLIT_AT:]:
        o, st = model.forward([t], st)
        rows.append(o.float().clone())
    logits_split = torch.stack(rows)

    def rel(a, b):
        return float((a.double() - b.double()).abs().max() / b.double().abs().max())

    assert rel(logits_seq, logits_rnn) < 1e-4, rel(logits_seq, logits_rnn)
    t = collections.OrderedDict()
    t["tokens"] = tokens.clone()
    t["logits_seq"] = logits_seq.float().contiguous()
    t["logits_rnn"] = logits_rnn.contiguous()
    t["logits_split"] = logits_split.contiguous()
    t["logits_split_last"] = logits_split[-1].clone().contiguous()
    for l in range(L):  # package state per layer: 0 att_xx, 1 aa, 2 bb, 3 pp, 4 ffn_xx
        s = state[5 * l:5 * l + 5]
        t[f"state.{l}.att_shift"] = s[0].float().contiguous()
        t[f"state.{l}.wkv"] = torch.stack([s[1], s[2], s[3]]).float().contiguous()
        t[f"state.{l}.ffn_shift"] = s[4].float().contiguous()
    meta = {"generator": "tools/make_golden_v4.py", "rwkv_version": getattr(rwkv, "__version__", "0.8.32"),
            "torch_version": torch.__version__, "strategy": "cpu fp32", "seed": str(SEED),
            "notes": "RWKV-4 (v4neo layout) random weights; logits_seq: forward(tokens, None, full_output=True); "
                     "logits_rnn: one token at a time; logits_split: %d tokens then one by one; state.*: final "
                     "RNN state, wkv = stack(aa, bb, pp)." % SPLIT_AT}
    path = os.path.join(ARGS.out, "v4_fp32.expected.safetensors")
    save_file(t, path, metadata=meta)
    print("wrote", pth, path, "seq-vs-rnn", rel(logits_seq, logits_rnn))


if __name__ == "__main__":
    main()
