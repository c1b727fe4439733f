"""The shared epoch loop: best + last checkpoints, resume, early stopping, manifest updates.

Tasks provide `train_epoch(epoch) -> loss` and `evaluate() -> metric`; everything about
persistence lives here once. Checkpoints are plain state_dicts loaded with weights_only=True.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from edgetune.errors import EdgetuneError, ExitCode, RunDirError, Terminated, UsageError, interruption_code
from edgetune.fsutil import atomic_path
from edgetune.progress import log
from edgetune.run import RunDir
from edgetune.train.distributed import SINGLE, Dist, peer_failures


class Interrupted(EdgetuneError):
    exit_code = ExitCode.INTERRUPTED


@dataclass
class FitState:
    epoch: int = 0  # epochs completed
    best_metric: float = -1.0
    best_epoch: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    stopped_early: bool = False
    # Val says nothing (edgetune.train.probe.val_uninformative): every epoch runs, the last is kept.
    keep_last: bool = False
    # The checkpoint handed over is the average of the val-best and last epochs' weights
    # (`fit(average_last=True)`): {"epochs": [best, last], <metric>: its val metric}; None otherwise.
    averaged: dict[str, Any] | None = None

    def checkpoint_record(self, metric_name: str) -> dict[str, Any]:
        """What checkpoint.pt holds, as the manifest's `best`: the val-best epoch, or the average."""
        if self.averaged:
            return {"epoch": self.averaged["epochs"][1], metric_name: self.averaged[metric_name],
                    "average_of": self.averaged["epochs"]}
        return {"epoch": self.best_epoch, metric_name: self.best_metric}


def resolve_device(name: str) -> torch.device:
    """`auto` picks CUDA when torch sees a GPU; asking for CUDA without one is a usage error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"--device {name}: torch sees no CUDA GPU on this machine", hint="use --device cpu")
    return torch.device(name)


def save_state_dict(path, state: dict[str, Any]) -> None:
    """Atomic torch.save of CPU tensors (a checkpoint made on a GPU loads anywhere)."""
    with atomic_path(path) as tmp:
        torch.save(_to_cpu(state), tmp)


def _to_cpu(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


def load_checkpoint(path) -> dict[str, Any]:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise RunDirError(f"cannot load checkpoint {path}: {str(exc).splitlines()[0][:160]}",
                          hint="it is truncated or not written by edgetune; re-run the fine-tune") from None


def load_trained_weights(model: torch.nn.Module, checkpoint, model_name: str, num_labels: int) -> torch.nn.Module:
    """A run's best weights into its freshly built architecture, in eval mode; a mismatch is one line."""
    try:
        model.load_state_dict(load_checkpoint(checkpoint))
    except RuntimeError as exc:
        raise RunDirError(f"checkpoint {checkpoint} does not match model {model_name} with "
                          f"{num_labels} classes: {str(exc).splitlines()[0][:120]}") from None
    return model.eval()


def _rng_state() -> dict[str, Any]:
    return {"torch": torch.get_rng_state()}


