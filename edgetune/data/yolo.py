"""YOLO detection data sets (ultralytics layout), checked up front without torch.

    data.yaml:  path: ROOT        # optional; relative paths resolve against the YAML's folder
                train: images/train   # a folder, a .txt list of images, or a list of either
                val: images/val
                names: {0: person, 1: cat}   # or a list; `nc`, if given, must agree
    labels:     ROOT/labels/train/NAME.txt beside ROOT/images/train/NAME.jpg, one row per box:
                `class cx cy w h`, normalised to [0, 1] (polygon rows `class x1 y1 x2 y2 …` too)

Ultralytics skips a bad label with a warning deep in a training log; a field engineer learns
about it when the mAP is wrong. Here every problem stops the run before training, with the file,
the line and the fix in one line. Background images need an (empty) label file: a missing one is
more often a copy mistake than an intent.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgetune.errors import DataError
from edgetune.untrusted import MAX_TEXT_BYTES, MAX_YAML_BYTES, load_yaml, read_bytes, read_text

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
EDGE_TOLERANCE = 0.01  # box edges may overshoot the image by 1% (rounding in labelling tools)


@dataclass(frozen=True)
class DetSample:
    image: Path
    label: Path
    boxes: np.ndarray  # (n, 5) float32: class, cx, cy, w, h (normalised); polygons reduced to boxes


@dataclass
class YoloDataset:
    yaml_path: Path
    root: Path
    names: list[str]
    splits: dict[str, list[DetSample]] = field(default_factory=dict)
    sources: dict[str, list[str]] = field(default_factory=dict)  # split → absolute folders/lists

    @property
    def nc(self) -> int:
        return len(self.names)

    def fingerprint(self) -> str:
        """sha256 over every image path and label content: the manifest's data hash."""
        h = hashlib.sha256()
        for split in sorted(self.splits):
            for s in self.splits[split]:
                h.update(f"{split}:{s.image.relative_to(self.root) if s.image.is_relative_to(self.root) else s.image}"
                         .encode())
                h.update(s.label.read_bytes())
        return h.hexdigest()

    def ultralytics_yaml(self) -> dict:
        """The same data set as ultralytics reads it: absolute paths only (no DATASETS_DIR guessing)."""
        def one(v: list[str]) -> str | list[str]:
            return v[0] if len(v) == 1 else v

        return {"path": str(self.root), "train": one(self.sources["train"]), "val": one(self.sources["val"]),
                "names": dict(enumerate(self.names))}


def yolo_lines(labels: Sequence[tuple[int, Sequence[float]]], width: int, height: int) -> list[str]:
    """Label rows `class cx cy w h` (6 decimals, ultralytics' own precision) from pixel corners
    (x0, y0, x1, y1): the one place every writer of YOLO labels formats them."""
    out = []
    for cls, (x0, y0, x1, y1) in labels:
        out.append(f"{cls} {(x0 + x1) / 2 / width:.6f} {(y0 + y1) / 2 / height:.6f} "
                   f"{(x1 - x0) / width:.6f} {(y1 - y0) / height:.6f}")
    return out


def label_path(image: Path) -> Path:
    """ultralytics' rule: the last `/images/` in the path becomes `/labels/`, the suffix `.txt`."""
    s = str(image)
    sa, sb = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"
    if sa not in s:
        return image.with_suffix(".txt")
    return Path(sb.join(s.rsplit(sa, 1))).with_suffix(".txt")


def _names(spec: dict, where: Path) -> list[str]:
    names = spec.get("names")
    if isinstance(names, dict):
        keys = sorted(names)
        if keys != list(range(len(keys))):
            raise DataError(f"{where}: 'names' keys must be 0..{len(keys) - 1}, got {keys[:8]}",
                            hint="number classes from 0 without gaps")
        names = [names[k] for k in keys]
    if not isinstance(names, list) or not names or not all(isinstance(n, (str, int)) for n in names):
        raise DataError(f"{where}: 'names' must be a non-empty list or {{id: name}} mapping",
                        hint="e.g. names: {0: person, 1: car}")
    names = [str(n) for n in names]
    if "nc" in spec and spec["nc"] != len(names):
        raise DataError(f"{where}: nc is {spec['nc']} but 'names' lists {len(names)} classes",
                        hint="make nc match names, or drop nc")
    return names


