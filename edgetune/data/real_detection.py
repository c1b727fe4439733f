"""Real labelled detection sets that arrive through a package index, written as YOLO data sets.

- aerial-trees: NEON aerial RGB tiles with the tree crowns the DeepForest team annotated (PyPI
  `deepforest==2.1.0`, Pascal VOC XML; NEON data CC0, deepforest MIT), cut into square tiles.
  Train and val come from different NEON plots (whole source images), so val measures crowns the
  detector never saw the surroundings of.
- nuclei: a fluorescence microscopy image of the 2018 Data Science Bowl with its hand-drawn
  nucleus masks (PyPI `stardist==0.9.1`, `stardist/data/images/{img2d,mask2d}.tif`; DSB 2018 data
  CC0, stardist BSD-3-Clause). A box is the extent of one mask label. The bottom-right quarter is
  val; training tiles come only from the other three quarters (they overlap each other, never val).

A box cut by a tile edge is kept when at least half of it lies inside the tile (clipped to it),
dropped otherwise; the counts are returned.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from edgetune.data.real_sets import TREES_CARRIER, tree_tiles
from edgetune.data.yolo import yolo_lines
from edgetune.errors import DataError
from edgetune.fsutil import atomic_dir
from edgetune.registry import Registry

MIN_VISIBLE = 0.5  # a box cut by a tile edge counts when this much of it is inside


@dataclass(frozen=True)
class Tile:
    """One written image: its name, split, the source image and the window's corner (the side is
    the writer's)."""

    name: str
    split: str
    image: Image.Image
    boxes: np.ndarray  # xyxy, source pixels
    x0: int
    y0: int


@dataclass(frozen=True)
class DetSet:
    name: str
    description: str
    source: str
    licence: str
    classes: tuple[str, ...]
    default_tile: int
    tiles: Callable[[int], Iterator[Tile]]  # tile side → tiles


DET_SETS: Registry[DetSet] = Registry("real detection set", list_command="edgetune data real-det --list")


def tile_boxes(boxes: np.ndarray, x0: int, y0: int, side: int) -> tuple[np.ndarray, int]:
    """Boxes (xyxy, source pixels) clipped to the tile at (x0, y0) in tile pixels, and how many
    crossed the edge with less than MIN_VISIBLE inside (dropped)."""
    if not len(boxes):
        return boxes.reshape(0, 4), 0
    clipped = np.clip(boxes - [x0, y0, x0, y0], 0, side)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    inside = (clipped[:, 2] - clipped[:, 0]) * (clipped[:, 3] - clipped[:, 1])
    touching = inside > 0
    keep = touching & (inside >= MIN_VISIBLE * area)
    return clipped[keep], int((touching & ~keep).sum())


def _grid(length: int, side: int, stride: int) -> range:
    return range(0, max(1, length - side + 1), stride)


def _tree_tiles(side: int) -> Iterator[Tile]:
    """Non-overlapping tiles of every annotated NEON plot; TREE_TILES' val and test plots validate."""
    for name, split, img, boxes in tree_tiles():
        split = "train" if split == "train" else "val"
        for y0 in _grid(img.height, side, side):
            for x0 in _grid(img.width, side, side):
                yield Tile(name, split, img, boxes, x0, y0)


NUCLEI_CARRIER = "stardist==0.9.1"
NUCLEI_FILES = {"img2d": "f9ccc1571b92c861ff87e28463068b43f61bd47357ed0503f711e5cd1eb97750",
                "mask2d": "59ad5e820b7982ca9d13e946fa6e7f64e2714899e00a2ae6c69aa79aad53d46f"}


def mask_boxes(mask: np.ndarray) -> np.ndarray:
    """xyxy pixel extent (exclusive max) of every non-zero label of an instance mask."""
    ids = np.unique(mask)
    ids = ids[ids != 0]
    boxes = []
    for i in ids:
        ys, xs = np.nonzero(mask == i)
        boxes.append((xs.min(), ys.min(), xs.max() + 1, ys.max() + 1))
    return np.array(boxes, dtype=np.float64).reshape(-1, 4)


