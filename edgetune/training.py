"""`edgetune.finetune(...)`: the fine-tune as a library call (the CLI is a thin layer over it).

Resolves what the command line leaves open — the task from the model card, the card's freeze
for pretrained weights, the task's batch size — and checks the run location and --resume before
any data is read or any weight is loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgetune.errors import RunDirError, UsageError

if TYPE_CHECKING:
    from edgetune.zoo import ModelCard


def finetune(model: str, data: str | Path, out: str | Path, *, task: str | None = None, epochs: int = 10,
             lr: float | None = None, batch: int | None = None, img_size: int | None = None, seed: int = 0,
             freeze: str | None = None, keywords: list[str] | tuple[str, ...] | None = None, patience: int | None = None,
             val_split: float | None = None, weights: str | Path | None = None, head_init: str = "probe",
             threads: int | None = None, bn: str = "frozen", checkpoint: str = "average", device: str = "auto",
             pretrained: bool = True, resume: bool = False, cache: str = "auto", quiet: bool = False, verbose: bool = False) -> dict[str, Any]:
    """Fine-tune the card `model` on `data` into the run directory `out`; returns the finetune
    summary (run, metric_name, metric, best, epochs, seconds). Options as `edgetune finetune --help`."""
    from edgetune.fsutil import ensure_writable_dir
    from edgetune.run import check_run_location
    from edgetune.tasks import get_task
    from edgetune.train.config import TrainConfig
    from edgetune.train.launcher import echo, launched_by_torchrun, secondary_rank
    from edgetune.zoo import get_card

    card = get_card(model)
    if task is not None and task != card.task:
        raise UsageError(f"--task {task} but model {model} is a {card.task} model",
                         hint=f"drop --task, or pick a {task} model from `edgetune models`")
    if cache != "auto" and card.task == "kws":
        raise UsageError(f"--cache {cache}: kws keeps its clips in RAM (1 s of 16 kHz audio is 64 kB a clip)",
                         hint="drop --cache")
    if keywords is not None and card.task != "kws":
        raise UsageError("--keywords applies to keyword spotting (kws) models only")
    data, out = Path(data), Path(out)
    check_run_location(out, data)
    started_with = _check_resumable(out, model, freeze) if resume else None
    # A card's default freeze describes how to fine-tune its *pretrained* weights; a resumed run
    # keeps the one it started with (its optimiser state holds exactly those trainable layers).
    freeze = freeze or started_with or default_freeze(card, pretrained)
    if not secondary_rank():  # rank 0 alone writes the run (a distributed job ends with it)
        ensure_writable_dir(out, "--out folder")  # before data checks and training, for every task
    runner = get_task(card.task)
    cfg = TrainConfig(task=card.task, model=model, data=data, out=out, epochs=epochs, lr=lr,
                      batch=batch or runner.default_batch, img_size=img_size, seed=seed, freeze=freeze,
                      patience=patience, val_split=val_split, weights=Path(weights) if weights else None,
                      resume=resume, head_init=head_init, threads=threads, pretrained=pretrained, device=device, bn=bn,
                      checkpoint=checkpoint, verbose=verbose, cache=cache,
                      keywords=tuple(k.strip() for k in keywords if k.strip()) if keywords else None)
    if launched_by_torchrun() and not runner.data_parallel:
        err = UsageError(f"{card.task} does not train under torchrun",
                         hint="run it as one process; detect uses ultralytics' own multi-GPU DDP: --device 0,1")
        raise echo(err) if secondary_rank() else err  # every rank finds it; rank 0 says it
    result = runner.finetune(cfg, quiet=quiet)
    if launched_by_torchrun():
        from edgetune.train.distributed import finish

        finish()
    return result


def default_freeze(card: ModelCard, pretrained: bool) -> str:
    """--freeze when none is given: the card's `default_freeze`, which describes how to fine-tune
    its *pretrained* weights (random init trains every stage)."""
    return (card.default_freeze if pretrained else None) or "none"


def _check_resumable(out: Path, model: str, freeze: str | None) -> str | None:
    """--resume continues the run in OUT with the model and the frozen layers it was started with:
    a run of another model, or a --freeze that would change which layers train (and no longer fit
    the saved optimiser state), is named, not half-loaded. Returns the run's own --freeze."""
    from edgetune.run import RunDir

    run = RunDir(out)
    if not run.manifest_path.is_file():
        return None  # the task's own resume check names what is missing
    manifest = run.read_manifest()
    if manifest.model != model:
        raise RunDirError(f"{out} holds a {manifest.task} run of {manifest.model}; --resume continues it "
                          f"with the same --model, not {model}",
                          hint=f"pass --model {manifest.model}, or a new --out for {model}")
    from edgetune.train.config import is_freeze

    started = (manifest.config or {}).get("freeze")
    if not is_freeze(started):
        started = None  # not recorded as a freeze (an edited manifest): the usual default applies
    if freeze is not None and started is not None and freeze != started:
        raise RunDirError(f"{out} was started with --freeze {started}; --resume continues it with the same "
                          f"frozen layers, not --freeze {freeze}",
                          hint=f"drop --freeze (or pass --freeze {started}), or start a new --out")
    return started
