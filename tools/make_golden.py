#!/usr/bin/env python3
"""Generate golden reference fixtures for Aviary from the OFFICIAL `rwkv` pip package.

What it does (deterministic; rerunnable; overwrites its outputs):
  1. Builds small seeded random checkpoints in the exact official training layout
     (key names, shapes and state_dict key order of RWKV-LM x052 / x060), for
     RWKV-5.2 and RWKV-6, and saves each as an fp32 `.pth` and a bf16 `.pth`.
  2. Runs the official `rwkv` package (rwkv.model.RWKV, strategy "cpu fp32",
     RWKV_CUDA_ON=0, RWKV_JIT_ON=0 by default) on them: sequence mode with
     full_output=True, RNN mode token by token, a split run, and records the
     final recurrent state.
  3. Writes the expected values to `<name>.expected.safetensors` with the
     `safetensors` package (independent from the C++ writer).

Usage:  tools/setup-python.sh && .venv/bin/python tools/make_golden.py [--out DIR] [--jit]

bf16 files: the official package folds blocks.0.ln0 into emb.weight in the
*file dtype* (bf16 layer_norm on CPU works in torch 1.13, so the bf16 path is
taken).  The golden reference for a bf16 file is therefore produced from an
fp32 checkpoint whose values are exactly the bf16 values (ln0 folded in fp32),
run with "cpu fp32".  The official output for the bf16 file loaded as-is
(bf16 ln0 fold) is stored as well, under `*_bf16fold` names, for information.
"""

import argparse
import collections
import hashlib
import json
import math
import os
import struct
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures", "golden"))
    p.add_argument("--jit", action="store_true", help="run the package with RWKV_JIT_ON=1 (default 0)")
    p.add_argument("--quiet", action="store_true")
    return p.parse_args()


ARGS = parse_args()
# The package reads these at import time.
os.environ["RWKV_JIT_ON"] = "1" if ARGS.jit else "0"
os.environ["RWKV_CUDA_ON"] = "0"
os.environ.pop("RWKV_V7_ON", None)          # must not be "1": it replaces RWKV by the v7 class
os.environ.pop("RWKV_RESCALE_LAYER", None)  # default for "cpu fp32" is 0 (no rescale)

import torch  # noqa: E402
import numpy as np  # noqa: E402
import safetensors  # noqa: E402
from safetensors import safe_open  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
import rwkv  # noqa: E402
from rwkv.model import RWKV  # noqa: E402

try:
    from importlib.metadata import version as _pkg_version
    RWKV_VERSION = _pkg_version("rwkv")
    SAFETENSORS_VERSION = _pkg_version("safetensors")
except Exception:  # pragma: no cover
    RWKV_VERSION = getattr(rwkv, "__version__", "unknown")
    SAFETENSORS_VERSION = getattr(safetensors, "__version__", "unknown")

STRATEGY = "cpu fp32"
MASTER_SEED = 20240611
T_TOKENS = 12
SPLIT_AT = 5
SCRIPT_NAME = "tools/make_golden.py"

torch.set_num_threads(1)  # reproducible CPU reductions

# --------------------------------------------------------------------------------------------
# Random checkpoint construction (official key order)
# --------------------------------------------------------------------------------------------


class Rng:
    def __init__(self, seed):
        self.g = torch.Generator().manual_seed(seed)

    def normal(self, shape, std, mean=0.0):
        return torch.randn(*shape, generator=self.g, dtype=torch.float64).mul_(std).add_(mean).float()

    def uniform(self, shape, lo, hi):
        return torch.rand(*shape, generator=self.g, dtype=torch.float64).mul_(hi - lo).add_(lo).float()


# decay = exp(-exp(w)) in (0.3, 0.999)  <=>  w in (ln(-ln 0.999), ln(-ln 0.3)) = (-6.907, 0.186)
W_LO = math.log(-math.log(0.999))
W_HI = math.log(-math.log(0.3))


def linear(rng, out_f, in_f):
    """PyTorch nn.Linear weight (out, in), entries N(0, 1/sqrt(in))."""
    return rng.normal((out_f, in_f), 1.0 / math.sqrt(in_f))


