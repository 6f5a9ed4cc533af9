#!/usr/bin/env python3
"""Kill-point recovery campaign (issue 20 item 5, docs/RELIABILITY.md "Kill-point recovery").

For each of `aviary train text|vision|audio|music` on tiny generated data (the CLI tests' shapes), SIGKILL the
process at seeded random points — a share of them aimed at the moments a checkpoint or output file is being written
— and resume it with `--resume` until it finishes, then check:
  (a) nothing partial is visible: after every kill each checkpoints/step-* directory is complete (trainer.json, both
      safetensors files whole) and every output file present is whole; after the run finishes no temporary is left
      and train_log.jsonl holds steps 1..N once each, every line whole;
  (b) the newest complete checkpoint loads: the next launch resumes from it (a launch that fails is a finding; the
      finishing launch must report that checkpoint's step as its start);
  (c) the finished run's tensors (model.safetensors, the last checkpoint's model and optimizer incl. the RNG state)
      are bit for bit those of an uninterrupted run with the same seed.
Standard library only (the safetensors files are compared tensor by tensor from their raw bytes).

  tools/kill_resume.py [--kills N] [--seed S] [--only text|vision|audio|music] [--aviary PATH] [--work DIR]
Exit status 0 when every kill recovered and every finished run was bit-exact, 1 otherwise.
"""
import argparse
import json
import math
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import wave

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMANDS = ["text", "vision", "audio", "music"]
DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}


# ---- data ------------------------------------------------------------------------------------------------------


def make_text(d):
    p = os.path.join(d, "corpus.jsonl")
    with open(p, "w") as f:
        for i in range(30):
            f.write('{"text": "the quick brown fox %d jumps over the lazy dog"}\n' % (i % 3))
    return p


def make_vision(d):
    p = os.path.join(d, "llava.json")
    items = [
        {"id": "a", "image": "scene_rgb.png", "conversations": [
            {"from": "human", "value": "<image>\nWhat colour is the circle?"}, {"from": "gpt", "value": "yellow"}]},
        {"id": "b", "image": "scene_grey.png", "conversations": [
            {"from": "human", "value": "<image>\nIs it grey?"}, {"from": "gpt", "value": "yes"}]},
        {"id": "c", "image": "scene_rgba.png", "conversations": [
            {"from": "human", "value": "<image>\nHow many circles?"}, {"from": "gpt", "value": "two"}]},
    ]
    with open(p, "w") as f:
        json.dump(items, f)
    return p


def write_wav(path, samples, rate):
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join(struct.pack("<h", max(-32767, min(32767, int(s * 32767)))) for s in samples))


def make_audio(d):
    rate, n = 32000, 16000
    rng = random.Random(5)
    items = []
    for i in range(6):
        p = os.path.join(d, "c%d.wav" % i)
        if i % 2:
            f = 300 + 200 * i
            samples = [0.5 * math.sin(2 * math.pi * f * t / rate) for t in range(n)]
        else:
            samples = [rng.uniform(-0.5, 0.5) for _ in range(n)]
        write_wav(p, samples, rate)
        items.append({"wav": p, "labels": "/m/01v_m0" if i % 2 else "/m/0chx_"})
    p = os.path.join(d, "set.json")
    with open(p, "w") as f:
        json.dump({"data": items}, f)
    return p


def make_music(d, steps):
    book = os.path.join(d, "book.abc")
    with open(book, "w") as f:
        for i in range(1, 13):
            f.write("X:%d\nT:Tune %d\nM:6/8\nL:1/8\nK:D\n|:dfa afd|ecA ABc|dfa afd|e2d d2:|\n\n" % (i, i))
    cfg = os.path.join(d, "tiny.json")
    with open(cfg, "w") as f:
        json.dump({"version": 6, "n_layer": 2, "n_embd": 64, "ctx_len": 32, "batch": 2, "steps": steps, "warmup": 1,
                   "save_every": 1, "keep_last": 2, "validation_fraction": 0.25}, f)
    return book, cfg


