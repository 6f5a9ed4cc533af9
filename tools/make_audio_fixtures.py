#!/usr/bin/python3
"""Fixtures for tests/audio (independent references, seeded). Run with Debian's python3 (torch 1.13, torchaudio 0.13,
scikit-learn 1.2, numpy):  /usr/bin/python3 tools/make_audio_fixtures.py  -> tests/fixtures/audio/*.safetensors

- fbank.safetensors:  waveform (16 kHz) and torchaudio.compliance.kaldi.fbank of it with AST's settings
  (waveform mean removed, htk_compat, hanning, dither 0, no energy, 128 mel, 10 ms shift).
- logmel.safetensors: waveform (32 kHz), the Slaney mel filterbank built here in numpy float64 from librosa's
  formula (slaney mel scale, slaney area norm) and cross-checked against torchaudio.functional.melscale_fbanks(
  norm='slaney', mel_scale='slaney'), and the PANNs/HTS-AT log-mel computed in numpy float64 (reflect pad,
  periodic Hann, |rfft|², filters, 10·log10(max(·, 1e-10))).
- bi_wkv.safetensors: r, k, v, log_w, u and y of the bidirectional RWKV-6 WKV from plain float64 numpy scans.
- map.safetensors: targets and tied scores with sklearn average_precision_score / roc_auc_score per class, mAP,
  mean AUC and d′ = √2·Φ⁻¹(mAUC) (statistics.NormalDist).
"""
import json
import os
import struct
import sys
from statistics import NormalDist

import numpy as np
import sklearn
import torch
import torchaudio
from sklearn.metrics import average_precision_score, roc_auc_score

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "audio")
DT = {np.dtype("float32"): "F32", np.dtype("float64"): "F64", np.dtype("int64"): "I64"}


def write_safetensors(path, tensors, meta):
    header, blobs, off = {"__metadata__": meta}, [], 0
    for name, arr in tensors.items():
        arr = np.ascontiguousarray(arr)
        b = arr.tobytes()
        header[name] = {"dtype": DT[arr.dtype], "shape": list(arr.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def test_wave(rng, sr, seconds):
    t = np.arange(int(sr * seconds)) / sr
    x = 0.4 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 3100 * t + 0.3) + 0.05 * rng.standard_normal(len(t))
    return x.astype(np.float32)


def fbank_fixture(rng):
    x = test_wave(rng, 16000, 0.5)
    w = torch.from_numpy(x.astype(np.float64)).unsqueeze(0)
    w = w - w.mean()
    fb = torchaudio.compliance.kaldi.fbank(w, htk_compat=True, sample_frequency=16000, use_energy=False,
                                            window_type="hanning", num_mel_bins=128, dither=0.0, frame_shift=10)
    write_safetensors(os.path.join(OUT, "fbank.safetensors"), {"wave": x, "fbank": fb.numpy().astype(np.float64)},
                      {"generator": "tools/make_audio_fixtures.py", "torchaudio": torchaudio.__version__})


def hz_to_mel(f):
    f = np.asarray(f, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-300) / min_log_hz) / logstep, f / f_sp)


def mel_to_hz(m):
    m = np.asarray(m, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def slaney_filters(sr, n_fft, n_mels, fmin, fmax):
    fftfreqs = np.linspace(0, sr / 2, 1 + n_fft // 2)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fftfreqs[None, :]
    w = np.zeros((n_mels, len(fftfreqs)))
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        w[i] = np.maximum(0, np.minimum(lower, upper))
    w *= (2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels]))[:, None]
    return w


def logmel_fixture(rng):
    sr, n_fft, hop, n_mels, fmin, fmax = 32000, 1024, 320, 64, 50.0, 14000.0
    x = test_wave(rng, sr, 0.5)
    fb = slaney_filters(sr, n_fft, n_mels, fmin, fmax)
    ta = torchaudio.functional.melscale_fbanks(n_fft // 2 + 1, fmin, fmax, n_mels, sr, norm="slaney",
                                               mel_scale="slaney").double().numpy().T
    assert np.abs(ta - fb).max() <= 1e-4 * np.abs(fb).max(), np.abs(ta - fb).max()
    xp = np.pad(x.astype(np.float64), n_fft // 2, mode="reflect")
    win = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)  # scipy hann(fftbins=True)
    frames = 1 + len(x) // hop
    spec = np.stack([np.abs(np.fft.rfft(xp[t * hop:t * hop + n_fft] * win)) ** 2 for t in range(frames)])
    logmel = 10 * np.log10(np.maximum(spec @ fb.T, 1e-10))
    write_safetensors(os.path.join(OUT, "logmel.safetensors"), {"wave": x, "filters": fb, "logmel": logmel},
                      {"generator": "tools/make_audio_fixtures.py", "filters_checked_against":
                       "torchaudio.functional.melscale_fbanks(norm='slaney', mel_scale='slaney') " + torchaudio.__version__})


def bi_wkv_fixture(rng):
    B, T, H, N = 2, 9, 2, 8
    r, k, v = (rng.standard_normal((B, T, H, N)) * 0.5 for _ in range(3))
    log_w = -np.exp(rng.uniform(-3, 0.5, (B, T, H, N)))
    u = rng.standard_normal((H, N)) * 0.5
    y = np.zeros((B, T, H, N))
    for b in range(B):
        for h in range(H):
            S = np.zeros((N, N))  # S[key j][value i]
            for t in range(T):  # forward, bonus at t
                y[b, t, h] += r[b, t, h] @ (np.outer(u[h] * k[b, t, h], v[b, t, h]) + S)
                S = np.exp(log_w[b, t, h])[:, None] * S + np.outer(k[b, t, h], v[b, t, h])
            S = np.zeros((N, N))
            for t in reversed(range(T)):  # backward, excluding t
                y[b, t, h] += r[b, t, h] @ S
                S = np.exp(log_w[b, t, h])[:, None] * S + np.outer(k[b, t, h], v[b, t, h])
    f = lambda a: a.astype(np.float32)
    write_safetensors(os.path.join(OUT, "bi_wkv.safetensors"),
                      {"r": f(r), "k": f(k), "v": f(v), "log_w": f(log_w), "u": f(u), "y": y},
                      {"generator": "tools/make_audio_fixtures.py (float64 numpy loops)"})


def map_fixture(rng):
    n, c = 60, 7
    target = (rng.random((n, c)) < 0.3).astype(np.int64)
    target[:, 5] = 0  # a class without positives: skipped
    target[:3, 6] = 1  # a rare class
    score = np.round(rng.random((n, c)) * 0.6 + target * 0.3, 1)  # one decimal: many ties
    ap, auc = np.full(c, np.nan), np.full(c, np.nan)
    for j in range(c):
        if target[:, j].sum() > 0:
            ap[j] = average_precision_score(target[:, j], score[:, j])
            auc[j] = roc_auc_score(target[:, j], score[:, j])
    mauc = np.nanmean(auc)
    summary = np.array([np.nanmean(ap), mauc, np.sqrt(2) * NormalDist().inv_cdf(mauc)])
    write_safetensors(os.path.join(OUT, "map.safetensors"),
                      {"target": target, "score": score, "ap": ap, "auc": auc, "summary": summary},
                      {"generator": "tools/make_audio_fixtures.py", "sklearn": sklearn.__version__})


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(20261123)
    fbank_fixture(rng)
    logmel_fixture(rng)
    bi_wkv_fixture(rng)
    map_fixture(rng)
    print("wrote", sorted(os.listdir(OUT)), file=sys.stderr)


if __name__ == "__main__":
    main()
