#!/usr/bin/env python3
"""Fixtures for tests/vision (aviary::vision): CLIP ViT parity and CLIP preprocessing parity.

Independent references: Hugging Face transformers CLIPVisionModel and CLIPImageProcessor (version printed into
tests/fixtures/vision/README.md), Pillow for decoding and EXIF transposition. Seeded; rerun to regenerate:
    python3 -m venv --system-site-packages build/vision/pyvenv   # Debian python3-torch, python3-pil, python3-opencv
    build/vision/pyvenv/bin/pip install transformers==4.40.2
    build/vision/pyvenv/bin/python tools/make_vision_fixtures.py
"""
import json
import os
import sys

import cv2
import numpy as np
import PIL
import torch
import transformers
from PIL import Image, ImageOps
from safetensors.torch import save_file
from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "vision")
MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)


def scene(h, w, seed):
    """A small 'real' image: smooth gradients, shapes, text and noise (so bicubic resizing has work to do)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([(xx * 255 / max(w - 1, 1)), (yy * 255 / max(h - 1, 1)), 128 + 100 * np.sin(xx / 5.0 + yy / 7.0)],
                   axis=-1)
    img = np.clip(img + rng.normal(0, 12, img.shape), 0, 255).astype(np.uint8)
    img = np.ascontiguousarray(img[:, :, ::-1])  # to BGR for OpenCV drawing
    cv2.circle(img, (w // 3, h // 2), max(2, min(h, w) // 5), (30, 200, 240), -1)
    cv2.rectangle(img, (w // 2, h // 5), (w - 3, h // 2), (200, 40, 60), -1)
    cv2.putText(img, "Av", (2, h - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1)
    return img


def write_images():
    """Writes the test images; returns {name: PIL RGB image as the reference decoder sees it}."""
    ref = {}
    bgr = scene(45, 67, 1)
    cv2.imwrite(os.path.join(OUT, "scene_rgb.png"), bgr)
    ref["scene_rgb.png"] = Image.open(os.path.join(OUT, "scene_rgb.png")).convert("RGB")
    # JPEG whose pixels are stored landscape and EXIF orientation 6 says "rotate 90° clockwise to display"
    pil = Image.fromarray(scene(40, 64, 2)[:, :, ::-1])
    exif = Image.Exif()
    exif[0x0112] = 6
    pil.save(os.path.join(OUT, "scene_exif6.jpg"), quality=95, exif=exif.tobytes())
    ref["scene_exif6.jpg"] = ImageOps.exif_transpose(Image.open(os.path.join(OUT, "scene_exif6.jpg"))).convert("RGB")
    grey = cv2.cvtColor(scene(50, 30, 3), cv2.COLOR_BGR2GRAY)
    cv2.imwrite(os.path.join(OUT, "scene_grey.png"), grey)
    ref["scene_grey.png"] = Image.open(os.path.join(OUT, "scene_grey.png")).convert("RGB")
    # 16-bit RGB PNG: the 8-bit reference is round(v / 257), as OpenCV's convertTo(…, 1/257)
    b16 = scene(33, 52, 4).astype(np.uint16) * 257 + np.random.default_rng(5).integers(0, 200, (33, 52, 3)).astype(
        np.uint16)
    cv2.imwrite(os.path.join(OUT, "scene_rgb16.png"), b16)
    back = cv2.imread(os.path.join(OUT, "scene_rgb16.png"), cv2.IMREAD_UNCHANGED)
    assert back.dtype == np.uint16
    ref["scene_rgb16.png"] = Image.fromarray(np.clip(np.rint(back[:, :, ::-1] / 257.0), 0, 255).astype(np.uint8))
    rgba = np.dstack([scene(36, 36, 6), np.full((36, 36), 128, np.uint8)])
    cv2.imwrite(os.path.join(OUT, "scene_rgba.png"), rgba)
    ref["scene_rgba.png"] = Image.open(os.path.join(OUT, "scene_rgba.png")).convert("RGB")
    with open(os.path.join(OUT, "corrupt.png"), "wb") as f:  # a PNG cut short after its header
        f.write(open(os.path.join(OUT, "scene_rgb.png"), "rb").read()[:60])
    return ref


def preprocess_fixtures(ref):
    """CLIPImageProcessor outputs, stored losslessly as PNG codes c with pixel = (c/255 − mean)/std (checked)."""
    cases = []
    for name, img in sorted(ref.items()):
        for size in ([224, 336] if name == "scene_rgb.png" else [224]):
            proc = CLIPImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size})
            pv = proc(images=img, return_tensors="np")["pixel_values"][0]  # (3, S, S) float32
            codes = np.rint((pv.transpose(1, 2, 0) * STD + MEAN) * 255.0)
            assert codes.min() >= 0 and codes.max() <= 255
            codes = codes.astype(np.uint8)
            renorm = ((codes.astype(np.float32) * np.float32(1 / 255.0)) - MEAN) / STD
            err = np.abs(renorm.transpose(2, 0, 1) - pv).max()
            assert err < 1e-5, (name, size, err)
            out = "expected_%s_%d.png" % (os.path.splitext(name)[0], size)
            cv2.imwrite(os.path.join(OUT, out), codes[:, :, ::-1])
            cases.append({"image": name, "size": size, "expected_codes": out,
                          "pixel_values_sum": float(pv.astype(np.float64).sum()),
                          "pixel_values_0_0_0": float(pv[0, 0, 0])})
    return cases


def clip_fixture():
    torch.manual_seed(1234)
    cfg = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                           image_size=32, patch_size=8, hidden_act="quick_gelu", layer_norm_eps=1e-5)
    model = CLIPVisionModel(cfg).eval()
    with torch.no_grad():  # every parameter random (HF init leaves biases 0 and LayerNorms 1)
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.2)
    d = os.path.join(OUT, "clip_tiny")
    os.makedirs(d, exist_ok=True)
    sd = {k: v.contiguous() for k, v in model.state_dict().items() if not k.endswith("position_ids")}
    save_file(sd, os.path.join(d, "model.safetensors"))
    cfg.to_json_file(os.path.join(d, "config.json"))
    # the same weights under OpenAI names (q, k, v stacked into in_proj), a second file
    oa = {"visual.conv1.weight": sd["vision_model.embeddings.patch_embedding.weight"],
          "visual.class_embedding": sd["vision_model.embeddings.class_embedding"],
          "visual.positional_embedding": sd["vision_model.embeddings.position_embedding.weight"],
          "visual.ln_pre.weight": sd["vision_model.pre_layrnorm.weight"],
          "visual.ln_pre.bias": sd["vision_model.pre_layrnorm.bias"],
          "visual.ln_post.weight": sd["vision_model.post_layernorm.weight"],
          "visual.ln_post.bias": sd["vision_model.post_layernorm.bias"]}
    for i in range(cfg.num_hidden_layers):
        h, o = "vision_model.encoder.layers.%d." % i, "visual.transformer.resblocks.%d." % i
        oa[o + "attn.in_proj_weight"] = torch.cat([sd[h + "self_attn.%s_proj.weight" % s] for s in "qkv"])
        oa[o + "attn.in_proj_bias"] = torch.cat([sd[h + "self_attn.%s_proj.bias" % s] for s in "qkv"])
        for a, b in [("attn.out_proj", "self_attn.out_proj"), ("ln_1", "layer_norm1"), ("ln_2", "layer_norm2"),
                     ("mlp.c_fc", "mlp.fc1"), ("mlp.c_proj", "mlp.fc2")]:
            oa[o + a + ".weight"] = sd[h + b + ".weight"]
            oa[o + a + ".bias"] = sd[h + b + ".bias"]
    oa["visual.proj"] = torch.randn(32, 16)
    save_file({k: v.contiguous() for k, v in oa.items()}, os.path.join(OUT, "clip_tiny_openai.safetensors"))
    g = torch.Generator().manual_seed(99)
    pixels = torch.randn(2, 3, 32, 32, generator=g)
    with torch.no_grad():
        out = model(pixel_values=pixels, output_hidden_states=True)
    save_file({"pixel_values": pixels, "last_hidden_state": out.last_hidden_state.contiguous(),
               "pooler_output": out.pooler_output.contiguous()}, os.path.join(d, "expected.safetensors"))


def main():
    os.makedirs(OUT, exist_ok=True)
    ref = write_images()
    cases = preprocess_fixtures(ref)
    with open(os.path.join(OUT, "preprocess_cases.json"), "w") as f:
        json.dump(cases, f, indent=1)
    clip_fixture()
    with open(os.path.join(OUT, "README.md"), "w") as f:
        f.write("# tests/fixtures/vision\n\nGenerated by `tools/make_vision_fixtures.py` (seeded) with transformers %s, "
                "torch %s, Pillow %s, OpenCV %s, numpy %s.\n\n"
                "- `scene_*.png|jpg`: small drawn test images (RGB, EXIF orientation 6 JPEG, grey, 16-bit RGB, RGBA); "
                "`corrupt.png` is a PNG cut after 60 bytes.\n"
                "- `expected_<image>_<size>.png`: CLIPImageProcessor(shortest_edge=size, crop=size) output as codes c "
                "with pixel_values = (c/255 − mean)/std (checked to < 1e-5 by the script); the reference decoder is "
                "Pillow (+ ImageOps.exif_transpose; 16-bit PNG: round(v/257) of the OpenCV-read samples). "
                "`preprocess_cases.json` lists them.\n"
                "- `clip_tiny/`: a random CLIPVisionModel (hidden 32, 2 heads, 2 layers, patch 8, image 32, quick_gelu; "
                "every parameter N(0, 0.2²), seed 1234) as HF safetensors + config.json, and `expected.safetensors` "
                "with pixel_values (2,3,32,32) and HF last_hidden_state / pooler_output. "
                "`clip_tiny_openai.safetensors`: the same weights under OpenAI `visual.*` names.\n"
                "- `prompt_cases.json`: expected VisualRWKV prompt tokens and loss masks, made by "
                "`tools/make_vision_prompt_fixture.py` with the official `rwkv` package tokenizer.\n"
                % (transformers.__version__, torch.__version__, PIL.__version__, cv2.__version__, np.__version__))
    print("wrote", OUT)


if __name__ == "__main__":
    sys.exit(main())
