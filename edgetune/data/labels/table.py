"""Classification labels as a table: a CSV with a header (`file,label`; also `filename`/`image`/
`path` and `class`/`category`), or JSON as a list of `{"file": …, "label": …}` or a mapping
`{file: label}`. File names are relative to the table's folder (or --images)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from edgetune.data.labels.model import LabelledImage, LabelSet
from edgetune.data.labels.source import (
    MAX_ANNOTATION_BYTES,
    ImageFinder,
    find_export,
    load_json,
    locate,
    relative_name,
)
from edgetune.errors import DataError
from edgetune.untrusted import read_text, shown

FILE_COLUMNS = ("file", "filename", "image", "path")
LABEL_COLUMNS = ("label", "class", "category")


def _column(header: list[str], options: tuple[str, ...], path: Path) -> int:
    low = [h.strip().lower() for h in header]
    for o in options:
        if o in low:
            return low.index(o)
    raise DataError(f"{path}: header {shown(header)} has no {options[0]!r} column",
                    hint=f"the first row names the columns: {options[0]} (or {', '.join(options[1:])}) and label")


def _rows(path: Path) -> list[tuple[str, object, str]]:
    """(where, file, label) rows from a CSV or a JSON table."""
    if path.suffix.lower() == ".json":
        data = load_json(path)
        if isinstance(data, dict):
            return [(f"{path.name}: key {shown(k)}", k, v) for k, v in data.items()]
        if isinstance(data, list):
            out = []
            for i, r in enumerate(data):
                if not isinstance(r, dict):
                    raise DataError(f"{path.name}: entry #{i} is {shown(r)}, not an object with file and label")
                f = next((r[k] for k in FILE_COLUMNS if k in r), None)
                lbl = next((r[k] for k in LABEL_COLUMNS if k in r), None)
                out.append((f"{path.name}: entry #{i}", f, lbl))
            return out
        raise DataError(f"{path} is neither a list of {{file, label}} nor a {{file: label}} mapping")
    text = read_text(path, limit=MAX_ANNOTATION_BYTES, what="label table", error=DataError)
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header:
        raise DataError(f"{path} is empty", hint="a header row `file,label`, then one row per image")
    fi, li = _column(header, FILE_COLUMNS, path), _column(header, LABEL_COLUMNS, path)
    return [(f"{path.name}:{n}", r[fi] if fi < len(r) else None, r[li].strip() if li < len(r) else None)
            for n, r in enumerate(reader, 2) if any(c.strip() for c in r)]


def read(src: Path, *, images: Path | None = None, strict: bool = False) -> LabelSet:
    src = find_export(src, ("*.csv", "*.json"), "label table")
    ls = LabelSet(task="classify", classes=[], class_order="sorted names", images=[])
    finder = ImageFinder([images] if images else [src.parent, src.parent / "images"])
    seen: set[str] = set()
    for where, f, label in _rows(src):
        name = relative_name(f, where)
        if not isinstance(label, str) or not label.strip():
            raise DataError(f"{where}: label {shown(label)} is empty or not text")
        if name in seen:
            raise DataError(f"{where}: {name} is listed twice", hint="one row per image")
        seen.add(name)
        file = locate(finder.find(name), name, where, strict, ls.skip)
        if file is not None:
            ls.images.append(LabelledImage(name, file, label=label.strip()))
    ls.classes = sorted({i.label for i in ls.images if i.label})
    return ls


def write(ls: LabelSet, out: Path) -> Path:
    """OUT/labels.csv + the images beside it."""
    from edgetune.data.labels.source import copy_image

    rows = io.StringIO()
    w = csv.writer(rows)
    w.writerow(["file", "label"])
    for img in ls.images:
        copy_image(img.file, out / img.name, link=False)
        w.writerow([img.name, img.label])
    target = out / "labels.csv"
    target.write_text(rows.getvalue())
    return target


