"""A detection data set made from real images, without a hub: real object crops pasted onto real
photos at random positions, scales and overlaps, with exact YOLO labels.

No package ships a labelled detection set, but scikit-image, scikit-learn and ultralytics ship
~30 real photos. Objects come from them: people (ultralytics' bus.jpg/zidane.jpg, scikit-image's
astronaut), a cat, a cup, a motorcycle, a rocket, 24 segmented coins and the scikit-image logo.
Crops of photos get a feathered rounded-rectangle alpha; the coins and the logo carry their true
masks. A label is the bounding box of the pasted alpha ≥ 0.5, so boxes are exact by construction.

Generalisation is measured, not assumed: validation images use *other backgrounds* than training
images, and classes with several instances (people, coins) hold some instances out for val.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

from edgetune.data.yolo import yolo_lines
from edgetune.errors import AssetError
from edgetune.fsutil import atomic_dir

# (class, source, crop box x0 y0 x1 y1 in source pixels). Person/cat/cup/motorcycle boxes are COCO
# yolo11n-seg detections on these photos (conf ≥ 0.8), the rocket box was read off the image.
CROPS: tuple[tuple[str, str, tuple[int, int, int, int]], ...] = (
    ("person", "ultralytics:bus.jpg", (670, 390, 809, 875)),
    ("person", "ultralytics:bus.jpg", (49, 398, 240, 905)),
    ("person", "ultralytics:bus.jpg", (222, 404, 346, 859)),
    ("person", "ultralytics:zidane.jpg", (747, 42, 1148, 711)),
    ("person", "skimage:astronaut.png", (13, 16, 364, 510)),
    ("cat", "skimage:chelsea.png", (0, 1, 422, 298)),
    ("cup", "skimage:coffee.png", (170, 17, 414, 310)),
    ("motorcycle", "skimage:motorcycle_left.png", (114, 47, 684, 456)),
    ("rocket", "skimage:rocket.jpg", (285, 110, 355, 420)),
)
CLASSES = ("person", "cat", "cup", "motorcycle", "rocket", "coin", "logo")
# Backgrounds free of the classes above. Val backgrounds are never seen in training.
TRAIN_BACKGROUNDS = ("sklearn:china.jpg", "skimage:brick.png", "skimage:grass.png", "skimage:hubble_deep_field.jpg",
                     "skimage:page.png", "skimage:moon.png", "skimage:retina.jpg", "skimage:color.png",
                     "skimage:chessboard_RGB.png", "skimage:clock_motion.png")
VAL_BACKGROUNDS = ("sklearn:flower.jpg", "skimage:gravel.png", "skimage:text.png", "skimage:ihc.png")
ASPECTS = (4 / 3, 3 / 4, 1.0, 16 / 9)
SOURCES_LICENSE = ("scikit-image data (BSD-3-Clause / public domain / CC0, see skimage/data/README.txt), "
                   "scikit-learn images (CC BY 2.0, Flickr), ultralytics assets (AGPL-3.0)")


@dataclass(frozen=True)
class Instance:
    cls: int
    rgba: Image.Image  # RGB + alpha mask
    origin: str


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise AssetError(f"the {package} package is not installed; it ships the photos this data set is made of",
                         hint="pip install 'edgetune[dev]' (scikit-image, scikit-learn, ultralytics)")
    return Path(list(spec.submodule_search_locations)[0])


def source_path(ref: str) -> Path:
    """`skimage:coffee.png` → the file inside the installed package (no import, no download)."""
    package, name = ref.split(":", 1)
    folder = {"skimage": ("skimage", "data"), "sklearn": ("sklearn", "datasets/images"),
              "ultralytics": ("ultralytics", "assets")}[package]
    path = _package_dir(folder[0]) / folder[1] / name
    if not path.is_file():
        raise AssetError(f"{path} is missing from the installed {folder[0]} package",
                         hint=f"reinstall {folder[0]}")
    return path


def _feathered(size: tuple[int, int], feather: float = 0.06) -> Image.Image:
    """A rounded-rectangle alpha whose edges fade out, so a pasted crop has no hard frame."""
    w, h = size
    pad = max(1, int(feather * min(w, h)))
    mask = Image.new("L", size, 0)
    from PIL import ImageDraw

    ImageDraw.Draw(mask).rounded_rectangle((pad, pad, w - 1 - pad, h - 1 - pad), radius=2 * pad, fill=255)
    return mask.filter(ImageFilter.GaussianBlur(pad / 2))


def _circle_cutout(img: Image.Image) -> Image.Image:
    """The round scikit-image logo without its white square (the PNG's alpha is opaque everywhere):
    the disc is the non-white pixels' bounding box, cut out with an anti-aliased circle."""
    from PIL import ImageDraw

    rgb = np.asarray(img)
    ys, xs = np.nonzero(rgb.min(axis=2) < 235)
    disc = img.crop((int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1))
    big = Image.new("L", (disc.width * 4, disc.height * 4), 0)
    ImageDraw.Draw(big).ellipse((0, 0, big.width - 1, big.height - 1), fill=255)
    disc.putalpha(big.resize(disc.size, Image.Resampling.LANCZOS))
    return disc


def _coins() -> list[Image.Image]:
    """The 24 coins of skimage's coins.png, each with its own mask (skimage's watershed recipe)."""
    from scipy import ndimage as ndi
    from skimage import filters, measure
    from skimage.segmentation import watershed

    gray = np.asarray(Image.open(source_path("skimage:coins.png")).convert("L"))
    markers = np.zeros_like(gray)
    markers[gray < 30], markers[gray > 150] = 1, 2
    mask = ndi.binary_fill_holes(watershed(filters.sobel(gray), markers) == 2)
    out = []
    for region in measure.regionprops(measure.label(mask)):
        if region.area < 300:
            continue
        r0, c0, r1, c1 = region.bbox
        rgb = Image.fromarray(gray[r0:r1, c0:c1]).convert("RGB")
        alpha = Image.fromarray((region.image * 255).astype(np.uint8))
        rgb.putalpha(alpha)
        out.append(rgb)
    return out


def load_instances() -> list[Instance]:
    out = []
    for name, ref, box in CROPS:
        crop = Image.open(source_path(ref)).convert("RGB").crop(box)
        crop.putalpha(_feathered(crop.size))
        out.append(Instance(CLASSES.index(name), crop, f"{ref}{list(box)}"))
    out += [Instance(CLASSES.index("coin"), c, f"skimage:coins.png#{i}") for i, c in enumerate(_coins())]
    logo = _circle_cutout(Image.open(source_path("skimage:logo.png")).convert("RGB"))
    out.append(Instance(CLASSES.index("logo"), logo, "skimage:logo.png"))
    return out


def split_instances(instances: Sequence[Instance]) -> dict[str, list[Instance]]:
    """Classes with ≥3 instances give every 4th one (and at least one) to val only."""
    train: list[Instance] = []
    val: list[Instance] = []
    for c in range(len(CLASSES)):
        members = [i for i in instances if i.cls == c]
        if len(members) >= 3:
            held = set(range(len(members) - 1, -1, -4))
            val += [m for k, m in enumerate(members) if k in held]
            train += [m for k, m in enumerate(members) if k not in held]
        else:
            train += members
            val += members
    return {"train": train, "val": val}


def _background(rng: np.random.Generator, photo: Image.Image, long_side: int) -> Image.Image:
    aspect = ASPECTS[rng.integers(len(ASPECTS))]
    w, h = (long_side, round(long_side / aspect)) if aspect >= 1 else (round(long_side * aspect), long_side)
    scale = rng.uniform(0.5, 1.0)
    cw = min(photo.width, max(16, round(photo.width * scale)))
    ch = min(photo.height, max(16, round(cw * h / w)))
    x0, y0 = rng.integers(0, photo.width - cw + 1), rng.integers(0, photo.height - ch + 1)
    bg = photo.crop((x0, y0, x0 + cw, y0 + ch)).resize((w, h), Image.Resampling.BILINEAR)
    if rng.random() < 0.5:
        bg = bg.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return ImageEnhance.Brightness(bg).enhance(rng.uniform(0.7, 1.2))


def _overlap(box: np.ndarray, others: list[np.ndarray]) -> float:
    """Largest fraction of any earlier box that `box` would cover."""
    worst = 0.0
    for o in others:
        iw = max(0.0, min(box[2], o[2]) - max(box[0], o[0]))
        ih = max(0.0, min(box[3], o[3]) - max(box[1], o[1]))
        worst = max(worst, iw * ih / ((o[2] - o[0]) * (o[3] - o[1])))
    return worst


def compose(rng: np.random.Generator, photo: Image.Image, instances: Sequence[Instance], *, long_side: int,
            max_objects: int, max_cover: float = 0.35) -> tuple[Image.Image, list[tuple[int, np.ndarray]]]:
    """One image and its labels: (class, xyxy pixel box) for each pasted object.

    Objects may overlap, but a later paste never covers more than `max_cover` of an earlier box,
    so every labelled object stays mostly visible (labels of hidden objects would be noise)."""
    canvas = _background(rng, photo, long_side).convert("RGB")
    classes = sorted({i.cls for i in instances})
    short = min(canvas.size)
    labels: list[tuple[int, np.ndarray]] = []
    for _ in range(int(rng.integers(1, max_objects + 1))):
        cls = classes[rng.integers(len(classes))]  # class first: coins (18 instances) must not dominate
        members = [i for i in instances if i.cls == cls]
        inst = members[rng.integers(len(members))]
        obj = inst.rgba.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else inst.rgba
        target = short * float(np.exp(rng.uniform(np.log(0.12), np.log(0.6))))  # log-uniform object size
        s = target / max(obj.size)
        ow, oh = max(4, round(obj.width * s)), max(4, round(obj.height * s))
        obj = obj.resize((ow, oh), Image.Resampling.LANCZOS)
        rgb = ImageEnhance.Contrast(ImageEnhance.Brightness(obj.convert("RGB")).enhance(rng.uniform(0.75, 1.25))
                                    ).enhance(rng.uniform(0.8, 1.2))
        alpha = np.asarray(obj.getchannel("A"))
        ys, xs = np.nonzero(alpha >= 128)
        if len(xs) == 0 or ow > canvas.width or oh > canvas.height:
            continue
        for _try in range(20):
            x, y = int(rng.integers(0, canvas.width - ow + 1)), int(rng.integers(0, canvas.height - oh + 1))
            box = np.array([x + xs.min(), y + ys.min(), x + xs.max() + 1, y + ys.max() + 1], dtype=np.float64)
            if _overlap(box, [b for _, b in labels]) <= max_cover:
                canvas.paste(rgb, (x, y), obj.getchannel("A"))
                labels.append((inst.cls, box))
                break
    return canvas, labels


def write_dataset(out: Path, *, train: int = 240, val: int = 60, seed: int = 0, long_side: int = 480,
                  max_objects: int = 4, classes: Sequence[str] | None = None) -> dict:
    """Write OUT/images/{train,val}/*.jpg, OUT/labels/{train,val}/*.txt and OUT/data.yaml
    (ultralytics layout, absolute `path:`). `classes` picks a subset (ids renumbered in order)."""
    import yaml

    chosen = tuple(classes) if classes else CLASSES
    unknown = [c for c in chosen if c not in CLASSES]
    if unknown:
        from edgetune.errors import UsageError

        raise UsageError(f"unknown class(es) {', '.join(unknown)}", hint="choose from " + ", ".join(CLASSES))
    remap = {CLASSES.index(c): k for k, c in enumerate(chosen)}
    pool = split_instances([i for i in load_instances() if i.cls in remap])
    photos = {s: [Image.open(source_path(r)).convert("RGB") for r in refs]
              for s, refs in (("train", TRAIN_BACKGROUNDS), ("val", VAL_BACKGROUNDS))}
    rng = np.random.default_rng(seed)
    counts = {"train": 0, "val": 0}
    boxes = {"train": 0, "val": 0}
    out = Path(out)
    with atomic_dir(out) as tmp:
        for split, n in (("train", train), ("val", val)):
            (tmp / "images" / split).mkdir(parents=True)
            (tmp / "labels" / split).mkdir(parents=True)
            for k in range(n):
                photo = photos[split][rng.integers(len(photos[split]))]
                img, labels = compose(rng, photo, pool[split], long_side=long_side, max_objects=max_objects)
                labels = [(remap[c], b) for c, b in labels]
                stem = f"{split}_{k:05d}"
                img.save(tmp / "images" / split / f"{stem}.jpg", quality=92)
                (tmp / "labels" / split / f"{stem}.txt").write_text(
                    "".join(line + "\n" for line in yolo_lines(labels, *img.size)))
                counts[split] += 1
                boxes[split] += len(labels)
        spec = {"path": str(out.resolve()), "train": "images/train", "val": "images/val",
                "names": dict(enumerate(chosen))}
        (tmp / "data.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
        provenance = {"generator": "edgetune data objects-on-photos", "seed": seed, "long_side": long_side,
                      "classes": list(chosen), "instances": {s: [i.origin for i in v] for s, v in pool.items()},
                      "backgrounds": {"train": list(TRAIN_BACKGROUNDS), "val": list(VAL_BACKGROUNDS)},
                      "license": SOURCES_LICENSE}
        (tmp / "provenance.json").write_text(json.dumps(provenance, indent=1))
    return {"out": str(out), "data_yaml": str(out / "data.yaml"), "classes": list(chosen),
            "train": counts["train"], "val": counts["val"], "boxes_train": boxes["train"],
            "boxes_val": boxes["val"]}
