"""Export backends: one module per runtime behind one interface.

A backend owns everything that differs between runtimes: the artefact's files, how it is built
from the validated fp32 ONNX graph, the `Session` that bench and predict run, its accuracy-aware
surgeon, the options it can honour, and the targets it offers. Everything else (ONNX export and
validation, calibration data, the gate, the commit, auto, bench, predict) is shared.

Adding a runtime: one module here that defines `BACKEND`, its name in `MODULES`, and its
optional dependency in pyproject.toml. Modules import their runtime lazily, so listing targets
or reading an export never needs a runtime that is not installed.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from edgetune.errors import AssetError, RunDirError, UsageError
from edgetune.registry import Registry

if TYPE_CHECKING:
    import numpy as np

    from edgetune.export.accuracy_aware import Surgeon
    from edgetune.export.targets import Target
    from edgetune.runtime import Session

# The registry entries: edgetune/export/backends/<module>.py, each defining BACKEND.
MODULES = ("onnxruntime", "openvino", "ncnn", "litert", "rknn")


class BuildContext(Protocol):
    """What a backend's build gets from the export session (edgetune.export.context.Context)."""

    fp32: Path  # the fp32 ONNX graph, validated against PyTorch
    work: Path  # scratch folder of this export
    options: Any  # edgetune.export.context.Options
    task: Any  # the run's Task (kept-float nodes, half-precision safety)
    quiet: bool
    metrics_fp32: dict[str, Any]  # the fp32 graph's val metrics (measured once per export)
    fp32_max_abs_diff: float  # the fp32 graph's max |Δ| vs PyTorch

    inputs: list  # real validation inputs (model-input arrays)
    scale: Any  # np.ndarray broadcast over the output (detectors: box rows by the input size), or None

    def fresh_model(self) -> Any:
        """The run's PyTorch model, loaded anew for a converter that traces it."""

    def calibration(self) -> tuple[list[np.ndarray], dict]:
        """The one calibration set of this export, and its record."""

    def accuracy_aware(self, target: Target, path: Path, meta: dict[str, Any],
                       surgeon: Callable[[], Surgeon]) -> dict[str, Any] | None:
        """Evaluate a plain int8 artefact; when it misses --max-drop, return its most sensitive
        layers to float through `surgeon`. Returns its metrics when it was kept as is."""


class Backend(ABC):
    """One runtime: its artefact, its build, its Session."""

    name: str  # recorded in export.json as `runtime` ("onnxruntime")
    title: str  # for people ("ONNX Runtime")
    artifact: str  # the main file inside export/<target>/
    install: str  # what a device needs to run the artefact
    honours: tuple[str, ...] = ()  # quantiser options it implements (Options fields: "per_channel", "preset"…)
    calib_methods: tuple[str, ...] = ()  # --calib-method values its quantiser honours
    default_calib_method: str | None = None  # measured default (None: the quantiser's own)
    reference_format: str | None = None  # ultralytics' export format for reference models (estimates)
    batch_axis: bool = True  # False: the artefact takes one sample (no --dynamic-batch)
    runs_here: bool = True  # False: the artefact runs on its accelerator only (no host latency)
    platforms: tuple[str, ...] = ()  # chips it compiles for (a profile's `npu.platform`), the default first

    @property
    def files(self) -> tuple[str, ...]:
        """Every file an artefact consists of (the main one first)."""
        return (self.artifact,)

    @property
    def suffix(self) -> str:
        return Path(self.artifact).suffix

    @abstractmethod
    def targets(self) -> tuple[Target, ...]:
        """The targets this backend builds."""

    @abstractmethod
    def session(self, path: Path, *, threads: int | None = None) -> Session:
        """Load an artefact for inference (one line naming the file when the runtime refuses it)."""

    @abstractmethod
    def build(self, ctx: BuildContext, target: Target, path: Path, meta: dict[str, Any]) -> dict[str, Any] | None:
        """Write `target`'s artefact at `path` from ctx.fp32, recording what was done in `meta`;
        return its val metrics when the build measured them (else None: the caller evaluates)."""

    def check_options(self, target: Target, options: Any) -> None:
        """Refuse, before any work, a quantiser option this backend cannot honour for `target`
        (a float target has no quantiser: those options do not apply to it)."""
        if options.dynamic_batch and not self.batch_axis:
            raise UsageError(f"--dynamic-batch is not available for {target.id} ({self.title} artefacts take one "
                             "sample at a time)", hint="leave --dynamic-batch out; bench and predict feed one sample")
        if not target.quantizer:
            return
        for name, typed in options.quantizer_choices():
            if name not in self.honours:
                raise UsageError(f"{typed} is not available for {target.id} ({self.title})",
                                 hint="`edgetune targets --json` lists each target's options; leave it out here")
        if options.calib_method and options.calib_method not in self.calib_methods:
            raise UsageError(f"--calib-method {options.calib_method} is not available for {target.id} ({self.title})",
                             hint="use " + ", ".join(self.calib_methods) + ", or leave it out for the default")

    def calib_method(self, options: Any) -> str | None:
        return options.calib_method or self.default_calib_method

    def import_reference(self, exported: Path, dest: Path) -> None:
        """Copy ultralytics' export of a reference model into `dest` as this backend's files."""
        import shutil

        shutil.copyfile(exported, dest / self.artifact)


def require(module: str, what: str, pip: str) -> Any:
    """A backend's optional package, or exit 7 naming what needed it and the line that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise AssetError(f"{what} needs the {module.split('.')[0]} package, which is not installed", hint=pip) from None


BACKENDS: Registry[Backend] = Registry("backend")


def _load() -> None:
    for module in MODULES:
        backend = importlib.import_module(f"{__name__}.{module}").BACKEND
        BACKENDS.register(backend.name, backend)


BACKENDS.set_loader(_load)


def get_backend(name: str) -> Backend:
    return BACKENDS.get(name)


def backend_for_file(path: Path) -> Backend:
    """The backend whose artefact has this file's suffix."""
    for name in BACKENDS.names():
        if BACKENDS.get(name).suffix == path.suffix:
            return BACKENDS.get(name)
    known = ", ".join(f"{b.suffix} ({b.title})" for b in map(BACKENDS.get, BACKENDS.names()))
    raise RunDirError(f"{path} is not a model file edgetune runs (known: {known})")


def calib_methods() -> list[str]:
    """Every --calib-method some backend honours (the CLI's choices; each backend checks its own)."""
    return list(dict.fromkeys(m for n in BACKENDS.names() for m in BACKENDS.get(n).calib_methods))