def command_line(kind, aviary, data_dir, out, steps, resume):
    """The training command of `kind`, checkpointing after every step (so kills land in writes)."""
    if kind == "text":
        args = ["train", "text", "--data", make_text(data_dir), "--tokenizer", "byte", "--model", "init:2,64,6",
                "--ctx-len", "32", "--batch", "2", "--lr", "3e-3", "--lr-final", "1e-3", "--warmup", "2",
                "--steps", str(steps), "--save-every", "1", "--keep-last", "2", "--seed", "7", "--threads", "1", "-q"]
    elif kind == "vision":
        args = ["train", "vision", "--stage", "0", "--new-rwkv", "2,64,256", "--new-vit", "1,32,8,32",
                "--data", make_vision(data_dir), "--image-folder", os.path.join(ROOT, "tests", "fixtures", "vision"),
                "--steps", str(steps), "--batch", "2", "--save-every", "1", "--keep-last", "2", "--seed", "7",
                "--threads", "1", "--quiet"]
    elif kind == "audio":
        args = ["train", "audio", "--data", make_audio(data_dir), "--clip-seconds", "0.5", "--layers", "1",
                "--batch", "2", "--warmup", "1", "--spec-time", "8", "--steps", str(steps), "--save-every", "1",
                "--seed", "7", "--threads", "1"]
    else:
        book, cfg = make_music(data_dir, steps)
        args = ["train", "music", "-q", "--threads", "1", "--data", book, "--config", cfg]
    args += ["--out", out]
    if resume:
        args.append("--resume")
    return [aviary] + args


STEPS = {"text": 12, "vision": 8, "audio": 8, "music": 10}


# ---- checks ----------------------------------------------------------------------------------------------------


