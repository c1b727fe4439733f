"""The classify Task: ImageFolder data, top-1 metric, artefact evaluation without torch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgetune.data.imagefolder import ImageFolderData, scan_imagefolder
from edgetune.errors import DataError
from edgetune.preprocess import ImagePreprocess
from edgetune.progress import track
from edgetune.tasks import calibration_size, load_hashed, softmax_top, stratified


class ClassifyTask:
    name = "classify"
    metric_name = "top1"
    output_name = "logits"
    onnx_dynamo = False
    half_precision_compute = True
    default_batch = 32

    # -- training (torch, imported lazily so the light install can evaluate artefacts) ---------
    def finetune(self, config: Any, *, quiet: bool = False) -> dict[str, Any]:
        from edgetune.train.classifier import finetune_classifier

        return finetune_classifier(config, quiet=quiet)

    def load_model(self, manifest: dict[str, Any], checkpoint: Path) -> Any:
        """The run's fine-tuned torch module in eval mode, taking the artefact's input format."""
        from edgetune.train.classifier import load_trained

        return load_trained(manifest, checkpoint)

    @staticmethod
    def output_scale(manifest: dict[str, Any]) -> None:
        """Logits are compared as they are."""
        return None

    @staticmethod
    def io_shapes(meta: dict[str, Any]) -> tuple[tuple[int | None, ...], tuple[int | None, ...]]:
        size = int(meta["preprocessing"]["size"])
        return (None, 3, size, size), (None, len(meta["labels"]))

    @staticmethod
    def quantize_keep_float(fp32: Path) -> tuple[list[str], dict]:
        """Nothing task-specific: the quantiser already keeps the stem conv in float."""
        return [], {}

    # -- data of an existing run --------------------------------------------------------------
    @staticmethod
    def preprocess(manifest: dict[str, Any]) -> ImagePreprocess:
        return ImagePreprocess.from_dict(manifest["preprocessing"])

    @staticmethod
    def data(manifest: dict[str, Any], override: str | None = None) -> ImageFolderData:
        """Re-open the run's data (same layout and split seed), or `override` (e.g. on a device)."""
        d = manifest["data"]
        root = Path(override or d["root"])
        layout = d["layout"]
        val_split = float(layout.split(":", 1)[1]) if layout.startswith("split:") and not override else None
        data = scan_imagefolder(root, val_split=val_split, seed=int(manifest["seed"]))
        if data.classes != manifest["labels"]:
            raise DataError(f"classes in {root} ({', '.join(data.classes)}) differ from the run's labels "
                            f"({', '.join(manifest['labels'])})", hint="point --data at the run's data set")
        return data

    def val_files(self, manifest: dict[str, Any], *, count: int, data: str | None = None) -> list[Path]:
        """`count` validation images spread over the classes (deterministic)."""
        ds = self.data(manifest, data)
        return [ds.val.samples[i].path for i in stratified(ds.val.labels, count, seed=0)]

    def export_inputs(self, manifest: dict[str, Any], *, count: int, data: str | None = None) -> list[np.ndarray]:
        pre = self.preprocess(manifest)
        return [pre(p) for p in self.val_files(manifest, count=count, data=data)]

    def calibration_inputs(self, manifest: dict[str, Any], *, size: int | None, seed: int,
                           default: int = 200) -> tuple[list[np.ndarray], dict]:
        """A per-class stratified, seeded subset of the training split; indices and hash recorded.

        `size=None` takes `default` images, or the whole split when it is smaller; an explicit size
        larger than the split is an error (the user asked for something the data cannot give)."""
        data = self.data(manifest)
        size = calibration_size(size, len(data.train.samples), default)
        picks = stratified(data.train.labels, size, seed=seed)
        inputs, digest = load_hashed([data.train.samples[i].path for i in picks], data.root, self.preprocess(manifest))
        per_class = np.bincount(data.train.labels[picks], minlength=len(data.classes))
        record = {"size": len(picks), "seed": seed, "split": "train", "strategy": "stratified per class",
                  "indices": [int(i) for i in picks], "hash": digest,
                  "per_class_min": int(per_class.min())}
        return inputs, record

    def predict(self, session: Any, meta: dict[str, Any], source: Path | bytes) -> dict[str, Any]:
        """Softmax top-k labels (k from meta['top_k'], default 3)."""
        return softmax_top(session.run(self.preprocess(meta)(source))[0][0], meta["labels"], int(meta.get("top_k", 3)))

    @staticmethod
    def bench_extra(session: Any, manifest: dict[str, Any], meta: dict[str, Any], *,
                    data: str | None = None) -> dict[str, Any]:
        """Nothing beyond latency and the metric."""
        return {}

    @staticmethod
    def describe(result: dict[str, Any]) -> str:
        return ", ".join(f"{t['label']} {t['score']:.3f}" for t in result["top"])

    def evaluate(self, session: Any, manifest: dict[str, Any], *, data: str | None = None,
                 quiet: bool = True) -> dict[str, Any]:
        """Top-1 of an artefact on the val split, one image at a time (static batch 1)."""
        ds = self.data(manifest, data)
        pre = self.preprocess(manifest)
        labels = ds.val.labels
        preds = np.empty(len(labels), dtype=np.int64)
        for i, s in enumerate(track(ds.val.samples, total=len(labels), desc="evaluate", quiet=quiet)):
            preds[i] = int(np.argmax(session.run(pre(s.path))[0]))
        n = len(ds.classes)
        confusion = np.zeros((n, n), dtype=np.int64)
        np.add.at(confusion, (labels, preds), 1)
        return {self.metric_name: float((preds == labels).mean()), "n": int(len(labels)),
                "confusion": confusion.tolist()}
