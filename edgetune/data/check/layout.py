"""What `data check` audits: every file of a data set with its split and label(s), whatever the
task. A YOLO data.yaml is detection; class folders of audio are keyword spotting; class folders
of images are classification (pooled train/val/test, or one flat tree = split 'all')."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edgetune.data.audio import AUDIO_EXTS
from edgetune.errors import DataError

SPLITS = ("train", "val", "test")
NOT_CLASSES = ("_background_noise_", "stream")


@dataclass
class Item:
    split: str
    path: Path
    label: str | None = None  # classification / kws
    label_file: Path | None = None  # detection
    boxes: list[tuple[str, float, float, float, float]] = field(default_factory=list)  # class, cx, cy, w, h (norm.)


@dataclass
class Layout:
    task: str  # "detect" | "classify" | "kws"
    root: Path
    classes: list[str]
    items: list[Item]
    problems: list[tuple[str, str]] = field(default_factory=list)  # (where, why): label files that do not parse


def _yolo(root: Path) -> Layout:
    from edgetune.data.yolo import IMAGE_SUFFIXES, _images, label_path, parse_label_file, read_data_yaml

    yaml_path, spec, names, base = read_data_yaml(root)
    out = Layout("detect", yaml_path, names, [])
    for split in SPLITS:
        if not spec.get(split):
            continue
        files, _ = _images(spec[split], base, yaml_path, split)
        for img in files:
            if img.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            lbl = label_path(img)
            item = Item(split, img, label_file=lbl)
            if not lbl.is_file():
                out.problems.append((str(img), f"no label file {lbl}"))
            else:
                try:
                    item.boxes = [(names[int(r[0])], *map(float, r[1:])) for r in parse_label_file(lbl, len(names))]
                except DataError as exc:
                    out.problems.append((str(lbl), exc.message))
            out.items.append(item)
    return out


def _folders(root: Path) -> Layout:
    pooled = [s for s in SPLITS if (root / s).is_dir()]
    items: list[Item] = []
    for split in pooled or ["all"]:
        base = root / split if pooled else root
        for cls in sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if cls.name in NOT_CLASSES:
                continue
            items += [Item(split, f, label=cls.name) for f in sorted(cls.iterdir())
                      if f.is_file() and not f.name.startswith(".")]
    audio = items and sum(i.path.suffix.lower() in AUDIO_EXTS for i in items) > len(items) / 2
    return Layout("kws" if audio else "classify", root, sorted({i.label for i in items if i.label}), items)


def find_layout(root: Path) -> Layout:
    root = Path(root)
    if not root.exists():
        raise DataError(f"{root} does not exist", hint="DIR is an ImageFolder, a Speech Commands folder or a data.yaml")
    if root.is_file() or (root / "data.yaml").is_file():
        return _yolo(root)
    layout = _folders(root)
    if not layout.items:
        raise DataError(f"{root} holds no class folders with files and no data.yaml",
                        hint="DIR is an ImageFolder (train/<class>/…), a Speech Commands folder or a YOLO data set")
    return layout
