#!/usr/bin/env python3
"""Collects the JSON files of bench/cuda/run_model_device.sh (in the folder argv[1]) into one results.json there and
prints markdown tables: tests, model prefill/decode against the bandwidth floor, and the WKV kernel in the paper's
setting next to SDPA (FlashAttention) and FLA chunk_rwkv6."""
import json
import os
import sys

out = sys.argv[1]


def load(name):
    path = os.path.join(out, name)
    try:
        with open(path) as f:
            return json.load(f)
    except Exception as ex:  # missing or partial: report and go on
        return {"error": f"{name}: {type(ex).__name__}: {ex}"}


res = {n: load(n + ".json") for n in ("tests", "model_1.6b", "model_7b", "kernel_paper", "sdpa", "fla")}
with open(os.path.join(out, "results.json"), "w") as f:
    json.dump(res, f, indent=1)

t = res["tests"]
if "tests" in t:
    print(f"Tests: {t['tests']} run, {t.get('failures', 0)} failed, {t.get('disabled', 0)} disabled\n")
    for suite in t.get("testsuites", []):
        for case in suite.get("testsuite", []):
            if case.get("failures"):
                print(f"- FAILED {suite['name']}.{case['name']}: {case['failures'][0]['failure'][:300]}")
print()

print("| model (bf16, RWKV-6) | prefill 512 tok/s | decode b=1 tok/s | decode b=16 tok/s (total) | weights/token GB "
      "| copy bandwidth GB/s | floor tok/s | b=1 fraction of floor |")
print("|---|---|---|---|---|---|---|---|")
for shape in ("1.6b", "7b"):
    m = res["model_" + shape]
    if "error" in m:
        print(f"| {shape} | {m['error']} |")
        continue
    print(f"| {shape} | {m['prefill_tok_s']:.0f} | {m['decode_tok_s']:.1f} | {m['decode_batch_tok_s']:.0f} | "
          f"{m['weight_bytes_per_token'] / 1e9:.2f} | {m['read_gbps']:.0f} | {m['floor_decode_tok_s']:.0f} | "
          f"{100 * m['floor_fraction']:.0f}% |")
print()

k, s, fl = res["kernel_paper"], res["sdpa"], res["fla"]
by_t = lambda d: {r["T"]: r for r in d.get("records", []) if "error" not in r}
ks, ss, fs = by_t(k), by_t(s), by_t(fl)
if "copy_bytes_per_s" in k:
    print(f"Measured: copy bandwidth {k['copy_bytes_per_s'] / 1e9:.0f} GB/s, bf16 matmul "
          f"{k['bf16_matmul_flops_per_s'] / 1e12:.0f} TFLOP/s ({k.get('device', '?')})\n")
print("| T | WKV fwd ms | WKV fwd+bwd ms | WKV peak GiB (fwd+bwd) | fwd+bwd floor fraction | SDPA-FA fwd ms | "
      "SDPA-FA fwd+bwd ms | SDPA peak GiB | FLA fwd ms | FLA fwd+bwd ms | FLA peak GiB |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
fmt = lambda r, key, f="{:.2f}": f.format(r[key]) if r and key in r else "–"
for T in sorted(set(ks) | set(ss) | set(fs)):
    a, b, c = ks.get(T), ss.get(T), fs.get(T)
    frac = f"{100 * a['fwdbwd_floor_ms'] / a['fwdbwd_ms']:.1f}%" if a else "–"
    print(f"| {T} | {fmt(a, 'fwd_ms')} | {fmt(a, 'fwdbwd_ms')} | {fmt(a, 'fwdbwd_peak_gib')} | {frac} | "
          f"{fmt(b, 'fwd_ms')} | {fmt(b, 'fwdbwd_ms')} | {fmt(b, 'fwdbwd_peak_gib')} | {fmt(c, 'fwd_ms')} | "
          f"{fmt(c, 'fwdbwd_ms')} | {fmt(c, 'fwdbwd_peak_gib')} |")
for name, d in (("kernel_paper", k), ("sdpa", s), ("fla", fl)):
    if "error" in d:
        print(f"\n{name}: {d['error']}")
    for r in d.get("records", []):
        if "error" in r:
            print(f"\n{name} T={r['T']}: {r['error']}")
