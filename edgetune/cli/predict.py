"""`edgetune predict`: run an exported artefact on images, without torch."""

from __future__ import annotations

from pathlib import Path

import click

from edgetune.cli.common import FINITE, emit, handle_errors, json_option


@click.command()
@click.argument("artifact", type=click.Path(path_type=Path))
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--top-k", default=3, show_default=True, type=int, help="classify: labels to list per image.")
@click.option("--conf", type=FINITE, default=None, help="detect: confidence threshold [default: the model card's].")
@click.option("--save", type=click.Path(path_type=Path), default=None,
              help="detect: write each image with its boxes into this folder.")
@click.option("--stream", is_flag=True, help="kws: slide a window over each (long) WAV and print timed detections.")
@click.option("--hop", type=FINITE, default=None, help="kws --stream: window step in seconds [default: export's, 0.1].")
@click.option("--threshold", type=FINITE, default=None,
              help="kws --stream: smoothed keyword probability that fires [default: export's, 0.5].")
@click.option("--smooth", type=FINITE, default=None, help="kws --stream: posterior smoothing span in seconds [default 0.3].")
@click.option("--refractory", type=FINITE, default=None, help="kws --stream: seconds of silence after a detection [default 1].")
@click.option("--threads", type=int, default=None)
@json_option
@handle_errors()
def predict(artifact: Path, images: tuple[Path, ...], top_k: int, conf: float | None, save: Path | None,
            stream: bool, hop: float | None, threshold: float | None, smooth: float | None, refractory: float | None,
            threads: int | None, as_json: bool) -> None:
    """Run an export folder (RUN/export/<target>) or its model file on IMAGES (or WAV files for kws)."""
    from edgetune.artifact import open_export
    from edgetune.errors import DataError, UsageError
    from edgetune.preprocess import ImageLimitError
    from edgetune.tasks import get_task

    folder = artifact if artifact.is_dir() else artifact.parent
    meta, session = open_export(folder, threads=threads,
                                hint="pass an export folder made by `edgetune export` (RUN/export/<target>)")
    task = get_task(meta["task"])
    if conf is not None:
        if not 0 <= conf <= 1:
            raise UsageError(f"--conf must be in [0, 1], got {conf}")
        meta["postprocess"] = {**(meta.get("postprocess") or {}), "conf": conf}
    meta["top_k"] = max(1, top_k)
    if save is not None and not hasattr(task, "draw"):
        raise UsageError(f"--save draws boxes; {meta['task']} artefacts have none")
    if stream and not hasattr(task, "stream"):
        raise UsageError(f"--stream slides a window over audio; {meta['task']} artefacts take images")
    cfg = None
    if stream:
        from edgetune.kws_stream import StreamConfig

        cfg = StreamConfig.from_dict(meta.get("postprocess"), hop_s=hop, threshold=threshold, smooth_s=smooth,
                                     refractory_s=refractory)
        cfg.check()
    results = []
    for path in images:
        if path.is_dir():
            raise DataError(f"{path} is a folder; predict takes files", hint=f"pass the files, e.g. {path}/*")
        if not path.is_file():
            raise DataError(f"input file {path} does not exist")
        if stream:
            out = {"file": str(path), **task.stream(session, meta, path, cfg)}
            out["text"] = task.describe(out)
            results.append(out)
            continue
        try:
            out = task.predict(session, meta, path)
        except ImageLimitError as exc:
            raise DataError(f"{path}: {exc}") from None
        except (OSError, ValueError, ImportError) as exc:  # ImportError: ultralytics' PIL patch (pi_heif)
            why = "not a recognised image format" if isinstance(exc, ImportError) else str(exc)
            raise DataError(f"cannot read image {path}: {why}", hint="pass JPEG/PNG/BMP/WebP files") from None
        out = {("file" if meta["task"] == "kws" else "image"): str(path), **out}
        if save is not None:
            dest = save / (path.stem + "_pred" + (path.suffix if path.suffix.lower() in (".jpg", ".jpeg", ".png") else ".png"))
            task.draw(path, out, dest)
            out["saved"] = str(dest)
        out["text"] = task.describe(out)
        results.append(out)
    payload = {"target": meta["target"], "task": meta["task"], "predictions": results}
    if stream and len(results) == 1:  # the documented shape: {"detections": [{"label", "time_s", "score"}]}
        payload["detections"] = results[0]["detections"]
    emit(payload, as_json, _human)


def _human(r: dict) -> None:
    for p in r["predictions"]:
        click.echo(f"{p.get('image', p.get('file'))}: {p['text']}" + (f"  → {p['saved']}" if "saved" in p else ""))
