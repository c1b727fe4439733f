"""Public reference models for off-device estimates: the architectures that vendors and
Ultralytics publish device latencies for, rebuilt here so the same graph can be timed on the host.

Latency does not depend on the weights' values, so a reference is built from its ultralytics
architecture YAML (no download) and exported with ultralytics' own exporter at the published
settings (batch 1, fp32, default export options) — the pipeline the published tables used.
Artefacts are cached under `<cache>/reference/`. Building one needs the train extra (ultralytics,
torch); the light install on a device measures the device itself and needs no estimate.
"""

from __future__ import annotations

import os
from pathlib import Path

from edgetune.errors import AssetError
from edgetune.fsutil import atomic_dir, work_dir
from edgetune.paths import cache_dir

# name → ultralytics architecture YAML (detection heads; decode included, as in the tables).
REFERENCE_MODELS: dict[str, str] = {
    "yolo11n": "yolo11n.yaml", "yolo11s": "yolo11s.yaml", "yolo11m": "yolo11m.yaml",
    "yolov8n": "yolov8n.yaml", "yolov8s": "yolov8s.yaml", "yolov8m": "yolov8m.yaml",
    "yolo26n": "yolo26n.yaml", "yolo26s": "yolo26s.yaml", "yolo26m": "yolo26m.yaml",
}


def _importable(name: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except ImportError:
        return False


def reference_dir(model: str, imgsz: int, runtime: str) -> Path:
    return cache_dir() / "reference" / f"{model}-{imgsz}-{runtime}"


def reference_artifact(model: str, imgsz: int, runtime: str) -> Path:
    """The cached reference artefact (model.onnx or model.xml), built on first use."""
    from edgetune.export.backends import get_backend

    backend = get_backend(runtime)
    out = reference_dir(model, imgsz, runtime)
    name = backend.artifact
    if (out / name).is_file():
        return out / name
    missing = next((m for m in ("torch", "ultralytics", "matplotlib") if not _importable(m)), None)
    if missing:
        raise AssetError(f"building the reference model {model} needs the train extra ({missing} is not installed)",
                         hint="pip install 'edgetune[train]' on the host, or bench on the device itself")
    from edgetune.train import ultralytics_env

    ultralytics_env.prepare(quiet=True)
    from ultralytics import YOLO

    with work_dir("reference") as tmp, atomic_dir(out) as dest:
        cwd = os.getcwd()
        os.chdir(tmp)  # ultralytics writes a YAML-built model's export into the working directory
        try:
            exported = Path(tmp) / YOLO(REFERENCE_MODELS[model]).export(
                format=backend.reference_format, imgsz=imgsz, batch=1, verbose=False)
        finally:
            os.chdir(cwd)
        backend.import_reference(exported, dest)
    return out / name
