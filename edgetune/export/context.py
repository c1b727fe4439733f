"""One export session: the user's options, the run, its model, and the fp32 ONNX graph checked
against PyTorch — everything the targets of one `edgetune export` share, made once.

Every target starts from that one validated graph (`open_export_context`), is built by its backend
(edgetune.export.backends) against this context, and is judged by the same calibration set, the
same val split and the same `Gate`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgetune.contract import DataRef, Manifest, ModelSpec
from edgetune.errors import CalibrationError, DataError, UsageError
from edgetune.export.gate import Gate, MaxDrop, check_max_drop
from edgetune.fsutil import ensure_writable_dir
from edgetune.progress import log
from edgetune.run import RunDir, open_run, versions
from edgetune.runtime import Session, open_session
from edgetune.tasks import get_task
from edgetune.tasks.base import Task

if TYPE_CHECKING:
    from edgetune.export.targets import Target

VALIDATION_IMAGES = 16
DEFAULT_CALIB_SIZE = 200


@dataclass(frozen=True)
class Options:
    """Everything `edgetune export` lets a user choose beyond the target."""

    max_drop: MaxDrop = None  # None: the default budget for int8 targets and auto (edgetune.export.gate)
    calib_size: int | None = None
    calib_method: str | None = None  # None: the backend's measured default
    per_channel: bool = True
    preset: str = "mixed"  # NNCF: asymmetric activations (yolo11n: 3.6 → 0.4 pt drop vs "performance")
    model_type: str | None = None  # NNCF: None (CNN) or "transformer"
    slim: bool = False
    dynamic_batch: bool = False
    search: bool = True  # accuracy-aware search when plain int8 misses --max-drop
    int8_io: bool = False  # LiteRT: int8 input/output tensors (NPU delegates, MCUs)
    emulate: bool = False  # int8 judged by the emulated aarch64 device's metric (edgetune.emulated)
    platform: str | None = None  # the chip an NPU artefact is compiled for (from --profile's `npu`)

    def quantizer_choices(self) -> list[tuple[str, str]]:
        """(option, as typed) for each quantiser option set away from its default: a backend that
        cannot honour one refuses it (Backend.check_options) instead of ignoring it."""
        chosen = [("calib_method", f"--calib-method {self.calib_method}")] if self.calib_method else []
        chosen += [("per_channel", "--per-tensor")] if not self.per_channel else []
        chosen += [("int8_io", "--int8-io")] if self.int8_io else []
        chosen += [("preset", f"--preset {self.preset}")] if self.preset != "mixed" else []
        return chosen + ([("model_type", f"--model-type {self.model_type}")] if self.model_type else [])

    def check(self) -> None:
        """The checks that need no target (a backend checks its own: Backend.check_options)."""
        check_max_drop(self.max_drop)
        if self.calib_size is not None and self.calib_size < 1:
            raise UsageError(f"--calib-size must be ≥ 1, got {self.calib_size}")


@dataclass
class Context:
    """One export session (edgetune.export.backends.BuildContext)."""

    run: RunDir
    manifest: Manifest
    task: Task
    model: Any
    inputs: list  # real validation inputs for the PyTorch comparison
    work: Path
    options: Options
    quiet: bool
    fp32: Path = Path()
    base: dict[str, Any] = field(default_factory=dict)  # what every export.json of this session records
    auto: bool = False  # `--target auto`: the gate falls back to auto's default budget
    _metrics_fp32: dict | None = None
    _device_fp32: float | None = None
    _calib: tuple | None = None

    @property
    def spec(self) -> ModelSpec:
        return self.manifest.spec

    @property
    def data(self) -> DataRef:
        return self.manifest.data

    @property
    def scale(self) -> Any:
        return self.task.output_scale(self.spec)

    @property
    def fp32_max_abs_diff(self) -> float:
        return self.base["validation"]["max_abs_diff_fp32"]

    def fresh_model(self) -> Any:
        """The run's PyTorch model loaded anew: a converter that traces it gets a module no earlier
        forward has touched (an ultralytics Detect head caches its anchors and input shape)."""
        return self.task.load_model(self.manifest, self.run.checkpoint)

    def evaluate(self, artefact: Path | Session) -> dict[str, Any]:
        session = artefact if isinstance(artefact, Session) else open_session(artefact)
        return self.task.evaluate(session, self.spec, self.data)

    def metric(self, artefact: Path | Session) -> float:
        return float(self.evaluate(artefact)[self.task.metric_name])

    def gate(self, target: Target | None = None) -> Gate:
        """The one interpretation of --max-drop for `target` in this export (edgetune.export.gate);
        auto's choice among candidates passes no target. With --emulate an int8 target's drop is
        measured on the emulated device from both ends: its fp32 metric there is the reference."""
        int8 = target is not None and target.precision == "int8"
        reference = self.device_fp32 if int8 and self.options.emulate else self.metrics_fp32[self.task.metric_name]
        return Gate.for_target(float(reference), self.options.max_drop, int8=int8, auto=self.auto)

    @property
    def device_fp32(self) -> float:
        """--emulate: the fp32 graph's metric computed inside the emulated aarch64 device."""
        if self._device_fp32 is None:
            from edgetune.export.targets import get_target

            self._device_fp32 = self.device_metric(get_target("cpu-fp32"), self.fp32.parent, {"model.onnx": self.fp32})
        return self._device_fp32

    def device_metric(self, target: Target, folder: Path, files: dict[str, Path] | None = None) -> float:
        """--emulate: the task metric of `target`'s artefact files in `folder` (or `files`: name →
        path), computed by the emulated aarch64 device. They travel as an export folder of their
        own with a provisional export.json (`bench --metric-only` opens nothing else)."""
        import shutil

        from edgetune.contract import ExportMeta
        from edgetune.emulated import LABEL, device_metric
        from edgetune.fsutil import sha256_file, write_json
        from edgetune.run import EXPORT_META

        out = self.work / "emulated" / target.id
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        for name in target.files:
            shutil.copyfile((files or {}).get(name, folder / name), out / name)
        digests = {name: sha256_file(out / name) for name in target.files}
        write_json(out / EXPORT_META, ExportMeta(
            spec=self.spec, target=target.id, artifact=str(out / target.artifact), metric=0.0, metric_fp32=0.0,
            drop=0.0, size_mb=0.0, passed=False, files=digests, sha256=digests[target.artifact],
            extra={"candidate": "judged on the emulated aarch64 device; not an artefact"}).to_dict())
        t = time.perf_counter()
        metric = float(device_metric(out, self.data, quiet=True)["metric"])
        log(f"  {target.id} on the {LABEL}: {self.task.metric_name} {metric:.4f} ({time.perf_counter() - t:.0f} s)",
            quiet=self.quiet)
        return metric

    def judged_metric(self, target: Target, folder: Path, host_metric: float) -> float:
        """The int8 metric the gate reads: this host's, or with --emulate the emulated device's."""
        return self.device_metric(target, folder) if self.options.emulate else host_metric

    @property
    def metrics_fp32(self) -> dict[str, Any]:
        if self._metrics_fp32 is None:
            self._metrics_fp32 = self.evaluate(self.fp32)
        return self._metrics_fp32

    def calibration(self) -> tuple[list, dict]:
        """The one calibration set (same for every quantiser in this export), checked once."""
        if self._calib is None:
            from edgetune.export import calibration

            try:
                calib, record = self.task.calibration_inputs(self.spec, self.data, size=self.options.calib_size,
                                                             default=DEFAULT_CALIB_SIZE)
            except CalibrationError:  # e.g. --calib-size larger than the split: already specific
                raise
            except DataError as exc:
                raise CalibrationError(f"calibration data missing: {exc.message}",
                                       hint=f"int8 calibrates on the run's training split; restore it at "
                                            f"{self.data.root}, or export a float target "
                                            f"(cpu-fp32, openvino-fp32, openvino-fp16)") from None
            for line in calibration.check(record, len(self.spec.labels), calib, self.inputs):
                log("warning: " + line, quiet=self.quiet)
            self._calib = (calib, record)
        return self._calib

    def accuracy_aware(self, target: Any, path: Path, meta: dict[str, Any],
                       surgeon: Callable[[], Any]) -> dict[str, Any] | None:
        from edgetune.export.accuracy_aware import restore_until_within

        return restore_until_within(self, target, path, meta, surgeon)