def _images(entry: str | Sequence[str], root: Path, where: Path, split: str) -> tuple[list[Path], list[str]]:
    entries = [entry] if isinstance(entry, str) else entry
    if not isinstance(entries, list) or not all(isinstance(e, str) and e for e in entries):
        raise DataError(f"{where}: '{split}' must be a path or a list of paths, got {entry!r}",
                        hint=f"e.g. `{split}: images/{split}` (a folder, or a .txt list of images)")
    files: list[Path] = []
    sources: list[str] = []
    for e in entries:
        p = Path(e) if Path(e).is_absolute() else root / e
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
        elif p.is_file() and p.suffix == ".txt":
            for line in read_text(p, limit=MAX_TEXT_BYTES, what="image list", error=DataError).splitlines():
                if line.strip():
                    f = Path(line.strip())
                    files.append(f if f.is_absolute() else (p.parent / f).resolve())
        else:
            raise DataError(f"{where}: {split} entry {e!r} → {p} does not exist",
                            hint=f"point '{split}' at a folder of images or a .txt list, relative to 'path'")
        sources.append(str(p.resolve()))
    return files, sources


def parse_label_file(path: Path, nc: int) -> np.ndarray:
    """Rows → (n, 5) float32 [class, cx, cy, w, h]; raises DataError naming file:line."""
    rows = []
    try:
        text = read_bytes(path, limit=MAX_TEXT_BYTES, what="label file").decode()
    except UnicodeDecodeError:
        raise DataError(f"{path} is not a text label file (not UTF-8)",
                        hint="each row is `class cx cy w h`; remove stray binary files from labels/") from None
    for i, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        where = f"{path}:{i}"
        try:
            values = [float(v) for v in parts]
        except ValueError:
            raise DataError(f"{where}: not a number in {line.strip()!r}",
                            hint="each row is `class cx cy w h` (numbers, normalised to [0, 1])") from None
        if not np.isfinite(values).all():
            raise DataError(f"{where}: not a finite number in {line.strip()!r}",
                            hint="each row is `class cx cy w h` (numbers, normalised to [0, 1])")
        cls = values[0]
        if cls != int(cls) or cls < 0:
            raise DataError(f"{where}: class id {parts[0]} is not a non-negative integer")
        if cls >= nc:
            raise DataError(f"{where}: class id {int(cls)} ≥ nc={nc}",
                            hint=f"class ids run 0..{nc - 1}; add the class to 'names' or fix the label")
        coords = np.array(values[1:])
        if len(coords) == 4:
            cx, cy, w, h = coords
        elif len(coords) >= 6 and len(coords) % 2 == 0:  # polygon: reduce to its bounding box
            xs, ys = coords[0::2], coords[1::2]
            cx, cy, w, h = (xs.min() + xs.max()) / 2, (ys.min() + ys.max()) / 2, np.ptp(xs), np.ptp(ys)
        else:
            raise DataError(f"{where}: {len(parts)} values; a box row is `class cx cy w h`",
                            hint="5 values per row (or class + polygon x,y pairs)")
        if coords.min() < 0 or coords.max() > 1:
            raise DataError(f"{where}: coordinates {' '.join(parts[1:])} are outside [0, 1]",
                            hint="YOLO labels are normalised by image width/height; divide pixel values")
        if w <= 0 or h <= 0:
            raise DataError(f"{where}: box has zero width or height")
        t = EDGE_TOLERANCE
        if cx - w / 2 < -t or cy - h / 2 < -t or cx + w / 2 > 1 + t or cy + h / 2 > 1 + t:
            raise DataError(f"{where}: box (cx {cx:g}, cy {cy:g}, w {w:g}, h {h:g}) extends outside the image",
                            hint="clip the box to the image, or check that cx/cy are centres, not corners")
        rows.append((cls, cx, cy, w, h))
    return np.array(rows, dtype=np.float32).reshape(-1, 5)


