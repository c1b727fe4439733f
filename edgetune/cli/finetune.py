"""`edgetune finetune`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from edgetune.cli.common import FINITE, argv_without, emit, handle_errors, json_option
from edgetune.errors import UsageError
from edgetune.tasks import get_task
from edgetune.tasks.names import TASK_NAMES
from edgetune.train.launcher import secondary_rank


@click.command()
@click.option("--task", type=click.Choice(TASK_NAMES), default=None,
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
@click.option("--img-size", type=int, default=None, help="Square input size [default: classify: twice the images' median side, rounded up to 32, 160 at least and the card's at most; detect: the images' longer side rounded up to 32, at most the card's].")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--freeze", default=None,
              help="none (full fine-tune) | backbone (classify: linear probe on cached features; detect: backbone "
                   "layers frozen; kws: head on cached embeddings) | N (first N stages/layers) "
                   "[default: with --resume the run's own, else the card's: `edgetune models` shows it].")
@click.option("--keywords", default=None,
              help="kws: comma-separated word folders that are keywords; the other words become _unknown_ "
                   "[default: every word folder except _unknown_].")
@click.option("--patience", default=None, type=int,
              help="Early stop after N epochs without val gain [default: classify, kws 5; detect 100 (ultralytics')].")
@click.option("--val-split", type=FINITE, default=None, help="classify: hold out this fraction when DATA has no train/val.")
@click.option("--weights", type=click.Path(path_type=Path), default=None, help="Pretrained weights file (offline).")
@click.option("--head-init", type=click.Choice(["probe", "random"]), default="probe", show_default=True,
              help="classify: probe = fit the new head on cached features before fine-tuning (LP-FT).")
@click.option("--threads", type=int, default=None, help="Torch threads [default: every core this process may use].")
@click.option("--bn", type=click.Choice(["frozen", "train"]), default="frozen", show_default=True,
              help="classify: pretrained BatchNorm statistics kept fixed, or updated while training.")
@click.option("--checkpoint", type=click.Choice(["average", "best"]), default="average", show_default=True,
              help="classify: the checkpoint handed over is the average of the weights of the epoch best on val and "
                   "the last epoch (it held better on test data shifted from val), or that best epoch alone.")
@click.option("--device", default="auto", show_default=True, help="auto (CUDA when present) | cpu | cuda[:N].")
@click.option("--pretrained/--no-pretrained", default=True, show_default=True,
              help="Start from the card's pretrained weights, or from random init (baseline).")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last.pt.")
@click.option("--cache", type=click.Choice(["auto", "ram", "disk", "none"]), default="auto", show_default=True,
              help="Where decoded training images live: ram, disk (a private file under the cache, read per batch: "
                   "data larger than RAM), none (decoded again at every draw); auto: ram when they fit half the "
                   "available memory, else disk when the free disk holds them, else none. detect: ultralytics' cache "
                   "(auto: ram on CPU).")
@click.option("--nproc", type=click.IntRange(1, 256), default=1, show_default=True,
              help="classify, kws: data-parallel processes on this machine (torchrun's launcher, DDP: gloo on CPU, "
                   "NCCL on CUDA, one GPU each); --batch stays the global batch. Several machines: torchrun "
                   "(docs/DISTRIBUTED.md).")
@click.option("--quiet", is_flag=True, help="No progress output.")
@click.option("--verbose", is_flag=True,
              help="detect: also show ultralytics' own log (its arguments, model table, data scans) on the terminal; "
                   "it is always kept in RUN/ultralytics/train.log.")
@json_option
@handle_errors()
def finetune(task: str | None, model: str, data: Path, out: Path, epochs: int, lr: float | None, batch: int | None, img_size: int | None,
             seed: int, freeze: str | None, keywords: str | None, patience: int | None, val_split: float | None, weights: Path | None, head_init: str,
             threads: int | None, bn: str, checkpoint: str, device: str, pretrained: bool, resume: bool, cache: str, nproc: int, quiet: bool, verbose: bool,
             as_json: bool) -> None:
    """Fine-tune a pretrained model on your data into a run directory."""
    from edgetune.training import finetune as run_finetune

    if nproc > 1:
        from edgetune.train.launcher import launch
        from edgetune.zoo import get_card

        if not get_task(get_card(model).task).data_parallel:
            raise UsageError(f"--nproc: {get_card(model).task} does not train as several processes",
                             hint="drop --nproc; detect uses ultralytics' own multi-GPU DDP: --device 0,1")
        code = launch(["finetune", *argv_without(click.get_current_context(), "nproc")], nproc, out)
        if code:
            sys.exit(code)
        return

    result = run_finetune(model, data, out, task=task, epochs=epochs, lr=lr, batch=batch, img_size=img_size, seed=seed,
                          freeze=freeze, keywords=keywords.split(",") if keywords is not None else None,
                          patience=patience, val_split=val_split, weights=weights, head_init=head_init,
                          threads=threads, bn=bn, checkpoint=checkpoint, device=device, pretrained=pretrained, resume=resume,
                          cache=cache, quiet=quiet or as_json, verbose=verbose)
    if secondary_rank():
        return  # rank 0 reports the job's result
    emit(result, as_json, lambda r: click.echo(
        f"{r['run']}: {_checkpoint_words(r['best'])} val {r['metric_name']} {r['metric']:.4f} "
        f"({r['epochs']} epochs, {r['seconds']:.0f}s)"))


def _checkpoint_words(best: dict[str, Any]) -> str:
    """What checkpoint.pt holds, as the manifest's `best` records it."""
    if "average_of" in best:
        return "checkpoint = average of epochs {} (best on val) and {} (last):".format(*best["average_of"])
    return f"checkpoint = epoch {best['epoch']}, best"