def _nuclei_tiles(side: int) -> Iterator[Tile]:
    """Val: the bottom-right quarter. Train: tiles at a quarter-tile stride that stay out of it."""
    from edgetune.assets import carrier_file

    img, mask = (np.array(Image.open(carrier_file(NUCLEI_CARRIER, f"stardist/data/images/{k}.tif", sha)))
                 for k, sha in NUCLEI_FILES.items())
    if img.shape != mask.shape or img.ndim != 2:
        raise DataError(f"{NUCLEI_CARRIER}: image {img.shape} and mask {mask.shape} do not match")
    gray = np.clip(img.astype(np.float64) * 255.0 / max(1, int(img.max())), 0, 255).astype(np.uint8)
    rgb = Image.fromarray(np.stack([gray] * 3, axis=-1))
    boxes = mask_boxes(mask)
    h, w = gray.shape
    vx, vy = w // 2, h // 2
    if side > min(vx, vy):
        raise DataError(f"nuclei: tile side {side} exceeds the val quarter ({vx}x{vy} px)")
    for y0 in _grid(vy, side, side):
        for x0 in _grid(vx, side, side):
            yield Tile("img2d", "val", rgb, boxes, vx + x0, vy + y0)
    for y0 in _grid(h, side, side // 4):
        for x0 in _grid(w, side, side // 4):
            if x0 + side > vx and y0 + side > vy:
                continue  # would overlap the val quarter
            yield Tile("img2d", "train", rgb, boxes, x0, y0)


DET_SETS.register("aerial-trees", DetSet(
    "aerial-trees", "tree crowns in NEON aerial RGB, 1 class, train and val from different plots",
    f"PyPI {TREES_CARRIER} deepforest/data/*.png + Pascal VOC *.xml", "NEON data CC0; deepforest MIT",
    ("tree",), 320, _tree_tiles))
DET_SETS.register("nuclei", DetSet(
    "nuclei", "cell nuclei in fluorescence microscopy (2018 Data Science Bowl), 1 class, val = one image quarter",
    f"PyPI {NUCLEI_CARRIER} stardist/data/images/img2d.tif + mask2d.tif (instance masks → boxes)",
    "DSB 2018 data CC0; stardist BSD-3-Clause", ("nucleus",), 256, _nuclei_tiles))


def write_real_detection(name: str, out: Path, *, side: int | None = None) -> dict:
    """OUT/images/{train,val}/*.jpg, OUT/labels/{train,val}/*.txt, OUT/data.yaml and
    OUT/provenance.json for the registered set `name`."""
    import yaml

    spec = DET_SETS.get(name)
    side = side or spec.default_tile
    out = Path(out)
    counts = {"train": 0, "val": 0}
    boxes_n = {"train": 0, "val": 0}
    cut = 0
    with atomic_dir(out) as tmp:
        for split in counts:
            (tmp / "images" / split).mkdir(parents=True)
            (tmp / "labels" / split).mkdir(parents=True)
        for t in spec.tiles(side):
            kept, dropped = tile_boxes(t.boxes, t.x0, t.y0, side)
            cut += dropped
            stem = f"{t.name}_{t.x0}_{t.y0}"
            t.image.crop((t.x0, t.y0, t.x0 + side, t.y0 + side)).save(tmp / "images" / t.split / f"{stem}.jpg",
                                                                      quality=95)
            (tmp / "labels" / t.split / f"{stem}.txt").write_text(
                "".join(line + "\n" for line in yolo_lines([(0, b) for b in kept], side, side)))
            counts[t.split] += 1
            boxes_n[t.split] += len(kept)
        yaml_spec = {"path": str(out.resolve()), "train": "images/train", "val": "images/val",
                     "names": dict(enumerate(spec.classes))}
        (tmp / "data.yaml").write_text(yaml.safe_dump(yaml_spec, sort_keys=False))
        (tmp / "provenance.json").write_text(json.dumps({
            "set": name, "source": spec.source, "licence": spec.licence, "side": side,
            "boxes_cut_by_tile_edges_dropped": cut}, indent=1))
    return {"set": name, "out": str(out), "data_yaml": str(out / "data.yaml"), "train": counts["train"],
            "val": counts["val"], "boxes_train": boxes_n["train"], "boxes_val": boxes_n["val"],
            "dropped_at_edges": cut, "source": spec.source, "licence": spec.licence}
