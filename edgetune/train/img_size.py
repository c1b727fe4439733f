"""The classifier's input size, chosen from the data when `--img-size` is not given.

Chosen on the suite's tuning half (benchmarks/suite.py, RESULTS.md "suite"; Fashion-MNIST 28 px
and UCI digits 8 px, EfficientNet-Lite0, 30 images a class, 8 epochs): small images gain from
being upsampled — test top-1 at 64/96/128/160/224 px was 0.787/0.805/0.793/0.814/0.820 and
0.912/0.927/0.944/0.938/0.954 — while the cost grows with the pixels (about 30/40/60/70/110-190
s). 160 px keeps all but ~1 point of the card's 224 at about half its time. So: the images'
median shorter side times UPSAMPLE, rounded up to the network's stride, at least MIN_SIZE and at
most the card's size (larger images are resized down to it, as before).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

STRIDE = 32
MIN_SIZE = 160
UPSAMPLE = 2.0
SAMPLE = 64  # images whose headers are read (the median of a few dozen is stable)


def native_side(paths: Sequence[Path]) -> int | None:
    """Median shorter side of up to SAMPLE images (headers only); None when none can be read."""
    from PIL import Image

    sides = []
    step = max(1, len(paths) // SAMPLE)
    for p in list(paths)[::step][:SAMPLE]:
        try:
            with Image.open(p) as im:
                sides.append(min(im.size))
        except Exception:  # noqa: BLE001 - any unreadable file (decode_split names them); ultralytics' Image.open
            continue       # patch raises ImportError (pi_heif) for unknown formats
    return int(sorted(sides)[len(sides) // 2]) if sides else None


def choose_img_size(card_size: int, paths: Sequence[Path]) -> tuple[int, dict[str, Any]]:
    """(size, record): the input size for these training images and why, for the manifest."""
    native = native_side(paths)
    if native is None or native * UPSAMPLE >= card_size:
        size = card_size
    else:
        size = min(card_size, max(MIN_SIZE, math.ceil(native * UPSAMPLE / STRIDE) * STRIDE))
    return size, {"chosen": size, "native_median_side": native, "card": card_size,
                  "rule": f"min(card, max({MIN_SIZE}, ceil({UPSAMPLE:g} x native / {STRIDE}) x {STRIDE}))"}
