"""How far apart (pHash bits) a planted leak and a genuinely different image are, on real sets:
the evidence for `edgetune data check`'s near-duplicate threshold (RESULTS.md "leak-threshold").

    python benchmarks/leak_threshold.py

For every set: train and val images as the suite samples them; each val image is also "leaked"
into train the way copies leak in practice (resized to 75 %, JPEG quality 80). Two numbers per
set: the largest distance between a leaked copy and its original (the threshold must reach it),
and how many val images have a *different* train image within t bits (what a threshold t would
flag falsely; on real data some of these are real duplicates). The threshold is chosen on the
TUNING sets only; REPORTING sets are measured with it afterwards.
"""

from __future__ import annotations

import io
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _results import write_section
from PIL import Image

from edgetune.data.check.phash import MAX_DISTANCE, MIN_SIDE, nearest, phash
from edgetune.data.real_sets import SETS, sample

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work" / "leak_threshold"
THRESHOLDS = (4, 6, 8, 10, 12)
# set → (train, val) images a class (classification) or None (a detection set's tiles/images)
TUNING = {"fashion-mnist": (100, 20), "digits": (100, 20), "textures": (60, 15), "objects-on-photos": None}
REPORTING = {"mnist-5k": (100, 20), "glyphs": (10, 5), "faces": (60, 20), "aerial-trees": (60, 20), "nuclei": None,
             "aerial-trees tiles": None}


def leaked(img: Image.Image) -> Image.Image:
    w, h = img.size
    small = img.convert("RGB").resize((max(4, round(w * 0.75)), max(4, round(h * 0.75))), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    small.save(buf, "JPEG", quality=80)
    return Image.open(io.BytesIO(buf.getvalue()))


def images(name: str, counts: tuple[int, int] | None) -> tuple[list[Image.Image], list[Image.Image]]:
    if counts is not None:
        pool = SETS.get(name).load()
        idx = sample(pool, {"train": counts[0], "val": counts[1]}, 0)
        return ([Image.fromarray(pool.images[i]) for i in idx["train"]],
                [Image.fromarray(pool.images[i]) for i in idx["val"]])
    out = WORK / name.replace(" ", "-")
    if not out.is_dir():
        cmd = (["data", "objects-on-photos", "--out", str(out)] if name == "objects-on-photos"
               else ["data", "real-det", name.removesuffix(" tiles"), "--out", str(out)])
        subprocess.run([str(Path(sys.executable).with_name("edgetune")), *cmd], check=True, stdout=subprocess.DEVNULL)
    load = lambda s: [Image.open(p) for p in sorted((out / "images" / s).glob("*"))]  # noqa: E731
    return load("train"), load("val")


def measure(name: str, counts: tuple[int, int] | None) -> dict:
    train, val = images(name, counts)
    t = time.perf_counter()
    ht = np.array([phash(i) for i in train], dtype=np.uint64)
    hv = np.array([phash(i) for i in val], dtype=np.uint64)
    per_image_ms = (time.perf_counter() - t) / (len(train) + len(val)) * 1e3
    hl = np.array([phash(leaked(i)) for i in val], dtype=np.uint64)
    planted = np.bitwise_count(hl ^ hv)
    genuine = nearest(hv, ht)
    side = int(np.median([min(i.size) for i in val]))
    eligible = side >= MIN_SIDE
    return {"set": name, "side": side, "train": len(train), "val": len(val), "planted_max": int(planted.max()),
            "rule": (f"{int((planted <= MAX_DISTANCE).sum())}/{len(val)} found, {int((genuine <= MAX_DISTANCE).sum())} "
                     "false" if eligible else "below the size: exact duplicates only"),
            "planted_p95": float(np.percentile(planted, 95)), "genuine_min": int(genuine.min()),
            "flagged": {t: int((genuine <= t).sum()) for t in THRESHOLDS}, "ms": per_image_ms}


def main() -> None:
    rows = {"tuning": [measure(n, c) for n, c in TUNING.items()],
            "reporting": [measure(n, c) for n, c in REPORTING.items()]}
    lines = ["Command: `python benchmarks/leak_threshold.py` (pHash, 64 bits; leaked copy = resized to 75 % + "
             "JPEG q80; 'flagged at t' = val images with a *different* train image within t bits).", "",
             "| half | set | px | train × val | leaked copy: max / p95 bits | nearest different image: min bits | "
             + " | ".join(f"flagged at {t}" for t in THRESHOLDS) + f" | rule (≥ {MIN_SIDE} px, ≤ {MAX_DISTANCE} bits) | hash ms/image |",
             "|---|---|---|---|---|---|" + "---|" * len(THRESHOLDS) + "---|---|"]
    for half, rs in rows.items():
        for r in rs:
            lines.append(f"| {half} | {r['set']} | {r['side']} | {r['train']} × {r['val']} | {r['planted_max']} / "
                         f"{r['planted_p95']:.0f} | {r['genuine_min']} | "
                         + " | ".join(f"{r['flagged'][t]} ({r['flagged'][t] / r['val']:.1%})" for t in THRESHOLDS)
                         + f" | {r['rule']} | {r['ms']:.2f} |")
    write_section("leak-threshold", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
