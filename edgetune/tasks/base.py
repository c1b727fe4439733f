"""What every task has, and what the two label tasks (classify, kws) share.

A task is told *what* model (`ModelSpec`: labels, input format, decoding) and *which* data
(`DataRef`: the run's data set, or the folder a user passed on a device); it never reads a manifest
dict. Everything here is numpy: a device with the light install evaluates, predicts and benches
with the same code the export gate used. Training is imported lazily by `finetune`.
"""

from __future__ import annotations

import hashlib
import math
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np

from edgetune.contract import DataRef, Manifest, ModelSpec
from edgetune.errors import CalibrationError, DataError
from edgetune.tasks.names import METRIC_NAMES
from edgetune.untrusted import read_bytes


class Task(ABC):
    """One task: its data, metric, artefact I/O and decoding."""

    name: str
    output_name: str  # the ONNX graph's output name
    half_precision_compute: bool = True  # may run in bf16/fp16 (OpenVINO's device default); False keeps f32
    onnx_dynamo: bool = False  # export with the dynamo exporter (STFT front ends need it)
    default_batch: int  # finetune --batch when not given
    # finetune --patience when not given: epochs without a val gain before stopping early.
    default_patience: int = 5
    # finetune runs as N data-parallel processes under torchrun (edgetune.train.distributed)
    data_parallel: bool = False
    layout: str  # DataRef.layout of a data folder passed by a user
    # Parts of the model that stay float under int8, by name, for backends that find them in their
    # own graph ("front-end": the signal front end and the first convolution that reads it;
    # "detect-head": an ultralytics Detect head's decode and final convs). The ONNX backends use
    # quantize_keep_float instead.
    int8_float_parts: tuple[str, ...] = ()

    @property
    def metric_name(self) -> str:
        return METRIC_NAMES[self.name]

    # -- training (torch imported lazily: the light install never reaches it) -------------------
    @abstractmethod
    def finetune(self, config: Any, *, quiet: bool = False) -> dict[str, Any]:
        """Train into config.out; return the finetune JSON (run, metric, best, epochs, seconds)."""

    @abstractmethod
    def load_model(self, manifest: Manifest, checkpoint: Path) -> Any:
        """The fine-tuned torch module of a run (eval mode), for export and validation."""

    # -- the artefact ------------------------------------------------------------------------
    @abstractmethod
    def io_shapes(self, spec: ModelSpec) -> tuple[tuple[int | None, ...], tuple[int | None, ...]]:
        """The artefact's input and output shapes the spec implies (None: free), so a model file
        swapped for another is named before it is run."""

    def output_scale(self, spec: ModelSpec) -> np.ndarray | None:
        """Divides |PyTorch − ONNX| per output element before the fp32 tolerance applies (None: raw)."""
        return None

    def quantize_keep_float(self, fp32: Path) -> tuple[list[str], dict]:
        """ONNX node names this task needs kept in float under int8, and a record of why."""
        return [], {}

    @abstractmethod
    def preprocess(self, spec: ModelSpec) -> Any:
        """File or bytes → model input array, as recorded in the run/export."""

    @abstractmethod
    def predict(self, session: Any, spec: ModelSpec, source: Path | bytes, *, top_k: int = 3) -> dict[str, Any]:
        """One input file → the task's prediction (JSON-ready), with the artefact's own decoding."""

    @abstractmethod
    def describe(self, result: dict[str, Any]) -> str:
        """One line for humans from a `predict` result."""

    # -- data ----------------------------------------------------------------------------------
    def user_data(self, path: str | Path) -> DataRef:
        """A data set a user points at without a run (bench --data on a bare export folder)."""
        return DataRef(root=str(path), layout=self.layout, yaml=str(path) if self.layout == "yolo" else None)

    @abstractmethod
    def val_files(self, spec: ModelSpec, data: DataRef, *, count: int) -> list[Path]:
        """`count` real validation files, chosen deterministically."""

    def export_inputs(self, spec: ModelSpec, data: DataRef, *, count: int) -> list[np.ndarray]:
        """Real validation inputs for export validation (model-input arrays)."""
        pre = self.preprocess(spec)
        return [pre(p) for p in self.val_files(spec, data, count=count)]

    @abstractmethod
    def calibration_inputs(self, spec: ModelSpec, data: DataRef, *, size: int | None,
                           default: int = 200) -> tuple[list[np.ndarray], dict]:
        """A deterministic (data.seed) training subset for int8 calibration, and its record."""

    @abstractmethod
    def evaluate(self, session: Any, spec: ModelSpec, data: DataRef, *, quiet: bool = True) -> dict[str, Any]:
        """The task metric of an artefact (a runtime Session) on the held-out split."""

    def bench_extra(self, session: Any, spec: ModelSpec, data: DataRef) -> dict[str, Any]:
        """Task-specific bench results beyond latency and the metric (kws: false accepts per hour)."""
        return {}

    def tune_postprocess(self, artefact: Path, spec: ModelSpec, data: DataRef,
                         *, quiet: bool = True) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """Decoding settings chosen on the artefact itself at export (kws: per-keyword stream
        thresholds): (postprocess changes, the record for export.json), or None to keep the card's."""
        return None