def layer_norm_params(rng, prefix, n, sd):
    sd[prefix + ".weight"] = rng.normal((n,), 0.1, mean=1.0)
    sd[prefix + ".bias"] = rng.normal((n,), 0.1)


def make_checkpoint(version, seed, L=2, D=128, head_size=64, V=512, Lm=32, Ld=64, time_state=False):
    """Returns an OrderedDict in the order of the official trainer's state_dict()."""
    rng = Rng(seed)
    A = D                      # dim_att = n_embd (official default)
    H = A // head_size
    N = head_size
    F = int((D * 3.5) // 32 * 32)
    sd = collections.OrderedDict()
    sd["emb.weight"] = rng.normal((V, D), 1.0)
    for l in range(L):
        b = f"blocks.{l}."
        layer_norm_params(rng, b + "ln1", D, sd)
        layer_norm_params(rng, b + "ln2", D, sd)
        if l == 0:
            layer_norm_params(rng, b + "ln0", D, sd)
        a = b + "att."
        if version == "5.2":
            for c in "kvrg":
                sd[a + f"time_mix_{c}"] = rng.uniform((1, 1, D), 0.0, 1.0)
            sd[a + "time_decay"] = rng.uniform((H, N), W_LO, W_HI)
            sd[a + "time_faaaa"] = rng.uniform((H, N), -1.0, 1.0)
        else:
            for c in "xwkvrg":
                sd[a + f"time_maa_{c}"] = rng.uniform((1, 1, D), 0.0, 1.0)
            sd[a + "time_maa_w1"] = rng.normal((D, 5 * Lm), 0.1)
            sd[a + "time_maa_w2"] = rng.normal((5, Lm, D), 0.1)
            sd[a + "time_decay"] = rng.uniform((1, 1, A), W_LO, W_HI)
            sd[a + "time_decay_w1"] = rng.normal((D, Ld), 0.1)
            sd[a + "time_decay_w2"] = rng.normal((Ld, A), 0.1)
            sd[a + "time_faaaa"] = rng.uniform((H, N), -1.0, 1.0)
            if time_state:
                # trainer's x060_state: time_state is a parameter of the att module, stored (H, N_value, N_key)
                sd[a + "time_state"] = rng.normal((H, N, N), 0.5)
        sd[a + "receptance.weight"] = linear(rng, A, D)
        sd[a + "key.weight"] = linear(rng, A, D)
        sd[a + "value.weight"] = linear(rng, A, D)
        sd[a + "output.weight"] = linear(rng, D, A)
        sd[a + "gate.weight"] = linear(rng, A, D)
        sd[a + "ln_x.weight"] = rng.uniform((A,), 0.5, 1.5)
        sd[a + "ln_x.bias"] = rng.normal((A,), 0.1)
        f = b + "ffn."
        if version == "5.2":
            sd[f + "time_mix_k"] = rng.uniform((1, 1, D), 0.0, 1.0)
            sd[f + "time_mix_r"] = rng.uniform((1, 1, D), 0.0, 1.0)
        else:
            sd[f + "time_maa_k"] = rng.uniform((1, 1, D), 0.0, 1.0)
            sd[f + "time_maa_r"] = rng.uniform((1, 1, D), 0.0, 1.0)
        sd[f + "key.weight"] = linear(rng, F, D)
        sd[f + "receptance.weight"] = linear(rng, D, D)
        sd[f + "value.weight"] = linear(rng, D, F)
    layer_norm_params(rng, "ln_out", D, sd)
    sd["head.weight"] = linear(rng, V, D)
    dims = dict(n_layer=L, n_embd=D, dim_att=A, dim_ffn=F, n_head=H, head_size=N, vocab=V)
    if version == "6":
        dims.update(lora_mix=Lm, lora_decay=Ld)
    return sd, dims


def to_dtype(sd, dtype):
    return collections.OrderedDict((k, v.to(dtype).clone().contiguous()) for k, v in sd.items())


def save_pth(sd, path):
    torch.save(sd, path)


# --------------------------------------------------------------------------------------------
# Running the official package
# --------------------------------------------------------------------------------------------


def load_official(pth_path):
    assert pth_path.endswith(".pth")
    return RWKV(model=pth_path[:-4], strategy=STRATEGY, verbose=not ARGS.quiet)


def clone_state(state):
    return [s.detach().clone() for s in state]


def run_official(pth_path, tokens, L):
    model = load_official(pth_path)
    res = {"version": model.version, "n_head": model.args.n_head, "rescale": model.RESCALE_LAYER,
           "time_state": model.args.time_state}
    # (a) sequence mode, all positions
    logits_seq, state_seq = model.forward(list(tokens), None, full_output=True)
    res["logits_seq"] = logits_seq.detach().clone().float()
    res["state_seq"] = clone_state(state_seq)
    # (b) RNN mode, one token at a time
    state = None
    rows = []
    for t in tokens:
        out, state = model.forward([t], state)
        rows.append(out.detach().clone().float())
    res["logits_rnn"] = torch.stack(rows)
    res["state_rnn"] = clone_state(state)
    # (d) split: first SPLIT_AT tokens in sequence mode, the rest one by one
    out, state = model.forward(list(tokens[:SPLIT_AT]), None, full_output=True)
    rows = [r.clone() for r in out.float()]
    for t in tokens[SPLIT_AT:]:
        out, state = model.forward([t], state)
        rows.append(out.detach().clone().float())
    res["logits_split"] = torch.stack(rows)
    res["state_split"] = clone_state(state)
    assert len(res["state_rnn"]) == 3 * L
    return res


def canonicalize_safetensors(path):
    """The safetensors writer emits the JSON header from a hash map, so key order changes between runs.
    Rewrite only the header with sorted keys (tensor bytes and offsets untouched) so reruns are byte-identical."""
    with open(path, "rb") as f:
        blob = f.read()
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + n])
    meta = header.pop("__metadata__", None)
    canon = collections.OrderedDict()
    if meta is not None:
        canon["__metadata__"] = collections.OrderedDict(sorted(meta.items()))
    for k in sorted(header):
        canon[k] = header[k]
    text = json.dumps(canon, separators=(",", ":"), ensure_ascii=True).encode("utf-8")
    text += b" " * ((-len(text)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + blob[8 + n:])
    # check that the package still reads it back identically
    with safe_open(path, "pt") as g:
        assert g.metadata() == meta
        assert sorted(g.keys()) == sorted(header)


def spec_forward_fp64(sd, version, tokens):
    """Independent float64 re-implementation of the recurrence from the spec (rwkv_core_spec.md §2),
    written from the formulas, used only to cross-check the official outputs. RNN order, zero or
    time_state initial state, ln0 applied per token (no folding)."""
    d = {k: v.double() for k, v in sd.items()}
    D = d["emb.weight"].shape[1]
    L = 1 + max(int(k.split(".")[1]) for k in d if k.startswith("blocks."))
    H, N = d["blocks.0.att.time_faaaa"].shape
    ln = torch.nn.functional.layer_norm

    def gn(y, w, b):  # GroupNorm(H) on the raw wkv output with eps 64e-5
        y = y.view(H, N)
        mu = y.mean(-1, keepdim=True)
        var = ((y - mu) ** 2).mean(-1, keepdim=True)
        return ((y - mu) / torch.sqrt(var + 64e-5)).reshape(-1) * w + b

    att_prev = [torch.zeros(D, dtype=torch.float64) for _ in range(L)]
    ffn_prev = [torch.zeros(D, dtype=torch.float64) for _ in range(L)]
    S = []
    for l in range(L):
        ts = d.get(f"blocks.{l}.att.time_state")
        S.append(ts.transpose(1, 2).clone() if ts is not None else torch.zeros(H, N, N, dtype=torch.float64))
    outs = []
    for tok in tokens:
        x = ln(d["emb.weight"][tok], (D,), d["blocks.0.ln0.weight"], d["blocks.0.ln0.bias"])
        for l in range(L):
            a = f"blocks.{l}.att."
            f = f"blocks.{l}.ffn."
            xa = ln(x, (D,), d[f"blocks.{l}.ln1.weight"], d[f"blocks.{l}.ln1.bias"])
            prev = att_prev[l]
            if version == "5.2":
                mix = {c: xa * d[a + f"time_mix_{c}"].view(-1) + prev * (1 - d[a + f"time_mix_{c}"].view(-1)) for c in "kvrg"}
                decay = torch.exp(-torch.exp(d[a + "time_decay"]))                      # (H,N) over key j
            else:
                dx = prev - xa
                m0 = xa + dx * d[a + "time_maa_x"].view(-1)
                h = torch.tanh(m0 @ d[a + "time_maa_w1"])
                Lm = h.shape[0] // 5
                mix = {}
                for ci, c in enumerate("wkvrg"):
                    delta = h[ci * Lm:(ci + 1) * Lm] @ d[a + "time_maa_w2"][ci]
                    mix[c] = xa + dx * (d[a + f"time_maa_{c}"].view(-1) + delta)
                wr = d[a + "time_decay"].view(-1) + torch.tanh(mix["w"] @ d[a + "time_decay_w1"]) @ d[a + "time_decay_w2"]
                decay = torch.exp(-torch.exp(wr)).view(H, N)
            r = (d[a + "receptance.weight"] @ mix["r"]).view(H, N)
            k = (d[a + "key.weight"] @ mix["k"]).view(H, N)
            v = (d[a + "value.weight"] @ mix["v"]).view(H, N)
            g = torch.nn.functional.silu(d[a + "gate.weight"] @ mix["g"])
            u = d[a + "time_faaaa"]
            kv = k.unsqueeze(2) * v.unsqueeze(1)                                         # [h][j=key][i=value]
            y = torch.einsum("hj,hji->hi", r, u.unsqueeze(2) * kv + S[l])
            S[l] = kv + decay.unsqueeze(2) * S[l]
            o = gn(y.reshape(-1), d[a + "ln_x.weight"], d[a + "ln_x.bias"]) * g
            x = x + d[a + "output.weight"] @ o
            att_prev[l] = xa
            xf = ln(x, (D,), d[f"blocks.{l}.ln2.weight"], d[f"blocks.{l}.ln2.bias"])
            pf = ffn_prev[l]
            if version == "5.2":
                xk = xf * d[f + "time_mix_k"].view(-1) + pf * (1 - d[f + "time_mix_k"].view(-1))
                xr = xf * d[f + "time_mix_r"].view(-1) + pf * (1 - d[f + "time_mix_r"].view(-1))
            else:
                xk = xf + (pf - xf) * d[f + "time_maa_k"].view(-1)
                xr = xf + (pf - xf) * d[f + "time_maa_r"].view(-1)
            kk = torch.relu(d[f + "key.weight"] @ xk) ** 2
            x = x + torch.sigmoid(d[f + "receptance.weight"] @ xr) * (d[f + "value.weight"] @ kk)
            ffn_prev[l] = xf
        outs.append(d["head.weight"] @ ln(x, (D,), d["ln_out.weight"], d["ln_out.bias"]))
    state = []
    for l in range(L):
        state += [att_prev[l], S[l], ffn_prev[l]]
    return torch.stack(outs), state


def max_rel(a, b):
    a = a.double()
    b = b.double()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


# --------------------------------------------------------------------------------------------


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def state_tensors(prefix, state, L):
    out = collections.OrderedDict()
    for l in range(L):
        out[f"{prefix}.{l}.att_shift"] = state[3 * l + 0].float().contiguous()
        out[f"{prefix}.{l}.wkv"] = state[3 * l + 1].float().contiguous()
        out[f"{prefix}.{l}.ffn_shift"] = state[3 * l + 2].float().contiguous()
    return out


SPECS = [
    # name, version, seed offset, kwargs, dtypes to write
    ("v5", "5.2", 1, {}, ("fp32", "bf16")),
    ("v6", "6", 2, {}, ("fp32", "bf16")),
    ("v6_ranks", "6", 3, {"Lm": 16, "Ld": 32}, ("bf16",)),  # bf16 only, to keep the fixtures small
    ("v6_state", "6", 4, {"time_state": True}, ("bf16",)),  # state-tuning outputs are bf16
]


def main():
    os.makedirs(ARGS.out, exist_ok=True)
    tok_rng = torch.Generator().manual_seed(MASTER_SEED)
    tokens = torch.randint(0, 512, (T_TOKENS,), generator=tok_rng, dtype=torch.int64)
    tok_list = [int(t) for t in tokens]
    summary = []
    with tempfile.TemporaryDirectory(prefix="aviary_golden_") as tmp:
        for name, version, seed_off, kw, dtypes in SPECS:
            seed = MASTER_SEED + seed_off
            sd, dims = make_checkpoint(version, seed, **kw)
            L = dims["n_layer"]
            for dt in dtypes:
                fname = f"{name}_{dt}"
                pth = os.path.join(ARGS.out, fname + ".pth")
                if dt == "fp32":
                    save_pth(to_dtype(sd, torch.float32), pth)
                    ref_path = pth
                    note_dtype = "fp32 checkpoint run directly with strategy 'cpu fp32'."
                else:
                    sd_bf = to_dtype(sd, torch.bfloat16)
                    save_pth(sd_bf, pth)
                    # reference: fp32 checkpoint holding exactly the bf16 values (ln0 fold in fp32)
                    ref_path = os.path.join(tmp, fname + "_as_fp32.pth")
                    save_pth(to_dtype(sd_bf, torch.float32), ref_path)
                    note_dtype = ("bf16 checkpoint; reference = the same bf16 values upcast to an fp32 "
                                  "checkpoint (so ln0 is folded into emb in fp32), run with 'cpu fp32'. "
                                  "*_bf16fold tensors = official package on the bf16 file as-is "
                                  "(ln0 folded in bf16), for information only.")
                res = run_official(ref_path, tok_list, L)
                exp_version = 5.2 if version == "5.2" else 6.0
                assert abs(res["version"] - exp_version) < 1e-9, (res["version"], exp_version)
                assert res["n_head"] == dims["n_head"], res["n_head"]
                assert res["rescale"] == 0
                assert res["time_state"] == bool(kw.get("time_state")), res["time_state"]
                d_seq_rnn = max_rel(res["logits_seq"], res["logits_rnn"])
                d_split_rnn = max_rel(res["logits_split"][-1], res["logits_rnn"][-1])
                d_state = max(max_rel(a, b) for a, b in zip(res["state_seq"], res["state_rnn"]))
                tensors = collections.OrderedDict()
                tensors["tokens"] = tokens.clone()
                tensors["logits_seq"] = res["logits_seq"].contiguous()
                tensors["logits_rnn"] = res["logits_rnn"].contiguous()
                tensors["logits_split"] = res["logits_split"].contiguous()
                tensors["logits_split_last"] = res["logits_split"][-1].clone().contiguous()
                tensors.update(state_tensors("state", res["state_rnn"], L))
                if kw.get("time_state"):
                    for l in range(L):
                        ts = sd[f"blocks.{l}.att.time_state"]
                        src = ts if dt == "fp32" else ts.to(torch.bfloat16).float()
                        tensors[f"init_state.{l}.wkv"] = src.transpose(1, 2).contiguous().float()
                ref_sd = sd if dt == "fp32" else to_dtype(to_dtype(sd, torch.bfloat16), torch.float32)
                spec_logits, spec_state = spec_forward_fp64(ref_sd, version, tok_list)
                d_spec = max_rel(res["logits_rnn"], spec_logits)
                d_spec_state = max(max_rel(a, b) for a, b in zip(res["state_rnn"], spec_state))
                assert d_spec < 1e-4 and d_spec_state < 1e-4, (d_spec, d_spec_state)
                d_fold = None
                if dt == "bf16":
                    res_bf = run_official(pth, tok_list, L)
                    tensors["logits_seq_bf16fold"] = res_bf["logits_seq"].contiguous()
                    tensors["logits_rnn_bf16fold"] = res_bf["logits_rnn"].contiguous()
                    d_fold = max_rel(res_bf["logits_rnn"], res["logits_rnn"])
                notes = [note_dtype,
                         f"Checkpoint {fname}.pth (sha256 {sha256(pth)}).",
                         "RWKV_CUDA_ON=0, RWKV_JIT_ON=%s, RWKV_RESCALE_LAYER unset (0 for fp32)." % os.environ["RWKV_JIT_ON"],
                         "logits_seq: forward(tokens, None, full_output=True); logits_rnn: forward([t], state) one "
                         "token at a time from a None state; logits_split: first %d tokens in one sequence call "
                         "(full_output=True) then one by one; state.*: final state of the RNN run (max_rel_state_seq_vs_rnn "
                         "compares it with the state returned by the sequence call). wkv is (H,N,N) [head][key][value] (package layout); "
                         "att_shift/ffn_shift are the LayerNorm-ed ln1/ln2 outputs of the last token." % SPLIT_AT]
                if kw.get("time_state"):
                    notes.append("Checkpoint holds blocks.{l}.att.time_state stored (H, N_value, N_key) as the "
                                 "trainer does; the package starts from time_state.transpose(1,2). "
                                 "init_state.{l}.wkv = that initial state in [key][value] layout.")
                meta = {
                    "generator": SCRIPT_NAME,
                    "rwkv_package_version": RWKV_VERSION,
                    "torch_version": torch.__version__,
                    "safetensors_version": SAFETENSORS_VERSION,
                    "numpy_version": np.__version__,
                    "python_version": sys.version.split()[0],
                    "strategy": STRATEGY,
                    "version": version,
                    "checkpoint": fname + ".pth",
                    "checkpoint_dtype": dt,
                    "seed": str(seed),
                    "token_seed": str(MASTER_SEED),
                    "tokens": json.dumps(tok_list),
                    "split_at": str(SPLIT_AT),
                    "dims": json.dumps(dims),
                    "jit": os.environ["RWKV_JIT_ON"],
                    "max_rel_seq_vs_rnn": "%.3e" % d_seq_rnn,
                    "max_rel_split_vs_rnn_last": "%.3e" % d_split_rnn,
                    "max_rel_state_seq_vs_rnn": "%.3e" % d_state,
                    "notes": " ".join(notes),
                }
                meta["max_rel_official_vs_spec_fp64"] = "%.3e" % d_spec
                meta["max_rel_state_official_vs_spec_fp64"] = "%.3e" % d_spec_state
                if d_fold is not None:
                    meta["max_rel_bf16fold_vs_reference"] = "%.3e" % d_fold
                exp_path = os.path.join(ARGS.out, fname + ".expected.safetensors")
                save_file(tensors, exp_path, metadata=meta)
                canonicalize_safetensors(exp_path)
                os.chmod(exp_path, 0o644)
                with safe_open(exp_path, "pt") as g:
                    for k, v in tensors.items():
                        assert torch.equal(g.get_tensor(k), v), k
                summary.append((fname, version, dims, d_seq_rnn, d_split_rnn, d_state, d_spec, d_fold,
                                os.path.getsize(pth), os.path.getsize(exp_path)))
    print()
    print(f"rwkv {RWKV_VERSION}  torch {torch.__version__}  strategy '{STRATEGY}'  JIT {os.environ['RWKV_JIT_ON']}")
    print(f"tokens {tok_list}")
    total = 0
    for fname, version, dims, a, b, c, e, d, s1, s2 in summary:
        total += s1 + s2
        extra = f" ranks Lm={dims['lora_mix']} Ld={dims['lora_decay']}" if "lora_mix" in dims else ""
        fold = f"  bf16fold-vs-ref {d:.2e}" if d is not None else ""
        print(f"{fname:14s} v{version:3s} L{dims['n_layer']} D{dims['n_embd']} H{dims['n_head']} F{dims['dim_ffn']}"
              f" V{dims['vocab']}{extra}  seq-vs-rnn {a:.2e}  split-vs-rnn {b:.2e}  state {c:.2e}  vs-fp64-spec {e:.2e}{fold}"
              f"  [{s1/1e6:.2f} MB + {s2/1e3:.0f} kB]")
    print(f"total {total/1e6:.2f} MB in {ARGS.out}")


if __name__ == "__main__":
    main()
