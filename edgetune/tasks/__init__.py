"""Tasks: what differs between classify/detect/kws. The rest of the code never branches on a
task name; it asks the TASKS registry for the Task of a run and calls its methods."""

from __future__ import annotations

import math
from typing import Any, Protocol

import numpy as np

from edgetune.registry import Registry
from edgetune.untrusted import read_bytes

# Non-scalar results of `Task.evaluate` that reports plot; export.json and bench JSON keep them.
# confusion: [true][predicted] counts (classify, kws); pr_curve: {"recall", "precision"} (detect).
CURVES = ("confusion", "pr_curve")


class Task(Protocol):
    name: str
    metric_name: str  # key of the task's metric in JSON (a fraction in [0, 1])

    def finetune(self, config: Any, *, quiet: bool = False) -> dict[str, Any]:
        """Train into config.out; return the finetune JSON (run, metric, best, epochs, seconds)."""

    def load_model(self, manifest: dict[str, Any], checkpoint: Any) -> Any:
        """The fine-tuned torch module of a run (eval mode), for export and validation."""

    def val_files(self, manifest: dict[str, Any], *, count: int, data: str | None = None) -> list[Any]:
        """`count` real validation files, chosen deterministically."""

    def export_inputs(self, manifest: dict[str, Any], *, count: int, data: str | None = None) -> list[np.ndarray]:
        """Real validation inputs for export validation (model-input arrays)."""

    def calibration_inputs(self, manifest: dict[str, Any], *, size: int | None, seed: int,
                           default: int = 200) -> tuple[list[np.ndarray], dict]:
        """A deterministic stratified training subset for int8 calibration, and its record."""

    output_name: str  # the ONNX graph's output name
    half_precision_compute: bool  # may run in bf16/fp16 (OpenVINO's device default); False keeps f32
    onnx_dynamo: bool  # export with the dynamo exporter (STFT front ends need it)
    default_batch: int  # finetune --batch when not given

    def output_scale(self, manifest: dict[str, Any]) -> np.ndarray | None:
        """Divides |PyTorch − ONNX| per output element before the fp32 tolerance applies (None: raw)."""

    def preprocess(self, manifest: dict[str, Any]) -> Any:
        """File or bytes → model input array, as recorded in the run/export."""

    def quantize_keep_float(self, fp32: Any) -> tuple[list[str], dict]:
        """ONNX node names this task needs kept in float under int8, and a record of why."""

    def predict(self, session: Any, meta: dict[str, Any], source: Any) -> dict[str, Any]:
        """One input file → the task's prediction (JSON-ready), with the artefact's own decoding."""

    def describe(self, result: dict[str, Any]) -> str:
        """One line for humans from a `predict` result."""

    def evaluate(self, session: Any, manifest: dict[str, Any], *, data: str | None = None) -> dict[str, float]:
        """The task metric of an artefact (a runtime Session) on the held-out split."""

    def bench_extra(self, session: Any, manifest: dict[str, Any], meta: dict[str, Any], *,
                    data: str | None = None) -> dict[str, Any]:
        """Task-specific bench results beyond latency and the metric (kws: false accepts per hour)."""

    def io_shapes(self, meta: dict[str, Any]) -> tuple[tuple[int | None, ...], tuple[int | None, ...]]:
        """The artefact's input and output shapes that the export metadata implies (None: free),
        so a model file swapped for another is named before it is run."""


TASKS: Registry[Task] = Registry("task")


def _load() -> None:
    from edgetune.tasks.classify import ClassifyTask
    from edgetune.tasks.detect import DetectTask
    from edgetune.tasks.kws import KwsTask

    TASKS.register("classify", ClassifyTask())
    TASKS.register("detect", DetectTask())
    TASKS.register("kws", KwsTask())


TASKS.set_loader(_load)


def get_task(name: str) -> Task:
    return TASKS.get(name)


def calibration_size(size: int | None, n_train: int, default: int) -> int:
    """`None` → `default` images, or the whole split when smaller; more than the split is an error
    (the user asked for something the data cannot give)."""
    from edgetune.errors import CalibrationError

    if size is None:
        return min(default, n_train)
    if size > n_train:
        raise CalibrationError(f"--calib-size {size} is larger than the training split ({n_train} images)",
                        hint=f"use --calib-size {n_train} or fewer")
    return size


def load_hashed(paths: list[Any], root: Any, pre: Any) -> tuple[list[np.ndarray], str]:
    """Read each file once: the model inputs, and one sha256 over (path relative to `root`, file
    sha256) pairs, so a calibration set can be reproduced and audited."""
    import hashlib

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
    order = np.argsort(-probs)[:k]
    return {"top": [{"label": labels[i], "score": float(probs[i])} for i in order]}