class LabelTask(Task):
    """A task with one label per input (classify, kws): top-1, confusion matrix, softmax top-k,
    calibration stratified per class."""

    data_parallel = True

    @abstractmethod
    def split(self, spec: ModelSpec, data: DataRef, name: str) -> tuple[Any, list[Path], np.ndarray]:
        """The opened data set (labels checked against the spec) and one split's files and labels."""

    def io_shapes(self, spec: ModelSpec) -> tuple[tuple[int | None, ...], tuple[int | None, ...]]:
        return (None, *self.input_dims(spec)), (None, len(spec.labels))

    def trained_classes(self, spec: ModelSpec) -> int:
        """How many classes the training split has files for (kws: all but _silence_)."""
        return len(spec.labels)

    @abstractmethod
    def input_dims(self, spec: ModelSpec) -> tuple[int, ...]:
        """The input shape after the batch dimension."""

    def val_files(self, spec: ModelSpec, data: DataRef, *, count: int) -> list[Path]:
        """`count` validation files spread over the classes (deterministic)."""
        _, files, labels = self.split(spec, data, "val")
        return [files[i] for i in stratified(labels, count, seed=0)]

    def calibration_inputs(self, spec: ModelSpec, data: DataRef, *, size: int | None,
                           default: int = 200) -> tuple[list[np.ndarray], dict]:
        """A per-class stratified, seeded subset of the training split; indices and hash recorded.

        `size=None` takes `default` inputs, or the whole split when it is smaller; an explicit size
        larger than the split is an error (the user asked for something the data cannot give)."""
        ds, files, labels = self.split(spec, data, "train")
        size = calibration_size(size, len(files), default)
        picks = stratified(labels, size, seed=data.seed)
        inputs, digest = load_hashed([files[i] for i in picks], Path(ds.root), self.preprocess(spec))
        per_class = np.bincount(labels[picks], minlength=self.trained_classes(spec))
        return inputs, {"size": len(picks), "seed": data.seed, "split": "train", "strategy": "stratified per class",
                        "indices": [int(i) for i in picks], "hash": digest, "per_class_min": int(per_class.min())}

    def predict(self, session: Any, spec: ModelSpec, source: Path | bytes, *, top_k: int = 3) -> dict[str, Any]:
        """Softmax top-k labels."""
        return softmax_top(session.run(self.preprocess(spec)(source))[0][0], list(spec.labels), top_k)

    def describe(self, result: dict[str, Any]) -> str:
        return ", ".join(f"{t['label']} {t['score']:.3f}" for t in result["top"])

    def top1(self, preds: np.ndarray, labels: np.ndarray, classes: int) -> dict[str, Any]:
        """Top-1 and the [true][predicted] confusion counts."""
        confusion = np.zeros((classes, classes), dtype=np.int64)
        np.add.at(confusion, (labels, preds), 1)
        return {self.metric_name: float((preds == labels).mean()), "n": int(len(labels)),
                "confusion": confusion.tolist()}


def check_classes(found: list[str], spec: ModelSpec, root: Any, what: str) -> None:
    """The data set's classes must be the run's labels, in order."""
    if list(found) != list(spec.labels):
        raise DataError(f"classes in {root} ({', '.join(found)}) differ from the run's labels "
                        f"({', '.join(spec.labels)})", hint=f"point --data at the run's {what}")


def calibration_size(size: int | None, n_train: int, default: int) -> int:
    """`None` → `default` inputs, or the whole split when smaller; more than the split is an error
    (the user asked for something the data cannot give)."""
    if size is None:
        return min(default, n_train)
    if size > n_train:
        raise CalibrationError(f"--calib-size {size} is larger than the training split ({n_train} images)",
                               hint=f"use --calib-size {n_train} or fewer")
    return size


def load_hashed(paths: list[Path], root: Path, pre: Any) -> tuple[list[np.ndarray], str]:
    """Read each file once: the model inputs, and one sha256 over (path relative to `root`, file
    sha256) pairs, so a calibration set can be reproduced and audited."""
    h = hashlib.sha256()
    inputs = []
    for path in paths:
        raw = read_bytes(path, what="input")
        h.update(str(path.relative_to(root) if path.is_relative_to(root) else path).encode())
        h.update(hashlib.sha256(raw).digest())
        inputs.append(pre(raw))
    return inputs, h.hexdigest()


def stratified(labels: np.ndarray, size: int, *, seed: int) -> np.ndarray:
    """`size` indices spread evenly over classes (round-robin over seeded per-class orders)."""
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    orders = [list(rng.permutation(np.flatnonzero(labels == c))) for c in classes]
    picks: list[int] = []
    for k in range(math.ceil(size / max(len(classes), 1)) + max(len(o) for o in orders)):
        for order in orders:
            if k < len(order) and len(picks) < size:
                picks.append(int(order[k]))
        if len(picks) >= size:
            break
    return np.array(sorted(picks), dtype=np.int64)


def softmax_top(logits: np.ndarray, labels: list[str], k: int) -> dict[str, Any]:
    """The k most probable labels of one logit vector, with softmax scores."""
    z = logits.astype(np.float64)
    probs = np.exp(z - z.max())
    probs /= probs.sum()
    order = np.argsort(-probs)[:max(1, k)]
    return {"top": [{"label": labels[i], "score": float(probs[i])} for i in order]}