def _check_image(path: Path) -> None:
    """Header check (cheap): a truncated, mis-named or over-limit file fails here, not mid-training."""
    from PIL import Image

    from edgetune.preprocess import ImageLimitError, check_image_size

    try:
        with Image.open(path) as im:
            w, h = im.size
        check_image_size(w, h)
    except ImageLimitError as exc:
        raise DataError(f"{path}: {exc}") from None
    except (OSError, ValueError, ImportError, Image.DecompressionBombError):  # ImportError: ultralytics' pi_heif patch
        raise DataError(f"{path} is not a readable image", hint="re-export it as JPEG/PNG or remove it") from None
    if min(w, h) < 2:
        raise DataError(f"{path} is {w}x{h} pixels: too small to hold objects")


def read_data_yaml(yaml_path: Path) -> tuple[Path, dict, list[str], Path]:
    """A data.yaml (or the folder holding one), checked: (its path, the mapping, class names,
    the resolved root). Shared by the loader and `data check`."""
    import yaml

    yaml_path = Path(yaml_path)
    if yaml_path.is_dir() and (yaml_path / "data.yaml").is_file():
        yaml_path = yaml_path / "data.yaml"
    if not yaml_path.is_file():
        raise DataError(f"data YAML {yaml_path} not found",
                        hint="--data takes an ultralytics data.yaml (path/train/val/names)")
    try:
        spec = load_yaml(read_text(yaml_path, limit=MAX_YAML_BYTES, what="data YAML", error=DataError),
                         what=str(yaml_path), error=DataError)
    except yaml.YAMLError as exc:
        raise DataError(f"{yaml_path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(spec, dict):
        raise DataError(f"{yaml_path} must be a mapping with train, val and names")
    for key in ("train", "val"):
        if not spec.get(key):
            raise DataError(f"{yaml_path}: '{key}' is missing", hint=f"add `{key}: images/{key}`")
    names = _names(spec, yaml_path)
    root = Path(str(spec.get("path") or "."))
    if not root.is_absolute():
        root = (yaml_path.parent / root).resolve()
    if not root.is_dir():
        raise DataError(f"{yaml_path}: path {root} does not exist", hint="fix 'path:' (absolute, or relative to the YAML)")
    return yaml_path, spec, names, root


def load_yolo_dataset(yaml_path: Path) -> YoloDataset:
    """Read and check a data.yaml and every label of its train and val splits."""
    yaml_path, spec, names, root = read_data_yaml(yaml_path)
    ds = YoloDataset(yaml_path=yaml_path.resolve(), root=root, names=names)
    for split in ("train", "val"):
        images, sources = _images(spec[split], root, yaml_path, split)
        if not images:
            raise DataError(f"{yaml_path}: the {split} split ({', '.join(sources)}) has no images",
                            hint=f"put {', '.join(IMAGE_SUFFIXES[:3])}… files there")
        samples = []
        for img in images:
            _check_image(img)
            lbl = label_path(img)
            if not lbl.is_file():
                raise DataError(f"{img} has no label file {lbl}",
                                hint="write one row per box; an empty .txt marks an image with no objects")
            samples.append(DetSample(img, lbl, parse_label_file(lbl, len(names))))
        if not any(len(s.boxes) for s in samples):
            raise DataError(f"{yaml_path}: the {split} split has {len(samples)} images but no boxes",
                            hint="label some objects; a detector cannot learn or be measured without boxes")
        ds.splits[split] = samples
        ds.sources[split] = sources
    return ds
