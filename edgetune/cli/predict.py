"""`edgetune predict`: run an exported artefact on images, without torch."""

from __future__ import annotations

from pathlib import Path

import click

from edgetune.cli.common import emit, handle_errors, json_option


@click.command()
@click.argument("artifact", type=click.Path(path_type=Path))
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--top-k", default=3, show_default=True, type=int, help="classify: labels to list per image.")
@click.option("--conf", type=float, default=None, help="detect: confidence threshold [default: the model card's].")
@click.option("--save", type=click.Path(path_type=Path), default=None,
              help="detect: write each image with its boxes into this folder.")
@click.option("--threads", type=int, default=None)
@json_option
@handle_errors()
def predict(artifact: Path, images: tuple[Path, ...], top_k: int, conf: float | None, save: Path | None,
            threads: int | None, as_json: bool) -> None:
    """Run an export folder (RUN/export/<target>) or its model file on IMAGES."""
    from edgetune.errors import DataError, UsageError
    from edgetune.run import EXPORT_META, read_json_file
    from edgetune.runtime import Session
    from edgetune.tasks import get_task

    folder = artifact if artifact.is_dir() else artifact.parent
    meta = read_json_file(folder / EXPORT_META, what="export metadata",
                          hint="pass an export folder made by `edgetune export` (RUN/export/<target>)")
    task = get_task(meta["task"])
    if conf is not None:
        if not 0 <= conf <= 1:
            raise UsageError(f"--conf must be in [0, 1], got {conf}")
        meta["postprocess"] = {**(meta.get("postprocess") or {}), "conf": conf}
    meta["top_k"] = max(1, top_k)
    if save is not None and not hasattr(task, "draw"):
        raise UsageError(f"--save draws boxes; {meta['task']} artefacts have none")
    session = Session(folder / Path(meta["artifact"]).name, threads=threads)
    results = []
    for path in images:
        try:
            out = task.predict(session, meta, path)
        except (OSError, ValueError, ImportError) as exc:  # ImportError: ultralytics' PIL patch (pi_heif)
            why = "not a recognised image format" if isinstance(exc, ImportError) else str(exc)
            raise DataError(f"cannot read image {path}: {why}", hint="pass JPEG/PNG/BMP/WebP files") from None
        out = {"image": str(path), **out}
        if save is not None:
            dest = save / (path.stem + "_pred" + (path.suffix if path.suffix.lower() in (".jpg", ".jpeg", ".png") else ".png"))
            task.draw(path, out, dest)
            out["saved"] = str(dest)
        out["text"] = task.describe(out)
        results.append(out)
    emit({"target": meta["target"], "task": meta["task"], "predictions": results}, as_json, _human)


def _human(r: dict) -> None:
    for p in r["predictions"]:
        click.echo(f"{p['image']}: {p['text']}" + (f"  → {p['saved']}" if "saved" in p else ""))
