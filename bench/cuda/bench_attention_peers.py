#!/usr/bin/env python3
"""Peers of the WKV kernel in the Eagle/Finch paper's setting (batch 8, D = 4096 = 64 heads of 64, bf16):
PyTorch SDPA with the FlashAttention backend (causal) and flash-linear-attention's chunked RWKV-6
(fla.ops.rwkv6.chunk_rwkv6, log decay and scale=1.0, as our kernel). Forward and forward+backward time (CUDA
events, mean of a few calls after a warm-up) and peak memory (torch.cuda.max_memory_allocated, inputs included).
Usage: bench_attention_peers.py sdpa|fla OUT.json [T ...]. Run by bench/cuda/run_model_device.sh."""
import json
import sys

import torch
import torch.nn.functional as F

B, H, N = 8, 64, 64


def time_ms(fn, warmup=1, iters=3):
    for _ in range(warmup):
        fn()
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(iters):
        fn()
    stop.record()
    torch.cuda.synchronize()
    return start.elapsed_time(stop) / iters


def peak_gib(fn):
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    fn()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() / 2**30


def sdpa_case(T):
    from torch.nn.attention import SDPBackend, sdpa_kernel

    q, k, v = (torch.randn(B, H, T, N, device="cuda", dtype=torch.bfloat16, requires_grad=True) for _ in range(3))
    go = torch.randn(B, H, T, N, device="cuda", dtype=torch.bfloat16)

    def fwd():
        with torch.no_grad(), sdpa_kernel(SDPBackend.FLASH_ATTENTION):
            F.scaled_dot_product_attention(q, k, v, is_causal=True)

    def fwdbwd():
        with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
            o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        o.backward(go)
        q.grad = k.grad = v.grad = None

    return fwd, fwdbwd


def fla_case(T):
    from fla.ops.rwkv6 import chunk_rwkv6

    def leaf(t):
        return t.detach().requires_grad_(True)

    r = leaf(torch.randn(B, T, H, N, device="cuda", dtype=torch.bfloat16) * 0.5)
    k = leaf(torch.randn(B, T, H, N, device="cuda", dtype=torch.bfloat16) * 0.5)
    v = leaf(torch.randn(B, T, H, N, device="cuda", dtype=torch.bfloat16))
    w = leaf(-torch.exp(torch.randn(B, T, H, N, device="cuda") * 0.5 - 0.5).to(torch.bfloat16))  # log decay
    u = leaf(torch.randn(H, N, device="cuda", dtype=torch.bfloat16) * 0.5)
    go = torch.randn(B, T, H, N, device="cuda", dtype=torch.bfloat16)

    def fwd():
        with torch.no_grad():
            chunk_rwkv6(r, k, v, w, u, scale=1.0)

    def fwdbwd():
        o = chunk_rwkv6(r, k, v, w, u, scale=1.0)
        o = o[0] if isinstance(o, tuple) else o
        o.backward(go)
        for t in (r, k, v, w, u):
            t.grad = None

    return fwd, fwdbwd


def main():
    which, path = sys.argv[1], sys.argv[2]
    ts = [int(t) for t in sys.argv[3:]] or [1024, 2048, 4096, 8192, 16384]
    make = {"sdpa": sdpa_case, "fla": fla_case}[which]
    result = {"impl": which, "device": torch.cuda.get_device_name(), "torch": torch.__version__,
              "B": B, "H": H, "N": N, "dtype": "bf16", "records": []}
    if which == "fla":
        import fla

        result["fla_version"] = getattr(fla, "__version__", "?")
    print(f"| {which} T | fwd ms | fwd+bwd ms | fwd peak GiB | fwd+bwd peak GiB |\n|---|---|---|---|---|", flush=True)
    for T in ts:
        torch.cuda.empty_cache()
        try:
            fwd, fwdbwd = make(T)
            iters = 2 if T >= 8192 else 4
            rec = {"T": T, "fwd_ms": time_ms(fwd, 1, iters), "fwd_peak_gib": peak_gib(fwd),
                   "fwdbwd_ms": time_ms(fwdbwd, 1, iters), "fwdbwd_peak_gib": peak_gib(fwdbwd)}
        except Exception as ex:  # record why and go on with the next length
            rec = {"T": T, "error": f"{type(ex).__name__}: {ex}"[:500]}
        result["records"].append(rec)
        if "error" in rec:
            print(f"| {T} | error: {rec['error'][:200]} |", flush=True)
        else:
            print(f"| {T} | {rec['fwd_ms']:.3f} | {rec['fwdbwd_ms']:.3f} | {rec['fwd_peak_gib']:.2f} | "
                  f"{rec['fwdbwd_peak_gib']:.2f} |", flush=True)
        with open(path, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
