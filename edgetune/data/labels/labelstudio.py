"""Label Studio's JSON export (a list of tasks, each with `annotations[].result[]`).

Rectangles (`rectanglelabels`) give detection; `choices` give classification. Positions are
**percentages** of the image (x, y of the top-left corner, width, height), so pixels are
`x / 100 * original_width`. A `rotation` other than 0 is refused. Label Studio stores uploads as
`/data/upload/<project>/<8 hex>-<name>`: images are found by that base name (with and without
the prefix) under the export's folder or --images. The export carries no label list, so the
class order is the sorted names. A task with several annotations uses the first that was not
cancelled, and the report counts those tasks.
"""

from __future__ import annotations

import json
import re
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from edgetune.data.labels.model import LabelledImage, LabelSet
from edgetune.data.labels.source import (
    ImageFinder,
    copy_image,
    find_export,
    image_size,
    load_json,
    locate,
    number,
)
from edgetune.errors import DataError
from edgetune.untrusted import shown

UPLOAD_PREFIX = re.compile(r"^[0-9a-f]{8}-")


def _base_name(url: Any, where: str) -> str:
    if not isinstance(url, str) or not url:
        raise DataError(f"{where}: data.image is {shown(url)}, not an image URL or path")
    parsed = urlparse(url)
    path = parse_qs(parsed.query).get("d", [parsed.path])[0]  # /data/local-files/?d=dir/x.jpg
    base = PurePosixPath(unquote(path).replace("\\", "/")).name
    if not base or base in (".", ".."):
        raise DataError(f"{where}: data.image {shown(url)} names no file")
    return base


def _find(finder: ImageFinder, base: str, where: str) -> Path | None:
    for name in dict.fromkeys((base, UPLOAD_PREFIX.sub("", base))):
        hits = finder.find_base(name)
        if len(hits) > 1:
            raise DataError(f"{where}: {len(hits)} files are named {name} ({hits[0]}, {hits[1]})",
                            hint="pass --images with the one folder the project's images came from")
        if hits:
            return hits[0]
    return None


