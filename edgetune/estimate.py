"""Off-device latency estimate, labelled as such: host p50 × (device's published latency of a
reference model ÷ the same reference model's p50 measured here, same threads, same runtime).

Why a ratio of one public model: it needs nothing from the device, and it carries the host's
load, clocks and thread count into both terms, so they cancel. What it cannot carry: how
differently two architectures use the two CPUs (cache sizes, int8 instructions). Its error is
measured where it can be checked — predicting one published number from another on the same
device (`python benchmarks/estimate.py`, RESULTS.md "estimate") — and quoted in every estimate.
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
REFERENCE_RUNS = 50


def pick_reference(profile: DeviceProfile, runtime: str) -> tuple[ReferenceLatency, bool] | None:
    """The profile's first reference on the artefact's runtime, else its first on another
    runtime (flagged: ONNX Runtime and OpenVINO scale differently across CPUs)."""
    same = [r for r in profile.references if r.runtime == runtime]
    if same:
        return same[0], False
    return (profile.references[0], True) if profile.references else None


def reference_input(imgsz: int) -> np.ndarray:
    return np.full((1, 3, imgsz, imgsz), 0.5, dtype=np.float32)


def estimate_latency(profile: DeviceProfile, runtime: str, precision: str, host_p50_ms: float, threads: int, *,
                     measure: Callable[[Path, np.ndarray, int], float] | None = None) -> dict[str, Any]:
    """The estimate for `profile`, or `{"available": False, "reason": ...}` saying why not."""
    picked = pick_reference(profile, runtime)
    if picked is None:
        return {"available": False, "reason": f"profile {profile.name} lists no published reference latency"}
    ref, cross_runtime = picked
    from edgetune.reference import reference_artifact

    try:
        artifact = reference_artifact(ref.model, ref.imgsz, ref.runtime)
        if measure is None:
            from edgetune.bench import latency_p50

            measure = lambda a, x, t: latency_p50(a, x, t, runs=REFERENCE_RUNS)  # noqa: E731
        host_ref = float(measure(artifact, reference_input(ref.imgsz), threads))
    except EdgetuneError as exc:
        return {"available": False, "reason": exc.message}
    scale = ref.latency_ms / host_ref
    caveats = [ERROR_NOTE]
    if cross_runtime:
        caveats.append(f"no {runtime} reference for {profile.name}: scaled by its {ref.runtime} reference")
    if precision != "fp32":
        caveats.append(f"{precision} artefact scaled by an fp32 reference: its speed-up over fp32 on the device "
                       "(dot-product / VNNI / fp16 units) may differ from this host's")
    return {"available": True, "label": LABEL, "latency_p50_ms": round(host_p50_ms * scale, 3),
            "scale": round(scale, 4), "reference": ref.as_dict(), "host_reference_p50_ms": round(host_ref, 3),
            "threads_here": threads, "cross_runtime": cross_runtime, "caveats": caveats}