def read_safetensors(path):
    """{name: (dtype, shape, raw bytes)}; raises ValueError when the file is not whole."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise ValueError("%s: %d bytes, shorter than the header length" % (path, len(blob)))
    (n,) = struct.unpack("<Q", blob[:8])
    if 8 + n > len(blob):
        raise ValueError("%s: header of %d bytes runs past the end (%d bytes)" % (path, n, len(blob)))
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    data = blob[8 + n:]
    out, end = {}, 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        count = 1
        for s in info["shape"]:
            count *= s
        if b - a != count * DTYPE_BYTES[info["dtype"]] or b > len(data):
            raise ValueError("%s: tensor '%s' is cut short" % (path, name))
        end = max(end, b)
        out[name] = (info["dtype"], tuple(info["shape"]), data[a:b])
    if end != len(data):
        raise ValueError("%s: %d data bytes, the header describes %d" % (path, len(data), end))
    return out


def checkpoint_problem(d):
    """None when the checkpoint directory d is complete, else what is wrong."""
    try:
        with open(os.path.join(d, "trainer.json")) as f:
            meta = json.load(f)
        if meta.get("format") != "aviary-train-checkpoint" or not isinstance(meta.get("step"), int):
            return "%s/trainer.json is not a checkpoint record" % d
        read_safetensors(os.path.join(d, "model.safetensors"))
        read_safetensors(os.path.join(d, "optimizer.safetensors"))
    except (OSError, ValueError, KeyError, TypeError) as e:
        return "%s: %s" % (d, e)
    return None


def temporaries(out):
    """Paths under out that are temporaries of an unfinished write."""
    found = []
    for base, dirs, files in os.walk(out):
        for name in dirs + files:
            if ".tmp" in name:
                found.append(os.path.join(base, name))
    return found


def complete_steps(out):
    """Steps of the step-* directories in out/checkpoints, and the problems of incomplete ones."""
    root = os.path.join(out, "checkpoints")
    steps, problems = [], []
    if not os.path.isdir(root):
        return steps, problems
    for name in sorted(os.listdir(root)):
        if not name.startswith("step-"):
            continue
        p = checkpoint_problem(os.path.join(root, name))
        if p:
            problems.append("incomplete checkpoint visible as complete: " + p)
        else:
            steps.append(int(name[len("step-"):]))
    return steps, problems


def outputs_problems(out):
    problems = []
    for name in ("model.safetensors", "lora.safetensors"):
        p = os.path.join(out, name)
        if os.path.exists(p):
            try:
                read_safetensors(p)
            except (OSError, ValueError) as e:
                problems.append("partial output: %s" % e)
    for name in ("summary.json", "config.json"):
        p = os.path.join(out, name)
        if os.path.exists(p):
            try:
                with open(p) as f:
                    json.load(f)
            except (OSError, ValueError) as e:
                problems.append("partial output: %s: %s" % (p, e))
    return problems


def log_problems(out, steps):
    p = os.path.join(out, "train_log.jsonl")
    seen = []
    with open(p) as f:
        for i, line in enumerate(f, 1):
            try:
                seen.append(json.loads(line)["step"])
            except (ValueError, KeyError, TypeError):
                return ["%s line %d is not a whole JSON record: %r" % (p, i, line[:80])]
    if seen != list(range(1, steps + 1)):
        return ["%s holds steps %s, expected 1..%d once each" % (p, seen, steps)]
    return []


def final_tensors(out, steps):
    files = {"model.safetensors": os.path.join(out, "model.safetensors")}
    ck = os.path.join(out, "checkpoints", "step-%08d" % steps)
    for name in ("model.safetensors", "optimizer.safetensors"):
        files["checkpoint " + name] = os.path.join(ck, name)
    return {k: read_safetensors(v) for k, v in files.items()}


def differences(ref, got):
    diffs = []
    for what, tensors in ref.items():
        other = got[what]
        if sorted(tensors) != sorted(other):
            diffs.append("%s: tensor names differ" % what)
            continue
        for name in sorted(tensors):
            if tensors[name] != other[name]:
                diffs.append("%s: '%s' differs" % (what, name))
    return diffs


# ---- the campaign ----------------------------------------------------------------------------------------------


def run_to_end(cmd, log_path, timeout=600):
    with open(log_path, "ab") as log:
        return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=log, timeout=timeout, env=child_env())


def child_env():
    env = dict(os.environ)
    env.update({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"})
    return env


def start_step_of(kind, stdout, stderr_tail):
    if kind == "vision":
        for line in stderr_tail.splitlines():
            if line.startswith("resumed at step "):
                return int(line.split()[-1])
        return 0
    try:
        return int(json.loads(stdout.decode().strip().splitlines()[-1])["start_step"])
    except (ValueError, KeyError, IndexError):
        return None


def campaign(kind, aviary, work, kills, seed, verbose):
    rng = random.Random("%d/%s" % (seed, kind))
    steps = STEPS[kind]
    base = os.path.join(work, kind)
    shutil.rmtree(base, ignore_errors=True)
    data = os.path.join(base, "data")
    os.makedirs(data)
    res = {"command": "train " + kind, "steps": steps, "kills": 0, "in_write": 0, "recovered": 0, "runs": 0,
           "bit_exact": 0, "problems": []}

    # The uninterrupted reference run.
    ref_out = os.path.join(base, "reference")
    t0 = time.monotonic()
    r = run_to_end(command_line(kind, aviary, data, ref_out, steps, False), os.path.join(base, "reference.log"))
    duration = time.monotonic() - t0
    if r.returncode != 0:
        res["problems"].append("reference run failed (exit %d), see %s/reference.log" % (r.returncode, base))
        return res
    ref = final_tensors(ref_out, steps)
    res["reference_s"] = round(duration, 2)

    chain = 0
    out = None
    launched = False  # whether the current chain has been started once (then --resume)
    newest = 0  # newest complete checkpoint step after the last kill
    while True:
        if out is None:
            chain += 1
            out = os.path.join(base, "run-%03d" % chain)
            launched, newest = False, 0
        last = res["kills"] >= kills
        cmd = command_line(kind, aviary, data, out, steps, launched)
        launched = True
        err_path = os.path.join(base, "run-%03d.log" % chain)
        with open(err_path, "ab") as err:
            err_start = err.tell()
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, env=child_env())
        killed = False
        tmp_seen = False
        if not last:
            # Half the kills at a uniform point of the run's length; a third aimed at a write: after a random
            # delay, the first moment a new temporary (checkpoint directory or output file) exists; the rest at the
            # moment such a temporary has just been renamed into place (the old checkpoints are being rotated out).
            u = rng.random()
            aim = "uniform" if u < 0.5 else "write" if u < 5.0 / 6.0 else "rotate"
            delay = rng.uniform(0.0, duration)
            stale = set(temporaries(out)) if os.path.isdir(out) else set()  # left by the previous kill
            deadline = time.monotonic() + delay
            while time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.002)
            if aim != "uniform":
                limit = time.monotonic() + duration
                seen = False
                while proc.poll() is None and time.monotonic() < limit:
                    fresh = bool(set(temporaries(out)) - stale) if os.path.isdir(out) else False
                    if fresh and aim == "write":
                        break
                    if seen and not fresh:
                        break
                    seen = seen or fresh
                    time.sleep(0.0002)
            if proc.poll() is None:
                tmp_seen = os.path.isdir(out) and bool(set(temporaries(out)) - stale)
                proc.send_signal(signal.SIGKILL)
                killed = True
        stdout, _ = proc.communicate(timeout=600)
        with open(err_path, "rb") as f:
            f.seek(err_start)
            err_text = f.read().decode(errors="replace")
        if killed and proc.returncode == -signal.SIGKILL:
            res["kills"] += 1
            res["in_write"] += tmp_seen
            done, problems = complete_steps(out)
            problems += outputs_problems(out)
            res["problems"] += ["kill %d: %s" % (res["kills"], p) for p in problems]
            previous, newest = newest, max(done) if done else 0
            ok = not problems and newest >= previous
            if newest < previous:
                res["problems"].append("kill %d: newest checkpoint went back from step %d to %d"
                                       % (res["kills"], previous, newest))
            res["recovered"] += ok  # confirmed below unless the next launch fails
            res.setdefault("_pending", []).append(ok)
            if verbose:
                print("  %s kill %d at chain %d: newest step %d%s%s" % (kind, res["kills"], chain, newest,
                      " (in a write)" if tmp_seen else "", "" if ok else " PROBLEM"), flush=True)
            continue
        pending = res.pop("_pending", [])
        if proc.returncode != 0:
            # The launch after a kill failed: that kill did not recover.
            res["recovered"] -= sum(pending[-1:])
            res["problems"].append("chain %d: a resumed launch failed (exit %d): %s"
                                   % (chain, proc.returncode, err_text.strip().splitlines()[-1:]))
            out = None
            if res["kills"] >= kills:
                break
            continue
        # Finished: (b) it resumed from the newest checkpoint, (a) nothing partial, (c) bit-exact.
        res["runs"] += 1
        start = start_step_of(kind, stdout, err_text)
        problems = []
        if start != newest:
            problems.append("chain %d: the finishing launch started at step %s, the newest checkpoint is step %d"
                            % (chain, start, newest))
        left = temporaries(out)
        if left:
            problems.append("chain %d: temporaries left after the run finished: %s" % (chain, left))
        _, bad = complete_steps(out)
        problems += bad + outputs_problems(out) + log_problems(out, steps)
        try:
            diffs = differences(ref, final_tensors(out, steps))
        except (OSError, ValueError, KeyError) as e:
            diffs = [str(e)]
        if diffs:
            problems.append("chain %d: not bit-exact: %s" % (chain, "; ".join(diffs[:5])))
        else:
            res["bit_exact"] += 1
        res["problems"] += problems
        if problems and pending:
            res["recovered"] -= sum(pending[-1:])
        if verbose:
            print("  %s chain %d finished (start step %s): %s" % (kind, chain, start,
                  "bit-exact" if not diffs else "DIFFERS"), flush=True)
        if last:
            break
        out = None
    res["seconds"] = round(time.monotonic() - t0, 1)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=50, help="SIGKILLs per command (default 50)")
    ap.add_argument("--seed", type=int, default=1, help="seed of the kill points (default 1)")
    ap.add_argument("--only", choices=COMMANDS, action="append", help="one command (repeatable)")
    ap.add_argument("--aviary", default=os.path.join(ROOT, "build", "release", "apps", "cli", "aviary"))
    ap.add_argument("--work", help="scratch directory (default: a fresh one under $TMPDIR, removed when all pass)")
    ap.add_argument("--json", help="write the results as JSON here")
    ap.add_argument("--verbose", "-v", action="store_true", help="one line per kill")
    a = ap.parse_args()
    if not os.access(a.aviary, os.X_OK):
        sys.exit("error: '%s' is not an executable aviary (build it, or pass --aviary)" % a.aviary)
    work = a.work or tempfile.mkdtemp(prefix="aviary-kill-resume-")
    os.makedirs(work, exist_ok=True)
    results = []
    for kind in a.only or COMMANDS:
        if subprocess.run([a.aviary, "train", kind, "--help"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode != 0:
            if a.only:
                sys.exit("error: this aviary has no `train %s` (module not built)" % kind)
            print("train %s: not in this build, skipped" % kind, flush=True)
            continue
        print("train %s: %d kills, seed %d ..." % (kind, a.kills, a.seed), flush=True)
        results.append(campaign(kind, a.aviary, work, a.kills, a.seed, a.verbose))
    fmt = "%-13s %6s %6s %9s %10s %12s %10s"
    print(fmt % ("command", "steps", "kills", "in write", "recovered", "runs ended", "bit-exact"))
    for r in results:
        print(fmt % (r["command"], r["steps"], r["kills"], r["in_write"], r["recovered"], r["runs"], r["bit_exact"]))
    failed = False
    for r in results:
        for p in r["problems"]:
            print("%s: %s" % (r["command"], p))
        failed |= bool(r["problems"]) or r["recovered"] != r["kills"] or r["bit_exact"] != r["runs"] or r["runs"] < 1
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"seed": a.seed, "kills": a.kills, "results": results}, f, indent=1)
    print("work directory: %s" % work)
    if not failed and not a.work:
        shutil.rmtree(work, ignore_errors=True)
    print("FAILED" if failed else "all kills recovered, every finished run bit-exact")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
