#!/usr/bin/env python3
"""Converts an AudioRWKV model.safetensors (written by `aviary train audio`) to bfloat16 for shipping, keeping the
metadata (aviary.audio.config / aviary.audio.labels) and integer tensors (BatchNorm's counter) as they are.
Run with the project venv (safetensors + torch):  .venv/bin/python tools/make_audio_bf16.py IN OUT
"""
import sys

import torch
from safetensors import safe_open
from safetensors.torch import save_file


def main():
    src, dst = sys.argv[1], sys.argv[2]
    with safe_open(src, framework="pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    assert meta and "aviary.audio.config" in meta, "not an AudioRWKV model: " + src
    out = {k: (v.to(torch.bfloat16) if v.is_floating_point() else v).contiguous() for k, v in tensors.items()}
    save_file(out, dst + ".tmp", metadata=meta)
    import os
    os.replace(dst + ".tmp", dst)


if __name__ == "__main__":
    main()
