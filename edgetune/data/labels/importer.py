"""`edgetune data import`: an annotation tool's export → a checked YOLO data set or ImageFolder.

Read (one format module) → select/reorder/merge classes → keep the export's own splits or make a
seeded, stratified (optionally grouped) one → write under a temp name → check it with the same
loader `finetune` uses → swap it into place. Every image or box not written is in
`OUT/import.json` with where and why.
"""

from __future__ import annotations

import difflib
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from edgetune.data.labels.formats import FORMATS
from edgetune.data.labels.model import Box, ImportReport, LabelledImage, LabelSet
from edgetune.data.labels.source import copy_image
from edgetune.data.split import assign, group_keys
from edgetune.errors import DataError, UsageError
from edgetune.fsutil import atomic_dir, write_json, write_text

SPLIT_FOLDERS = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}


@dataclass(frozen=True)
class ImportOptions:
    classes: str | None = None  # "cat,dog,vehicle=car+truck": selection, order, merges
    fractions: tuple[tuple[str, float], ...] = (("val", 0.2),)
    seed: int = 0
    group_by: str | None = None
    link: bool = False
    strict: bool = False
    images: Path | None = None
    resplit: bool = False  # ignore the splits the export declares (`data split`)


def parse_classes(spec: str, known: list[str]) -> tuple[list[str], dict[str, str]]:
    """`--classes` → (new class order, old name → new name). `new=old1+old2` merges/renames;
    a class not named is dropped (and its boxes counted as skipped)."""
    order: list[str] = []
    mapping: dict[str, str] = {}
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        new, _, olds = item.partition("=")
        new = new.strip()
        for old in ([o.strip() for o in olds.split("+")] if olds else [new]):
            if old not in known:
                close = difflib.get_close_matches(old, known, n=2)
                raise UsageError(f"--classes: {old!r} is not a class of this export"
                                 + (f"; did you mean {' or '.join(map(repr, close))}?" if close else ""),
                                 hint="classes here: " + ", ".join(known[:20]))
            if old in mapping:
                raise UsageError(f"--classes: {old!r} is named twice")
            mapping[old] = new
        if new not in order:
            order.append(new)
    if not order:
        raise UsageError("--classes is empty", hint="e.g. --classes cat,dog or --classes vehicle=car+truck")
    return order, mapping


def _read(fmt: str, src: Path, opts: ImportOptions) -> LabelSet:
    """One export, or one per split when SRC holds train/ and val/ (or valid/) exports (Roboflow)."""
    reader = FORMATS.get(fmt).read
    subdirs = {SPLIT_FOLDERS[p.name]: p for p in sorted(src.iterdir()) if p.is_dir() and p.name in SPLIT_FOLDERS} \
        if src.is_dir() and fmt != "yolo" else {}
    if not ("train" in subdirs and "val" in subdirs):
        return reader(src, images=opts.images, strict=opts.strict)
    merged: LabelSet | None = None
    for split, folder in subdirs.items():
        part = reader(folder, images=opts.images, strict=opts.strict)
        for img in part.images:
            img.split = split
        if merged is None:
            merged = part
            continue
        if part.task != merged.task:
            raise DataError(f"{folder} holds {part.task} labels but the other splits {merged.task} labels")
        merged.images += part.images
        merged.skipped += part.skipped
        merged.notes += part.notes
        merged.clipped += part.clipped
        merged.classes += [c for c in part.classes if c not in merged.classes]
    assert merged is not None
    return merged


def _select(ls: LabelSet, spec: str | None) -> None:
    if spec is None:
        return
    order, mapping = parse_classes(spec, ls.classes)
    kept: list[LabelledImage] = []
    for img in ls.images:
        if ls.task == "classify":
            if img.label not in mapping:
                ls.skip("image", img.name, f"class {img.label!r} not selected by --classes")
                continue
            img.label = mapping[img.label]
        else:
            boxes = []
            for b in img.boxes:
                if b.label in mapping:
                    boxes.append(Box(mapping[b.label], b.x0, b.y0, b.x1, b.y1))
                else:
                    ls.skip("box", img.name, f"class {b.label!r} not selected by --classes")
            img.boxes = boxes
        kept.append(img)
    ls.images, ls.classes, ls.class_order = kept, order, "--classes"


def _strata(ls: LabelSet) -> list[str]:
    """Classification: the label. Detection: the image's rarest class (background images: '')."""
    if ls.task == "classify":
        return [str(i.label) for i in ls.images]
    freq = Counter(b.label for i in ls.images for b in i.boxes)
    return [min((b.label for b in i.boxes), key=lambda c: (freq[c], c)) if i.boxes else "" for i in ls.images]


def _splits(ls: LabelSet, opts: ImportOptions) -> tuple[list[str], str]:
    declared = [i.split for i in ls.images]
    if all(declared) and not opts.resplit:
        return [str(s) for s in declared], "as exported"
    keys, unmatched = group_keys([i.name for i in ls.images], opts.group_by)
    fractions = dict(opts.fractions)
    how = f"seeded ({opts.seed}), stratified" + (f", grouped by {opts.group_by!r}" if keys else "")
    if unmatched:
        how += f" ({unmatched} names unmatched: each its own group)"
    return assign(_strata(ls), fractions, opts.seed, groups=keys), how


