"""Fine-tune a keyword spotter (the kws Task's trainer): raw 1 s clips in, class logits out.

Clips are decoded once into a float32 array; every batch is augmented as a tensor, in the order
a microphone would corrupt it: speed perturbation (another speaker), time shift, gain, the room
(reverberation with a synthetic room impulse response; measured, off by default: RIR_PROB),
background noise at a random SNR, then SpecAugment time/frequency masks on the front end's output. `_unknown_` and `_silence_` are
balanced per epoch (each class draws the median keyword count; silence is cut fresh from the
training part of the background noise), so a large pool of other words cannot swamp the keywords.

Modes (`--freeze`): `backbone` trains only the head on cached embeddings (front end frozen,
embeddings computed once per augmented copy; the card's default, measured to generalise best to
unseen voices); `N` freezes the first N embedding stages and fine-tunes the rest end to end with
augmentation.
"""

from __future__ import annotations

import hashlib
import math
import time
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from edgetune.assets import resolve_weights
from edgetune.contract import DataRef, Manifest
from edgetune.data import speech_commands as sc
from edgetune.data.check.leak import warn_if_leaked
from edgetune.errors import RunDirError, UsageError
from edgetune.progress import log, track
from edgetune.run import RunDir, versions
from edgetune.tasks.kws_stream import StreamConfig
from edgetune.tasks.names import METRIC_NAMES
from edgetune.train import models as M
from edgetune.train.config import TrainConfig, start_manifest
from edgetune.train.distributed import Dist, start
from edgetune.train.loop import (
    FitState,
    fit,
    load_trained_weights,
    optimizer_step,
    resolve_device,
    warmup_cosine,
)
from edgetune.train.speech_models import CLIP_SAMPLES, DSCNN, SAMPLE_RATE, EmbeddingKws
from edgetune.zoo import ModelCard, get_card

METRIC = METRIC_NAMES["kws"]
# mobilenetv2_kws: 3e-3 of 1e-3 / 3e-3 / 1e-2, which were tried on one seed of the demo's data, looking at
# real voices as well (benchmarks/kws_mobilenet.py says so); it wants ~30 epochs (RESULTS.md "kws-mobilenet")
DEFAULT_LR = {"speech_embedding": 1e-3, "dscnn": 3e-3, "mobilenetv2_kws": 3e-3}
BACKBONE_LR_FACTOR = 0.1  # pretrained embedding stages move 10x slower than the new head
CACHED_COPIES = 4  # augmented copies per clip for the cached-embedding mode
SNR_DB = (5.0, 25.0)
NOISE_PROB = 0.5
SHIFT_S = 0.1
# Reverberation: generated voices are dry, real ones are recorded in rooms. A synthetic room
# impulse response (direct path + exponentially decaying noise tail, the statistical model) with
# RT60 drawn in RT60_S, convolved with the clip at RIR_PROB. Off by default: at 0.5 it found no
# more real utterances (4 of 7 either way) and added real false accepts (5.3 → 6.3 in 89 s); val
# top-1 0.950 → 0.944; synthetic recall 0.667 → 0.704 at 260 → 220 FA/h; mean of 3 seeds on the
# seeded demo data with speed perturbation (benchmarks/kws_rir.py, RESULTS.md "kws-rir").
RIR_PROB = 0.0
RT60_S = (0.15, 0.7)
# Speed perturbation (Ko et al. 2015, Kaldi's 0.9/1.0/1.1): the clip resampled by a factor in
# SPEED_RANGE, which moves tempo, pitch and formants together, as a shorter or longer vocal tract
# would: one TTS voice becomes a family of speakers. At SPEED_PROB per clip. On since 2026-12-03 by
# the rule written before its A/B (val top-1 on held-out voices up, synthetic-stream recall not
# down): val 0.942 → 0.950 (per seed +1.5, +1.0, 0.0 pt), recall 0.630 either way; on the 7 real
# utterances, reported only, 3.0 → 3.3 found and 1.3 → 2.3 false accepts, mean of 3 seeds
# (benchmarks/kws_speed.py, RESULTS.md "kws-speed").
SPEED_PROB = 0.5
SPEED_RANGE = (0.9, 1.1)
# Fine-tunes from a shipped pretrained KWS model (mobilenetv2_kws) can distil from it on its own
# classes while they learn the user's (edgetune.train.speech_mobilenet.ShippedHeadDistiller), with
# this weight on the distillation term; 0 is off.
DISTILL_WEIGHT = 0.0


