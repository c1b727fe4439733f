"""One calibration mechanism for every quantiser (ORT static int8 and NNCF alike).

The set itself comes from the task (`Task.calibration_inputs`): a seeded, per-class stratified
subset of the *training* split, its indices and a hash of its files recorded in export.json.
This module decides whether that set can be trusted and says so before int8 is built on it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MIN_SAMPLES = 32  # below this, min/max ranges of a 2-core-sized model swing from run to run


def input_stats(inputs: Sequence[np.ndarray]) -> np.ndarray:
    """Per-input (mean, std): the two numbers a dark/bright, quiet/loud or blank sample changes."""
    return np.array([[float(x.mean()), float(x.std())] for x in inputs]) if len(inputs) else np.zeros((0, 2))


def check(record: dict, num_classes: int, calib: Sequence[np.ndarray], reference: Sequence[np.ndarray]) -> list[str]:
    """Warnings (one line each) when the calibration set is too small or does not look like the
    data the model will see (`reference`: held-out inputs). The record gains the statistics."""
    warnings = []
    size = record["size"]
    if size < 2 * num_classes or record.get("per_class_min", 1) < 1:
        warnings.append(f"calibration set of {size} samples covers some of the {num_classes} classes with "
                        f"{record.get('per_class_min', 0)} sample(s); int8 ranges may not represent the data "
                        f"(use --calib-size ≥ {10 * num_classes})")
    elif size < MIN_SAMPLES:
        warnings.append(f"calibration set of only {size} samples; int8 ranges may vary from run to run "
                        f"(use --calib-size ≥ {MIN_SAMPLES})")
    c, r = input_stats(calib), input_stats(reference)
    if len(c) and len(r):
        lo, hi = np.percentile(c, 5, axis=0), np.percentile(c, 95, axis=0)
        med = np.median(r, axis=0)
        outside = [name for name, m, a, b in zip(("mean", "std"), med, lo, hi, strict=True) if not a - 1e-6 <= m <= b + 1e-6]
        record["representativeness"] = {"calib_p5": lo.round(5).tolist(), "calib_p95": hi.round(5).tolist(),
                                        "val_median": med.round(5).tolist(), "stats": ["mean", "std"],
                                        "outside": outside}
        if outside:
            warnings.append(f"calibration inputs do not look like the val inputs: the val median input "
                            f"{' and '.join(outside)} lies outside the calibration set's 5-95 % range "
                            f"(check that training and val data come from the same source, or raise --calib-size)")
    return warnings
