"""Process-wide switches that keep the frameworks quiet and offline-safe.

Why here: ONNX Runtime, OpenVINO/NNCF and ultralytics each phone home or spin threads unless
told otherwise, and most read their switch once at import time. edgetune sets them with
`setdefault`, so a user who exports a different value keeps it.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import os
import sys
from collections.abc import Iterator

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


class _DeclineOpenVinoTelemetry(importlib.abc.MetaPathFinder):
    """OpenVINO's model converter and NNCF send usage analytics from a forked process unless a
    consent file in ~/intel says no or CI=true is set; no environment switch stops them, and with
    no network each send lingered as an orphan process blocked in DNS. When (and only when) their
    consent checker is imported, it is made to answer 'declined' for this process. Nothing is
    imported at start-up and the user's consent file is left alone."""

    MODULE = "openvino_telemetry.utils.opt_in_checker"

    def find_spec(self, name: str, path: object = None, target: object = None) -> object:
        if name != self.MODULE:
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return spec
        run = spec.loader.exec_module

        def exec_module(module: object) -> None:
            run(module)
            declined = module.ConsentCheckResult.DECLINED
            module.OptInChecker.check = lambda self, *args, **kwargs: declined

        spec.loader.exec_module = exec_module
        return spec


_USER_SET: set[str] = set()  # which defaults the user had set before edgetune did
_DEFAULTED = "EDGETUNE_DEFAULTED_ENV"


@contextlib.contextmanager
def openmp_spinning() -> Iterator[None]:
    """Import a runtime whose OpenMP threads must spin between parallel regions (NCNN forks and
    joins per layer: with the PASSIVE default its 2-thread p50 was 5x its 1-thread one, RESULTS.md
    "ncnn"). OpenMP reads the policy when the runtime's own libgomp loads; a user's choice wins."""
    if "OMP_WAIT_POLICY" in _USER_SET:
        yield
        return
    before = os.environ.get("OMP_WAIT_POLICY")
    os.environ["OMP_WAIT_POLICY"] = "ACTIVE"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("OMP_WAIT_POLICY", None)
        else:
            os.environ["OMP_WAIT_POLICY"] = before


def apply_environment() -> None:
    """Set the switches that must exist before torch/onnxruntime/openvino are imported."""
    # A child process (the latency worker) inherits edgetune's defaults: they stay edgetune's.
    inherited = set(os.environ.get(_DEFAULTED, "").split(","))
    _USER_SET.update(k for k in _DEFAULTS if k in os.environ and k not in inherited)
    for key, value in _DEFAULTS.items():
        os.environ.setdefault(key, value)
    os.environ[_DEFAULTED] = ",".join(k for k in _DEFAULTS if k not in _USER_SET)
    os.environ.update(_FORCED)
    if not any(isinstance(f, _DeclineOpenVinoTelemetry) for f in sys.meta_path):
        sys.meta_path.insert(0, _DeclineOpenVinoTelemetry())
    # ultralytics' settings file, font and downloads live in the edgetune cache, not ~/.config.
    from edgetune.paths import cache_path  # unchecked: a bad EDGETUNE_CACHE is reported where it is used

    os.environ.setdefault("YOLO_CONFIG_DIR", str(cache_path()[0] / "ultralytics"))


def offline_forced() -> bool:
    """True when the user asked for no online download at all (EDGETUNE_OFFLINE/HF_HUB_OFFLINE)."""
    return any(os.environ.get(k, "") not in ("", "0") for k in ("EDGETUNE_OFFLINE", "HF_HUB_OFFLINE"))
