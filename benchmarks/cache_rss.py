"""Peak memory of a fine-tune on a data set larger than its RAM budget: `--cache ram` vs `disk` vs
`none` on a generated 50,000-image ImageFolder. RESULTS.md "cache-rss".

    python benchmarks/cache_rss.py [--images 50000] [--img-size 160] [--epochs 1]

The images are 64 px PNGs of 10 classes (a class is a colour and a stripe orientation, with noise)
written once to benchmarks/_work/cache_rss/; test_tinynet trains on them at --img-size, so every
stored row is img_size² × 3 bytes (160 px: 3.84 GB for 50,000 rows in RAM). Peak RSS is the
fine-tune process's own ru_maxrss, each mode in a fresh process, one after the other.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _results import write_section

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / "benchmarks" / "_work" / "cache_rss"
ET = str(Path(sys.executable).with_name("edgetune"))
# Runs the command and prints its peak RSS (kB) and wall seconds on the last line.
MEASURE = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
           "p = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True); "
           "print(p.stderr[-1500:] if p.returncode else '', file=sys.stderr); "
           "print(p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, time.perf_counter() - t)")


def make_images(root: Path, n: int, val: int) -> None:
    """n train + val val images, 10 classes, generated (seeded); kept for reruns."""
    from PIL import Image

    if (root / "done").is_file() and (root / "done").read_text() == f"{n} {val}":
        return
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:64, 0:64]
    for split, count in (("train", n), ("val", val)):
        for i in range(count):
            c = i % 10
            stripes = np.sin((xx * np.cos(c * 0.3) + yy * np.sin(c * 0.3)) / 3.0)
            colour = np.array([(c * 37) % 255, (c * 91) % 255, (c * 53) % 255], dtype=np.float32)
            img = colour * (0.6 + 0.3 * stripes[..., None]) + rng.normal(0, 25, (64, 64, 3))
            folder = root / split / f"class{c}"
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(folder / f"{i:06d}.png")
    (root / "done").write_text(f"{n} {val}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=50_000)
    ap.add_argument("--img-size", type=int, default=160)
    ap.add_argument("--epochs", type=int, default=1)
    args = ap.parse_args()
    data = WORK / f"data-{args.images}"
    t = time.perf_counter()
    make_images(data, args.images, 1000)
    print(f"data ready in {time.perf_counter() - t:.0f} s", flush=True)
    rows = []
    for mode in ("ram", "disk", "none"):
        out = WORK / f"run-{mode}"
        subprocess.run(["rm", "-rf", str(out)], check=True)
        cmd = [ET, "finetune", "--model", "test_tinynet", "--data", str(data), "--out", str(out), "--epochs",
               str(args.epochs), "--img-size", str(args.img_size), "--lr", "3e-3", "--cache", mode]
        p = subprocess.run([sys.executable, "-c", MEASURE, *cmd], capture_output=True, text=True)
        code, rss_kb, wall = p.stdout.split()
        if int(code):
            raise SystemExit(f"{mode}: {p.stderr}")
        m = json.loads((out / "edgetune.json").read_text())
        rows.append((mode, int(rss_kb) / 1e6, float(wall), m["best"]["top1"], m["cache"]["gb"]))
        print(f"{mode}: peak RSS {int(rss_kb) / 1e6:.2f} GB, {float(wall):.0f} s, top1 {m['best']['top1']}", flush=True)
    command = " ".join(["python benchmarks/cache_rss.py", *sys.argv[1:]])
    write_section("cache-rss", "\n".join([
        "## Data larger than RAM: peak RSS with the decoded images in RAM, on disk, or nowhere",
        "",
        f"`{command}`: {args.images:,} generated 64 px images (+1,000 val) of 10 classes, test_tinynet at "
        f"{args.img_size} px, {args.epochs} epoch(s); the decoded rows take {rows[0][4]:.2f} GB. Peak RSS is the "
        "fine-tune process's ru_maxrss; each mode in a fresh process, one after the other.",
        "",
        "| --cache | peak RSS | wall | val top-1 |",
        "|---|---|---|---|",
        *[f"| {mode} | {rss:.2f} GB | {wall:.0f} s | {top1:.4f} |" for mode, rss, wall, top1, _ in rows],
    ]))


if __name__ == "__main__":
    main()
