"""`edgetune export RUN --target T`: build, validate, quantise, measure, gate — then commit.

Every target starts from one fp32 ONNX graph that was checked against PyTorch on real inputs;
OpenVINO artefacts are converted from it. The export folder is built under a temporary name and
renamed into place as a whole, with export.json inside, so a killed export never leaves an
artefact a later command would trust.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgetune.errors import AccuracyGateError, CalibrationError, DataError, UsageError
from edgetune.export.gate import Gate, check_max_drop
from edgetune.export.targets import AUTO, Target, get_target
from edgetune.fsutil import atomic_dir, ensure_writable_dir, sha256_file, work_dir, write_json
from edgetune.progress import log
from edgetune.run import EXPORT_META, RunDir, open_run, versions
from edgetune.runtime import Session
from edgetune.tasks import CURVES, get_task

VALIDATION_IMAGES = 16
DEFAULT_CALIB_SIZE = 200
# Measured defaults per quantiser (benchmarks/RESULTS.md "export", "Calibration choices"): ORT MinMax
# was best or tied on Lite0, yolo11n and KWS; NNCF's own range estimator beat MinMax/Percentile on two.
DEFAULT_CALIB_METHOD = {"ort-static": "minmax", "nncf": None}


@dataclass(frozen=True)
class Options:
    """Everything `edgetune export` lets a user choose beyond the target."""

    max_drop: float | None = None
    calib_size: int | None = None
    calib_method: str | None = None  # None: the quantiser's measured default
    per_channel: bool = True
    preset: str = "mixed"  # NNCF: asymmetric activations (yolo11n: 3.6 → 0.4 pt drop vs "performance")
    model_type: str | None = None  # NNCF: None (CNN) or "transformer"
    slim: bool = False
    dynamic_batch: bool = False
    search: bool = True  # accuracy-aware search when plain int8 misses --max-drop


@dataclass
class Context:
    """One export session: the run, its model, the fp32 ONNX graph and what every target shares."""

    run: RunDir
    manifest: dict[str, Any]
    task: Any
    model: Any
    inputs: list  # real validation inputs for the PyTorch comparison
    work: Path
    options: Options
    quiet: bool
    fp32: Path = Path()
    base: dict[str, Any] = field(default_factory=dict)
    auto: bool = False  # `--target auto`: the gate falls back to auto's default budget
    _metrics_fp32: dict | None = None
    _calib: tuple | None = None

    @property
    def scale(self) -> Any:
        return self.task.output_scale(self.manifest)

    def evaluate(self, artefact: Path | Session) -> dict[str, Any]:
        session = artefact if isinstance(artefact, Session) else Session(artefact)
        return self.task.evaluate(session, self.manifest)

    def metric(self, artefact: Path | Session) -> float:
        return float(self.evaluate(artefact)[self.task.metric_name])

    @property
    def gate(self) -> Gate:
        """The one interpretation of --max-drop for this export (edgetune.export.gate)."""
        return Gate.for_target(float(self.metrics_fp32[self.task.metric_name]), self.options.max_drop, auto=self.auto)

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
                calib, record = self.task.calibration_inputs(self.manifest, size=self.options.calib_size,
                                                             seed=int(self.manifest["seed"]),
                                                             default=DEFAULT_CALIB_SIZE)
            except CalibrationError:  # e.g. --calib-size larger than the split: already specific
                raise
            except DataError as exc:
                raise CalibrationError(f"calibration data missing: {exc.message}",
                                       hint=f"int8 calibrates on the run's training split; restore it at "
                                            f"{self.manifest['data'].get('root')}, or export a float target "
                                            f"(cpu-fp32, openvino-fp32, openvino-fp16)") from None
            for line in calibration.check(record, len(self.manifest["labels"]), calib, self.inputs):
                log("warning: " + line, quiet=self.quiet)
            self._calib = (calib, record)
        return self._calib


def export_run(run_path: str | Path, target_id: str, *, options: Options | None = None,
               profile: str | None = None, quiet: bool = False,
               measure: Callable[..., float] | None = None) -> dict[str, Any]:
    """Export one target (or `auto`: the fastest of a profile's targets within --max-drop)."""
    options = options or Options()
    _check_options(options, target_id, profile)
    if target_id != AUTO:
        get_target(target_id)  # unknown names fail before any work
    with work_dir("export") as work:
        ctx = _open(run_path, Path(work), options, quiet)
        ctx.auto = target_id == AUTO
        if target_id == AUTO:
            from edgetune.export.auto import export_auto

            return export_auto(ctx, profile, build=build_target, commit=commit, measure=measure)
        built = build_target(ctx, get_target(target_id))
        return commit(ctx, built)


def _check_options(o: Options, target_id: str, profile: str | None) -> None:
    check_max_drop(o.max_drop)
    if o.calib_size is not None and o.calib_size < 1:
        raise UsageError(f"--calib-size must be ≥ 1, got {o.calib_size}")
    if target_id == AUTO and not profile:
        raise UsageError("--target auto needs --profile P (the device whose threads and targets to measure)",
                         hint="e.g. --target auto --profile x86-64-avx512; `edgetune profiles` lists them")
    if target_id != AUTO and profile:
        raise UsageError("--profile is only used with --target auto", hint="drop --profile, or use --target auto")


def _open(run_path: str | Path, work: Path, options: Options, quiet: bool) -> Context:
    from edgetune.export.onnx import OPSET, export_onnx, validate

    t0 = time.perf_counter()
    run, manifest = open_run(run_path)
    ensure_writable_dir(run.path / "export", "export folder")  # before minutes of building and calibrating
    task = get_task(manifest["task"])
    model = task.load_model(manifest, run.checkpoint)
    try:
        inputs = task.export_inputs(manifest, count=VALIDATION_IMAGES)
    except DataError as exc:
        raise DataError(f"export checks every artefact on the run's validation data, which is missing: {exc.message}",
                        hint=f"restore the data set at {manifest['data'].get('root')} (data.root in "
                             f"{run.manifest_path.name})") from None
    ctx = Context(run, manifest, task, model, inputs, work, options, quiet)
    ctx.fp32 = work / "fp32.onnx"
    log(f"exporting {manifest['model']} to ONNX (opset {OPSET}, input {'x'.join(map(str, inputs[0].shape))}"
        f"{', dynamic batch' if options.dynamic_batch else ''})", quiet=quiet)
    export_onnx(model, inputs[0], ctx.fp32, output_name=task.output_name, dynamo=task.onnx_dynamo,
                dynamic_batch=options.dynamic_batch)
    graph: dict[str, Any] = {"opset": OPSET, "dynamic_batch": options.dynamic_batch, "slim": options.slim}
    if options.slim:
        graph.update(_slim(ctx.fp32))
    diff = validate(model, ctx.fp32, inputs, atol=1e-3, scale=ctx.scale, names=[task.output_name])
    ctx.base = {"task": manifest["task"], "model": manifest["model"], "labels": manifest["labels"],
                "preprocessing": manifest["preprocessing"], "metric_name": task.metric_name,
                "postprocess": manifest.get("postprocess"), "run": str(run.path.resolve()), "versions": versions(),
                "graph": graph, "validation": {"images": len(inputs), "max_abs_diff_fp32": diff},
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


@dataclass
class Built:
    """A target's artefact in the work folder, not yet committed to the run."""

    target: Target
    dir: Path
    meta: dict[str, Any]
    metrics: dict[str, Any]

    @property
    def artifact(self) -> Path:
        return self.dir / self.target.artifact

    @property
    def size_mb(self) -> float:
        return self.target.size_mb(self.dir)


def build_target(ctx: Context, target: Target) -> Built:
    """Make, validate and evaluate one target's artefact under ctx.work/<target>/."""
    from edgetune.export.onnx import max_abs_diff, validate

    t0 = time.perf_counter()
    out = ctx.work / target.id
    out.mkdir()
    meta: dict[str, Any] = {"target": target.id, "runtime": target.runtime, "precision": target.precision}
    artifact = out / target.artifact
    if target.runtime == "onnxruntime" and target.quantizer is None:  # the validated fp32 graph itself
        shutil.copyfile(ctx.fp32, artifact)
        meta["max_abs_diff"] = ctx.base["validation"]["max_abs_diff_fp32"]
        return Built(target, out, {**meta, "build_seconds": round(time.perf_counter() - t0, 2)}, ctx.metrics_fp32)
    build = _build_ort if target.runtime == "onnxruntime" else _build_openvino
    metrics = build(ctx, target, artifact, meta)
    what = "ONNX" if target.runtime == "onnxruntime" else "OpenVINO"
    if target.atol is not None:  # a float target must compute what PyTorch computes
        meta["max_abs_diff"] = validate(ctx.model, artifact, ctx.inputs, atol=target.atol, scale=ctx.scale,
                                        names=[ctx.task.output_name], what=what)
    else:  # quantised/fp16: judged by the task metric, the difference recorded
        meta["max_abs_diff"] = max_abs_diff(ctx.model, artifact, ctx.inputs, ctx.scale)
    if metrics is None:
        log(f"{target.id}: evaluating on the val split", quiet=ctx.quiet)
        metrics = ctx.evaluate(artifact)
    meta["build_seconds"] = round(time.perf_counter() - t0, 2)
    return Built(target, out, meta, metrics)


def _calib_method(ctx: Context, target: Target) -> str | None:
    return ctx.options.calib_method or DEFAULT_CALIB_METHOD[target.quantizer]


def _build_ort(ctx: Context, target: Target, path: Path, meta: dict[str, Any]) -> dict[str, Any] | None:
    """ONNX Runtime static int8; returns the artefact's val metrics when they were measured."""
    from edgetune.export.accuracy_aware import OrtSurgeon
    from edgetune.export.quantize_ort import OrtStaticQuantizer

    calib, record = ctx.calibration()
    method = _calib_method(ctx, target)
    log(f"{target.id}: calibrating int8 on {record['size']} training samples ({method}, "
        f"{'per-channel' if ctx.options.per_channel else 'per-tensor'})", quiet=ctx.quiet)
    keep, keep_record = ctx.task.quantize_keep_float(ctx.fp32)
    qdir = ctx.work / f"{target.id}-q"
    qdir.mkdir()
    quantizer = OrtStaticQuantizer(ctx.fp32, calib, qdir, per_channel=ctx.options.per_channel, method=method,
                                   keep_float=keep)
    meta["quantization"] = quantizer.quantize(path)
    meta["quantization"]["task_kept_float"] = keep_record
    meta["calibration"] = record
    return _accuracy_aware(ctx, target, path, meta,
                           lambda: OrtSurgeon(path, quantizer.prepped, quantizer.candidates(), qdir))


def _build_openvino(ctx: Context, target: Target, xml: Path, meta: dict[str, Any]) -> dict[str, Any] | None:
    """OpenVINO IR from the validated ONNX (fp32/fp16, or NNCF int8); metrics when measured."""
    from edgetune.export import openvino as ovx

    model = ovx.convert(ctx.fp32)
    # A task whose graph cannot compute in half precision (kws: the log-mel front end) keeps f32
    # compute even in the fp16-weights IR: in f16 (Arm's default) its logits were off by 4.9 and
    # every argmax wrong; in bf16 (AMX hosts) off by 0.15 (RESULTS.md "ov-fp16-kws").
    hint = target.precision_hint or (None if ctx.task.half_precision_compute else "f32")
    meta["openvino"] = {"converted_from": "validated fp32 ONNX", "compress_to_fp16": target.compress_fp16,
                        "inference_precision_hint": hint or "device default (bf16/fp16 where the CPU has it, "
                                                             "else f32)"}
    if target.quantizer != "nncf":
        ovx.save(model, xml, compress_fp16=target.compress_fp16, precision_hint=hint)
        return None
    from edgetune.export.accuracy_aware import OpenVinoSurgeon

    calib, record = ctx.calibration()
    keep, keep_record = ctx.task.quantize_keep_float(ctx.fp32)
    keep = keep + _first_layer(ctx.fp32, keep)
    log(f"{target.id}: NNCF int8 on {record['size']} training samples (preset {ctx.options.preset})", quiet=ctx.quiet)
    quantized, meta["quantization"] = ovx.quantize_int8(
        model, calib, keep_float=keep, onnx_nodes=_node_names(ctx.fp32), preset=ctx.options.preset,
        model_type=ctx.options.model_type, calib_method=_calib_method(ctx, target))
    meta["quantization"]["task_kept_float"] = keep_record
    meta["calibration"] = record
    ovx.save(quantized, xml, precision_hint=target.precision_hint)
    return _accuracy_aware(ctx, target, xml, meta,
                           lambda: OpenVinoSurgeon(quantized, ovx.convert(ctx.fp32), target.precision_hint))


def _accuracy_aware(ctx: Context, target: Target, path: Path, meta: dict[str, Any],
                    surgeon: Callable[[], Any]) -> dict[str, Any] | None:
    """Evaluate plain int8; when it misses --max-drop, return the fewest layers to float
    (edgetune.export.accuracy_aware) and record what that costs in latency. Returns the plain
    artefact's metrics when it is kept as is (None after a search: the new artefact is evaluated)."""
    from edgetune.export.accuracy_aware import RANKING_INPUTS, search

    metrics = ctx.evaluate(path)
    gate = ctx.gate
    if gate.passes(metrics[ctx.task.metric_name]) or not ctx.options.search:
        return metrics
    log(f"{target.id}: plain int8 drops {gate.drop(metrics[ctx.task.metric_name]):.4f} > --max-drop {gate.max_drop}: "
        f"searching for the fewest layers to keep in float", quiet=ctx.quiet)
    plain = ctx.work / f"{target.id}-plain"
    plain.mkdir()
    for f in target.files:
        shutil.copyfile(path.parent / f, plain / f)
    s = surgeon()
    ranking = ctx.task.export_inputs(ctx.manifest, count=RANKING_INPUTS)
    result = search(s, ranking, gate, ctx.metric, scale=ctx.scale, quiet=ctx.quiet)
    s.save(result.float_layers, path)
    meta["quantization"]["float_layers_after_search"] = result.float_layers
    meta["accuracy_aware"] = _search_record(result, plain / target.artifact, path, ctx)
    return None


def _search_record(result: Any, plain: Path, final: Path, ctx: Context) -> dict[str, Any]:
    """What the accuracy-aware search found and what it costs in latency (1 thread, this host)."""
    from edgetune.bench import latency_p50

    lat = {name: latency_p50(p, ctx.inputs[0], 1) for name, p in (("plain", plain), ("restored", final))}
    return {"met": result.met, "float_layers": result.float_layers, "metric": result.metric,
            "drop": result.drop, "trials": result.trials, "ranking": result.ranking, "seconds": result.seconds,
            "latency_p50_ms_1thread": {k: round(v, 3) for k, v in lat.items()}}


def _node_names(path: Path) -> list[str]:
    import onnx

    return [n.name for n in onnx.load(str(path), load_external_data=False).graph.node]


def _first_layer(fp32: Path, keep: list[str]) -> list[str]:
    """The first compute layer stays float under NNCF too (same rule as ORT: it sees raw pixels,
    or log-mels behind a float front end)."""
    from edgetune.export.quantize_ort import first_compute_nodes

    return first_compute_nodes(fp32, skip=keep)


def commit(ctx: Context, built: Built, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write export/<target>/ atomically with export.json, then apply the accuracy gate."""
    target, key = built.target, ctx.task.metric_name
    m_fp32, gate = ctx.metrics_fp32, ctx.gate
    drop, max_drop, passed = gate.drop(built.metrics[key]), gate.max_drop, gate.passes(built.metrics[key])
    scalars = lambda m: {k: v for k, v in m.items() if isinstance(v, (int, float))}  # noqa: E731
    # A build that fails its gate never replaces a good artefact: it is kept for inspection beside,
    # in RUN/export-failed/<target>/, and export/<target>/ stays as it was.
    final = ctx.run.export_dir(target.id) if passed else ctx.run.failed_export_dir(target.id)
    meta = {**ctx.base, **built.meta, **(extra or {}),
            "metric_fp32": m_fp32[key], "metric": built.metrics[key], "drop": drop,
            "eval_images": built.metrics["n"], "metrics_fp32": scalars(m_fp32), "metrics": scalars(built.metrics),
            "max_drop": max_drop, "pass": passed,
            "size_mb": built.size_mb, "curves": {k: built.metrics[k] for k in CURVES if k in built.metrics},
            "size_mb_fp32": ctx.fp32.stat().st_size / 1e6,
            "artifact": str((final / target.artifact).resolve())}
    meta["seconds"] = round(meta.pop("build_seconds", 0) + ctx.base["onnx_seconds"], 2)
    with atomic_dir(final, owned=(*target.files, EXPORT_META)) as out:  # a user's other files there stay
        for f in target.files:
            shutil.copyfile(built.dir / f, out / f)
        meta["files"] = {f: sha256_file(out / f) for f in target.files}  # predict/bench verify every file
        meta["sha256"] = meta["files"][target.artifact]
        write_json(out / EXPORT_META, meta)
    result = {k: meta[k] for k in ("target", "artifact", "metric_fp32", "metric", "drop", "max_abs_diff",
                                   "metric_name", "metrics_fp32", "metrics", "size_mb", "pass", "seconds")}
    if "accuracy_aware" in meta:
        aa = meta["accuracy_aware"]
        result["accuracy_aware"] = {k: aa[k] for k in ("met", "float_layers", "drop", "latency_p50_ms_1thread")}
    result.update({k: meta[k] for k in ("auto",) if k in meta})
    if not meta["pass"]:
        found = ""
        if "accuracy_aware" in meta:
            found = (f"; the accuracy-aware search found no mix within budget (best: drop "
                     f"{meta['accuracy_aware']['drop']:.4f} with {len(meta['accuracy_aware']['float_layers'])} "
                     f"layer(s) in float)")
        raise AccuracyGateError(f"{target.id}: {key} dropped {drop:.4f} ({m_fp32[key]:.4f} → {built.metrics[key]:.4f}), "
                                f"more than --max-drop {max_drop}{found}",
                                hint=f"try --calib-size larger or another --calib-method, or a float target; the "
                                     f"artefact is kept for inspection in {final} (pass=false), and "
                                     f"export/{target.id}/ is left as it was", payload=result)
    return result
