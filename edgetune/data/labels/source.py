"""Reading an annotation export safely: bounded files, one-line parse errors, image lookup.

Exports come from other people's tools and machines, so nothing in them is trusted: a file name
may try to leave the image folder ('../../etc/passwd', an absolute path), an XML file may carry
entity bombs (defusedxml refuses DTDs and entities outright), a JSON file may nest without end.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Any

from edgetune.errors import DataError
from edgetune.untrusted import parse_json, read_bytes, read_text, shown

# The largest public exports (COCO train2017's instances file) are ~450 MB; beyond 1 GiB it is
# more likely the wrong file than a data set.
MAX_ANNOTATION_BYTES = 1 << 30


def load_json(path: Path) -> Any:
    return parse_json(read_text(path, limit=MAX_ANNOTATION_BYTES, what="annotation file", error=DataError),
                      what=str(path), error=DataError, hint="is this the tool's JSON export?")


def load_xml(path: Path) -> Any:
    """The root element; a malformed file or one with a DTD/entities is one DataError line."""
    from xml.etree.ElementTree import ParseError

    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import fromstring

    raw = read_bytes(path, limit=MAX_ANNOTATION_BYTES, what="annotation file")
    try:
        return fromstring(raw)
    except ParseError as exc:
        raise DataError(f"{path} is not valid XML ({exc})", hint="is this the tool's XML export?") from None
    except DefusedXmlException as exc:
        raise DataError(f"{path}: {type(exc).__name__} (DTDs and entities are refused)",
                        hint="annotation exports have no DTD; is this file from the tool?") from None


def number(value: Any, where: str, what: str) -> float:
    """A finite number from JSON or XML text, else one line naming the entry."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise DataError(f"{where}: {what} is {shown(value)}, not a number") from None
    if x != x or x in (float("inf"), float("-inf")):
        raise DataError(f"{where}: {what} is {shown(value)}, not a finite number")
    return x


def relative_name(name: Any, where: str) -> str:
    """A '/'-separated relative path from an export, proven not to leave its folder."""
    if not isinstance(name, str) or not name.strip():
        raise DataError(f"{where}: image file name {shown(name)} is not a file name")
    p = PurePosixPath(name.replace("\\", "/"))
    if p.is_absolute() or ".." in p.parts or re.match(r"^[A-Za-z]:", name):
        raise DataError(f"{where}: image file name {shown(name)} leads outside the image folder",
                        hint="an export names images relative to its folder; fix the entry")
    return str(p)


class ImageFinder:
    """Finds an export's image under candidate folders (the export's own folder, images/ beside
    it, --images). Lookups are relative names only (see `relative_name`); the first folder that
    holds the file wins, and an index by base name serves tools that store only base names."""

    def __init__(self, roots: Iterable[Path]) -> None:
        self.roots = [r.resolve() for r in dict.fromkeys(roots) if r.is_dir()]
        self._by_base: dict[str, list[Path]] | None = None

    def find(self, name: str) -> Path | None:
        for root in self.roots:
            p = (root / name).resolve()
            if p.is_file() and p.is_relative_to(root):
                return p
        return None

    def find_base(self, base: str) -> list[Path]:
        """Every file named `base` anywhere under the roots (Label Studio keeps only upload names)."""
        if self._by_base is None:
            self._by_base = {}
            for root in self.roots:
                for p in sorted(root.rglob("*")):
                    if p.is_file() and p.resolve().is_relative_to(root):
                        self._by_base.setdefault(p.name, []).append(p.resolve())
        return list(dict.fromkeys(self._by_base.get(base, [])))


def locate(found: Path | None, name: str, where: str, strict: bool, skip: Any) -> Path | None:
    """The image file, or None after counting it as skipped (`--strict`: an error instead)."""
    if found is not None:
        return found
    if strict:
        raise DataError(f"{where}: image {name} not found", hint="copy the images beside the export, or pass --images DIR")
    skip("image", where, f"image file {name} not found")
    return None


def image_size(path: Path) -> tuple[int, int]:
    """Width and height from the image header (exports that leave them out, or put 0)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.size
    except (OSError, ValueError, Image.DecompressionBombError):
        raise DataError(f"{path} is not a readable image", hint="re-export it as JPEG/PNG or remove it") from None


def positive_size(w: Any, h: Any, where: str) -> tuple[int, int]:
    ww, hh = number(w, where, "width"), number(h, where, "height")
    if ww <= 0 or hh <= 0 or ww != int(ww) or hh != int(hh):
        raise DataError(f"{where}: image size {shown(w)}x{shown(h)} is not positive whole pixels")
    return int(ww), int(hh)


def copy_image(src: Path, dst: Path, link: bool) -> None:
    """Copy (or symlink, `--link`) one image into an output folder, creating parents."""
    import shutil

    dst.parent.mkdir(parents=True, exist_ok=True)
    if link:
        dst.symlink_to(src.resolve())
    else:
        shutil.copyfile(src, dst)


def coord(v: float) -> str:
    """A pixel coordinate as text for the XML writers: whole pixels as integers (what tools
    write), anything else to 1e-6 px, far below the 6 decimals of a YOLO label."""
    return str(int(v)) if float(v).is_integer() else f"{v:.6f}".rstrip("0")


def find_export(src: Path, globs: tuple[str, ...], what: str) -> Path:
    """SRC itself when it is a file, else the one file in SRC matching `globs` (an export folder
    as the tool zips it); none or several is one line asking for the file."""
    if src.is_file():
        return src
    found = list(dict.fromkeys(p for g in globs for p in sorted(src.glob(g))))
    if len(found) != 1:
        raise DataError(f"{src}: expected one {what} ({' or '.join(globs)}), found {len(found)}",
                        hint="pass the export file itself as SRC")
    return found[0]
