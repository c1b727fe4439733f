"""CVAT for images 1.1 XML: `<image name width height>` holding `<box label xtl ytl xbr ybr>`.
The corners are continuous pixel coordinates (top-left, bottom-right), `LabelSet`'s own
convention. `rotation` other than 0 is refused; polygons, polylines, points and tags are not
boxes and are skipped and counted. Class order: the labels in `<meta>`.
"""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree as ET

from edgetune.data.labels.model import LabelledImage, LabelSet
from edgetune.data.labels.source import (
    ImageFinder,
    coord,
    copy_image,
    find_export,
    image_size,
    load_xml,
    locate,
    number,
    positive_size,
    relative_name,
)
from edgetune.errors import DataError

NOT_BOXES = ("polygon", "polyline", "points", "cuboid", "ellipse", "mask", "skeleton", "tag")


def read(src: Path, *, images: Path | None = None, strict: bool = False) -> LabelSet:
    path = find_export(src, ("*.xml",), "CVAT XML file")
    root = load_xml(path)
    if root.tag != "annotations":
        raise DataError(f"{path}: root element is <{root.tag}>, not <annotations>",
                        hint="is this a 'CVAT for images 1.1' export?")
    declared = [el.text.strip() for el in root.iterfind("meta//labels/label/name") if el.text]
    ls = LabelSet(task="detect", classes=list(dict.fromkeys(declared)), class_order="labels in <meta>", images=[])
    finder = ImageFinder([images] if images else [path.parent / "images", path.parent])
    for el in root.iter("image"):
        where = f"{path.name}: <image id={el.get('id')!r}>"
        name = relative_name(el.get("name"), where)
        file = locate(finder.find(name), name, where, strict, ls.skip)
        if file is None:
            continue
        wh = positive_size(el.get("width"), el.get("height"), where) if el.get("width") else image_size(file)
        img = LabelledImage(name, file, *wh)
        for k, shape in enumerate(el, 1):
            at = f"{where} <{shape.tag}> #{k}"
            if shape.tag in NOT_BOXES:
                ls.skip("box", at, f"a {shape.tag}, not a box")
                continue
            if shape.tag != "box":
                continue
            label = shape.get("label")
            if not label:
                raise DataError(f"{at}: no label")
            if number(shape.get("rotation", 0), at, "rotation"):
                raise DataError(f"{at}: rotated box ({shape.get('rotation')}°); edgetune trains axis-aligned boxes",
                                hint="un-rotate it in CVAT, or re-draw it as an axis-aligned box")
            if label not in ls.classes:
                if declared:
                    raise DataError(f"{at}: label {label!r} is not among the labels in <meta>")
                ls.classes.append(label)
            x0, y0, x1, y1 = (number(shape.get(a), at, a) for a in ("xtl", "ytl", "xbr", "ybr"))
            ls.add_box(img, label, x0, y0, x1, y1, at)
        ls.images.append(img)
    if not declared:
        ls.classes, ls.class_order = sorted(ls.classes), "sorted names (no labels in <meta>)"
    return ls


def write(ls: LabelSet, out: Path) -> Path:
    """OUT/annotations.xml + OUT/images/NAME."""
    root = ET.Element("annotations")
    ET.SubElement(root, "version").text = "1.1"
    labels = ET.SubElement(ET.SubElement(ET.SubElement(root, "meta"), "task"), "labels")
    for c in ls.classes:
        ET.SubElement(ET.SubElement(labels, "label"), "name").text = c
    for i, img in enumerate(ls.images):
        copy_image(img.file, out / "images" / img.name, link=False)
        el = ET.SubElement(root, "image", id=str(i), name=img.name, width=str(img.width), height=str(img.height))
        for b in img.boxes:
            ET.SubElement(el, "box", label=b.label, occluded="0", source="manual", xtl=coord(b.x0),
                          ytl=coord(b.y0), xbr=coord(b.x1), ybr=coord(b.y1), z_order="0")
    target = out / "annotations.xml"
    ET.ElementTree(root).write(target, encoding="utf-8")
    return target
