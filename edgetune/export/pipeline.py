"""`edgetune export RUN --target T`: open → build → gate → commit.

The session (the validated fp32 graph, calibration, evaluation) is edgetune.export.context; the
build is the target's backend (edgetune.export.backends); the gate is edgetune.export.gate. The
export folder is built under a temporary name and renamed into place as a whole, with export.json
inside, so a killed export never leaves an artefact a later command would trust.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from edgetune.contract import ExportMeta
from edgetune.errors import AccuracyGateError, UsageError
from edgetune.export.context import Context, Options, open_export_context
from edgetune.export.gate import DEFAULT_MAX_DROP, NO_BUDGET
from edgetune.export.targets import AUTO, Target, get_target
from edgetune.fsutil import atomic_dir, sha256_file, work_dir, write_json
from edgetune.progress import log
from edgetune.run import EXPORT_META
from edgetune.tasks import CURVES

__all__ = ["Options", "export_run", "build_target", "commit"]


def export_run(run_path: str | Path, target_id: str, *, options: Options | None = None,
               profile: str | None = None, quiet: bool = False,
               measure: Callable[..., float] | None = None) -> dict[str, Any]:
    """Export one target (or `auto`: the fastest of a profile's targets within --max-drop)."""
    options = options or Options()
    options.check()
    if target_id == AUTO and not profile:
        raise UsageError("--target auto needs --profile P (the device whose threads and targets to measure)",
                         hint="e.g. --target auto --profile x86-64-avx512; `edgetune profiles` lists them")
    if target_id != AUTO and profile:
        options = replace(options, platform=_platform_of(get_target(target_id), profile))
    if target_id == AUTO and options.max_drop == NO_BUDGET:
        raise UsageError("--target auto needs a budget to choose within; --max-drop none gives it none",
                         hint=f"give --max-drop N, or leave it out for the default {DEFAULT_MAX_DROP}")
    if target_id != AUTO:
        target = get_target(target_id)  # unknown names and options the backend cannot honour fail before any work
        target.backend.check_options(target, options)
    if options.emulate:
        _check_emulate(target_id)
    with work_dir("export") as work:
        ctx = open_export_context(run_path, Path(work), options, quiet)
        if options.emulate:  # the device runs and sees the val data, before minutes of building
            from edgetune.emulated import device_data, find_device

            device_data(find_device(), ctx.data)
        ctx.auto = target_id == AUTO
        if target_id == AUTO:
            from edgetune.export.auto import export_auto

            return export_auto(ctx, profile, build=build_target, commit=commit, measure=measure)
        return commit(ctx, build_target(ctx, get_target(target_id)))


def _platform_of(target: Target, profile: str) -> str:
    """The chip `--profile` names for a target compiled per chip (an NPU's); --profile means nothing
    else to a single target."""
    from edgetune.profiles import get_profile

    if not target.backend.platforms:
        raise UsageError(f"--profile is only used with --target auto, or with a target compiled for one chip "
                         f"(not {target.id})", hint="drop --profile, or use --target auto")
    prof = get_profile(profile)
    if prof.npu is None or prof.npu.runtime != target.backend.name:
        has = f"its NPU is {prof.npu.runtime}'s ({prof.npu.platform})" if prof.npu else "it names no NPU"
        raise UsageError(f"--profile {prof.name} cannot take {target.id}: {has}",
                         hint=f"use a profile whose `npu.runtime` is {target.backend.name} (`edgetune profiles`), "
                              f"or leave --profile out for the {target.backend.platforms[0]}")
    return prof.npu.platform


def _check_emulate(target_id: str) -> None:
    if target_id == AUTO:
        raise UsageError("--emulate judges one int8 target; --target auto also measures latency, which "
                         "emulation cannot", hint="export the int8 target --target auto chose, with --emulate")
    if get_target(target_id).precision != "int8":
        raise UsageError(f"--emulate judges int8 targets by the metric an aarch64 board computes; {target_id} is "
                         f"{get_target(target_id).precision}, checked against PyTorch instead",
                         hint="use it with an int8 target (cpu-int8, openvino-int8, litert-int8), or run `edgetune bench "
                              "--emulate` on this one")


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
    """Make (by its backend), validate and evaluate one target's artefact under ctx.work/<target>/."""
    from edgetune.export.onnx import max_abs_diff, validate

    t0 = time.perf_counter()
    backend = target.backend
    backend.check_options(target, ctx.options)  # auto builds several: each says what it cannot honour
    out = ctx.work / target.id
    out.mkdir()
    meta: dict[str, Any] = {"runtime": target.runtime, "precision": target.precision}
    artifact = out / target.artifact
    metrics = backend.build(ctx, target, artifact, meta)
    if "max_abs_diff" not in meta:
        if target.atol is not None:  # a float target must compute what PyTorch computes
            meta["max_abs_diff"] = validate(ctx.model, artifact, ctx.inputs, atol=target.atol, scale=ctx.scale,
                                            names=[ctx.task.output_name], what=backend.title)
        else:  # quantised/fp16: judged by the task metric, the difference recorded
            meta["max_abs_diff"] = max_abs_diff(ctx.model, artifact, ctx.inputs, ctx.scale)
    if metrics is None:
        log(f"{target.id}: evaluating on the val split", quiet=ctx.quiet)
        metrics = ctx.evaluate(artifact)
    meta["build_seconds"] = round(time.perf_counter() - t0, 2)
    return Built(target, out, meta, metrics)


def commit(ctx: Context, built: Built, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write export/<target>/ atomically with export.json, then apply the accuracy gate."""
    target, key = built.target, ctx.task.metric_name
    m_fp32, gate = ctx.metrics_fp32, ctx.gate(target)
    device = built.meta.get("emulated_aarch64")  # --emulate: the gate reads the device's metric
    if device is not None:
        device["host_metric"] = float(built.metrics[key])
    metric = float(device["metric"] if device else built.metrics[key])
    passed = gate.passes(metric)
    scalars = lambda m: {k: v for k, v in m.items() if isinstance(v, (int, float))}  # noqa: E731
    # A build that fails its gate never replaces a good artefact: it is kept for inspection beside,
    # in RUN/export-failed/<target>/, and export/<target>/ stays as it was.
    final = ctx.run.export_dir(target.id) if passed else ctx.run.failed_export_dir(target.id)
    records = {**ctx.base, **built.meta, **(extra or {})}
    # Decoding chosen on the artefact itself (kws: per-keyword stream thresholds), here and not in
    # build_target: `--target auto` builds several candidates and commits one.
    tuned = ctx.task.tune_postprocess(built.artifact, ctx.spec, ctx.data, quiet=ctx.quiet)
    spec = ctx.spec.with_postprocess(**tuned[0]) if tuned else ctx.spec
    if tuned:
        records["postprocess_tuned"] = tuned[1]
    seconds = round(records.pop("build_seconds", 0) + ctx.base["onnx_seconds"], 2)
    with atomic_dir(final, owned=(*target.files, EXPORT_META)) as out:  # a user's other files there stay
        for f in target.files:
            shutil.copyfile(built.dir / f, out / f)
        files = {f: sha256_file(out / f) for f in target.files}  # predict/bench verify every file
        meta = ExportMeta(
            spec=spec, target=target.id, artifact=str((final / target.artifact).resolve()),
            metric=metric, metric_fp32=gate.reference, drop=gate.drop(metric), size_mb=built.size_mb,
            passed=passed, max_drop=gate.max_drop, max_drop_source=gate.source, max_abs_diff=records.pop("max_abs_diff", None), files=files,
            sha256=files[target.artifact], curves={k: built.metrics[k] for k in CURVES if k in built.metrics},
            extra={**records, "eval_images": built.metrics["n"], "metrics_fp32": scalars(m_fp32),
                   "metrics": scalars(built.metrics), "size_mb_fp32": ctx.fp32.stat().st_size / 1e6,
                   "seconds": seconds})
        write_json(out / EXPORT_META, meta.to_dict())
    result = _result(meta)
    if not passed:
        from edgetune.export.accuracy_aware import unmet_note

        aa = meta.extra.get("accuracy_aware")
        found, why = unmet_note(aa) if aa else ("", None)
        raise AccuracyGateError(f"{target.id}: {key} dropped {meta.drop:.4f} ({meta.metric_fp32:.4f} → {metric:.4f}), "
                                f"more than {gate.describe()}{found}",
                                hint=f"{why or 'try --calib-size larger or another --calib-method, or a float target'}; "
                                     f"the artefact is kept for inspection in {final} (pass=false), and "
                                     f"export/{target.id}/ is left as it was", payload=result)
    return result


def _result(meta: ExportMeta) -> dict[str, Any]:
    """What `edgetune export --json` prints: the gate's inputs and outcome, not the build records."""
    result = {"target": meta.target, "artifact": meta.artifact, "metric_fp32": meta.metric_fp32,
              "metric": meta.metric, "drop": meta.drop, "max_abs_diff": meta.max_abs_diff,
              "metric_name": meta.spec.metric_name, "metrics_fp32": meta.extra["metrics_fp32"],
              "metrics": meta.extra["metrics"], "size_mb": meta.size_mb, "pass": meta.passed,
              "seconds": meta.extra["seconds"]}
    if "accuracy_aware" in meta.extra:
        aa = meta.extra["accuracy_aware"]
        result["accuracy_aware"] = {k: aa[k] for k in ("met", "plain_drop", "float_layers", "drop",
                                                       "latency_p50_ms_1thread") if k in aa}
    for key in ("auto", "emulated_aarch64", "measured_on", "postprocess_tuned"):
        if key in meta.extra:
            result[key] = meta.extra[key]
    return result