def fit(*, run: RunDir, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
        train_epoch: Callable[[int], float], evaluate: Callable[[], float], epochs: int, patience: int,
        on_epoch: Callable[[FitState], None], resume: bool, metric_name: str,
        initial: FitState | None = None, started_at: float | None = None, dist: Dist = SINGLE,
        average_last: bool = False) -> FitState:
    """Run epochs until `epochs` or early stop; after each epoch save last.pt (and checkpoint.pt
    when the val metric improves) then call `on_epoch` (which rewrites the manifest).

    `initial` carries an epoch-0 result (e.g. the probe-initialised head), which later epochs
    must beat to replace checkpoint.pt (unless its `keep_last`: then every epoch replaces it and
    none stops early; a resumed run keeps the choice); `started_at` is the clock origin for `elapsed`.
    `average_last`: once the epochs are done, checkpoint.pt becomes the average of the val-best and
    the last epoch's weights (`hand_over_average`).

    Under `dist` (edgetune.train.distributed) `model` is the bare module (DDP's wrapper lives in
    `train_epoch`); rank 0 reads the resume checkpoint and evaluates, every rank gets its answer,
    and only rank 0 writes checkpoints, calls `on_epoch` and logs.
    """
    state = initial or FitState()
    if resume:
        ck = dist.on_main(lambda: _read_last(run))
        if "best_model" in ck and dist.is_main:  # a finished averaged run: back to its val-best checkpoint
            save_state_dict(run.checkpoint, ck["best_model"])
        model.load_state_dict(ck["model"])
        optimizer.load_state_dict(ck["optimizer"])  # load_state_dict casts state to the params' device
        scheduler.load_state_dict(ck["scheduler"])
        torch.set_rng_state(ck["rng"]["torch"])
        state = FitState(**{**ck["fit"], "averaged": None})
        log(f"resuming after epoch {state.epoch} (best {metric_name} {state.best_metric:.4f})", quiet=not dist.is_main)
    start = started_at if started_at is not None and not resume else time.perf_counter() - state.seconds
    averaging = False  # what an interruption interrupts: an epoch, or the hand-over after the last one
    try:
        for epoch in range(state.epoch + 1, epochs + 1):
            t0 = time.perf_counter()
            with peer_failures():
                loss = train_epoch(epoch)
            metric = dist.on_main(evaluate)
            state.epoch = epoch
            state.history.append({"epoch": epoch, "loss": round(loss, 5), metric_name: round(metric, 5),
                                  "lr": optimizer.param_groups[0]["lr"], "seconds": round(time.perf_counter() - t0, 2),
                                  "elapsed": round(time.perf_counter() - start, 2)})
            improved = metric > state.best_metric or state.keep_last
            if improved:
                state.best_metric, state.best_epoch = metric, epoch
                if dist.is_main:
                    save_state_dict(run.checkpoint, model.state_dict())
            state.seconds = time.perf_counter() - start
            if not state.keep_last and epoch - state.best_epoch >= patience and epoch < epochs:
                state.stopped_early = True
            if dist.is_main:
                save_state_dict(run.last, {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                           "scheduler": scheduler.state_dict(), "rng": _rng_state(),
                                           "fit": state.__dict__})
                log(f"epoch {epoch}/{epochs}  loss {loss:.4f}  val {metric_name} {metric:.4f}"
                    f"{'  *kept (last)' if state.keep_last else '  *best' if improved else ''}  "
                    f"({time.perf_counter() - t0:.0f}s)")
                on_epoch(state)
            if state.stopped_early:
                log(f"early stop: no val improvement for {patience} epochs (best epoch {state.best_epoch})",
                    quiet=not dist.is_main)
                break
        if average_last:
            averaging = True
            hand_over_average(run, model, state, evaluate, metric_name, dist)
    except KeyboardInterrupt as exc:
        err = Interrupted(f"{'terminated' if isinstance(exc, Terminated) else 'interrupted'} during "
                          f"{'the checkpoint averaging' if averaging else f'epoch {state.epoch + 1}'}; "
                          f"last completed epoch {state.epoch} is saved in {run.last}",
                          hint="continue with the same command plus --resume")
        err.exit_code = interruption_code(exc)
        raise err from None
    return state


def hand_over_average(run: RunDir, model: torch.nn.Module, state: FitState, evaluate: Callable[[], float],
                      metric_name: str, dist: Dist = SINGLE) -> None:
    """Make checkpoint.pt the uniform average of the val-best and the last epoch's weights.

    Why: the val-best epoch is a choice made on val, which is drawn from the training
    distribution; when test data is shifted from it (new typefaces, new devices) the best epoch on
    val was often not the best on test, and the average of the two beat both choices on the
    suite's tuning half (benchmarks/checkpoint_choice.py: +1.1 pt over 27 runs, +2.8 on the shifted
    set). Both are points of one fine-tune from one pretrained model, so their average is a model
    of that run (weight averaging along a trajectory, as SWA and WiSE-FT do); BN statistics are
    fixed in the default fine-tune, so averaging needs no BN re-estimation (with `--bn train` the
    running statistics are averaged too, not re-estimated; that case was not measured).

    last.pt keeps the last epoch's weights and gains the val-best's ("best_model"), so a resume
    that trains further starts from the same state as an unaveraged run would.
    """
    if state.keep_last or state.best_epoch == state.epoch:
        return  # one model: nothing to average

    def average_on_main() -> float:
        best, last = load_checkpoint(run.checkpoint), _to_cpu(model.state_dict())
        ck = load_checkpoint(run.last)
        save_state_dict(run.last, {**ck, "best_model": best})  # first: a resume finds the val-best here
        model.load_state_dict(average_state_dicts(best, last))
        metric = evaluate()
        save_state_dict(run.checkpoint, model.state_dict())
        return metric

    metric = dist.on_main(average_on_main)
    state.averaged = {"epochs": [state.best_epoch, state.epoch], metric_name: round(metric, 5)}
    log(f"checkpoint: average of epochs {state.best_epoch} (best on val) and {state.epoch} (last): "
        f"val {metric_name} {metric:.4f}", quiet=not dist.is_main)


def average_state_dicts(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The mean of two state dicts' float tensors; other tensors (BN's batch counters) come from `b`."""
    return {k: (a[k].to(v.device) + v) / 2 if v.is_floating_point() else v for k, v in b.items()}


def _read_last(run: RunDir) -> dict[str, Any]:
    if not run.last.is_file():
        raise RunDirError(f"--resume: {run.last} not found", hint="start without --resume")
    return load_checkpoint(run.last)


def optimizer_step(opt: torch.optim.Optimizer, scheduler: Any, loss: torch.Tensor) -> float:
    """Backward, step, schedule (per batch); returns the loss value."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    scheduler.step()
    return loss.item()


def warmup_cosine(opt: torch.optim.Optimizer, *, warmup: int, total: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over `warmup` steps, then cosine decay to 0 at `total` (per optimiser step)."""
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)