def use_portable_ops(model: Any) -> bool:
    """Switch every module that has a portable variant (a `portable_ops` attribute: the KWS log-mel
    front end computes its FFT as a real DFT) to it, for converters whose runtimes lack those ops
    (LiteRT has no complex type); False when the model has none."""
    found = False
    for module in model.modules():
        if hasattr(module, "portable_ops"):
            module.portable_ops = found = True
    return found


def open_export_context(run_path: str | Path, work: Path, options: Options, quiet: bool) -> Context:
    """Open the run, export its model to fp32 ONNX and check that graph against PyTorch."""
    from edgetune.export.onnx import OPSET, export_onnx, validate

    t0 = time.perf_counter()
    run, manifest = open_run(run_path)
    ensure_writable_dir(run.path / "export", "export folder")  # before minutes of building and calibrating
    task = get_task(manifest.task)
    model = task.load_model(manifest, run.checkpoint)
    try:
        inputs = task.export_inputs(manifest.spec, manifest.data, count=VALIDATION_IMAGES)
    except DataError as exc:
        raise DataError(f"export checks every artefact on the run's validation data, which is missing: {exc.message}",
                        hint=f"restore the data set at {manifest.data.root} (data.root in "
                             f"{run.manifest_path.name})") from None
    ctx = Context(run, manifest, task, model, inputs, work, options, quiet)
    ctx.fp32 = work / "fp32.onnx"
    log(f"exporting {manifest.model} to ONNX (opset {OPSET}, input {'x'.join(map(str, inputs[0].shape))}"
        f"{', dynamic batch' if options.dynamic_batch else ''})", quiet=quiet)
    export_onnx(model, inputs[0], ctx.fp32, output_name=task.output_name, dynamo=task.onnx_dynamo,
                dynamic_batch=options.dynamic_batch)
    graph: dict[str, Any] = {"opset": OPSET, "dynamic_batch": options.dynamic_batch, "slim": options.slim}
    if options.slim:
        graph.update(_slim(ctx.fp32))
    diff = validate(model, ctx.fp32, inputs, atol=1e-3, scale=ctx.scale, names=[task.output_name])
    ctx.base = {"run": str(run.path.resolve()), "versions": versions(), "graph": graph,
                "validation": {"images": len(inputs), "max_abs_diff_fp32": diff},
                "onnx_seconds": round(time.perf_counter() - t0, 2)}
    return ctx


def _slim(path: Path) -> dict[str, Any]:
    """onnxslim (constant folding, dead-node and shape-op removal). Off by default: on this
    machine it left ORT/OpenVINO latency unchanged (both fold at load) — RESULTS.md "export"."""
    import onnx
    import onnxslim

    m = onnx.load(str(path))
    before = len(m.graph.node)
    slim = onnxslim.slim(m)
    onnx.save(slim, str(path))
    return {"nodes_before_slim": before, "nodes": len(slim.graph.node)}
