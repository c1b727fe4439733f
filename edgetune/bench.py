"""`edgetune bench RUN --target T --profile P`: latency, memory, size and metric vs budgets.

Latency runs in a child process (threads from the profile, pinned where allowed) so its peak
RSS is the inference process's alone. Numbers are measured on *this* machine; when the profile
describes another device the result says so rather than pretending.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import numpy as np

from edgetune.artifact import Export, open_export
from edgetune.contract import DataRef, ExportMeta
from edgetune.cpu import usable_cores
from edgetune.errors import BudgetGateError, EdgetuneError, UsageError
from edgetune.estimate import estimate_latency
from edgetune.export.targets import TARGETS
from edgetune.fsutil import write_json
from edgetune.latency import measure_in_child
from edgetune.profiles import DeviceProfile, check_budgets, get_profile
from edgetune.progress import log
from edgetune.run import RunDir
from edgetune.runtime import Session
from edgetune.tasks import CURVES, get_task
from edgetune.tasks.base import Task
from edgetune.untrusted import inside, safe_name

MIN_RUNS = 100


def host_arch() -> str:
    m = platform.machine().lower()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(m, m)


def check_runs(runs: int) -> None:
    if runs < MIN_RUNS:
        raise UsageError(f"--runs must be ≥ {MIN_RUNS} for stable percentiles, got {runs}")


def bench_run(run_path: str | Path, target: str | None, profile_name: str, *, runs: int = 200,
              threads: int | None = None, data: str | None = None, estimate: bool = True,
              quiet: bool = False) -> dict[str, Any]:
    """Measure one artefact here against a profile; write its bench JSON (and the run's reports)."""
    check_runs(runs)
    profile = get_profile(profile_name)
    export = open_export(run_path, target)
    meta, task = export.meta, get_task(export.meta.task)
    threads = threads or min(profile.threads, usable_cores())
    session = export.open_session(threads=threads)  # hashes and shapes checked before anything runs
    data_ref = export.data(data)
    example, image = _example_input(task, export, session, data_ref)
    log(f"bench {meta.target} on profile {profile.name}: {threads} thread(s), {runs} runs", quiet=quiet)
    lat = measure_in_child(session.path, example, threads, runs, image)
    evaluation, metric_source, extra = _evaluate(task, session, meta, data_ref, explicit=data is not None)
    metric = evaluation[task.metric_name]
    target_def = TARGETS.get(meta.target)
    size_mb = target_def.size_mb(export.folder)
    measured = {"latency_p50_ms": lat["latency_ms"]["p50"], "latency_p99_ms": lat["latency_ms"]["p99"],
                "size_mb": size_mb, "peak_rss_mb": lat["peak_rss_mb"], "min_metric": metric}
    violations = check_budgets(profile, meta.task, measured)
    est = _estimate(profile, target_def, session.path, example, threads, meta.task, quiet) if estimate else None
    result = {
        "profile": profile.name, "target": meta.target, "task": meta.task, "model": meta.spec.model,
        "latency_ms": {k: round(v, 4) for k, v in lat["latency_ms"].items()},
        "latency_e2e_ms": {k: round(v, 4) for k, v in lat["latency_e2e_ms"].items()} if lat["latency_e2e_ms"] else None,
        "throughput_per_s": round(lat["throughput_per_s"], 2), "threads": threads,
        "metric_name": task.metric_name, "metric": metric, "metric_source": metric_source,
        "size_mb": round(size_mb, 4), "peak_rss_mb": round(lat["peak_rss_mb"], 1),
        "budgets": profile.budgets_for(meta.task), "pass": not violations, "violations": violations,
        "estimate": est, "measured_on": _host_description(),
        "note": _note(profile, threads), "runs": lat["runs"], "warmup_runs": lat["warmup_runs"],
        "pinned_cores": lat["pinned_cores"], "runtime": lat["runtime"],
        "curves": {k: evaluation[k] for k in CURVES if k in evaluation}, **extra,
    }
    return keep_result(result, export.run, export.folder)


def measure_metric(run_path: str | Path, target: str | None, profile_name: str, *,
                   data: str | None = None) -> dict[str, Any]:
    """`bench --metric-only`: the artefact's metric on val data here, without the latency runs —
    for a device too slow to time (an emulated one), where only its arithmetic is worth reading.
    Nothing is written: the caller keeps the result."""
    profile = get_profile(profile_name)
    export = open_export(run_path, target)
    meta, task = export.meta, get_task(export.meta.task)
    data_ref = export.data(data)
    if data_ref is None:
        raise UsageError("--metric-only measures on val data, and none is known here", hint="pass --data VALDIR")
    session = export.open_session()
    evaluation, source, _ = _evaluate(task, session, meta, data_ref, explicit=True)
    return {"profile": profile.name, "target": meta.target, "task": meta.task, "model": meta.spec.model,
            "metric_name": task.metric_name, "metric": evaluation[task.metric_name], "metric_source": source,
            "size_mb": round(TARGETS.get(meta.target).size_mb(export.folder), 4), "runtime": session.runtime,
            "measured_on": _host_description(), "curves": {k: evaluation[k] for k in CURVES if k in evaluation}}


def _estimate(profile: DeviceProfile, spec: Any, artifact: Path, example: np.ndarray, threads: int, task: str,
              quiet: bool) -> dict[str, Any] | None:
    """The device estimate, an optional extra: when it fails (no cache, no reference build) the
    measurement it would have annotated is kept and the reason is reported in its place."""
    if not profile.references:
        return None
    log(f"estimating {profile.name} latency from its published reference", quiet=quiet)
    try:
        est = estimate_latency(profile, spec.runtime, spec.precision, artifact, example, threads)
    except (EdgetuneError, OSError) as exc:
        reason = (exc.one_line() if isinstance(exc, EdgetuneError)
                  else f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""))
        log(f"warning: no device estimate: {reason}", quiet=quiet)
        return {"available": False, "reason": reason}
    if est["available"]:
        est["violations"] = check_budgets(profile, task, {"latency_p50_ms": est["latency_p50_ms"]})
    return est


