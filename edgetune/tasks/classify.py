"""The classify Task: ImageFolder data, top-1 metric, artefact evaluation without torch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgetune.contract import DataRef, Manifest, ModelSpec
from edgetune.data.imagefolder import ImageFolderData, scan_imagefolder
from edgetune.preprocess import ImagePreprocess
from edgetune.progress import track
from edgetune.tasks.base import LabelTask, check_classes


class ClassifyTask(LabelTask):
    name = "classify"
    output_name = "logits"
    default_batch = 32
    layout = "train/val"

    def finetune(self, config: Any, *, quiet: bool = False) -> dict[str, Any]:
        from edgetune.train.classifier import finetune_classifier

        return finetune_classifier(config, quiet=quiet)

    def load_model(self, manifest: Manifest, checkpoint: Path) -> Any:
        """The run's fine-tuned torch module in eval mode, taking the artefact's input format."""
        from edgetune.train.classifier import load_trained

        return load_trained(manifest, checkpoint)

    def input_dims(self, spec: ModelSpec) -> tuple[int, ...]:
        size = int(spec.preprocessing["size"])
        return 3, size, size

    def preprocess(self, spec: ModelSpec) -> ImagePreprocess:
        return ImagePreprocess.from_dict(spec.preprocessing)

    def open_data(self, spec: ModelSpec, data: DataRef) -> ImageFolderData:
        """The run's data (same layout and split seed), or a folder given instead (e.g. on a device)."""
        ds = scan_imagefolder(Path(data.root), val_split=data.val_split, seed=data.seed)
        check_classes(ds.classes, spec, ds.root, "data set")
        return ds

    def split(self, spec: ModelSpec, data: DataRef, name: str) -> tuple[ImageFolderData, list[Path], np.ndarray]:
        ds = self.open_data(spec, data)
        part = ds.train if name == "train" else ds.val
        return ds, [s.path for s in part.samples], part.labels

    def evaluate(self, session: Any, spec: ModelSpec, data: DataRef, *, quiet: bool = True) -> dict[str, Any]:
        """Top-1 of an artefact on the val split, one image at a time (static batch 1)."""
        _, files, labels = self.split(spec, data, "val")
        pre = self.preprocess(spec)
        preds = np.array([int(np.argmax(session.run(pre(f))[0])) for f in
                          track(files, total=len(files), desc="evaluate", quiet=quiet)], dtype=np.int64)
        return self.top1(preds, labels, len(spec.labels))


TASK = ClassifyTask()
