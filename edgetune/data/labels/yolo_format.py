"""A YOLO data set (data.yaml + labels/*.txt) read back as a `LabelSet`, keeping its splits.

Its normalised centre boxes become pixel corners with each image's size; the importer writes
them out again, so importing a YOLO set is also how its labels are audited and re-split.
"""

from __future__ import annotations

from pathlib import Path

from edgetune.data.labels.model import Box, LabelledImage, LabelSet
from edgetune.data.labels.source import image_size
from edgetune.data.yolo import load_yolo_dataset


def read(src: Path, *, images: Path | None = None, strict: bool = False) -> LabelSet:
    ds = load_yolo_dataset(src)  # checks every label file: one line per problem
    ls = LabelSet(task="detect", classes=list(ds.names), class_order="names in data.yaml", images=[])
    for split, samples in ds.splits.items():
        folders = [Path(s) for s in ds.sources[split] if Path(s).is_dir()]
        for s in samples:
            base = next((f for f in folders if s.image.resolve().is_relative_to(f)), None)
            name = str(s.image.resolve().relative_to(base)) if base else s.image.name
            w, h = image_size(s.image)
            img = LabelledImage(name, s.image.resolve(), w, h, split=split)
            for c, cx, cy, bw, bh in s.boxes.tolist():
                img.boxes.append(Box(ds.names[int(c)], (cx - bw / 2) * w, (cy - bh / 2) * h,
                                     (cx + bw / 2) * w, (cy + bh / 2) * h))
            ls.images.append(img)
    return ls
