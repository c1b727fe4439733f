"""COCO JSON (CVAT, Roboflow, Label Studio and most tools export it): boxes are `[x, y, w, h]`
in pixels from the top-left corner, the convention `LabelSet` keeps, so nothing is shifted.

Detection when any annotation has a `bbox`; otherwise classification (one category per image).
Crowd regions (`iscrowd: 1`) are not objects to detect; they are skipped and counted, as
ultralytics' own converter skips them (silently, there).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgetune.data.labels.model import LabelledImage, LabelSet
from edgetune.data.labels.source import (
    ImageFinder,
    find_export,
    image_size,
    load_json,
    locate,
    number,
    positive_size,
    relative_name,
)
from edgetune.errors import DataError
from edgetune.untrusted import shown

ANNOTATION_GLOBS = ("*.json", "annotations/*.json")


def _list(data: dict, key: str, path: Path, required: bool = True) -> list:
    value = data.get(key, None if required else [])
    if not isinstance(value, list):
        raise DataError(f"{path}: '{key}' is {'missing' if value is None else 'not a list'}",
                        hint="a COCO file has images, annotations and categories lists")
    return value


def _entry(item: Any, path: Path, kind: str, i: int) -> tuple[dict, str]:
    if not isinstance(item, dict) or not _is_id(item.get("id")):
        raise DataError(f"{path}: {kind} #{i} is {shown(item)}, not an object with an id (a number or a string)")
    return item, f"{path.name}: {kind} id {shown(item['id'])}"


def _is_id(value: Any) -> bool:
    return isinstance(value, (int, str)) and not isinstance(value, bool)


def read(src: Path, *, images: Path | None = None, strict: bool = False) -> LabelSet:
    path = find_export(src, ANNOTATION_GLOBS, "COCO JSON file")
    data = load_json(path)
    if not isinstance(data, dict):
        raise DataError(f"{path} is not a COCO file (a JSON object)", hint="is this the tool's COCO export?")
    cats: dict[Any, str] = {}
    for i, c in enumerate(_list(data, "categories", path)):
        c, where = _entry(c, path, "category", i)
        if not isinstance(c.get("name"), str) or not c["name"]:
            raise DataError(f"{where}: name {shown(c.get('name'))} is not a name")
        if c["id"] in cats or c["name"] in cats.values():
            raise DataError(f"{where}: category id or name {c['name']!r} appears twice")
        cats[c["id"]] = c["name"]
    anns = _list(data, "annotations", path, required=False)
    detect = any(isinstance(a, dict) and "bbox" in a for a in anns)
    ls = LabelSet(task="detect" if detect else "classify", classes=[cats[k] for k in _ordered(cats)],
                  class_order="categories (by id)", images=[])
    finder = ImageFinder([images] if images else [path.parent, path.parent / "images", path.parent.parent / "images",
                                                  path.parent.parent])
    by_id: dict[Any, LabelledImage | None] = {}
    for i, im in enumerate(_list(data, "images", path)):
        im, where = _entry(im, path, "image", i)
        if im["id"] in by_id:
            raise DataError(f"{where} appears twice")
        name = relative_name(im.get("file_name"), where)
        file = locate(finder.find(name), name, where, strict, ls.skip)
        w, h = (positive_size(im.get("width"), im.get("height"), where) if im.get("width") or im.get("height")
                else image_size(file) if file else (None, None))
        by_id[im["id"]] = LabelledImage(name, file, w, h) if file else None
    labels: dict[Any, set[str]] = {}
    for i, a in enumerate(anns):
        a, where = _entry(a, path, "annotation", i)
        if not _is_id(a.get("image_id")) or a["image_id"] not in by_id:
            raise DataError(f"{where}: image_id {shown(a.get('image_id'))} is not in 'images'")
        if not _is_id(a.get("category_id")) or a["category_id"] not in cats:
            raise DataError(f"{where}: category_id {shown(a.get('category_id'))} is not in 'categories'")
        img, label = by_id[a["image_id"]], cats[a["category_id"]]
        if img is None:
            ls.skip("box", where, "its image was skipped")
            continue
        if not detect:
            labels.setdefault(a["image_id"], set()).add(label)
            continue
        if a.get("iscrowd"):
            ls.skip("box", where, "crowd region (iscrowd=1), not one object")
            continue
        bbox = a.get("bbox")
        if not isinstance(bbox, list) or len(bbox) != 4:
            raise DataError(f"{where}: bbox {shown(bbox)} is not [x, y, width, height]")
        rotation = (a.get("attributes") or {}).get("rotation", 0) if isinstance(a.get("attributes"), dict) else 0
        if number(rotation, where, "rotation"):
            raise DataError(f"{where}: rotated box ({rotation}°); edgetune trains axis-aligned boxes",
                            hint="un-rotate it in the tool, or re-draw it as an axis-aligned box")
        x, y, w, h = (number(v, where, "bbox value") for v in bbox)
        ls.add_box(img, label, x, y, x + w, y + h, where)
    for image_id, img in by_id.items():
        if img is None:
            continue
        if not detect:
            found = labels.get(image_id, set())
            if len(found) != 1:
                ls.skip("image", f"{path.name}: image id {shown(image_id)}",
                        f"{len(found)} categories for one image ({', '.join(sorted(found)) or 'none'})")
                continue
            img.label = found.pop()
        ls.images.append(img)
    return ls


def _ordered(cats: dict[Any, str]) -> list[Any]:
    """Category ids in numeric order (the order a COCO consumer assigns class indices)."""
    try:
        return sorted(cats)
    except TypeError:  # mixed id types: keep the file's order
        return list(cats)


def write(ls: LabelSet, out: Path) -> Path:
    """`OUT/annotations.json` with ids from 1 (CVAT's and pycocotools' habit) and `file_name`
    relative to OUT/, where the images are copied."""
    from edgetune.data.labels.source import copy_image

    cat_id = {c: i + 1 for i, c in enumerate(ls.classes)}
    images, anns = [], []
    for i, img in enumerate(ls.images, 1):
        copy_image(img.file, out / img.name, link=False)
        images.append({"id": i, "file_name": img.name, "width": img.width, "height": img.height})
        if ls.task == "classify":
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": cat_id[img.label]})
        for b in img.boxes:
            w, h = b.x1 - b.x0, b.y1 - b.y0
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": cat_id[b.label],
                         "bbox": [b.x0, b.y0, w, h], "area": w * h, "iscrowd": 0})
    doc = {"images": images, "annotations": anns,
           "categories": [{"id": i, "name": c, "supercategory": ""} for c, i in cat_id.items()]}
    target = out / "annotations.json"
    target.write_text(json.dumps(doc))
    return target
