"""`edgetune.predict(...)`: run an exported artefact on files, without torch (the CLI's
`predict` is a thin layer over it). The artefact is opened through `open_export`, so its files'
hashes and I/O shapes are checked before the first input is read.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgetune.errors import DataError, UsageError


def predict(artifact: str | Path, inputs: Sequence[str | Path], *, top_k: int = 3, conf: float | None = None,
            save: str | Path | None = None, stream: bool = False, hop: float | None = None,
            threshold: float | None = None, smooth: float | None = None, refractory: float | None = None,
            threads: int | None = None) -> dict[str, Any]:
    """Predictions of the export folder `artifact` (or its model file) for each input file.

    Returns {"target", "task", "predictions": [...]} (and "detections" for one kws --stream file);
    each prediction carries a one-line "text" for people. Options as `edgetune predict --help`."""
    from edgetune.artifact import open_export
    from edgetune.tasks import get_task

    artifact = Path(artifact)
    export = open_export(artifact if artifact.is_dir() else artifact.parent,
                         hint="pass an export folder made by `edgetune export` (RUN/export/<target>)")
    session = export.open_session(threads=threads)
    task, spec = get_task(export.meta.task), export.meta.spec
    if conf is not None:
        if not 0 <= conf <= 1:
            raise UsageError(f"--conf must be in [0, 1], got {conf}")
        spec = spec.with_postprocess(conf=conf)
    if save is not None and not hasattr(task, "draw"):
        raise UsageError(f"--save draws boxes; {spec.task} artefacts have none")
    if stream and not hasattr(task, "stream"):
        raise UsageError(f"--stream slides a window over audio; {spec.task} artefacts take images")
    cfg = None
    if stream:
        from edgetune.tasks.kws_stream import StreamConfig

        cfg = StreamConfig.from_dict(spec.postprocess, hop_s=hop, threshold=threshold, smooth_s=smooth,
                                     refractory_s=refractory)
        cfg.check()
    results = []
    for path in map(Path, inputs):
        if path.is_dir():
            raise DataError(f"{path} is a folder; predict takes files", hint=f"pass the files, e.g. {path}/*")
        if not path.is_file():
            raise DataError(f"input file {path} does not exist")
        if stream:
            out = {"file": str(path), **task.stream(session, spec, path, cfg)}
        else:
            out = {("file" if spec.task == "kws" else "image"): str(path), **_one(task, session, spec, path, top_k)}
            if save is not None:
                suffix = path.suffix if path.suffix.lower() in (".jpg", ".jpeg", ".png") else ".png"
                dest = Path(save) / (path.stem + "_pred" + suffix)
                task.draw(path, out, dest)
                out["saved"] = str(dest)
        out["text"] = task.describe(out)
        results.append(out)
    payload: dict[str, Any] = {"target": export.meta.target, "task": spec.task, "predictions": results}
    if stream and len(results) == 1:  # the documented shape: {"detections": [{"label", "time_s", "score"}]}
        payload["detections"] = results[0]["detections"]
    return payload


def _one(task: Any, session: Any, spec: Any, path: Path, top_k: int) -> dict[str, Any]:
    """One file's prediction; an unreadable or oversized image is one DataError line naming it."""
    from edgetune.preprocess import ImageLimitError

    try:
        return task.predict(session, spec, path, top_k=max(1, top_k))
    except ImageLimitError as exc:
        raise DataError(f"{path}: {exc}") from None
    except (OSError, ValueError, ImportError) as exc:  # ImportError: ultralytics' PIL patch (pi_heif)
        why = "not a recognised image format" if isinstance(exc, ImportError) else str(exc)
        raise DataError(f"cannot read image {path}: {why}", hint="pass JPEG/PNG/BMP/WebP files") from None
