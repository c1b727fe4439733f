"""The input size, chosen from the data when `--img-size` is not given (classifier: below;
detector: `choose_detect_size`).

Chosen on the suite's tuning half (benchmarks/suite.py, RESULTS.md "suite, earlier default", with
every stage trained; Fashion-MNIST 28 px and UCI digits 8 px, EfficientNet-Lite0, 30 images a
class, 8 epochs): small images gain from
being upsampled — test top-1 at 64/96/128/160/224 px was 0.787/0.805/0.793/0.814/0.820 and
0.912/0.927/0.944/0.938/0.954 — while the cost grows with the pixels (about 30/40/60/70/110-190
s). 160 px keeps all but ~1 point of the card's 224 at about half its time. So: the images'
median shorter side times UPSAMPLE, rounded up to the network's stride, at least MIN_SIZE and at
most the card's size (larger images are resized down to it, as before). Re-checked with Lite0's
first 3 stages frozen (its default since; RESULTS.md "size-rule-frozen", 2 seeds): 96/160/224 px
gave 0.799/0.816/0.820 and 0.927/0.941/0.950, the same shape.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edgetune.run import RunDir

STRIDE = 32
MIN_SIZE = 160
UPSAMPLE = 2.0
SAMPLE = 64  # images whose headers are read (the median of a few dozen is stable)


def native_side(paths: Sequence[Path], *, longer: bool = False) -> int | None:
    """Median shorter (or `longer`) side of up to SAMPLE images (headers only); None when none
    can be read."""
    from PIL import Image

    sides = []
    step = max(1, len(paths) // SAMPLE)
    for p in list(paths)[::step][:SAMPLE]:
        try:
            with Image.open(p) as im:
                sides.append(max(im.size) if longer else min(im.size))
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


def choose_detect_size(card_size: int, paths: Sequence[Path]) -> tuple[int, dict[str, Any]]:
    """(size, record) for a detector: the images' median longer side (what a letterbox scales to
    the input size) rounded up to the stride, at most the card's — a detector is not trained on
    upsampled images unless `--img-size` asks for it.

    Measured on the detection suite (benchmarks/RESULTS.md "detect-suite", yolo11n): the card's
    640 px gained on the composed tuning set (480 px images: mAP50-95 0.870 vs 0.804 ± 0.020) but
    lost on both real reporting sets (320 px aerial tiles 0.103 vs 0.119 ± 0.012; 256 px
    microscopy tiles 0.062 vs 0.562 ± 0.066), at 1.8-3x the training time.
    """
    native = native_side(paths, longer=True)
    size = card_size if native is None else min(card_size, math.ceil(native / STRIDE) * STRIDE)
    return size, {"chosen": size, "native_median_side": native, "side": "longer", "card": card_size,
                  "rule": f"min(card, ceil(native / {STRIDE}) x {STRIDE})"}


def resolve_input_size(given: int | None, resume_from: RunDir | None,
                       choose: Callable[[], tuple[int, dict[str, Any]]]) -> dict[str, Any]:
    """The record of a fine-tune's input size: `given` (--img-size); else, when resuming
    (`resume_from`: the run's RunDir), the size the run started with — the data may have changed
    since, and a run keeps one preprocessing; else `choose()`'s, from the images."""
    if given:
        return {"chosen": given, "given": True}
    if resume_from is not None and resume_from.manifest_path.is_file():
        size = resume_from.read_manifest().spec.preprocessing.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or not 16 <= size <= 1024:
            from edgetune.errors import RunDirError

            raise RunDirError(f"{resume_from.manifest_path}: field 'preprocessing.size' must be an integer in "
                              f"[16, 1024], got {size!r}", hint="resume with --img-size N, or start a new --out")
        return {"chosen": size, "given": True}
    return choose()[1]


def size_note(record: dict[str, Any]) -> str:
    """How the size came about, for the training log ("" when --img-size gave it)."""
    if record.get("given"):
        return ""
    if record["native_median_side"] is None:
        return " (the card's: no image size could be read; --img-size overrides)"
    return f" (from the images' {record['native_median_side']} px; --img-size overrides)"
