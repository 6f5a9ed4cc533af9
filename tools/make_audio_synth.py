#!/usr/bin/python3
"""Builds the synthetic AudioSet-style tagging set for the AudioRWKV demo model (docs/AUDIO.md).

AudioSet clips cannot be downloaded here, so every clip is made with Debian tools: sox (sine, square, sawtooth,
white/pink/brown noise, chirps, pulse trains), espeak-ng (speech, male and female voices), fluidsynth with
fluid-soundfont-gm (piano, violin, flute notes) and mixtures of two sources; each clip is labelled with the
matching AudioSet classes (MIDs from class_labels_indices.csv). Output, in the AudioSet layouts the C++ readers take:
  OUT/{train,eval}/Y<ytid>.wav    32 kHz mono 16-bit, CLIP seconds
  OUT/{train,eval}_segments.csv   3 comment lines, then  YTID, start, end, "mid,mid"
  OUT/{train,eval}.json           AST list {"data": [{"wav": ..., "labels": "mid,mid"}]}
Usage: /usr/bin/python3 tools/make_audio_synth.py --out data/audio_synth --train 3000 --eval 600 --clip 2 --seed 1
Deterministic for a given seed (numpy RNG; the tools themselves are deterministic).
"""
import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np

SR = 32000

# Source kind -> AudioSet display names (class_labels_indices.csv).
LABELS = {
    "sine": ["Sine wave"],
    "square": ["Beep, bleep"],          # gated square-wave bursts
    "sawtooth": ["Harmonic"],          # sustained sawtooth: a tone rich in harmonics
    "whitenoise": ["White noise", "Noise"],
    "pinknoise": ["Pink noise", "Noise"],
    "brownnoise": ["Noise", "Rumble"],
    "chirp": ["Chirp tone"],
    "pulse": ["Pulse"],
    "speech_m": ["Speech", "Male speech, man speaking"],
    "speech_f": ["Speech", "Female speech, woman speaking"],
    "piano": ["Piano", "Music"],
    "violin": ["Violin, fiddle", "Music"],
    "flute": ["Flute", "Music"],
    "silence": ["Silence"],
}
GM_PROGRAM = {"piano": 0, "violin": 40, "flute": 73}
WORDS = ("the a one two three red blue green river mountain table window quick slow bright dark morning evening "
         "garden music letter number station bridge forest city people water light sound voice paper system open "
         "close happy little large simple station winter summer yellow silver golden market school").split()


def read_mid_table(path):
    table = {}
    with open(path, encoding="utf-8") as f:
        next(f)
        for line in f:
            idx, mid, name = line.rstrip("\n").split(",", 2)
            table[name.strip().strip('"')] = mid
    return table


def sox_raw(args, n):
    """Runs `sox -n ... synth` into 16-bit raw mono at SR and returns n float samples in [-1, 1]."""
    cmd = ["sox", "-n", "-r", str(SR), "-c", "1", "-b", "16", "-e", "signed", "-t", "raw", "-"] + args
    raw = subprocess.run(cmd, check=True, capture_output=True).stdout
    x = np.frombuffer(raw, dtype="<i2").astype(np.float64) / 32768.0
    return fit(x, n)


def fit(x, n):
    if len(x) >= n:
        return x[:n].copy()
    return np.concatenate([x, np.zeros(n - len(x))])


def read_wav_any(path, n):
    """Converts any file to SR mono 16-bit raw with sox and returns n samples."""
    cmd = ["sox", path, "-r", str(SR), "-c", "1", "-b", "16", "-e", "signed", "-t", "raw", "-"]
    raw = subprocess.run(cmd, check=True, capture_output=True).stdout
    return fit(np.frombuffer(raw, dtype="<i2").astype(np.float64) / 32768.0, n)


