"""Process-wide switches that keep the frameworks quiet and offline-safe.

Why here: ONNX Runtime, OpenVINO/NNCF and ultralytics each phone home or spin threads unless
told otherwise, and most read their switch once at import time. edgetune sets them with
`setdefault`, so a user who exports a different value keeps it.
"""

from __future__ import annotations

import os

_DEFAULTS = {
    # Telemetry off: ORT native telemetry, OpenVINO/NNCF analytics (honours CI=true), ultralytics.
    "ORT_DISABLE_TELEMETRY": "1",
    "OPENVINO_TELEMETRY_DISABLE": "1",
    "NNCF_DISABLE_TELEMETRY": "1",
    "YOLO_OFFLINE": "1",
    "YOLO_AUTOINSTALL": "0",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    # OpenMP threads spin while waiting; on a 2-core box shared with another process that costs 5x.
    "OMP_WAIT_POLICY": "PASSIVE",
    "KMP_WARNINGS": "0",
}


# Not a default but a rule: ultralytics checkpoints are pickles, and run folders, caches and
# --weights files are untrusted. ultralytics' opt-in restricted loader unpickles them with
# torch.load(weights_only=True) and an allow-list of model classes, so a checkpoint whose pickle
# calls os.system is refused instead of run (tests/test_untrusted_files.py).
_FORCED = {"ULTRALYTICS_SAFE_LOAD": "1"}


def apply_environment() -> None:
    """Set the switches that must exist before torch/onnxruntime/openvino are imported."""
    for key, value in _DEFAULTS.items():
        os.environ.setdefault(key, value)
    os.environ.update(_FORCED)
    # ultralytics' settings file, font and downloads live in the edgetune cache, not ~/.config.
    from edgetune.paths import cache_path  # unchecked: a bad EDGETUNE_CACHE is reported where it is used

    os.environ.setdefault("YOLO_CONFIG_DIR", str(cache_path()[0] / "ultralytics"))


def offline_forced() -> bool:
    """True when the user asked for no online download at all (EDGETUNE_OFFLINE/HF_HUB_OFFLINE)."""
    return any(os.environ.get(k, "") not in ("", "0") for k in ("EDGETUNE_OFFLINE", "HF_HUB_OFFLINE"))
