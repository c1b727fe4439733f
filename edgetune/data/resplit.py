"""`edgetune data split`: a new seeded, stratified (optionally grouped) train/val(/test) split of
an ImageFolder, a Speech Commands folder or a YOLO data set, written to a new folder.

Writing elsewhere (copies, or `--link` symlinks) keeps the source intact: a split is cheap to
redo and a user's only copy of a data set is never moved around. Class-folder sets are pooled
from train/, val/ and test/ (or read flat) and re-cut; folders that are not classes
(`_background_noise_`, a KWS `stream/`) are carried over unchanged. YOLO sets go through the
importer with their declared splits ignored, so the labels are checked on the way.
"""

from __future__ import annotations

import shutil
from collections import Counter
from dataclasses import replace
from pathlib import Path

from edgetune.data.audio import AUDIO_EXTS
from edgetune.data.labels.importer import ImportOptions, import_labels, verify_written
from edgetune.data.labels.source import copy_image
from edgetune.data.split import assign, group_keys
from edgetune.errors import DataError, UsageError
from edgetune.fsutil import atomic_dir, write_json

SPLITS = ("train", "val", "test")
CARRIED = ("_background_noise_",)  # never a class: copied as they are


def _class_items(src: Path) -> tuple[list[tuple[Path, str, str]], list[Path]]:
    """(file, class, output name) for every file in class folders, and the entries carried over."""
    pooled = [src / s for s in SPLITS if (src / s).is_dir()]
    roots = pooled or [src]
    carried = [p for p in sorted(src.iterdir()) if not p.name.startswith(".") and p not in pooled
               and (pooled or p.name in CARRIED or not p.is_dir())]
    items = []
    for root in roots:
        for cls in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if cls.name in CARRIED:
                carried.append(cls)
                continue
            for f in sorted(p for p in cls.iterdir() if p.is_file() and not p.name.startswith(".")):
                items.append((f, cls.name, f"{root.name}__{f.name}" if pooled else f.name))
    return items, carried


def split_dataset(src: Path, out: Path, opts: ImportOptions) -> dict:
    if not src.exists():
        raise DataError(f"{src} does not exist", hint="SRC is an ImageFolder, a Speech Commands folder or a data.yaml")
    if src.resolve() == out.resolve() or out.resolve().is_relative_to(src.resolve()):
        raise UsageError(f"--out {out} is inside SRC {src}", hint="write the new split to a folder of its own")
    if src.is_file() or (src / "data.yaml").is_file():
        return import_labels("yolo", src, out, replace(opts, resplit=True)).to_json()
    if out.exists() and any(out.iterdir()):
        raise UsageError(f"{out} exists and is not empty", hint="choose a new --out or delete it")
    items, carried = _class_items(src)
    if not items:
        raise DataError(f"{src} has no class folders with files",
                        hint="expected SRC/<class>/files or SRC/train/<class>/ + SRC/val/<class>/")
    groups, unmatched = group_keys([f.name for f, _, _ in items], opts.group_by)
    where = assign([c for _, c, _ in items], dict(opts.fractions), opts.seed, groups=groups)
    for split in ("train", *dict(opts.fractions)):
        missing = sorted({c for _, c, _ in items} - {c for (_, c, _), w in zip(items, where, strict=True) if w == split})
        if missing and (split == "train" or dict(opts.fractions)[split] > 0):
            raise DataError(f"the split left {split} without {', '.join(map(repr, missing[:5]))}"
                            + (f" (every file of a class shares a group of --group-by {opts.group_by!r})"
                               if groups else " (too few files)"),
                            hint="a class needs files on every side: use a finer --group-by, or add files")
    audio = all(f.suffix.lower() in AUDIO_EXTS for f, _, _ in items)
    with atomic_dir(out) as tmp:
        for (f, cls, name), split in zip(items, where, strict=True):
            copy_image(f, tmp / split / cls / name, opts.link)
        for p in carried:
            (shutil.copytree if p.is_dir() else shutil.copyfile)(p, tmp / p.name)
        counts = {s: dict(sorted(Counter(c for (_, c, _), w in zip(items, where, strict=True) if w == s).items()))
                  for s in SPLITS if s in where}
        result = {"source": str(src), "out": str(out), "kind": "speech commands" if audio else "imagefolder",
                  "seed": opts.seed, "group_by": opts.group_by, "groups": len(set(groups)) if groups else None,
                  "unmatched_names": unmatched, "files": dict(Counter(where)), "per_class": counts,
                  "carried": [p.name for p in carried]}
        verify_written("kws" if audio else "classify", tmp, out)
        write_json(tmp / "split.json", result)
    return result