def _check_class_names(ls: LabelSet) -> None:
    for c in ls.classes:
        if not c or "/" in c or "\\" in c or "\0" in c or c.startswith(".") or c != c.strip():
            raise DataError(f"class name {c!r} cannot be a folder name",
                            hint="rename it with --classes NEW=OLD,…")


def _yolo_rows(img: LabelledImage, index: dict[str, int]) -> str:
    from edgetune.data.yolo import yolo_lines

    rows = yolo_lines([(index[b.label], (b.x0, b.y0, b.x1, b.y1)) for b in img.boxes], img.width, img.height)
    return "".join(r + "\n" for r in rows)


def _write(ls: LabelSet, splits: list[str], tmp: Path, link: bool) -> None:
    import yaml

    index = {c: k for k, c in enumerate(ls.classes)}
    taken: dict[Path, str] = {}
    for img, split in zip(ls.images, splits, strict=True):
        if ls.task == "classify":
            dst = tmp / split / str(img.label) / img.name.replace("/", "__")
        else:
            dst = tmp / "images" / split / img.name
        if dst in taken:
            raise DataError(f"two images would both be written as {dst.relative_to(tmp)} "
                            f"({taken[dst]} and {img.file})", hint="rename one of them in the export")
        taken[dst] = str(img.file)
        copy_image(img.file, dst, link)
        if ls.task == "detect":
            lbl = (tmp / "labels" / split / img.name).with_suffix(".txt")
            lbl.parent.mkdir(parents=True, exist_ok=True)
            lbl.write_text(_yolo_rows(img, index))
    if ls.task == "detect":
        spec = {"path": ".", **{s: f"images/{s}" for s in sorted(set(splits), key=["train", "val", "test"].index)},
                "names": dict(enumerate(ls.classes))}
        write_text(tmp / "data.yaml", yaml.safe_dump(spec, sort_keys=False, allow_unicode=True))


def verify_written(task: str, tmp: Path, out: Path) -> None:
    """The written set, read back by the loader `finetune` uses (every label row checked); its
    error names the final folder, not the temp one it was built in."""
    from edgetune.data.imagefolder import scan_imagefolder
    from edgetune.data.speech_commands import scan_kws
    from edgetune.data.yolo import load_yolo_dataset

    try:
        {"detect": lambda: load_yolo_dataset(tmp / "data.yaml"), "classify": lambda: scan_imagefolder(tmp),
         "kws": lambda: scan_kws(tmp)}[task]()
    except DataError as exc:
        raise DataError(exc.message.replace(str(tmp), str(out)), hint=exc.hint) from None


def import_labels(fmt: str, src: Path, out: Path, opts: ImportOptions) -> ImportReport:
    t0 = time.perf_counter()
    FORMATS.get(fmt)  # unknown: one line with close matches
    if not src.exists():
        raise DataError(f"{src} does not exist", hint="SRC is the export file or the folder it came in")
    if out.exists() and any(out.iterdir()):
        raise UsageError(f"{out} exists and is not empty", hint="choose a new --out or delete it")
    ls = _read(fmt, src, opts)
    _select(ls, opts.classes)
    if not ls.images:
        raise DataError(f"{src}: no image could be imported ({len(ls.skipped)} skipped)",
                        hint="see the reasons with --json; are the images beside the export (or --images)?")
    if ls.task == "classify":
        _check_class_names(ls)
    splits, how = _splits(ls, opts)
    if "val" not in splits:
        raise DataError(f"{src}: no image went to the val split ({len(ls.images)} images)",
                        hint="import more images, or raise --val")
    if ls.clipped:
        ls.notes.append(f"{ls.clipped} boxes overshot the image and were clipped to it")
    ls.notes.append(f"split: {how}")
    per_class: dict[str, Counter] = {}
    for img, s in zip(ls.images, splits, strict=True):
        per_class.setdefault(s, Counter()).update([b.label for b in img.boxes] if ls.task == "detect" else [img.label])
    with atomic_dir(out) as tmp:
        _write(ls, splits, tmp, opts.link)
        verify_written(ls.task, tmp, out)
        report = ImportReport(
            source=str(src), format=fmt, task=ls.task, classes=ls.classes, class_order=ls.class_order,
            images=dict(Counter(splits)), boxes={s: sum(len(i.boxes) for i, t in zip(ls.images, splits, strict=True) if t == s)
                                                  for s in dict(Counter(splits))} if ls.task == "detect" else {},
            per_class={s: {c: c_.get(c, 0) for c in ls.classes} for s, c_ in per_class.items()},
            skipped_images=sum(s.kind == "image" for s in ls.skipped),
            skipped_boxes=sum(s.kind == "box" for s in ls.skipped),
            skipped=[{"kind": s.kind, "where": s.where, "reason": s.reason} for s in ls.skipped],
            notes=ls.notes, linked=opts.link, seconds=round(time.perf_counter() - t0, 3))
        write_json(tmp / "import.json", report.to_json())
    return report


