"""A real labelled detection set that arrives through a package index: NEON aerial RGB tiles with
the tree crowns the DeepForest team annotated (PyPI `deepforest==2.1.0`, Pascal VOC XML; NEON data
CC0, deepforest MIT), cut into square tiles as a YOLO data set.

Train and val come from different NEON plots (whole source images), so val measures crowns the
detector never saw the surroundings of. A crown cut by a tile edge is kept when at least half of
it lies inside the tile (clipped to it), dropped otherwise; the counts are returned.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from edgetune.data.objects_on_photos import yolo_lines
from edgetune.data.real_sets import TREE_TILES, TREES_CARRIER, tree_tiles
from edgetune.fsutil import atomic_dir

MIN_VISIBLE = 0.5  # a crown cut by a tile edge counts when this much of it is inside


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


def write_aerial_trees(out: Path, *, side: int = 320) -> dict:
    """OUT/images/{train,val}/*.jpg, OUT/labels/{train,val}/*.txt, OUT/data.yaml (one class:
    tree). TREE_TILES' train plot trains; its val and test plots validate."""
    import yaml

    out = Path(out)
    counts = {"train": 0, "val": 0}
    boxes_n = {"train": 0, "val": 0}
    cut = 0
    with atomic_dir(out) as tmp:
        for split in counts:
            (tmp / "images" / split).mkdir(parents=True)
            (tmp / "labels" / split).mkdir(parents=True)
        for name, split, img, boxes in tree_tiles():
            split = "train" if split == "train" else "val"
            for y0 in range(0, max(1, img.height - side + 1), side):
                for x0 in range(0, max(1, img.width - side + 1), side):
                    tile = img.crop((x0, y0, x0 + side, y0 + side))
                    kept, dropped = tile_boxes(boxes, x0, y0, side)
                    cut += dropped
                    stem = f"{name}_{x0}_{y0}"
                    tile.save(tmp / "images" / split / f"{stem}.jpg", quality=95)
                    (tmp / "labels" / split / f"{stem}.txt").write_text(
                        "".join(line + "\n" for line in yolo_lines([(0, b) for b in kept], side, side)))
                    counts[split] += 1
                    boxes_n[split] += len(kept)
        spec = {"path": str(out.resolve()), "train": "images/train", "val": "images/val", "names": {0: "tree"}}
        (tmp / "data.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
        (tmp / "provenance.json").write_text(json.dumps({
            "source": f"PyPI {TREES_CARRIER} deepforest/data/*.png + Pascal VOC *.xml",
            "license": "NEON data CC0; deepforest MIT", "tiles": {k: v[0] for k, v in TREE_TILES.items()},
            "side": side, "crowns_cut_by_tile_edges_dropped": cut}, indent=1))
    return {"out": str(out), "data_yaml": str(out / "data.yaml"), "train": counts["train"], "val": counts["val"],
            "boxes_train": boxes_n["train"], "boxes_val": boxes_n["val"], "dropped_at_edges": cut}
