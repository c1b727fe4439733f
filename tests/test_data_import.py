"""`edgetune data import` and `data split` (issue 18): every format's box convention, exact
round trips through all four tool formats, skipped items named, one-line errors for malformed
entries, class selection, and splits that are stratified and never straddle a group."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import invoke, invoke_json
from PIL import Image

from edgetune.data.labels.formats import FORMATS
from edgetune.data.labels.model import Box, LabelledImage, LabelSet

CLASSES = ["car", "person", "sign"]
TOOL_FORMATS = ("coco", "voc", "cvat", "labelstudio")


def real_tiles(n: int, side: int = 96) -> list[Image.Image]:
    """n distinct real photo tiles (scikit-image's bundled photos), each side × side."""
    import skimage.data as d

    tiles = []
    for name in ("astronaut", "coffee", "chelsea", "rocket", "camera"):
        img = Image.fromarray(getattr(d, name)()).convert("RGB")
        for y in range(0, img.height - side + 1, side):
            for x in range(0, img.width - side + 1, side):
                tiles.append(img.crop((x, y, x + side, y + side)))
                if len(tiles) == n:
                    return tiles
    raise AssertionError("not enough tiles")


def label_set(folder: Path, n: int = 12, split: bool = True) -> LabelSet:
    """Real tiles with integer-pixel boxes of three classes (every class in both splits)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    images = []
    for i, tile in enumerate(real_tiles(n)):
        path = folder / f"img_{i:03d}.jpg"
        tile.save(path, quality=90)
        boxes = []
        for k in range(1 + i % 3):
            x0, y0 = (int(v) for v in rng.integers(0, 60, 2))
            w, h = (int(v) for v in rng.integers(5, 30, 2))
            boxes.append(Box(CLASSES[(i + k) % 3], x0, y0, x0 + w, y0 + h))
        images.append(LabelledImage(path.name, path, 96, 96, boxes, split=("val" if i % 4 == 0 else "train")
                                    if split else None))
    return LabelSet("detect", CLASSES, "test", images)


def write_split_export(ls: LabelSet, fmt: str, out: Path) -> None:
    """The export as Roboflow ships it: one export per split folder."""
    for split in ("train", "val"):
        part = LabelSet(ls.task, ls.classes, ls.class_order, [i for i in ls.images if i.split == split])
        FORMATS.get(fmt).write(part, out / split)


def labels_text(root: Path) -> str:
    """Every label file, sorted by path, rows sorted: what 'byte for byte after sorting' compares."""
    return "".join(f"{p.relative_to(root)}\n" + "".join(sorted(p.read_text().splitlines(True)))
                   for p in sorted((root / "labels").rglob("*.txt")))


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> LabelSet:
    return label_set(tmp_path_factory.mktemp("src"))


def test_all_four_tool_formats_import_back_to_identical_yolo_labels(source, tmp_path):
    texts = {}
    for fmt in TOOL_FORMATS:
        write_split_export(source, fmt, tmp_path / fmt)
        r = invoke_json("data", "import", tmp_path / fmt, "--from", fmt, "--out", tmp_path / f"yolo-{fmt}")
        assert r["images"] == {"train": 9, "val": 3} and r["skipped"] == [] and r["classes"] == CLASSES, fmt
        texts[fmt] = labels_text(tmp_path / f"yolo-{fmt}")
    assert len(set(texts.values())) == 1
    # and the YOLO set imported again (the fifth format) is the same, too
    invoke_json("data", "import", tmp_path / "yolo-coco" / "data.yaml", "--from", "yolo", "--out", tmp_path / "again")
    assert labels_text(tmp_path / "again") == texts["coco"]
    # the numbers are the pixel boxes: img_000's first box, normalised by the 96 px side
    b = source.images[0].boxes[0]
    row = (tmp_path / "yolo-coco/labels/val/img_000.txt").read_text().splitlines()[0].split()
    assert [float(v) for v in row[1:]] == pytest.approx([(b.x0 + b.x1) / 192, (b.y0 + b.y1) / 192,
                                                         (b.x1 - b.x0) / 96, (b.y1 - b.y0) / 96], abs=1e-6)


def yolo_rows(fmt: str, src: Path, **kw) -> str:
    """The YOLO rows the importer writes for the export's first image (reader + writer, no split)."""
    from edgetune.data.labels.importer import _yolo_rows

    ls = FORMATS.get(fmt).read(src, **kw)
    return _yolo_rows(ls.images[0], {c: k for k, c in enumerate(ls.classes)})


def read(fmt: str, src: Path, **kw) -> LabelSet:
    return FORMATS.get(fmt).read(src, **kw)


def _voc(folder: Path, objects: str, filename: str = "a.jpg", size: str = "<width>96</width><height>96</height>") -> Path:
    (folder / "Annotations").mkdir(parents=True, exist_ok=True)
    (folder / "JPEGImages").mkdir(exist_ok=True)
    real_tiles(1)[0].save(folder / "JPEGImages" / "a.jpg")
    (folder / "Annotations" / "a.xml").write_text(
        f"<annotation><filename>{filename}</filename><size>{size}</size>{objects}</annotation>")
    return folder


def test_voc_boxes_are_one_based_inclusive(tmp_path):
    # pixels 1..10 inclusive = [0, 10) in continuous coordinates: centre 5, width 10
    src = _voc(tmp_path / "voc", "<object><name>car</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>10</xmax>"
                                  "<ymax>20</ymax></bndbox></object>")
    row = yolo_rows("voc", src).split()
    assert [float(v) for v in row[1:]] == pytest.approx([5 / 96, 10 / 96, 10 / 96, 20 / 96], abs=1e-6)


@pytest.mark.parametrize("fmt, body, message", [
    ("voc", "<object><name>car</name><robndbox><cx>5</cx></robndbox></object>",
     "Annotations/a.xml <object> #1: rotated box <robndbox>; edgetune trains axis-aligned boxes"),
    ("voc", "<object><name>car</name><bndbox><xmin>x</xmin><ymin>1</ymin><xmax>9</xmax><ymax>9</ymax></bndbox></object>",
     "Annotations/a.xml <object> #1: <xmin> is 'x', not a number"),
    ("voc", "<object><bndbox/></object>", "Annotations/a.xml <object> #1: <name> is missing or empty"),
])
def test_voc_malformed_entry_is_one_line_naming_file_and_element(tmp_path, fmt, body, message):
    src = _voc(tmp_path / "voc", body)
    res = invoke("data", "import", src, "--from", fmt, "--out", tmp_path / "out")
    assert res.exit_code == 3 and message in res.stderr and "Traceback" not in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def _coco(folder: Path, anns: list, images: list | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    real_tiles(1)[0].save(folder / "a.jpg")
    doc = {"images": images if images is not None else [{"id": 1, "file_name": "a.jpg", "width": 96, "height": 96}],
           "annotations": anns, "categories": [{"id": 1, "name": "car"}, {"id": 2, "name": "person"}]}
    (folder / "instances.json").write_text(json.dumps(doc))
    return folder / "instances.json"


@pytest.mark.parametrize("anns, images, message", [
    ([{"id": 7, "image_id": 99, "category_id": 1, "bbox": [0, 0, 5, 5]}], None,
     "instances.json: annotation id 7: image_id 99 is not in 'images'"),
    ([{"id": 7, "image_id": 1, "category_id": 5, "bbox": [0, 0, 5, 5]}], None,
     "instances.json: annotation id 7: category_id 5 is not in 'categories'"),
    ([{"id": 7, "image_id": 1, "category_id": 1, "bbox": [0, 0, 5]}], None,
     "instances.json: annotation id 7: bbox [0, 0, 5] is not [x, y, width, height]"),
    ([{"id": 7, "image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5], "attributes": {"rotation": 30}}], None,
     "instances.json: annotation id 7: rotated box (30°)"),
    ([], [{"id": 1, "file_name": "../../etc/passwd", "width": 9, "height": 9}],
     "instances.json: image id 1: image file name '../../etc/passwd' leads outside the image folder"),
])
def test_coco_malformed_entry_is_one_line_naming_the_entry(tmp_path, anns, images, message):
    res = invoke("data", "import", _coco(tmp_path / "c", anns, images), "--from", "coco", "--out", tmp_path / "out")
    assert res.exit_code == 3 and message in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_coco_crowd_missing_images_and_clipping_are_counted_and_named(tmp_path):
    images = [{"id": 1, "file_name": "a.jpg", "width": 96, "height": 96},
              {"id": 2, "file_name": "gone.jpg", "width": 96, "height": 96}]
    anns = [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20]},
            {"id": 2, "image_id": 1, "category_id": 2, "bbox": [80, 80, 30, 30]},  # overshoots: clipped
            {"id": 3, "image_id": 1, "category_id": 1, "bbox": [0, 0, 50, 50], "iscrowd": 1},
            {"id": 4, "image_id": 2, "category_id": 1, "bbox": [0, 0, 5, 5]},
            {"id": 5, "image_id": 1, "category_id": 1, "bbox": [5, 5, 0, 4]}]
    src = _coco(tmp_path / "c", anns, images)
    ls = read("coco", src)
    reasons = {(s.where, s.reason) for s in ls.skipped}
    assert ("instances.json: image id 2", "image file gone.jpg not found") in reasons
    assert ("instances.json: annotation id 3", "crowd region (iscrowd=1), not one object") in reasons
    assert ("instances.json: annotation id 4", "its image was skipped") in reasons
    assert any(w == "instances.json: annotation id 5" and "zero" in why for w, why in reasons)
    assert [s.kind for s in ls.skipped].count("image") == 1 and [s.kind for s in ls.skipped].count("box") == 3
    assert ls.clipped == 1
    rows = yolo_rows("coco", src).splitlines()
    assert len(rows) == 2 and rows[1].split()[3] == f"{16 / 96:.6f}"  # 80..96 after clipping
    # --strict: the missing image is an error naming it
    res = invoke("data", "import", src, "--from", "coco", "--out", tmp_path / "strict", "--strict")
    assert res.exit_code == 3 and "instances.json: image id 2: image gone.jpg not found" in res.stderr


def test_cvat_rotated_box_refused_and_polygons_skipped(tmp_path):
    (tmp_path / "cv/images").mkdir(parents=True)
    real_tiles(1)[0].save(tmp_path / "cv/images/a.jpg")
    xml = ('<annotations><meta><task><labels><label><name>car</name></label></labels></task></meta>'
           '<image id="0" name="a.jpg" width="96" height="96"><box label="car" xtl="1" ytl="2" xbr="30" ybr="40"/>'
           '<polygon label="car" points="1,1;5,5;1,5"/>{}</image></annotations>')
    (tmp_path / "cv/annotations.xml").write_text(xml.format(""))
    assert [(s.where, s.reason) for s in read("cvat", tmp_path / "cv").skipped] == [
        ("annotations.xml: <image id='0'> <polygon> #2", "a polygon, not a box")]
    assert yolo_rows("cvat", tmp_path / "cv") == \
        f"0 {15.5 / 96:.6f} {21 / 96:.6f} {29 / 96:.6f} {38 / 96:.6f}\n"
    (tmp_path / "cv/annotations.xml").write_text(xml.format(
        '<box label="car" xtl="1" ytl="2" xbr="30" ybr="40" rotation="15.5"/>'))
    res = invoke("data", "import", tmp_path / "cv", "--from", "cvat", "--out", tmp_path / "o2")
    assert res.exit_code == 3 and "<box> #3: rotated box (15.5°); edgetune trains axis-aligned boxes" in res.stderr


def test_xml_with_entities_is_refused(tmp_path):
    bomb = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>'
            '<annotations>&lol2;</annotations>')
    (tmp_path / "cv").mkdir()
    (tmp_path / "cv/annotations.xml").write_text(bomb)
    res = invoke("data", "import", tmp_path / "cv", "--from", "cvat", "--out", tmp_path / "o")
    assert res.exit_code == 3 and "(DTDs and entities are refused)" in res.stderr


def test_labelstudio_percentages_upload_prefix_and_rotation(tmp_path):
    (tmp_path / "ls").mkdir()
    real_tiles(1)[0].save(tmp_path / "ls/photo.jpg")
    task = {"id": 3, "data": {"image": "/data/upload/1/0a1b2c3d-photo.jpg"}, "annotations": [
        {"was_cancelled": True, "result": []},
        {"result": [{"id": "r1", "type": "rectanglelabels", "original_width": 96, "original_height": 96,
                     "value": {"x": 25, "y": 50, "width": 50, "height": 25, "rotation": 0, "rectanglelabels": ["car"]}}]}]}
    (tmp_path / "ls/export.json").write_text(json.dumps([task]))
    ls = read("labelstudio", tmp_path / "ls")
    assert ls.images[0].file.name == "photo.jpg" and ls.notes == []
    assert yolo_rows("labelstudio", tmp_path / "ls") == "0 0.500000 0.625000 0.500000 0.250000\n"
    task["annotations"][1]["result"][0]["value"]["rotation"] = 12
    (tmp_path / "ls/export.json").write_text(json.dumps([task]))
    res = invoke("data", "import", tmp_path / "ls", "--from", "labelstudio", "--out", tmp_path / "o2")
    assert res.exit_code == 3 and "export.json: task id 3 result #0 (id r1): rotated box (12°)" in res.stderr


def test_classes_select_reorder_merge(source, tmp_path):
    write_split_export(source, "coco", tmp_path / "c")
    r = invoke_json("data", "import", tmp_path / "c", "--from", "coco", "--out", tmp_path / "o",
                    "--classes", "road=car+sign")
    assert r["classes"] == ["road"] and r["skipped_boxes"] == sum(b.label == "person" for i in source.images
                                                                   for b in i.boxes)
    assert all(s["reason"] == "class 'person' not selected by --classes" for s in r["skipped"])
    assert sum(r["boxes"].values()) == sum(b.label != "person" for i in source.images for b in i.boxes)
    res = invoke("data", "import", tmp_path / "c", "--from", "coco", "--out", tmp_path / "o2", "--classes", "cars")
    assert res.exit_code == 2 and "--classes: 'cars' is not a class of this export; did you mean 'car'?" in res.stderr


def test_unknown_format_has_close_match(tmp_path):
    res = invoke("data", "import", tmp_path, "--from", "cocoo", "--out", tmp_path / "o")
    assert res.exit_code == 2 and "unknown annotation format 'cocoo'; did you mean 'coco' or 'voc'?" in res.stderr


def test_classification_from_csv_coco_and_labelstudio_choices(tmp_path):
    src = tmp_path / "cls"
    src.mkdir()
    rows, tasks, coco = ["file,label"], [], {"images": [], "annotations": [], "categories": [
        {"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}]}
    for i, tile in enumerate(real_tiles(10)):
        tile.save(src / f"p{i}.png")
        label = "cat" if i % 2 else "dog"
        rows.append(f"p{i}.png,{label}")
        tasks.append({"id": i, "data": {"image": f"/data/upload/2/p{i}.png"}, "annotations": [{"result": [
            {"type": "choices", "value": {"choices": [label]}}]}]})
        coco["images"].append({"id": i, "file_name": f"p{i}.png", "width": 96, "height": 96})
        coco["annotations"].append({"id": i, "image_id": i, "category_id": 1 if i % 2 else 2})
    (src / "labels.csv").write_text("\n".join(rows + ["missing.png,cat"]) + "\n")
    r = invoke_json("data", "import", src / "labels.csv", "--from", "csv", "--out", tmp_path / "a")
    assert r["task"] == "classify" and r["images"] == {"train": 8, "val": 2} and r["skipped_images"] == 1
    assert sorted(p.name for p in (tmp_path / "a/val").iterdir()) == ["cat", "dog"]
    (src / "ls.json").write_text(json.dumps(tasks))
    assert invoke_json("data", "import", src / "ls.json", "--from", "labelstudio", "--out", tmp_path / "b")["task"] \
        == "classify"
    (src / "coco.json").write_text(json.dumps(coco))
    r = invoke_json("data", "import", src / "coco.json", "--from", "coco", "--out", tmp_path / "c")
    assert r["task"] == "classify" and r["classes"] == ["cat", "dog"]
    assert sorted((tmp_path / "a").rglob("*.png")) != [] and \
        sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.png")) == \
        sorted(p.relative_to(tmp_path / "c") for p in (tmp_path / "c").rglob("*.png"))


def test_split_is_stratified_and_groups_never_straddle(tmp_path):
    from edgetune.data.split import assign

    strata = [c for c in range(4) for _ in range(25)]
    where = assign(strata, {"val": 0.2, "test": 0.1}, seed=3)
    for c in range(4):
        got = [w for s, w in zip(strata, where, strict=True) if s == c]
        assert (got.count("val"), got.count("test")) == (5, 2) or (got.count("val"), got.count("test")) == (5, 3)
    assert where == assign(strata, {"val": 0.2, "test": 0.1}, seed=3)  # seeded
    groups = [f"speaker{i % 13}" for i in range(100)]
    where = assign(strata, {"val": 0.2}, seed=0, groups=groups)
    for g in set(groups):
        assert len({w for w, gg in zip(where, groups, strict=True) if gg == g}) == 1
    assert 0.1 <= where.count("val") / 100 <= 0.3


def test_data_split_imagefolder_grouped_and_yolo(source, tmp_path, fm_data):
    r = invoke_json("data", "split", fm_data, "--out", tmp_path / "fm", "--val", "0.25", "--group-by", r"(\d)\.png$")
    assert r["groups"] == 10 and r["files"]["val"] > 0 and (tmp_path / "fm/split.json").is_file()
    last_digit = {split: {p.stem[-1] for p in (tmp_path / "fm" / split).rglob("*.png")} for split in ("train", "val")}
    assert not last_digit["train"] & last_digit["val"]  # no group on both sides
    res = invoke("data", "split", fm_data, "--out", tmp_path / "fm2", "--group-by", r"^(\d\d\d)")
    assert res.exit_code == 3 and "every file of a class shares a group of --group-by" in res.stderr, res.stderr
    res = invoke("data", "split", fm_data, "--out", tmp_path / "x", "--group-by", "zzz")
    assert res.exit_code == 2 and "--group-by 'zzz' matches none of the" in res.stderr
    write_split_export(source, "coco", tmp_path / "c")
    invoke_json("data", "import", tmp_path / "c", "--from", "coco", "--out", tmp_path / "y")
    r = invoke_json("data", "split", tmp_path / "y", "--out", tmp_path / "y2", "--val", "0.5")
    assert r["images"] == {"train": 6, "val": 6} and "split: seeded (0), stratified" in r["notes"]
    assert labels_text(tmp_path / "y").count("\n") == labels_text(tmp_path / "y2").count("\n")
    res = invoke("data", "split", tmp_path / "y", "--out", tmp_path / "y" / "inner")
    assert res.exit_code == 2 and "is inside SRC" in res.stderr


def test_a_class_too_small_to_split_is_one_line_naming_the_output(tmp_path):
    src = tmp_path / "cls"
    src.mkdir()
    rows = ["file,label"]
    for i, tile in enumerate(real_tiles(7)):
        tile.save(src / f"p{i}.png")
        rows.append(f"p{i}.png,{'rare' if i == 0 else 'common'}")
    (src / "labels.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "out"
    res = invoke("data", "import", src / "labels.csv", "--from", "csv", "--out", out)
    assert res.exit_code == 3 and res.stderr.startswith(
        f"edgetune: error: classes differ between train and val in {out} (only in train: rare)"), res.stderr
    assert not out.exists()


@pytest.mark.parametrize("table, message", [
    ("name,label\na.png,cat\n", "labels.csv: header ['name', 'label'] has no 'file' column"),
    ("file,label\na.png,cat\na.png,dog\n", "labels.csv:3: a.png is listed twice"),
    ("file,label\na.png,\n", "labels.csv:2: label '' is empty or not text"),
    ("", "labels.csv is empty"),
])
def test_table_errors_name_the_row(tmp_path, table, message):
    real_tiles(1)[0].save(tmp_path / "a.png")
    (tmp_path / "labels.csv").write_text(table)
    res = invoke("data", "import", tmp_path / "labels.csv", "--from", "csv", "--out", tmp_path / "o")
    assert res.exit_code == 3 and message in res.stderr, res.stderr
