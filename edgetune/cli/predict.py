"""`edgetune predict`: top-k labels from an exported artefact, without torch."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from edgetune.cli.common import emit, handle_errors, json_option


@click.command()
@click.argument("artifact", type=click.Path(path_type=Path))
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--top-k", default=3, show_default=True, type=int)
@click.option("--threads", type=int, default=None)
@json_option
@handle_errors()
def predict(artifact: Path, images: tuple[Path, ...], top_k: int, threads: int | None, as_json: bool) -> None:
    """Classify IMAGES with an export folder (RUN/export/<target>) or its model file."""
    from edgetune.errors import DataError, RunDirError
    from edgetune.preprocess import ImagePreprocess
    from edgetune.run import EXPORT_META, read_json_file
    from edgetune.runtime import Session

    folder = artifact if artifact.is_dir() else artifact.parent
    meta = read_json_file(folder / EXPORT_META, what="export metadata",
                          hint="pass an export folder made by `edgetune export` (RUN/export/<target>)")
    if meta.get("task") != "classify":
        raise RunDirError(f"{folder} holds a {meta.get('task')} artefact; predict supports classify here")
    session = Session(folder / Path(meta["artifact"]).name, threads=threads)
    pre = ImagePreprocess.from_dict(meta["preprocessing"])
    labels = meta["labels"]
    results = []
    for path in images:
        try:
            x = pre(path)
        except (OSError, ValueError) as exc:
            raise DataError(f"cannot read image {path}: {exc}", hint="pass JPEG/PNG/BMP/WebP files") from None
        logits = session.run(x)[0][0].astype(np.float64)
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        order = np.argsort(-probs)[: max(1, top_k)]
        results.append({"image": str(path), "top": [{"label": labels[i], "score": float(probs[i])} for i in order]})
    emit({"target": meta["target"], "predictions": results}, as_json, _human)


def _human(r: dict) -> None:
    for p in r["predictions"]:
        click.echo(p["image"] + ": " + ", ".join(f"{t['label']} {t['score']:.3f}" for t in p["top"]))
