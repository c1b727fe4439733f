"""Pascal VOC XML (LabelImg, CVAT, Roboflow): one XML per image, `<bndbox>` with xmin ymin xmax
ymax as **1-based, inclusive pixel indices**: pixel i covers [i-1, i], so the box is
(xmin-1, ymin-1)-(xmax, ymax) in `LabelSet`'s continuous coordinates (detectron2's reading).

VOC has no class list: the order is `labelmap.txt` (CVAT/datumaro) when the export has one, else
the sorted names, and the report says which. `<difficult>` boxes are kept and counted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from edgetune.data.labels.model import LabelledImage, LabelSet
from edgetune.data.labels.source import (
    ImageFinder,
    coord,
    copy_image,
    image_size,
    load_xml,
    locate,
    number,
    positive_size,
    relative_name,
)
from edgetune.errors import DataError


def _text(el: Any, tag: str) -> str | None:
    child = el.find(tag)
    return child.text.strip() if child is not None and child.text else None


def _label_order(src: Path, names: set[str]) -> tuple[list[str], str]:
    labelmap = src / "labelmap.txt"
    if labelmap.is_file():
        from edgetune.untrusted import MAX_TEXT_BYTES, read_text

        order = [line.split(":")[0].strip() for line in read_text(labelmap, limit=MAX_TEXT_BYTES, what="labelmap",
                                                                   error=DataError).splitlines()
                 if line.strip() and not line.startswith("#")]
        order = [n for n in order if n != "background"]
        missing = sorted(names - set(order))
        if missing:
            raise DataError(f"{labelmap}: objects use labels it does not list: {', '.join(missing[:5])}",
                            hint="add them to labelmap.txt or delete the file to use sorted names")
        return order, "labelmap.txt"
    return sorted(names), "sorted names (VOC has no class list; --classes sets the order)"


def read(src: Path, *, images: Path | None = None, strict: bool = False) -> LabelSet:
    folder = src / "Annotations" if (src / "Annotations").is_dir() else src
    xmls = sorted(folder.rglob("*.xml"))
    if not xmls:
        raise DataError(f"{src}: no VOC .xml files (looked in {folder})",
                        hint="SRC is the export folder with Annotations/*.xml (or the XMLs beside the images)")
    finder = ImageFinder([images] if images else [src / "JPEGImages", src / "images", src, folder])
    ls = LabelSet(task="detect", classes=[], class_order="", images=[])
    difficult = 0
    for xml in xmls:
        root = load_xml(xml)
        where = str(xml.relative_to(src))
        if root.tag != "annotation":
            raise DataError(f"{where}: root element is <{root.tag}>, not <annotation>", hint="is this a VOC export?")
        name = relative_name(_text(root, "filename"), f"{where} <filename>")
        file = locate(finder.find(name) or finder.find(str(Path(name).name)), name, where, strict, ls.skip)
        size = root.find("size")
        w, h = (_text(size, "width"), _text(size, "height")) if size is not None else (None, None)
        if file is None:
            continue
        wh = positive_size(w, h, f"{where} <size>") if (w and w != "0") else image_size(file)
        img = LabelledImage(name, file, *wh)
        for k, obj in enumerate(root.iter("object"), 1):
            at = f"{where} <object> #{k}"
            label = _text(obj, "name")
            if not label:
                raise DataError(f"{at}: <name> is missing or empty")
            if obj.find("robndbox") is not None:
                raise DataError(f"{at}: rotated box <robndbox>; edgetune trains axis-aligned boxes",
                                hint="un-rotate it in the tool, or re-draw it as an axis-aligned box")
            bb = obj.find("bndbox")
            if bb is None:
                ls.skip("box", at, "no <bndbox> (a polygon or point, not a box)")
                continue
            x0, y0, x1, y1 = (number(_text(bb, t), at, f"<{t}>") for t in ("xmin", "ymin", "xmax", "ymax"))
            difficult += _text(obj, "difficult") == "1"
            ls.add_box(img, label, x0 - 1, y0 - 1, x1, y1, at)
        ls.images.append(img)
    ls.classes, ls.class_order = _label_order(src, {b.label for i in ls.images for b in i.boxes})
    if difficult:
        ls.notes.append(f"{difficult} boxes marked <difficult> kept as ordinary boxes")
    return ls


def write(ls: LabelSet, out: Path) -> Path:
    """OUT/Annotations/NAME.xml + OUT/JPEGImages/NAME + OUT/labelmap.txt (the class order)."""
    for img in ls.images:
        copy_image(img.file, out / "JPEGImages" / img.name, link=False)
        root = ET.Element("annotation")
        ET.SubElement(root, "filename").text = img.name
        size = ET.SubElement(root, "size")
        for tag, v in (("width", img.width), ("height", img.height), ("depth", 3)):
            ET.SubElement(size, tag).text = str(v)
        for b in img.boxes:
            obj = ET.SubElement(root, "object")
            ET.SubElement(obj, "name").text = b.label
            ET.SubElement(obj, "difficult").text = "0"
            bb = ET.SubElement(obj, "bndbox")
            for tag, v in (("xmin", b.x0 + 1), ("ymin", b.y0 + 1), ("xmax", b.x1), ("ymax", b.y1)):
                ET.SubElement(bb, tag).text = coord(v)
        xml = (out / "Annotations" / img.name).with_suffix(".xml")
        xml.parent.mkdir(parents=True, exist_ok=True)
        ET.ElementTree(root).write(xml, encoding="utf-8")
    (out / "labelmap.txt").write_text("".join(f"{c}:::\n" for c in ls.classes))
    return out