def read(src: Path, *, images: Path | None = None, strict: bool = False) -> LabelSet:
    path = find_export(src, ("*.json",), "Label Studio JSON export")
    tasks = load_json(path)
    if not isinstance(tasks, list):
        raise DataError(f"{path} is not a Label Studio JSON export (a list of tasks)",
                        hint="export with 'JSON' (not JSON-MIN or CSV) in Label Studio")
    finder = ImageFinder([images] if images else [path.parent / "images", path.parent])
    ls = LabelSet(task="detect", classes=[], class_order="sorted names (Label Studio exports no label list)",
                  images=[])
    kinds: set[str] = set()
    several = 0
    for i, task in enumerate(tasks):
        if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
            raise DataError(f"{path.name}: task #{i} is {shown(task)}, not a task with 'data'")
        where = f"{path.name}: task id {shown(task.get('id', i))}"
        data = task["data"]
        url = data.get("image", next(iter(data.values())) if len(data) == 1 else None)
        base = _base_name(url, where)
        file = locate(_find(finder, base, where), base, where, strict, ls.skip)
        anns = task.get("annotations") or []
        if not isinstance(anns, list):
            raise DataError(f"{where}: 'annotations' is {shown(anns)}, not a list")
        anns = [a for a in anns if isinstance(a, dict) and not a.get("was_cancelled")]
        several += len(anns) > 1
        if file is None:
            continue
        if not anns:
            ls.skip("image", where, "no annotation (or only cancelled ones)")
            continue
        img = LabelledImage(UPLOAD_PREFIX.sub("", base), file)
        choices: list[str] = []
        results = anns[0].get("result") or []
        if not isinstance(results, list):
            raise DataError(f"{where}: 'result' is {shown(results)}, not a list")
        for k, r in enumerate(results):
            at = f"{where} result #{k}" + (f" (id {r.get('id')})" if isinstance(r, dict) and r.get("id") else "")
            if not isinstance(r, dict) or not isinstance(r.get("value"), dict):
                raise DataError(f"{at}: {shown(r)} is not a result with a 'value'")
            v, kind = r["value"], r.get("type")
            if kind == "choices":
                kinds.add("classify")
                found = v.get("choices")
                if not isinstance(found, list) or not all(isinstance(c, str) for c in found):
                    raise DataError(f"{at}: choices {shown(found)} is not a list of labels")
                choices += found
            elif kind == "rectanglelabels":
                kinds.add("detect")
                if img.width is None:
                    img.width, img.height = ((int(number(r["original_width"], at, "original_width")),
                                              int(number(r["original_height"], at, "original_height")))
                                             if r.get("original_width") else image_size(file))
                labels = v.get("rectanglelabels")
                if not isinstance(labels, list) or len(labels) != 1 or not isinstance(labels[0], str):
                    raise DataError(f"{at}: rectanglelabels {shown(labels)} is not one label")
                if number(v.get("rotation", 0), at, "rotation"):
                    raise DataError(f"{at}: rotated box ({v['rotation']}°); edgetune trains axis-aligned boxes",
                                    hint="un-rotate it in Label Studio, or re-draw it as an axis-aligned box")
                x, y, w, h = (number(v.get(key), at, key) for key in ("x", "y", "width", "height"))
                sx, sy = img.width / 100, img.height / 100
                ls.add_box(img, labels[0], x * sx, y * sy, (x + w) * sx, (y + h) * sy, at)
            else:
                ls.skip("box", at, f"a {kind!s}, not a rectangle or a choice")
        if len(set(choices)) > 1:
            ls.skip("image", where, f"{len(set(choices))} choices for one image ({', '.join(sorted(set(choices)))})")
            continue
        img.label = choices[0] if choices else None
        if img.width is None:
            img.width, img.height = image_size(file)
        ls.images.append(img)
    if len(kinds) > 1:
        raise DataError(f"{path}: mixes rectangles and choices", hint="export one task type at a time")
    ls.task = "classify" if kinds == {"classify"} else "detect"
    if ls.task == "classify":
        for img in [i for i in ls.images if i.label is None]:
            ls.skip("image", img.name, "no choice")
        ls.images = [i for i in ls.images if i.label is not None]
    ls.classes = sorted({b.label for i in ls.images for b in i.boxes} | {i.label for i in ls.images if i.label})
    if several:
        ls.notes.append(f"{several} tasks had several annotations; the first not cancelled was used")
    return ls


def write(ls: LabelSet, out: Path) -> Path:
    """OUT/export.json + OUT/images/NAME, with Label Studio's upload URLs."""
    tasks = []
    for i, img in enumerate(ls.images, 1):
        copy_image(img.file, out / "images" / PurePosixPath(img.name).name, link=False)
        res: list[dict] = []
        if ls.task == "classify":
            res.append({"type": "choices", "from_name": "choice", "to_name": "image", "value": {"choices": [img.label]}})
        for b in img.boxes:
            res.append({"id": f"r{len(res)}", "type": "rectanglelabels", "from_name": "label", "to_name": "image",
                        "original_width": img.width, "original_height": img.height, "image_rotation": 0,
                        "value": {"x": b.x0 / img.width * 100, "y": b.y0 / img.height * 100,
                                  "width": (b.x1 - b.x0) / img.width * 100, "height": (b.y1 - b.y0) / img.height * 100,
                                  "rotation": 0, "rectanglelabels": [b.label]}})
        tasks.append({"id": i, "data": {"image": f"/data/upload/1/{PurePosixPath(img.name).name}"},
                      "annotations": [{"id": i, "was_cancelled": False, "result": res}]})
    target = out / "export.json"
    target.write_text(json.dumps(tasks))
    return target
