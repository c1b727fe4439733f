"""edgetune: fine-tune compact pretrained models, export them for edge devices, benchmark them.

Importing the package sets the offline/telemetry switches (see `edgetune._env`) before any
framework is imported, so users never need to know the traps listed in ENVIRONMENT.md.

The whole flow from Python, without Click (each imported on first use, so `import edgetune`
stays light):

    import edgetune
    edgetune.finetune("efficientnet_lite0", "data/", "runs/a", epochs=5)
    edgetune.export_run("runs/a", "cpu-int8", options=edgetune.ExportOptions(max_drop=0.01))
    edgetune.bench_run("runs/a", "cpu-int8", "raspberry-pi-5")
    edgetune.predict("runs/a/export/cpu-int8", ["img.jpg"])
"""

from __future__ import annotations

import importlib
from typing import Any

from edgetune._env import apply_environment

__version__ = "0.1.0"

apply_environment()

_API = {
    "finetune": ("edgetune.training", "finetune"),
    "predict": ("edgetune.inference", "predict"),
    "export_run": ("edgetune.export.pipeline", "export_run"),
    "ExportOptions": ("edgetune.export.context", "Options"),
    "bench_run": ("edgetune.bench", "bench_run"),
    "write_report": ("edgetune.report", "write_report"),
}
__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name in _API:
        module, attr = _API[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'edgetune' has no attribute {name!r}")