def distill_weight(card: ModelCard, weights: Any) -> float:
    """The distillation weight a fine-tune of `card` trains with: DISTILL_WEIGHT where there is a
    shipped head to distil from (mobilenetv2_kws with its weights), else 0."""
    return DISTILL_WEIGHT if weights is not None and card.arch_name == "mobilenetv2_kws" else 0.0
PREPROCESSING = {"kind": "audio", "sample_rate": SAMPLE_RATE, "samples": CLIP_SAMPLES, "range": "[-1, 1] float"}


def build_model(card: ModelCard, num_classes: int, weights: Any, labels: list[str] | None = None) -> nn.Module:
    """The card's network; with `weights`, pretrained (a pretrained head keeps the rows of the
    `labels` it knows)."""
    if card.arch_name == "speech_embedding":
        model = EmbeddingKws(num_classes)
        if weights is not None:
            model.embedding.load_onnx(weights.path)
        return model
    if card.arch_name == "dscnn":
        return DSCNN(num_classes)
    if card.arch_name == "mobilenetv2_kws":
        from edgetune.train.speech_mobilenet import MobileNetKws

        net = MobileNetKws(num_classes)
        if weights is not None:
            net.load_pretrained(weights.path, labels or [])
        return net
    raise UsageError(f"model card {card.name}: unknown kws architecture {card.arch_name!r}")


def load_trained(manifest: Manifest, checkpoint) -> nn.Module:
    card = get_card(manifest.model)
    return load_trained_weights(build_model(card, len(manifest.labels), None), checkpoint, card.name,
                                len(manifest.labels))


