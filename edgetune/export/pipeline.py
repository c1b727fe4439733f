"""`edgetune export RUN --target T`: build, validate, quantise, measure, gate — then commit.

The export folder is built under a temporary name and renamed into place as a whole, with
export.json inside, so a killed export never leaves an artefact a later command would trust.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from edgetune.errors import AccuracyGateError, UsageError
from edgetune.fsutil import atomic_dir, sha256_file, write_json
from edgetune.progress import log
from edgetune.run import EXPORT_META, open_run, versions
from edgetune.runtime import Session
from edgetune.tasks import get_task

VALIDATION_IMAGES = 16
DEFAULT_CALIB_SIZE = 200


def export_run(run_path: str | Path, target_id: str, *, max_drop: float | None = None,
               calib_size: int | None = None, calib_method: str = "minmax", per_channel: bool = True,
               quiet: bool = False) -> dict[str, Any]:
    from edgetune.export.targets import get_target

    if max_drop is not None and max_drop < 0:
        raise UsageError(f"--max-drop must be ≥ 0 (an absolute drop in the task metric), got {max_drop}")
    if calib_size is not None and calib_size < 1:
        raise UsageError(f"--calib-size must be ≥ 1, got {calib_size}")
    target = get_target(target_id)
    run, manifest = open_run(run_path)
    task = get_task(manifest["task"])
    t0 = time.perf_counter()

    from edgetune.export.onnx import OPSET, export_onnx, max_abs_diff, validate

    model = task.load_model(manifest, run.checkpoint)
    inputs = task.export_inputs(manifest, count=VALIDATION_IMAGES)
    meta: dict[str, Any] = {"target": target.id, "runtime": target.runtime, "precision": target.precision,
                            "task": manifest["task"], "model": manifest["model"], "labels": manifest["labels"],
                            "preprocessing": manifest["preprocessing"], "metric_name": task.metric_name,
                            "postprocess": manifest.get("postprocess"),
                            "run": str(run.path.resolve()), "versions": versions()}
    with tempfile.TemporaryDirectory(prefix="edgetune-export-") as work:
        fp32 = Path(work) / "fp32.onnx"
        log(f"exporting {manifest['model']} to ONNX (opset {OPSET}, input {'x'.join(map(str, inputs[0].shape))})",
            quiet=quiet)
        export_onnx(model, inputs[0], fp32, output_name=task.output_name, dynamo=task.onnx_dynamo)
        scale = task.output_scale(manifest)
        diff_fp32 = validate(model, fp32, inputs, atol=target.atol or 1e-3, scale=scale)
        meta["validation"] = {"images": len(inputs), "max_abs_diff_fp32": diff_fp32}
        artifact_tmp = fp32
        if target.quantizer == "ort-static":
            from edgetune.export.quantize_ort import quantize_static_int8

            calib, record = task.calibration_inputs(manifest, size=calib_size, seed=int(manifest["seed"]),
                                                   default=DEFAULT_CALIB_SIZE)
            _warn_calibration(record, len(manifest["labels"]), quiet)
            log(f"calibrating int8 on {record['size']} training samples ({calib_method}, "
                f"{'per-channel' if per_channel else 'per-tensor'})", quiet=quiet)
            artifact_tmp = Path(work) / "int8.onnx"
            keep, keep_record = task.quantize_keep_float(fp32)
            meta["quantization"] = quantize_static_int8(fp32, artifact_tmp, calib, per_channel=per_channel,
                                                        method=calib_method, keep_float=keep)
            meta["quantization"]["task_kept_float"] = keep_record
            meta["calibration"] = record
        meta["max_abs_diff"] = diff_fp32 if artifact_tmp == fp32 else max_abs_diff(model, artifact_tmp, inputs, scale)
        log("evaluating fp32 and the artefact on the val split", quiet=quiet)
        m_fp32 = task.evaluate(Session(fp32), manifest)
        m_art = m_fp32 if artifact_tmp == fp32 else task.evaluate(Session(artifact_tmp), manifest)
        key = task.metric_name
        drop = m_fp32[key] - m_art[key]
        scalars = lambda m: {k: v for k, v in m.items() if isinstance(v, (int, float))}  # noqa: E731
        meta.update({"metric_fp32": m_fp32[key], "metric": m_art[key], "drop": drop, "eval_images": m_art["n"],
                     "metrics_fp32": scalars(m_fp32), "metrics": scalars(m_art),
                     "max_drop": max_drop, "pass": max_drop is None or drop <= max_drop + 1e-12,
                     "size_mb": artifact_tmp.stat().st_size / 1e6, "size_mb_fp32": fp32.stat().st_size / 1e6,
                     "seconds": round(time.perf_counter() - t0, 2)})
        with atomic_dir(run.export_dir(target.id)) as out:
            shutil.copyfile(artifact_tmp, out / target.artifact)
            meta["artifact"] = str((run.export_dir(target.id) / target.artifact).resolve())
            meta["sha256"] = sha256_file(out / target.artifact)
            write_json(out / EXPORT_META, meta)
    result = {k: meta[k] for k in ("target", "artifact", "metric_fp32", "metric", "drop", "max_abs_diff",
                                   "metric_name", "metrics_fp32", "metrics", "size_mb", "pass", "seconds")}
    if not meta["pass"]:
        raise AccuracyGateError(f"{target.id}: {key} dropped {drop:.4f} ({m_fp32[key]:.4f} → {m_art[key]:.4f}), "
                                f"more than --max-drop {max_drop}",
                                hint="try --calib-size larger or another --calib-method; the artefact is kept "
                                     "for inspection with pass=false in export.json", payload=result)
    return result


def _warn_calibration(record: dict, num_classes: int, quiet: bool) -> None:
    if record["size"] < 2 * num_classes or record["per_class_min"] < 1:
        log(f"warning: calibration set of {record['size']} images covers some of the {num_classes} classes "
            f"with {record['per_class_min']} image(s); int8 ranges may not represent the data "
            f"(use --calib-size ≥ {10 * num_classes})", quiet=quiet)
