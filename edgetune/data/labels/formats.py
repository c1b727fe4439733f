"""The registry of annotation formats: one module each, with `read` and (for round trips) `write`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edgetune.data.labels import coco, cvat, labelstudio, table, voc, yolo_format
from edgetune.data.labels.model import LabelSet
from edgetune.registry import Registry


@dataclass(frozen=True)
class Format:
    name: str
    read: Callable[..., LabelSet]  # (src, *, images, strict) -> LabelSet
    write: Callable[[LabelSet, Path], Path] | None
    tasks: tuple[str, ...]
    description: str


FORMATS: Registry[Format] = Registry("annotation format", list_command="edgetune data import --help")
for _f in (
    Format("coco", coco.read, coco.write, ("detect", "classify"), "COCO JSON (bbox: x, y, w, h in pixels)"),
    Format("voc", voc.read, voc.write, ("detect",), "Pascal VOC XML (xmin..xmax: 1-based inclusive pixels)"),
    Format("cvat", cvat.read, cvat.write, ("detect",), "CVAT for images 1.1 XML (xtl ytl xbr ybr)"),
    Format("labelstudio", labelstudio.read, labelstudio.write, ("detect", "classify"),
           "Label Studio JSON export (percentages; rectangles or choices)"),
    Format("yolo", yolo_format.read, None, ("detect",), "an ultralytics data.yaml (re-audit, re-split)"),
    Format("csv", table.read, table.write, ("classify",), "a file,label table (.csv or .json)"),
):
    FORMATS.register(_f.name, _f)