class Augment:
    """Batch augmentation of raw clips (N, samples) and of front-end features."""

    def __init__(self, noises: list[np.ndarray], generator: torch.Generator) -> None:
        self.noises = [torch.from_numpy(sc.noise_part(n, "train")) for n in noises]
        self.g = generator

    def _u(self, n: int, lo: float, hi: float) -> torch.Tensor:
        return torch.rand(n, generator=self.g) * (hi - lo) + lo

    def audio(self, x: torch.Tensor, silence: torch.Tensor) -> torch.Tensor:
        n, length = x.shape
        if SPEED_PROB > 0:  # off: no draw either, so the rest of the augmentation stream is unchanged
            x = self.perturb_speed(x, (torch.rand(n, generator=self.g) < SPEED_PROB) & ~silence)
        shift = (self._u(n, -SHIFT_S, SHIFT_S) * SAMPLE_RATE).long()
        idx = torch.arange(length).unsqueeze(0) - shift.unsqueeze(1)
        valid = (idx >= 0) & (idx < length)
        x = torch.where(valid, torch.gather(x, 1, idx.clamp(0, length - 1)), torch.zeros(()))
        x = x * (10 ** (self._u(n, -6, 6) / 20)).unsqueeze(1)
        if RIR_PROB > 0:  # off: no draw either, so the rest of the augmentation stream is unchanged
            x = self.reverberate(x, (torch.rand(n, generator=self.g) < RIR_PROB) & ~silence)
        noise = torch.stack([self._crop(length) for _ in range(n)])
        p_sig = x.pow(2).mean(1).clamp_min(1e-8)
        p_noise = noise.pow(2).mean(1).clamp_min(1e-10)
        snr = self._u(n, *SNR_DB)
        scale = torch.sqrt(p_sig / (p_noise * 10 ** (snr / 10)))
        use = (torch.rand(n, generator=self.g) < NOISE_PROB) & ~silence
        x = x + noise * (scale * use).unsqueeze(1)
        return x.clamp(-1, 1)

    def perturb_speed(self, x: torch.Tensor, use: torch.Tensor) -> torch.Tensor:
        """Clips `use` played faster or slower by a factor drawn in SPEED_RANGE (linear
        interpolation), then cut or zero-padded about their centre back to the clip's length."""
        length = x.shape[1]
        out = x.clone()
        rows = torch.nonzero(use).squeeze(1)
        for row, factor in zip(rows.tolist(), self._u(len(rows), *SPEED_RANGE).tolist(), strict=True):
            played = F.interpolate(x[row].view(1, 1, -1), size=max(1, round(length / factor)), mode="linear",
                                   align_corners=False).view(-1)
            lead = (len(played) - length) // 2
            out[row] = played[lead: lead + length] if lead >= 0 else F.pad(played, (-lead, length - len(played) + lead))
        return out

    def reverberate(self, x: torch.Tensor, use: torch.Tensor) -> torch.Tensor:
        """Clips `use` convolved with a synthetic room impulse response of random RT60 (energy
        kept: a room changes the timbre and smears the word, not its loudness)."""
        if not bool(use.any()):
            return x
        rows = torch.nonzero(use).squeeze(1)
        rirs = room_impulse_responses(self._u(len(rows), *RT60_S), self.g)
        from torchaudio.functional import fftconvolve

        wet = fftconvolve(x[rows], rirs)[:, : x.shape[1]]
        gain = torch.sqrt(x[rows].pow(2).mean(1).clamp_min(1e-10) / wet.pow(2).mean(1).clamp_min(1e-10))
        out = x.clone()
        out[rows] = wet * gain.unsqueeze(1)
        return out

    def _crop(self, length: int) -> torch.Tensor:
        src = self.noises[int(torch.randint(len(self.noises), (1,), generator=self.g))]
        start = int(torch.randint(max(1, len(src) - length), (1,), generator=self.g))
        crop = src[start: start + length]
        return F.pad(crop, (0, length - len(crop)))

    def spec(self, feats: torch.Tensor) -> torch.Tensor:
        """SpecAugment (Park et al. 2019): one time mask ≤ 10 frames and one mel mask ≤ 4 bins per
        clip, filled with the clip's mean. `feats` is (N, [1,] frames, bins)."""
        from torchaudio.functional import mask_along_axis_iid

        shaped = feats if feats.dim() == 4 else feats.unsqueeze(1)
        mean = shaped.mean(dim=(2, 3), keepdim=True)
        out = shaped - mean
        out = mask_along_axis_iid(out, mask_param=10, mask_value=0.0, axis=2, p=0.2)
        out = mask_along_axis_iid(out, mask_param=min(4, shaped.shape[3] // 4), mask_value=0.0, axis=3)
        out = out + mean
        return out if feats.dim() == 4 else out.squeeze(1)


def room_impulse_responses(rt60_s: torch.Tensor, generator: torch.Generator,
                           sr: int = SAMPLE_RATE) -> torch.Tensor:
    """(N, samples) impulse responses: a unit direct path, then Gaussian noise whose energy
    decays by 60 dB over each row's RT60 (the statistical reverberation model), starting 1-5 ms
    later as early reflections do; the tail's energy relative to the direct path is drawn too."""
    n = len(rt60_s)
    length = int(float(rt60_s.max()) * sr) + 1
    t = torch.arange(length) / sr
    tail = torch.randn(n, length, generator=generator) * torch.exp(-6.9078 * t / rt60_s.unsqueeze(1))
    gap = (torch.rand(n, generator=generator) * 0.004 + 0.001) * sr
    tail = tail * (torch.arange(length).unsqueeze(0) >= gap.unsqueeze(1))
    drr_db = torch.rand(n, generator=generator) * 12 - 3  # direct-to-reverberant ratio in [-3, 9] dB
    tail = tail / tail.pow(2).sum(1, keepdim=True).sqrt().clamp_min(1e-8) * (10 ** (-drr_db / 20)).unsqueeze(1)
    tail[:, 0] = 1.0
    return tail


def _split_model(model: nn.Module) -> tuple[nn.Module, nn.Module]:
    """(front end, rest): augmentation goes between them."""
    if isinstance(model, EmbeddingKws):
        return model.frontend, nn.Sequential(model.embedding, model.head)
    return model.features, nn.Sequential(model.body, model.classifier)


def _class_target(labels: np.ndarray, classes: list[str]) -> int:
    """Clips per class per epoch: the median keyword count."""
    counts = np.bincount(labels, minlength=len(classes))
    return int(np.median([counts[c] for c, name in enumerate(classes) if name not in (sc.UNKNOWN, sc.SILENCE)]))


def _balanced_epoch(labels: np.ndarray, classes: list[str], silence: int, rng: np.random.Generator) -> np.ndarray:
    """Indices for one epoch: every non-silence class contributes the median keyword count
    (without replacement where it has that many); -1 entries are silence clips to generate."""
    per_class = [np.flatnonzero(labels == c) for c in range(len(classes))]
    target = _class_target(labels, classes)
    picks = []
    for c, idx in enumerate(per_class):
        if c == silence:
            picks.append(np.full(target, -1))
        elif len(idx):
            picks.append(rng.choice(idx, size=target, replace=len(idx) < target) if classes[c] == sc.UNKNOWN else idx)
    order = np.concatenate(picks)
    return order[rng.permutation(len(order))]


@torch.no_grad()
def _batched(fn: Any, xs: np.ndarray | torch.Tensor, device: torch.device, batch: int = 128) -> torch.Tensor:
    """`fn` over `xs` in batches (eval mode is the caller's), concatenated on the CPU."""
    xs = torch.from_numpy(xs) if isinstance(xs, np.ndarray) else xs
    return torch.cat([fn(xs[i: i + batch].to(device)).cpu() for i in range(0, len(xs), batch)])


def evaluate_top1(model: nn.Module, clips: np.ndarray | torch.Tensor, labels: np.ndarray, *,
                  head_only: bool = False) -> float:
    """Val top-1; `head_only`: `clips` are the frozen backbone's cached embeddings of the val clips."""
    model.eval()
    device = next(model.parameters()).device
    preds = _batched(model.head if head_only else model, clips, device).argmax(1)
    return float((preds.numpy() == labels).mean())


def open_data(cfg: TrainConfig, quiet: bool, *,
              warn: bool = True) -> tuple[sc.KwsData, np.ndarray, np.ndarray, list[np.ndarray], str, int]:
    data = sc.scan_kws(cfg.data, keywords=list(cfg.keywords) if cfg.keywords else None,
                       val_split=cfg.val_split, seed=cfg.seed)
    digest = hashlib.sha256()
    n = len(data.train.files) + len(data.val.files)
    bar = iter(track(range(n), total=n, desc="read clips", quiet=quiet))
    tick = lambda _n: next(bar, None)  # noqa: E731
    train, r1 = sc.load_clips(data.train.files, data.root, digest=digest, progress=tick)
    val, r2 = sc.load_clips(data.val.files, data.root, digest=digest, progress=tick)
    if warn:  # whatever --quiet says (one rank of a distributed job says it for all)
        warn_if_leaked({"train": data.train.files, "val": data.val.files}, data.root, audio=True)
    noises = sc.load_noise(data.noise_files, data.root) if data.noise_files else sc.generated_noise(cfg.seed)
    for note in data.notes:
        log(f"note: {note}", quiet=quiet)
    if r1 + r2:
        log(f"resampled {r1 + r2} clip(s) to {SAMPLE_RATE} Hz with torchaudio", quiet=quiet)
    return data, train, val, noises, digest.hexdigest(), r1 + r2


def finetune_kws(cfg: TrainConfig, *, quiet: bool = False) -> dict[str, Any]:
    """One process, or one rank of a data-parallel job (edgetune.train.distributed)."""
    t_start = time.perf_counter()
    dist, quiet = start(cfg.device, cfg.threads, quiet)
    torch.manual_seed(cfg.seed)
    with dist.together():  # every input check, on every rank alike: one job, one message
        card = get_card(cfg.model)
        run = RunDir(cfg.out)
        if run.manifest_path.exists() and not cfg.resume:
            raise RunDirError(f"{run.path} already holds a run", hint="pass --resume to continue it, or a new --out")
        freeze = cfg.freeze
        if freeze == "backbone" and card.arch_name != "speech_embedding":
            raise UsageError(f"--freeze backbone (a head on cached embeddings) is speech_embedding_kws's mode; "
                             f"{card.name} has none",
                             hint="drop --freeze, pass --freeze N to keep the first N stages, or use --model "
                                  "speech_embedding_kws")
        data, train_x, val_x, noises, data_hash, resampled = open_data(cfg, quiet, warn=dist.is_main)
        weights = resolve_weights(card, cfg.weights) if cfg.pretrained and card.weights.pretrained else None
        log(f"{card.name}: {len(data.classes)} classes ({', '.join(data.classes)}), {len(train_x)} train / "
            f"{len(val_x)} val clips; weights: {weights.source + ' ' + weights.path.name if weights else 'none (random init)'}"
            f"; freeze: {freeze}{f'; {dist.world} processes' if dist.active else ''}", quiet=quiet)
        device = dist.device(resolve_device(cfg.device))
        model = build_model(card, len(data.classes), weights, data.classes).to(device)
        val_clips, val_labels = sc.validation_set(data, noises, val_x, cfg.seed)
    dist.check_same_data(data_hash, cfg.data)
    manifest = _manifest(cfg, card, data, data_hash, weights, freeze, resampled, len(val_labels))
    frontend, rest = _split_model(model)
    train_y = data.train.labels
    g = torch.Generator().manual_seed(cfg.seed)
    augment = Augment(noises, g)
    rng = np.random.default_rng(cfg.seed)

    def batch_audio(order: np.ndarray, gen_seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        sil = order < 0
        x = np.empty((len(order), CLIP_SAMPLES), dtype=np.float32)
        x[~sil] = train_x[order[~sil]]
        if sil.any():
            x[sil] = sc.silence_clips(noises, int(sil.sum()), gen_seed, "train")
        y = np.where(sil, data.silence, train_y[np.maximum(order, 0)])
        return torch.from_numpy(x), torch.from_numpy(y)

    frozen: list[nn.Module] = []
    if freeze == "backbone":
        frozen = [model.frontend, model.embedding]
        head_params = list(model.head.parameters())
        groups = [{"params": head_params}]
    else:
        n_frozen = int(freeze) if freeze.isdigit() else 0
        if n_frozen:
            frozen = M.apply_freeze(model, M.frozen_prefixes(card, n_frozen))
        head = model.head if isinstance(model, EmbeddingKws) else model.classifier
        head_ids = {id(p) for p in head.parameters()}
        backbone = [p for p in model.parameters() if p.requires_grad and id(p) not in head_ids]
        factor = BACKBONE_LR_FACTOR if weights is not None else 1.0
        groups = [{"params": list(head.parameters())}, {"params": backbone, "lr_factor": factor}]
    for m in frozen:
        for p in m.parameters():
            p.requires_grad_(False)
    distill, lwf = None, distill_weight(card, weights)
    if lwf > 0:
        from edgetune.train.speech_mobilenet import ShippedHeadDistiller

        distill = ShippedHeadDistiller(weights.path, model.body, lwf).to(device)
        groups.append({"params": distill.parameters()})  # at the head's rate
    lr = cfg.lr or DEFAULT_LR[card.arch_name]
    for grp in groups:
        grp["lr"] = lr * grp.get("lr_factor", 1.0)
    opt = torch.optim.AdamW(groups, lr=lr, weight_decay=cfg.weight_decay)
    # keywords keep all their clips; _unknown_ (when present) and _silence_ draw the target each
    epoch_len = int(sum(np.bincount(train_y)[: len(data.keywords)])) + _class_target(train_y, data.classes) * (
        len(data.classes) - len(data.keywords))
    cached = _cache_embeddings(model, frontend, augment, batch_audio, train_y, data, rng, cfg, quiet, dist) \
        if freeze == "backbone" else None
    n_items = len(cached[1]) if cached else epoch_len
    steps = math.ceil(n_items / cfg.batch)
    sched = warmup_cosine(opt, warmup=int(cfg.warmup_epochs * steps), total=cfg.epochs * steps)
    # DDP around what trains (the front end has no parameters); every rank draws and augments the
    # whole global batch from the same stream, then runs its slice through it
    trained = dist.wrap(model.head if cached is not None else rest)

    def train_epoch(epoch: int) -> float:
        model.train()
        for m in frozen:
            m.eval()
        erng = np.random.default_rng(cfg.seed * 1000 + epoch)
        g.manual_seed(cfg.seed * 1000 + epoch)
        if cached is not None:
            feats, labels = cached
            order = erng.permutation(len(labels))
        else:
            order = _balanced_epoch(train_y, data.classes, data.silence, erng)
        total, seen = 0.0, 0
        for b, i in enumerate(track(range(0, len(order), cfg.batch), total=steps, desc=f"epoch {epoch}", quiet=quiet)):
            idx = order[i: i + cfg.batch]
            if len(idx) < 2 * dist.world:
                continue
            if cached is not None:
                x, y = dist.shard(feats[idx]), dist.shard(labels[idx])
            else:
                x, y = batch_audio(idx, cfg.seed * 100000 + epoch * 1000 + b)
                x = dist.shard(augment.spec(frontend(augment.audio(x, y == data.silence).to(device))))
                y = dist.shard(y)
            x, y = x.to(device), y.to(device)
            loss = F.cross_entropy(trained(x), y, label_smoothing=cfg.label_smoothing)
            if distill is not None:
                loss = loss + distill.loss(x)
            loss = dist.global_mean(loss, len(y), len(idx))
            total += optimizer_step(opt, sched, loss) * len(idx) / dist.world
            seen += len(idx)
        return dist.sum(total)[0] / max(seen, 1)

    def on_epoch(st: FitState) -> None:
        run.write_manifest(manifest.updated(**_results(st, "running")))

    # With the backbone frozen (and in eval mode) the val clips' embeddings never change: computed
    # once, the per-epoch validation is the head alone (the same numbers, ~20x faster an epoch).
    if cached is not None:
        model.eval()
        val_in, head_only = _batched(model.features, val_clips, device), True
    else:
        val_in, head_only = val_clips, False
    log(f"training on {device}{f' × {dist.world} processes' if dist.active else ''}: {steps} steps/epoch", quiet=quiet)
    state = fit(run=run, model=model, optimizer=opt, scheduler=sched, train_epoch=train_epoch,
                evaluate=lambda: evaluate_top1(model, val_in, val_labels, head_only=head_only), epochs=cfg.epochs,
                patience=cfg.patience, on_epoch=on_epoch, resume=cfg.resume, metric_name=METRIC,
                started_at=t_start, dist=dist)
    if dist.is_main:
        run.write_manifest(manifest.updated(**_results(state, "done")))
    return {"run": str(run.path), "task": "kws", "model": card.name, "metric_name": METRIC,
            "metric": state.best_metric, "best": {"epoch": state.best_epoch, METRIC: state.best_metric},
            "epochs": state.epoch, "seconds": round(state.seconds, 2), "stopped_early": state.stopped_early,
            "freeze": freeze, **dist.record()}


@torch.no_grad()
def _cache_embeddings(model: EmbeddingKws, frontend: nn.Module, augment: Augment, batch_audio, train_y: np.ndarray,
                      data: sc.KwsData, rng: np.random.Generator, cfg: TrainConfig,
                      quiet: bool, dist: Dist) -> tuple[torch.Tensor, torch.Tensor]:
    """Embeddings of CACHED_COPIES augmented balanced epochs (the first copy clean): the frozen
    front end runs once, then the head trains for many cheap epochs. Under DDP every rank draws
    every batch's audio and augmentation (one random stream, cheap) but embeds only its share of
    the batches (the costly part); the shares are then gathered, in order, on every rank."""
    model.eval()
    feats: dict[int, torch.Tensor] = {}
    labels = []
    t0 = time.perf_counter()
    for copy in range(CACHED_COPIES):
        order = _balanced_epoch(train_y, data.classes, data.silence, rng)
        for i in track(range(0, len(order), 256), desc=f"embed copy {copy + 1}", quiet=quiet):
            x, y = batch_audio(order[i: i + 256], cfg.seed * 7 + copy * 1000 + i)
            if copy:
                x = augment.audio(x, y == data.silence)
            if len(labels) % dist.world == dist.rank:
                feats[len(labels)] = model.features(x)
            labels.append(y)
    out = torch.cat(dist.gather_parts(feats))
    log(f"cached {len(out)} embeddings in {time.perf_counter() - t0:.0f}s", quiet=quiet)
    return out, torch.cat(labels)


def _manifest(cfg: TrainConfig, card: ModelCard, data: sc.KwsData, data_hash: str, weights: Any, freeze: str,
              resampled: int, n_val: int) -> Manifest:
    counts = lambda labels: np.bincount(labels, minlength=len(data.classes)).tolist()  # noqa: E731
    ref = DataRef(root=str(data.root.resolve()), layout=data.layout, hash=data_hash,
                  keywords=tuple(data.keywords) if data.keywords is not None else None, seed=cfg.seed,
                  details={"train_per_class": counts(data.train.labels), "val_per_class": counts(data.val.labels),
                           "val_clips_with_silence": n_val,
                           "noise_files": [str(p.relative_to(data.root)) for p in data.noise_files],
                           "resampled": resampled, "notes": data.notes})
    return start_manifest(cfg, card, labels=data.classes, preprocessing=PREPROCESSING, data=ref, weights=weights,
                          versions=versions(("edgetune", "torch", "torchaudio", "onnx", "onnxruntime", "openvino")),
                          postprocess=StreamConfig().to_dict(), freeze=freeze,
                          augmentation={"shift_s": SHIFT_S, "gain_db": [-6, 6], "rir_prob": RIR_PROB,
                                        "rt60_s": list(RT60_S), "speed_prob": SPEED_PROB,
                                        "speed_range": list(SPEED_RANGE), "snr_db": list(SNR_DB),
                                        "noise_prob": NOISE_PROB, "specaugment": "1 time mask ≤10, 1 mel mask ≤4",
                                        "distill_weight": distill_weight(card, weights)})


def _results(state: FitState, status: str) -> dict[str, Any]:
    return {"status": status, "history": state.history, "best": {"epoch": state.best_epoch, METRIC: state.best_metric},
            "epochs_done": state.epoch, "stopped_early": state.stopped_early, "seconds": round(state.seconds, 2)}

