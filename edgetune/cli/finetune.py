"""`edgetune finetune`."""

from __future__ import annotations

from pathlib import Path

import click

from edgetune.cli.common import FINITE, emit, handle_errors, json_option


@click.command()
@click.option("--task", type=click.Choice(["classify", "detect", "kws"]), default=None,
              help="What to train [default: the model card's task].")
@click.option("--model", required=True, help="Model card name (`edgetune models`).")
@click.option("--data", required=True, type=click.Path(path_type=Path),
              help="classify: ImageFolder DIR/train/<class>/, DIR/val/<class>/; detect: an ultralytics data.yaml; "
                   "kws: a Speech Commands folder (DIR/<word>/*.wav, DIR/_background_noise_/).")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Run directory to create.")
@click.option("--epochs", default=10, show_default=True, type=int)
@click.option("--lr", default=None, type=FINITE,
              help="Peak learning rate [default: classify AdamW 5e-4 (warm-up, cosine); detect ultralytics' auto].")
@click.option("--batch", default=None, type=int, help="Batch size [default: classify 32, detect 16].")
@click.option("--img-size", type=int, default=None, help="Square input size [default: the card's].")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--freeze", default=None,
              help="none (full fine-tune) | backbone (classify: linear probe on cached features; detect: backbone "
                   "layers frozen; kws: head on cached embeddings) | N (first N stages/layers) "
                   "[default: the card's, else none].")
@click.option("--keywords", default=None,
              help="kws: comma-separated word folders that are keywords; the other words become _unknown_ "
                   "[default: every word folder except _unknown_].")
@click.option("--patience", default=5, show_default=True, type=int, help="Early stop after N epochs without val gain.")
@click.option("--val-split", type=FINITE, default=None, help="classify: hold out this fraction when DATA has no train/val.")
@click.option("--weights", type=click.Path(path_type=Path), default=None, help="Pretrained weights file (offline).")
@click.option("--head-init", type=click.Choice(["probe", "random"]), default="probe", show_default=True,
              help="classify: probe = fit the new head on cached features before fine-tuning (LP-FT).")
@click.option("--threads", type=int, default=None, help="Torch threads [default: all cores].")
@click.option("--bn", type=click.Choice(["frozen", "train"]), default="frozen", show_default=True,
              help="classify: pretrained BatchNorm statistics kept fixed, or updated while training.")
@click.option("--device", default="auto", show_default=True, help="auto (CUDA when present) | cpu | cuda[:N].")
@click.option("--pretrained/--no-pretrained", default=True, show_default=True,
              help="Start from the card's pretrained weights, or from random init (baseline).")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last.pt.")
@click.option("--quiet", is_flag=True, help="No progress output.")
@json_option
@handle_errors()
def finetune(task: str | None, model: str, data: Path, out: Path, epochs: int, lr: float | None, batch: int | None, img_size: int | None,
             seed: int, freeze: str | None, keywords: str | None, patience: int, val_split: float | None, weights: Path | None, head_init: str,
             threads: int | None, bn: str, device: str, pretrained: bool, resume: bool, quiet: bool, as_json: bool) -> None:
    """Fine-tune a pretrained model on your data into a run directory."""
    from edgetune.errors import UsageError
    from edgetune.tasks import get_task
    from edgetune.train.config import TrainConfig
    from edgetune.zoo import get_card

    card = get_card(model)
    if task is not None and task != card.task:
        raise UsageError(f"--task {task} but model {model} is a {card.task} model",
                         hint=f"drop --task, or pick a {task} model from `edgetune models`")
    task = card.task
    if keywords is not None and task != "kws":
        raise UsageError("--keywords applies to keyword spotting (kws) models only")
    # A card's default freeze describes how to fine-tune its *pretrained* weights.
    freeze = freeze or (card.default_freeze if pretrained else None) or "none"

    from edgetune.fsutil import ensure_writable_dir
    from edgetune.run import check_run_location

    check_run_location(Path(out), Path(data))
    if resume:
        _check_resumable(Path(out), model)

    ensure_writable_dir(Path(out), "--out folder")  # before data checks and training, for every task
    batch = batch or get_task(task).default_batch
    cfg = TrainConfig(task=task, model=model, data=data, out=out, epochs=epochs, lr=lr, batch=batch,
                      img_size=img_size, seed=seed, freeze=freeze, patience=patience, val_split=val_split,
                      weights=weights, resume=resume, head_init=head_init, threads=threads,
                      pretrained=pretrained, device=device, bn=bn,
                      keywords=tuple(k.strip() for k in keywords.split(",") if k.strip()) if keywords else None)
    result = get_task(task).finetune(cfg, quiet=quiet or as_json)
    emit(result, as_json, lambda r: click.echo(
        f"{r['run']}: best val {r['metric_name']} {r['metric']:.4f} at epoch {r['best']['epoch']} "
        f"({r['epochs']} epochs, {r['seconds']:.0f}s)"))


def _check_resumable(out: Path, model: str) -> None:
    """--resume continues the run in OUT with the model it was started with: a run of another
    model or task is named, not half-loaded."""
    from edgetune.errors import RunDirError
    from edgetune.run import RunDir

    run = RunDir(out)
    if not run.manifest_path.is_file():
        return  # the task's own resume check names what is missing
    manifest = run.read_manifest()
    if manifest["model"] != model:
        raise RunDirError(f"{out} holds a {manifest['task']} run of {manifest['model']}; --resume continues it "
                          f"with the same --model, not {model}",
                          hint=f"pass --model {manifest['model']}, or a new --out for {model}")