def write_wav(path, x):
    x = np.clip(x, -1.0, 1.0)
    pcm = (x * 32767.0).round().astype("<i2").tobytes()
    hdr = b"RIFF" + struct.pack("<I", 36 + len(pcm)) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, SR, SR * 2, 2, 16)
    hdr += b"data" + struct.pack("<I", len(pcm))
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(hdr + pcm)
    os.replace(tmp, path)


def midi_file(notes, program, path):
    """A format-0 MIDI file: notes = [(start_s, dur_s, pitch, velocity)], 480 ticks per beat at 120 bpm (1 s = 960 ticks)."""
    ev = [(0, bytes([0xC0, program]))]
    for s, d, p, v in notes:
        ev.append((int(s * 960), bytes([0x90, p, v])))
        ev.append((int((s + d) * 960), bytes([0x80, p, 0])))
    ev.sort(key=lambda e: e[0])
    data, last = b"", 0
    for t, msg in ev:
        delta, last = t - last, t
        vlq = [delta & 0x7F]
        delta >>= 7
        while delta:
            vlq.append((delta & 0x7F) | 0x80)
            delta >>= 7
        data += bytes(reversed(vlq)) + msg
    data += b"\x00\xff\x2f\x00"
    with open(path, "wb") as f:
        f.write(b"MThd" + struct.pack(">IHHH", 6, 0, 1, 480) + b"MTrk" + struct.pack(">I", len(data)) + data)


def render_instrument(kind, count, clip, rng, tmpdir, soundfont):
    """Renders `count` clips of one instrument in one fluidsynth run (loading the SoundFont once), then slices."""
    notes = []
    for i in range(count):
        t0 = i * clip
        k = int(rng.integers(1, 4))
        for j in range(k):  # 1-3 notes per clip, sometimes overlapping
            s = t0 + rng.uniform(0, clip * 0.4)
            d = rng.uniform(0.4, clip * 0.9 - (s - t0))
            notes.append((s, max(d, 0.2), int(rng.integers(48, 84)), int(rng.integers(70, 120))))
    mid, wav = os.path.join(tmpdir, kind + ".mid"), os.path.join(tmpdir, kind + ".wav")
    midi_file(notes, GM_PROGRAM[kind], mid)
    subprocess.run(["fluidsynth", "-ni", "-g", "0.8", "-r", str(SR), "-F", wav, soundfont, mid], check=True,
                   capture_output=True)
    x = read_wav_any(wav, count * int(clip * SR))
    n = int(clip * SR)
    return [x[i * n:(i + 1) * n] for i in range(count)]


