"""Read and check a user's ImageFolder before any training starts.

Layout: `<root>/train/<class>/*` and `<root>/val/<class>/*`, or one `<root>/<class>/*` folder
split by `--val-split`. Every problem becomes one DataError line naming the file or folder.
Decoding happens once, here, into the stored square form (see `ImagePreprocess.load_square`),
which both checks every image and makes each epoch cheap.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgetune.data.split import assign
from edgetune.errors import DataError
from edgetune.preprocess import ImagePreprocess
from edgetune.untrusted import read_bytes

IMAGE_EXTS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".ppm", ".pgm"})
MIN_TRAIN_PER_CLASS = 2
MIN_VAL_PER_CLASS = 1


@dataclass(frozen=True)
class Sample:
    path: Path
    label: int


@dataclass
class ImageSplit:
    name: str
    samples: list[Sample]

    @property
    def labels(self) -> np.ndarray:
        return np.array([s.label for s in self.samples], dtype=np.int64)


@dataclass
class ImageFolderData:
    root: Path
    classes: list[str]
    train: ImageSplit
    val: ImageSplit
    layout: str  # "train/val" or "split:<fraction>"


def _list_classes(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _list_images(folder: Path, rel_root: Path) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    for p in files:
        if p.is_dir():
            raise DataError(f"{p.relative_to(rel_root)} is a folder inside a class folder",
                            hint="an ImageFolder has exactly one level of class folders")
        if p.suffix.lower() not in IMAGE_EXTS:
            raise DataError(f"{p.relative_to(rel_root)} is not an image (extension {p.suffix or 'none'!r})",
                            hint="remove it or move it out of the class folders; images are "
                                 + " ".join(sorted(IMAGE_EXTS)))
    return files


def _scan_split(folder: Path, classes: list[str], root: Path, name: str) -> ImageSplit:
    samples: list[Sample] = []
    for label, cls in enumerate(classes):
        files = _list_images(folder / cls, root)
        if not files:
            raise DataError(f"class '{cls}' in {folder.relative_to(root) if folder != root else '.'}/ "
                            f"has no images ({folder / cls})",
                            hint="add images or remove the empty class folder")
        samples.extend(Sample(p, label) for p in files)
    return ImageSplit(name, samples)


def scan_imagefolder(root: Path, *, val_split: float | None = None, seed: int = 0) -> ImageFolderData:
    """Find classes and files and check the layout. Images are decoded later by `decode_split`."""
    root = Path(root)
    if not root.exists():
        raise DataError(f"data folder {root} does not exist", hint="pass --data DIR with train/ and val/")
    if not root.is_dir():
        raise DataError(f"--data {root} is a file, not a folder", hint="pass the ImageFolder's root folder")
    has_train = (root / "train").is_dir()
    if has_train:
        if val_split is not None:
            raise DataError(f"{root} already has train/; --val-split applies only to a single class-folder tree",
                            hint="drop --val-split, or point --data at the class folders")
        if not (root / "val").is_dir():
            raise DataError(f"{root} has train/ but no val/ folder",
                            hint="add val/<class>/ images, or pass --data ROOT/train --val-split 0.2")
        classes = _list_classes(root / "train")
        val_classes = _list_classes(root / "val")
        if classes != val_classes:
            only_t = sorted(set(classes) - set(val_classes))
            only_v = sorted(set(val_classes) - set(classes))
            parts = ([f"only in train: {', '.join(only_t)}"] if only_t else []) + (
                [f"only in val: {', '.join(only_v)}"] if only_v else [])
            raise DataError(f"classes differ between train and val in {root} ({'; '.join(parts)})",
                            hint="both splits need the same class folders")
        _check_class_count(classes, root / "train")
        train = _scan_split(root / "train", classes, root, "train")
        val = _scan_split(root / "val", classes, root, "val")
        layout = "train/val"
    else:
        classes = _list_classes(root)
        if not classes:
            raise DataError(f"{root} has no class folders", hint="expected ROOT/train/<class>/ and ROOT/val/<class>/")
        if val_split is None:
            raise DataError(f"{root} has class folders but no train/ and val/",
                            hint="pass --val-split 0.2 to hold out a fraction for validation")
        if not 0.0 < val_split < 1.0:
            raise DataError(f"--val-split must be between 0 and 1, got {val_split}")
        _check_class_count(classes, root)
        everything = _scan_split(root, classes, root, "all")
        train, val = _split(everything, val_split, seed)
        layout = f"split:{val_split}"
    for split, minimum in ((train, MIN_TRAIN_PER_CLASS), (val, MIN_VAL_PER_CLASS)):
        counts = np.bincount(split.labels, minlength=len(classes))
        worst = int(counts.argmin())
        if counts[worst] < minimum:
            raise DataError(f"class '{classes[worst]}' has {counts[worst]} {split.name} image(s); "
                            f"at least {minimum} needed",
                            hint="add images (10+ per class is a sensible floor)")
    return ImageFolderData(root=root, classes=classes, train=train, val=val, layout=layout)


def _check_class_count(classes: list[str], folder: Path) -> None:
    if len(classes) < 2:
        raise DataError(f"{folder} has {len(classes)} class folder(s); classification needs at least 2",
                        hint="one folder per class: ROOT/train/<class>/image.jpg")


def _split(data: ImageSplit, fraction: float, seed: int) -> tuple[ImageSplit, ImageSplit]:
    """Stratified, seeded split: every class keeps at least one image on each side."""
    where = assign(data.labels.tolist(), {"val": fraction}, seed)
    return (ImageSplit("train", [s for s, w in zip(data.samples, where, strict=True) if w == "train"]),
            ImageSplit("val", [s for s, w in zip(data.samples, where, strict=True) if w == "val"]))


def decode_split(split: ImageSplit, pre: ImagePreprocess, root: Path, digest: hashlib._Hash | None = None,
                 progress: Callable[[int], None] | None = None, allocate: Callable[..., Any] | None = None,
                 name: str = "split") -> Any:
    """Decode every image of a split into (N, resize, resize, 3) uint8 rows: a numpy array, or
    what `allocate(name, rows, shape, decode)` returns (edgetune.data.decoded: on disk, or none).

    Hashes the raw bytes into `digest` on the way (the data hash in the manifest). Corrupt or
    unreadable files raise one DataError naming the first one and how many there are.
    """
    shape = (pre.resize, pre.resize, 3)
    out = (allocate(name, len(split.samples), shape,
                    lambda i: pre.load_square(read_bytes(split.samples[i].path, what="image")))
           if allocate else np.empty((len(split.samples), *shape), dtype=np.uint8))
    bad: list[tuple[Path, str]] = []
    for i, s in enumerate(split.samples):
        try:
            raw = read_bytes(s.path, what="image")
            if digest is not None:
                digest.update(str(s.path.relative_to(root)).encode())
                digest.update(hashlib.sha256(raw).digest())
            out[i] = pre.load_square(raw)
        except (OSError, ValueError, SyntaxError) as exc:
            bad.append((s.path, str(exc).splitlines()[0] if str(exc) else type(exc).__name__))
        if progress:
            progress(1)
    if bad:
        path, why = bad[0]
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise DataError(f"cannot read image {path}: {why}{more}",
                        hint="delete or replace the corrupt file(s)")
    return out
