"""TrainConfig: every fine-tune knob in one frozen dataclass (rare knobs live here, not in
positional arguments), recorded verbatim in the manifest."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from edgetune.contract import DataRef, Manifest, ModelSpec, WeightsRef
from edgetune.errors import UsageError


def is_freeze(value: object) -> bool:
    """Whether `value` is a --freeze value: none, backbone, or a number of stages (the one place
    that says so: the CLI option, a card's default_freeze and a resumed run's record)."""
    return isinstance(value, str) and (value in ("none", "backbone") or value.isdigit())


@dataclass(frozen=True)
class TrainConfig:
    task: str
    model: str
    data: Path
    out: Path
    epochs: int = 10
    lr: float | None = None  # None: the task's default (classify AdamW 5e-4; detect ultralytics' 'auto')
    batch: int = 32
    img_size: int | None = None  # None: chosen from the images (train.img_size), at most the card's
    seed: int = 0
    freeze: str = "none"  # "none" | "backbone" (cached-feature linear probe) | "<N>" first N stages
    patience: int | None = None  # epochs without a val gain before stopping; None: the task's default_patience
    val_split: float | None = None
    weights: Path | None = None
    resume: bool = False
    warmup_epochs: float = 1.0
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    backbone_lr_factor: float = 1.0  # classify: the pretrained layers' lr relative to the new head's (suite: 0.1 and 0.3 lost on the tuning half)
    head_init: str = "probe"  # "probe": fit the new head on cached features first (LP-FT); "random"
    threads: int | None = None
    pretrained: bool = True  # False: random init (the baseline that shows what pretraining buys)
    bn: str = "frozen"  # "frozen": keep pretrained BN statistics (eval mode) | "train": update them
    # classify: checkpoint.pt is the "average" of the val-best and last epochs' weights, or the "best" on val
    checkpoint: str = "average"
    device: str = "auto"  # "auto" (CUDA when present, else CPU) | "cpu" | "cuda" | "cuda:N"
    keywords: tuple[str, ...] | None = None  # kws: word folders that are keywords (others → _unknown_)
    cache: str = "auto"  # decoded training samples: auto | ram | disk | none (edgetune.data.decoded)
    verbose: bool = False  # detect: show ultralytics' own log (arguments, model table) on the terminal too

    def __post_init__(self) -> None:
        if self.patience is None:
            from edgetune.tasks import get_task

            object.__setattr__(self, "patience", get_task(self.task).default_patience)
        checks = [
            (self.epochs >= 1, f"--epochs must be ≥ 1, got {self.epochs}"),
            (self.lr is None or self.lr > 0, f"--lr must be > 0, got {self.lr}"),
            (self.batch >= 1, f"--batch must be ≥ 1, got {self.batch}"),
            (self.img_size is None or 16 <= self.img_size <= 1024, f"--img-size must be in [16, 1024], got {self.img_size}"),
            (self.patience >= 1, f"--patience must be ≥ 1, got {self.patience}"),
            (0 < self.backbone_lr_factor <= 1, f"backbone_lr_factor must be in (0, 1], got {self.backbone_lr_factor}"),
            (self.head_init in ("probe", "random"), f"--head-init must be probe or random, got {self.head_init}"),
        ]
        for ok, msg in checks:
            if not ok:
                raise UsageError(msg)
        if self.cache not in ("auto", "ram", "disk", "none"):
            raise UsageError(f"--cache must be auto, ram, disk or none, got {self.cache!r}")
        if self.bn not in ("frozen", "train"):
            raise UsageError(f"--bn must be frozen or train, got {self.bn!r}")
        if self.checkpoint not in ("average", "best"):
            raise UsageError(f"--checkpoint must be average or best, got {self.checkpoint!r}")
        if self.device not in ("auto", "cpu") and not self.device.startswith("cuda"):
            raise UsageError(f"--device must be auto, cpu or cuda[:N], got {self.device!r}")
        if self.freeze == "backbone" and not self.pretrained:
            raise UsageError("--freeze backbone needs pretrained weights (a random backbone has no features)",
                             hint="drop --no-pretrained or --freeze backbone")
        if not is_freeze(self.freeze):
            raise UsageError(f"--freeze must be none, backbone or a number of stages, got {self.freeze!r}")

    @property
    def freeze_stages(self) -> int | None:
        """Number of frozen stages, or None for `backbone`/`none`."""
        return int(self.freeze) if self.freeze.isdigit() else None

    def to_dict(self) -> dict:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}


def start_manifest(cfg: TrainConfig, card: Any, *, labels: list[str], preprocessing: dict[str, Any], data: DataRef,
                   weights: Any, versions: dict[str, str], postprocess: dict[str, Any] | None = None,
                   **extra: Any) -> Manifest:
    """The manifest a fine-tune writes as it starts (status "running"); each epoch and the end
    update it with `Manifest.updated`. `extra`: the trainer's own records (augmentation, transfer…)."""
    from edgetune.tasks.names import METRIC_NAMES
    from edgetune.zoo import card_to_dict

    spec = ModelSpec(task=cfg.task, model=card.name, labels=tuple(labels), preprocessing=preprocessing,
                     metric_name=METRIC_NAMES[cfg.task], postprocess=postprocess)
    return Manifest(spec=spec, data=data, seed=cfg.seed, status="running", card=card_to_dict(card),
                    weights=WeightsRef(weights.source, str(weights.path), weights.sha256) if weights else None,
                    config=cfg.to_dict(), versions=versions, extra=extra)