def make_source(kind, n, clip, rng, tmpdir, pools):
    if kind in pools:
        return pools[kind].pop()
    if kind == "sine":
        return sox_raw(["synth", str(clip), "sine", "%.1f" % rng.uniform(150, 4000)], n)
    if kind == "square":
        return sox_raw(["synth", str(clip), "square", "%.1f" % rng.uniform(300, 2000), "synth", "square", "amod",
                        "%.2f" % rng.uniform(1.5, 6), "0", "0", "%d" % rng.integers(30, 60)], n)
    if kind == "sawtooth":
        return sox_raw(["synth", str(clip), "sawtooth", "%.1f" % rng.uniform(80, 1200)], n)
    if kind in ("whitenoise", "pinknoise", "brownnoise"):
        return sox_raw(["synth", str(clip), kind], n)
    if kind == "chirp":
        f0, f1 = rng.uniform(100, 1500), rng.uniform(2000, 8000)
        if rng.random() < 0.5:
            f0, f1 = f1, f0
        return sox_raw(["synth", str(clip), "sine", "%.0f-%.0f" % (f0, f1)], n)
    if kind == "pulse":
        return sox_raw(["synth", str(clip), "square", "%.2f" % rng.uniform(3, 12), "0", "0",
                        "%.1f" % rng.uniform(2, 8)], n) * 0.9
    if kind in ("speech_m", "speech_f"):
        voice = ("en+m%d" if kind == "speech_m" else "en+f%d") % rng.integers(1, 5)
        text = " ".join(rng.choice(WORDS, size=int(rng.integers(5, 9))))
        wav = os.path.join(tmpdir, "speech.wav")
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(int(rng.integers(140, 200))), "-w", wav, text],
                       check=True, capture_output=True)
        return read_wav_any(wav, n)
    if kind == "silence":
        return rng.normal(0, 1e-4, n) if rng.random() < 0.5 else np.zeros(n)
    raise ValueError(kind)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--train", type=int, default=3000)
    ap.add_argument("--eval", type=int, default=600)
    ap.add_argument("--clip", type=float, default=2.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--mix", type=float, default=0.3, help="fraction of clips mixing two sources")
    ap.add_argument("--labels", default=os.path.join(os.path.dirname(__file__), "..", "assets", "audio",
                                                     "class_labels_indices.csv"))
    ap.add_argument("--soundfont", default="/usr/share/sounds/sf2/FluidR3_GM.sf2")
    a = ap.parse_args()
    mids = read_mid_table(a.labels)
    for names in LABELS.values():
        for nm in names:
            assert nm in mids, nm
    kinds = list(LABELS)
    n = int(a.clip * SR)
    for split, count, seed in (("train", a.train, a.seed), ("eval", a.eval, a.seed + 1000)):
        rng = np.random.default_rng(seed)
        d = os.path.join(a.out, split)
        os.makedirs(d, exist_ok=True)
        plan = []
        for i in range(count):
            first = kinds[i % len(kinds)]
            srcs = [first]
            if first != "silence" and rng.random() < a.mix:
                other = kinds[int(rng.integers(0, len(kinds) - 1))]
                if other != "silence" and other != first and LABELS[other] != LABELS[first]:
                    srcs.append(other)
            plan.append(srcs)
        with tempfile.TemporaryDirectory() as tmp:
            pools = {}
            for inst in GM_PROGRAM:
                need = sum(s.count(inst) for s in plan)
                if need:
                    pools[inst] = render_instrument(inst, need, a.clip, rng, tmp, a.soundfont)
            rows, items = [], []
            for i, srcs in enumerate(plan):
                x = np.zeros(n)
                for s in srcs:
                    y = make_source(s, n, a.clip, rng, tmp, pools)
                    peak = np.abs(y).max()
                    if s != "silence" and peak > 0:
                        y = y / peak * rng.uniform(0.2, 0.8) / len(srcs)
                    x += y
                ytid = "%s%05d" % ("syn-tr" if split == "train" else "syn-ev", i)
                write_wav(os.path.join(d, "Y%s.wav" % ytid), x)
                labels = []
                for s in srcs:
                    for nm in LABELS[s]:
                        if mids[nm] not in labels:
                            labels.append(mids[nm])
                rows.append('%s, %.3f, %.3f, "%s"' % (ytid, 0.0, a.clip, ",".join(labels)))
                items.append({"wav": os.path.abspath(os.path.join(d, "Y%s.wav" % ytid)), "labels": ",".join(labels)})
                if (i + 1) % 200 == 0:
                    print("%s %d/%d" % (split, i + 1, count), file=sys.stderr, flush=True)
        with open(os.path.join(a.out, split + "_segments.csv"), "w") as f:
            f.write("# Segments csv created by tools/make_audio_synth.py (synthetic, seed %d)\n" % seed)
            f.write("# num_ytids=%d, num_segs=%d\n" % (count, count))
            f.write("# YTID, start_seconds, end_seconds, positive_labels\n")
            f.write("\n".join(rows) + "\n")
        with open(os.path.join(a.out, split + ".json"), "w") as f:
            json.dump({"data": items}, f, indent=1)
    recipe = {"tool": "tools/make_audio_synth.py", "train": a.train, "eval": a.eval, "clip_s": a.clip,
              "seed": a.seed, "mix": a.mix, "sample_rate": SR, "sources": LABELS}
    with open(os.path.join(a.out, "recipe.json"), "w") as f:
        json.dump(recipe, f, indent=1)


if __name__ == "__main__":
    main()
