"""Fine-tune an image classifier from a model card on an ImageFolder (the classify Task's trainer).

Speed choices (measured, see benchmarks/RESULTS.md): images are decoded once into a uint8 array
and augmented per batch as tensors; channels_last memory format (1.6x faster convolutions on
this CPU); the new head starts from a cached-feature linear probe (LP-FT), so few epochs suffice.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import time
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torchvision.transforms import v2

from edgetune.assets import resolve_weights
from edgetune.contract import DataRef, Manifest
from edgetune.data import decoded
from edgetune.data.check.leak import warn_if_leaked
from edgetune.data.imagefolder import ImageFolderData, decode_split, scan_imagefolder
from edgetune.errors import RunDirError, UsageError
from edgetune.preprocess import ImagePreprocess
from edgetune.progress import log, track
from edgetune.run import RunDir, versions
from edgetune.tasks.names import METRIC_NAMES
from edgetune.train import models as M
from edgetune.train.config import TrainConfig, start_manifest
from edgetune.train.distributed import Dist, start
from edgetune.train.img_size import choose_img_size, resolve_input_size, size_note
from edgetune.train.loop import (
    FitState,
    fit,
    load_trained_weights,
    optimizer_step,
    resolve_device,
    save_state_dict,
    warmup_cosine,
)
from edgetune.train.probe import chance_warning, extract_features, fit_linear, val_uninformative
from edgetune.zoo import ModelCard, get_card

METRIC = METRIC_NAMES["classify"]
DEFAULT_LR = 5e-4  # AdamW peak, with warm-up and cosine decay


def preprocess_for(card: ModelCard, img_size: int | None) -> ImagePreprocess:
    i = card.input
    return ImagePreprocess.for_size(img_size or i.size, i.crop_pct, i.interpolation, i.mean, i.std)


def build_model(card: ModelCard, num_classes: int, weights: Any) -> M.Normalized:
    """Pretrained architecture → new head for `num_classes` → BN momentum fixed → normalised input."""
    model = M.create_pretrained(card, weights)
    M.replace_head(model, card, num_classes)
    M.set_bn_momentum(model, 0.1)
    return M.Normalized(model, card.input.mean, card.input.std)


def load_trained(manifest: Manifest, checkpoint) -> M.Normalized:
    """The fine-tuned model of a run (architecture from the card snapshot, weights from checkpoint)."""
    card = get_card(manifest.model)
    model = M.Normalized(M.build_architecture(card, len(manifest.labels)), card.input.mean, card.input.std)
    return load_trained_weights(model, checkpoint, card.name, len(manifest.labels))


class _Augment:
    """Per-sample augmentation of stored squares (RandomResizedCrop, flip, mild colour jitter)."""

    def __init__(self, size: int) -> None:
        self.t = v2.Compose([
            v2.RandomResizedCrop(size, scale=(0.35, 1.0), antialias=True),
            v2.RandomHorizontalFlip(),
            v2.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2),
        ])

    def __call__(self, squares: np.ndarray) -> torch.Tensor:
        batch = torch.from_numpy(squares).permute(0, 3, 1, 2)
        out = torch.stack([self.t(img) for img in batch])
        return out.float().div_(255).contiguous(memory_format=torch.channels_last)


def _center_batches(squares: np.ndarray, pre: ImagePreprocess, batch: int, device: torch.device):
    off = (pre.resize - pre.size) // 2
    for i in range(0, len(squares), batch):
        crop = squares[i: i + batch, off: off + pre.size, off: off + pre.size]
        yield torch.from_numpy(pre.to_input(crop)).to(device).contiguous(memory_format=torch.channels_last)


@torch.no_grad()
def evaluate_top1(model: nn.Module, squares: np.ndarray, labels: np.ndarray, pre: ImagePreprocess,
                  batch: int = 64) -> float:
    model.eval()
    device = next(model.parameters()).device
    preds = torch.cat([model(x).argmax(1).cpu() for x in _center_batches(squares, pre, batch, device)])
    return float((preds.numpy() == labels).mean())


def finetune_classifier(cfg: TrainConfig, *, quiet: bool = False) -> dict[str, Any]:
    """One process, or one rank of a data-parallel job (edgetune.train.distributed)."""
    with contextlib.ExitStack() as stack:  # holds the decoded images' storage until training ends
        return _finetune(cfg, quiet, stack)


def _finetune(cfg: TrainConfig, quiet: bool, stack: contextlib.ExitStack) -> dict[str, Any]:
    t_start = time.perf_counter()
    dist, quiet = start(cfg.device, cfg.threads, quiet)
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    with dist.together():  # every input check, on every rank alike: one job, one message
        card = get_card(cfg.model)
        if card.task != "classify":
            raise UsageError(f"model {card.name} is a {card.task} model, not classify",
                             hint="`edgetune models --task classify` lists the classifiers")
        run = RunDir(cfg.out)
        if run.manifest_path.exists() and not cfg.resume:
            raise RunDirError(f"{run.path} already holds a run", hint="pass --resume to continue it, or a new --out")
        data = scan_imagefolder(cfg.data, val_split=cfg.val_split, seed=cfg.seed)
        size = resolve_input_size(cfg.img_size, run if cfg.resume else None, lambda: choose_img_size(
            card.input.size, [s.path for s in data.train.samples]))
        pre = preprocess_for(card, size["chosen"])
        weights = (resolve_weights(card, cfg.weights)
                   if cfg.pretrained and (card.weights.pretrained or cfg.weights) else None)
        digest = hashlib.sha256()
        n_total = len(data.train.samples) + len(data.val.samples)
        log(f"{card.name}: {len(data.classes)} classes, {len(data.train.samples)} train / "
            f"{len(data.val.samples)} val images, {pre.size} px{size_note(size)}; weights: "
            f"{weights.source + ' ' + weights.path.name if weights else 'none (random init)'}"
            f"{f'; {dist.world} processes' if dist.active else ''}", quiet=quiet)
        cache = decoded.choose(cfg.cache, n_total, pre.resize * pre.resize * 3)
        log(f"decoded images: {cache.mode} ({cache.note})", quiet=quiet)
        allocate = stack.enter_context(decoded.storage(cache))
        bar = iter(track(range(n_total), total=n_total, desc="decode", quiet=quiet))
        tick = lambda _n: next(bar, None)  # noqa: E731
        train_sq = decode_split(data.train, pre, data.root, digest, tick, allocate, "train")
        val_sq = decode_split(data.val, pre, data.root, digest, tick, allocate, "val")
        if dist.is_main:  # after decoding: a corrupt file is one error line, not a warning first
            warn_if_leaked({"train": [s.path for s in data.train.samples],
                            "val": [s.path for s in data.val.samples]}, data.root)
        device = dist.device(resolve_device(cfg.device))
        model = build_model(card, len(data.classes), weights).to(device, memory_format=torch.channels_last)
    dist.check_same_data(digest.hexdigest(), cfg.data)
    train_y, val_y = data.train.labels, data.val.labels
    net = model.model
    frozen_modules: list[nn.Module] = []
    probe_info: dict[str, Any] = {}
    manifest = _manifest(cfg, card, data, pre, digest.hexdigest(), weights, size, cache)

    # LP-FT only helps when the backbone already has useful features (pretrained weights).
    if (cfg.freeze == "backbone" or (cfg.head_init == "probe" and weights is not None)) and not cfg.resume:
        def probe() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
            feats = lambda sq: extract_features(model, "model." + card.classifier,  # noqa: E731
                                                lambda: list(_center_batches(sq, pre, 64, device)))
            t0 = time.perf_counter()
            f_train, f_val = feats(train_sq).cpu(), feats(val_sq).cpu()
            head_sd, acc, l2 = fit_linear(f_train, torch.from_numpy(train_y), f_val, torch.from_numpy(val_y),
                                          len(data.classes), label_smoothing=cfg.label_smoothing)
            return head_sd, {"val_" + METRIC: round(acc, 5), "l2": l2, "seconds": round(time.perf_counter() - t0, 2),
                             "elapsed": round(time.perf_counter() - t_start, 2)}

        head_sd, probe_info = dist.on_main(probe)  # once, on rank 0: every rank gets the same head
        M.head_of(net, card).load_state_dict(head_sd)
        log(f"linear probe on cached features: val {METRIC} {probe_info['val_' + METRIC]:.4f} "
            f"(L2 {probe_info['l2']}, {probe_info['seconds']}s)", quiet=quiet)
        warning = chance_warning(probe_info["val_" + METRIC], len(data.classes))
        if warning and dist.is_main:  # whatever --quiet says, like the leak warning
            log(warning)
        # then the fit keeps its last epoch (the predicate the warning is built on)
        probe_info["val_uninformative"] = val_uninformative(probe_info["val_" + METRIC], len(data.classes))

    if cfg.freeze == "backbone":
        state = _probe_state(run, model, probe_info, epoch=1, mode="linear probe on cached features", dist=dist)
        state.seconds = time.perf_counter() - t_start
    else:
        if cfg.freeze_stages:
            frozen_modules = M.apply_freeze(net, M.frozen_prefixes(card, cfg.freeze_stages))
        lr = cfg.lr or DEFAULT_LR
        head_ids = {id(p) for p in M.head_of(net, card).parameters()}
        params = [p for p in model.parameters() if p.requires_grad]
        groups = [{"params": [p for p in params if id(p) in head_ids], "lr": lr},
                  {"params": [p for p in params if id(p) not in head_ids], "lr": lr * cfg.backbone_lr_factor}]
        opt = torch.optim.AdamW(groups, lr=lr, weight_decay=cfg.weight_decay)
        steps_per_epoch = math.ceil(len(train_y) / cfg.batch)
        sched = warmup_cosine(opt, warmup=int(cfg.warmup_epochs * steps_per_epoch), total=cfg.epochs * steps_per_epoch)
        augment = _Augment(pre.size)

        # Pretrained BN statistics stay fixed (BN layers in eval mode; their affine weights still
        # train). With small data the running statistics, updated from a few augmented batches
        # of 32, lag the weights and eval accuracy collapsed (digits K=20: 0.84 -> 0.12 at epoch 3);
        # fixed statistics also keep the forward pass identical to the one the probe head was fit on.
        bn_fixed = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)] \
            if weights is not None and cfg.bn == "frozen" else []
        ddp = dist.wrap(model)

        def train_epoch(epoch: int) -> float:
            model.train()
            for m in [*frozen_modules, *bn_fixed]:
                m.eval()
            g = torch.Generator().manual_seed(cfg.seed * 1000 + epoch)
            torch.manual_seed(cfg.seed * 1000 + epoch)
            order = torch.randperm(len(train_y), generator=g).numpy()
            total, seen = 0.0, 0
            for i in track(range(0, len(order), cfg.batch), total=steps_per_epoch, desc=f"epoch {epoch}", quiet=quiet):
                idx = np.sort(order[i: i + cfg.batch])
                if len(idx) < 2 * dist.world:  # BatchNorm cannot train on a batch of one (per process)
                    continue
                # the whole global batch is augmented on every rank (one random stream, as in one
                # process); each rank then trains on its slice
                x, y = dist.shard(augment(train_sq[idx])).to(device), torch.from_numpy(dist.shard(train_y[idx])).to(device)
                loss = dist.global_mean(F.cross_entropy(ddp(x), y, label_smoothing=cfg.label_smoothing), len(y), len(idx))
                total += optimizer_step(opt, sched, loss) * len(idx) / dist.world
                seen += len(idx)
            return dist.sum(total)[0] / max(seen, 1)

        def on_epoch(st: FitState) -> None:
            run.write_manifest(manifest.updated(**_results(st, probe_info, "running")))

        # The probe-initialised model is epoch 0: fine-tuning must beat it to replace the checkpoint.
        initial = _probe_state(run, model, probe_info, epoch=0, mode="head fitted on cached features", dist=dist,
                               keep_last=probe_info["val_uninformative"]) \
            if probe_info else None
        log(f"training on {device}{f' × {dist.world} processes' if dist.active else ''}", quiet=quiet)
        state = fit(run=run, model=model, optimizer=opt, scheduler=sched, train_epoch=train_epoch,
                    evaluate=lambda: evaluate_top1(model, val_sq, val_y, pre), epochs=cfg.epochs,
                    patience=cfg.patience, on_epoch=on_epoch, resume=cfg.resume, metric_name=METRIC,
                    initial=initial, started_at=t_start, dist=dist, average_last=cfg.checkpoint == "average")
    if dist.is_main:
        run.write_manifest(manifest.updated(**_results(state, probe_info, "done")))
    return {"run": str(run.path), "task": "classify", "model": card.name, "metric_name": METRIC,
            "metric": (record := state.checkpoint_record(METRIC))[METRIC], "best": record,
            "epochs": state.epoch, "seconds": round(state.seconds, 2), "stopped_early": state.stopped_early,
            "probe": probe_info or None, **dist.record()}


def _probe_state(run: RunDir, model: nn.Module, probe: dict[str, Any], *, epoch: int, mode: str,
                 dist: Dist, keep_last: bool = False) -> FitState:
    """Checkpoint the probe-headed model (rank 0) and describe it as a finished epoch of the fit."""
    if dist.is_main:
        save_state_dict(run.checkpoint, model.state_dict())
    acc = probe["val_" + METRIC]
    return FitState(epoch=epoch, best_metric=acc, best_epoch=epoch, keep_last=keep_last,
                    history=[{"epoch": epoch, METRIC: acc, "mode": mode, "elapsed": probe["elapsed"]}])


def _manifest(cfg: TrainConfig, card: ModelCard, data: ImageFolderData, pre: ImagePreprocess, data_hash: str,
              weights: Any, size: dict[str, Any], cache: decoded.CacheChoice) -> Manifest:
    counts = lambda split: np.bincount(split.labels, minlength=len(data.classes)).tolist()  # noqa: E731
    ref = DataRef(root=str(data.root.resolve()), layout=data.layout, hash=data_hash, seed=cfg.seed,
                  details={"train_per_class": counts(data.train), "val_per_class": counts(data.val)})
    return start_manifest(cfg, card, labels=data.classes, preprocessing=pre.to_dict(), data=ref, weights=weights,
                          versions=versions(), img_size=size, cache=cache.to_dict())


def _results(state: FitState, probe: dict[str, Any], status: str) -> dict[str, Any]:
    return {"status": status, "history": state.history, "probe": probe or None,
            "best": state.checkpoint_record(METRIC), "epochs_done": state.epoch, "stopped_early": state.stopped_early,
            "seconds": round(state.seconds, 2)}
