"""Off-device latency estimate, labelled as such: the device's published latency of a reference
model × (the artefact's p50 ÷ the reference's p50, both measured here, same threads, same runtime).

Why a ratio to one public model: it needs nothing from the device, and the host's load, clocks
and thread count act on both terms, so they cancel — provided both are measured under the same
load, which is why the two are measured alternately in one process (`edgetune.latency --pair`), not
one after the other (a minute apart this host's load moves the p50 by 20–40 %). What the ratio
cannot carry: how differently two architectures use the two CPUs (cache sizes, int8 instructions).
Its error is measured where it can be checked — predicting one published number from another on
the same device (`python benchmarks/estimate.py`, RESULTS.md "estimate") — and quoted in every
estimate.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgetune.errors import EdgetuneError
from edgetune.profiles import DeviceProfile, ReferenceLatency

LABEL = "ESTIMATE: scaled from a published reference latency, not measured on the device"
# Measured by benchmarks/estimate.py across the published tables (RESULTS.md "estimate").
ERROR_NOTE = ("predicting each published number from another model's on the same device, this rule was "
              "off by a median 37 %, worst 155 % (benchmarks/RESULTS.md \"estimate\"): an order of magnitude, "
              "not a budget check")
PAIR_ROUNDS = 7  # alternating blocks of the artefact and the reference; the median ratio is used
PairMeasure = Callable[[Path, np.ndarray, Path, np.ndarray, int], dict[str, Any]]


def pick_reference(profile: DeviceProfile, runtime: str) -> tuple[ReferenceLatency, bool] | None:
    """The profile's first reference on the artefact's runtime, else its first on another
    runtime (flagged: ONNX Runtime and OpenVINO scale differently across CPUs)."""
    same = [r for r in profile.references if r.runtime == runtime]
    if same:
        return same[0], False
    return (profile.references[0], True) if profile.references else None


def reference_input(imgsz: int) -> np.ndarray:
    return np.full((1, 3, imgsz, imgsz), 0.5, dtype=np.float32)


def measure_pair(artifact: Path, x: np.ndarray, reference: Path, x_ref: np.ndarray, threads: int) -> dict[str, Any]:
    """The artefact/reference latency ratio, alternating the two in one pinned worker process."""
    from edgetune.latency import spawn

    return spawn(["--pair", artifact, x, reference, x_ref, threads, PAIR_ROUNDS], what=f"{artifact} and {reference}")


def estimate_latency(profile: DeviceProfile, runtime: str, precision: str, artifact: Path, x: np.ndarray,
                     threads: int, *, measure: PairMeasure = measure_pair) -> dict[str, Any]:
    """The estimate for `profile`, or `{"available": False, "reason": ...}` saying why not."""
    picked = pick_reference(profile, runtime)
    if picked is None:
        return {"available": False, "reason": f"profile {profile.name} lists no published reference latency"}
    ref, cross_runtime = picked
    from edgetune.reference import reference_artifact

    try:
        reference = reference_artifact(ref.model, ref.imgsz, ref.runtime)
        pair = measure(artifact, x, reference, reference_input(ref.imgsz), threads)
    except EdgetuneError as exc:
        return {"available": False, "reason": exc.one_line()}
    caveats = [ERROR_NOTE]
    if cross_runtime:
        caveats.append(f"no {runtime} reference for {profile.name}: scaled by its {ref.runtime} reference")
    if precision != "fp32":
        caveats.append(f"{precision} artefact scaled by an fp32 reference: its speed-up over fp32 on the device "
                       "(dot-product / VNNI / fp16 units) may differ from this host's")
    return {"available": True, "label": LABEL, "latency_p50_ms": round(ref.latency_ms * pair["ratio"], 3),
            "ratio_to_reference": round(pair["ratio"], 4), "reference": ref.as_dict(),
            "host_artifact_p50_ms": round(pair["a_p50_ms"], 3), "host_reference_p50_ms": round(pair["b_p50_ms"], 3),
            "rounds": pair["rounds"], "threads_here": threads, "cross_runtime": cross_runtime, "caveats": caveats}