def keep_result(result: dict[str, Any], run: RunDir | None, export_dir: Path) -> dict[str, Any]:
    """Write a bench result where `report` finds it (RUN/bench/<profile>/<target>.json, or
    <export folder>/bench/<profile>.json on a device), refresh the run's report, apply the gate.
    The names become paths, so they are checked to be plain names that stay inside the folder."""
    profile, target, violations = result["profile"], result["target"], result["violations"]
    out = (run.bench_path(profile, target) if run
           else inside(export_dir, "bench", f"{safe_name(profile, 'profile')}.json"))
    write_json(out, result)
    if run is not None and run.manifest_path.is_file():
        from edgetune.report import write_report

        try:
            write_report(run.path)  # RUN/report.md + report.html: every export x bench so far
        except EdgetuneError as exc:  # the measurement is kept; the report can be rebuilt later
            result["report_error"] = exc.one_line()
            log(f"warning: bench result kept in {out}, but the report was not refreshed: {exc.one_line()}")
    if violations:
        raise BudgetGateError(f"{target} on {profile} misses budget(s): " + "; ".join(violations),
                              hint="pick a faster/smaller target (cpu-int8), a smaller --img-size, or a smaller model",
                              payload=result)
    return result


def _evaluate(task: Task, session: Session, meta: ExportMeta, data: DataRef | None, *,
              explicit: bool) -> tuple[dict[str, Any], str, dict[str, Any]]:
    """The artefact's metric on held-out data here (and its curves), with its gap to the metric
    export measured (on a board: what the host's runtime or an NPU simulator missed); on a
    device without the val data, the metric export measured, said so."""
    def from_export(why: str) -> tuple[dict[str, Any], str, dict[str, Any]]:
        return {task.metric_name: meta.metric, **meta.curves}, f"export.json ({why})", {}

    if data is None:  # a bare export folder, as on a device
        return from_export("no val data here: pass --data VALDIR to measure the metric on this machine")
    try:
        evaluation = task.evaluate(session, meta.spec, data)
        gap = {"metric_at_export": meta.metric, "gap_to_export": round(evaluation[task.metric_name] - meta.metric, 6)}
        return evaluation, "measured", {**gap, **task.bench_extra(session, meta.spec, data)}
    except EdgetuneError as exc:
        if explicit:
            raise
        return from_export(f"val data not found here: {exc.message}")


def _example_input(task: Task, export: Export, session: Session,
                   data: DataRef | None) -> tuple[np.ndarray, Path | None]:
    """A real validation input (and its file, for the end-to-end latency) when the data is here;
    otherwise a constant input of the artefact's shape and no end-to-end number."""
    if data is not None:
        try:
            path = task.val_files(export.meta.spec, data, count=1)[0]
            return task.preprocess(export.meta.spec)(path), path
        except EdgetuneError:
            pass
    return np.full(session.input_shape, 0.5, dtype=np.float32), None


def _host_description() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu} ({os.cpu_count()} cores, {host_arch()})"


def _note(profile: DeviceProfile, threads: int) -> str:
    if host_arch() != profile.arch:
        return (f"measured on this {host_arch()} host, not on a {profile.name} ({profile.arch}); "
                f"budgets are checked against host numbers — run `edgetune bench` on the device itself "
                f"(light install) for device numbers")
    differ = f" (the profile says {profile.threads}: --threads, or fewer usable cores here)" if threads != profile.threads else ""
    return f"measured on this host with {threads} thread(s){differ}, against the {profile.name} profile's budgets"
