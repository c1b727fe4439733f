"""Write arrays of images as an ImageFolder (`<out>/<split>/<class>/<name>.png`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from edgetune.fsutil import atomic_dir


def write_imagefolder(out: Path, splits: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
                      classes: Sequence[str]) -> dict[str, int]:
    """`splits` maps split name → (images, labels, source indices). Returns image counts.

    The folder is built under a temp name and renamed into place, so an interrupted run never
    leaves a half-written data set that a later fine-tune would trust.
    """
    counts: dict[str, int] = {}
    with atomic_dir(Path(out)) as tmp:
        for split, (images, labels, indices) in splits.items():
            for c in classes:
                (tmp / split / c).mkdir(parents=True, exist_ok=True)
            for img, label, idx in zip(images, labels, indices, strict=True):
                Image.fromarray(np.asarray(img, dtype=np.uint8)).save(
                    tmp / split / classes[int(label)] / f"{int(idx):05d}.png", optimize=True)
            counts[split] = len(images)
    return counts
