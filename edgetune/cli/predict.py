"""`edgetune predict`: run an exported artefact on images or audio, without torch (edgetune.inference)."""

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
    from edgetune.inference import predict as run_predict

    payload = run_predict(artifact, images, top_k=top_k, conf=conf, save=save, stream=stream, hop=hop,
                          threshold=threshold, smooth=smooth, refractory=refractory, threads=threads)
    emit(payload, as_json, _human)


def _human(r: dict) -> None:
    for p in r["predictions"]:
        click.echo(f"{p.get('image', p.get('file'))}: {p['text']}" + (f"  → {p['saved']}" if "saved" in p else ""))
