"""The one typed form every annotation format is read into, and the import report.

Boxes are held in pixels, x0 y0 x1 y1, continuous coordinates with the image's top-left corner at
(0, 0) and its bottom-right at (width, height): COCO's convention. Each reader converts its own
convention into this once (VOC's 1-based inclusive pixel indices, CVAT's corners, Label Studio's
percentages), so the conversions live in one place per format and nowhere else.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

Task = Literal["detect", "classify"]
CLIP_TOLERANCE = 1e-3  # pixels: overshoot below this is float rounding (6-decimal YOLO labels), not a tool's


@dataclass(frozen=True)
class Box:
    label: str
    x0: float
    y0: float
    x1: float
    y1: float


@dataclass
class LabelledImage:
    """One image as the tool exported it. `file` is the resolved image on disk (None: missing);
    `name` is the path the export gave (relative, '/'-separated), which names it in the output."""

    name: str
    file: Path | None
    width: int | None = None
    height: int | None = None
    boxes: list[Box] = field(default_factory=list)
    label: str | None = None  # classification
    split: str | None = None  # a split the export itself declared (a YOLO set's train/val)


@dataclass(frozen=True)
class Skipped:
    """Something not imported, and why: never dropped silently."""

    kind: Literal["image", "box"]
    where: str  # file and entry: "instances.json: annotation id 17"
    reason: str


@dataclass
class LabelSet:
    task: Task
    classes: list[str]  # in the order the export declares (or sorted, see class_order)
    class_order: str  # where the order came from: "categories", "labels", "sorted names", …
    images: list[LabelledImage]
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # conversions worth knowing (difficult boxes kept…)

    clipped: int = 0  # boxes that overshot the image and were clipped to it

    def skip(self, kind: Literal["image", "box"], where: str, reason: str) -> None:
        self.skipped.append(Skipped(kind, where, reason))

    def add_box(self, image: LabelledImage, label: str, x0: float, y0: float, x1: float, y1: float,
                where: str) -> None:
        """Append a pixel box, clipped to the image (tools round past the edge); a box with no
        area, or none left inside the image, is skipped and named instead."""
        w, h = image.width or 0, image.height or 0
        if x1 <= x0 or y1 <= y0:
            return self.skip("box", where, f"zero or negative width/height ({x0:g},{y0:g})-({x1:g},{y1:g})")
        c = (max(0.0, x0), max(0.0, y0), min(float(w), x1), min(float(h), y1))
        if c[2] <= c[0] or c[3] <= c[1]:
            return self.skip("box", where, f"entirely outside the {w}x{h} image")
        if max(abs(a - b) for a, b in zip(c, (x0, y0, x1, y1), strict=True)) > CLIP_TOLERANCE:
            self.clipped += 1
            image.boxes.append(Box(label, *c))
        else:  # a rounding hair past the edge: kept exactly, so a round trip changes no digit
            image.boxes.append(Box(label, x0, y0, x1, y1))


@dataclass
class ImportReport:
    """`OUT/import.json`: what came in, what went out, and every item that did not."""

    source: str
    format: str
    task: Task
    classes: list[str]
    class_order: str
    images: dict[str, int]  # split → images written
    boxes: dict[str, int]  # split → boxes written (detection)
    per_class: dict[str, dict[str, int]]  # split → class → boxes (detect) or images (classify)
    skipped_images: int
    skipped_boxes: int
    skipped: list[dict[str, str]]  # every one, with where and why
    notes: list[str]
    linked: bool
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
