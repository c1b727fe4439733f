"""Image preprocessing shared by training, evaluation, export validation and the device runtime.

One implementation (PIL + numpy, no torch) so that what PyTorch is validated on and what the
artefact sees on a device are the same pixels. Normalisation (mean/std) is *not* done here: it
lives inside the exported graph, so the artefact takes float32 RGB in [0, 1], NCHW.
"""

from __future__ import annotations

import io
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

_INTERP = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC,
           "nearest": Image.Resampling.NEAREST}


@dataclass(frozen=True)
class ImagePreprocess:
    """Resize the shorter side to `resize`, centre-crop to `size`; RGB; float [0, 1] NCHW."""

    size: int
    resize: int
    interpolation: str = "bilinear"
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)  # applied in-graph, recorded for reference
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)

    @classmethod
    def for_size(cls, size: int, crop_pct: float, interpolation: str, mean, std) -> ImagePreprocess:
        return cls(size=size, resize=int(math.floor(size / crop_pct)), interpolation=interpolation,
                   mean=tuple(mean), std=tuple(std))

    @classmethod
    def from_dict(cls, d: dict) -> ImagePreprocess:
        return cls(size=int(d["size"]), resize=int(d["resize"]), interpolation=d["interpolation"],
                   mean=tuple(d["mean"]), std=tuple(d["std"]))

    def to_dict(self) -> dict:
        return {**asdict(self), "input": "float32 RGB NCHW in [0, 1]; mean/std applied inside the graph"}

    def load_square(self, source: Path | bytes) -> np.ndarray:
        """Decode an image to the stored training form: RGB uint8 (resize, resize, 3).

        Raises OSError/ValueError on unreadable data (callers turn that into a DataError).
        """
        img = decode_rgb(source, draft=self.resize)
        w, h = img.size
        scale = self.resize / min(w, h)
        nw, nh = max(self.resize, round(w * scale)), max(self.resize, round(h * scale))
        img = img.resize((nw, nh), _INTERP[self.interpolation])
        left, top = (nw - self.resize) // 2, (nh - self.resize) // 2
        img = img.crop((left, top, left + self.resize, top + self.resize))
        return np.asarray(img, dtype=np.uint8)

    def center(self, square: np.ndarray) -> np.ndarray:
        """Centre-crop a stored (resize, resize, 3) array to (size, size, 3)."""
        off = (self.resize - self.size) // 2
        return square[off: off + self.size, off: off + self.size]

    def to_input(self, crops: np.ndarray) -> np.ndarray:
        """(N, size, size, 3) or (size, size, 3) uint8 → float32 NCHW in [0, 1]."""
        if crops.ndim == 3:
            crops = crops[None]
        return np.ascontiguousarray(crops.transpose(0, 3, 1, 2), dtype=np.float32) / np.float32(255.0)

    def __call__(self, source: Path | bytes) -> np.ndarray:
        """File → model input (1, 3, size, size) float32."""
        return self.to_input(self.center(self.load_square(source)))


# Bounds for a decoded image (a 196-byte PNG can declare 1 x 60000 pixels; resizing its short side
# to 146 then needed 5.6 GB). The pixel limit is Pillow's own decompression-bomb threshold (89.5 MP,
# a 9459 x 9459 image); the aspect limit keeps a short side from being scaled up without bound
# (panoramas are ~4:1, line-scan strips rarely past 20:1).
MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485
MAX_ASPECT = 50


class ImageLimitError(ValueError):
    """An image over edgetune's pixel or aspect-ratio limit (callers name the file)."""


def check_image_size(width: int, height: int) -> None:
    """Refuse what would take unbounded memory to decode or resize; one line saying which limit."""
    if width < 1 or height < 1:
        raise ImageLimitError(f"image is {width}x{height} pixels")
    if width * height > MAX_IMAGE_PIXELS:
        raise ImageLimitError(f"image is {width}x{height} pixels, over edgetune's limit of {MAX_IMAGE_PIXELS / 1e6:.1f} "
                              f"megapixels (downscale it first)")
    if max(width, height) > MAX_ASPECT * min(width, height):
        raise ImageLimitError(f"image is {width}x{height} pixels, an aspect ratio over {MAX_ASPECT}:1 (crop or pad it "
                              f"first)")


def decode_rgb(source: Path | bytes, *, draft: int | None = None) -> Image.Image:
    """A file or encoded bytes → upright 8-bit RGB PIL image, with size limits checked from the
    header before any pixel is decoded, and 16-bit images scaled to 8 bits (high byte, as OpenCV
    and so ultralytics' training read them) instead of clipped to black and white.

    Raises OSError/ValueError on unreadable or over-limit data (callers name the file)."""
    import warnings

    try:
        with warnings.catch_warnings():  # over the limit is refused below, not warned about
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
    except Image.DecompressionBombError:  # Pillow refuses past twice its limit before reading a size we can show
        raise ImageLimitError(f"image is over edgetune's limit of {MAX_IMAGE_PIXELS / 1e6:.1f} megapixels "
                              f"(downscale it first)") from None
    check_image_size(*img.size)
    if draft:
        img.draft("RGB", (draft, draft))  # JPEG: decode at reduced scale, much faster
    img = ImageOps.exif_transpose(img)
    if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        img = Image.fromarray((np.asarray(img).astype(np.int64).clip(0, 65535) >> 8).astype(np.uint8), "L")
    elif img.mode == "F":
        raise ImageLimitError("image holds 32-bit floating-point pixels, which have no fixed range "
                              "(save it as an 8- or 16-bit PNG)")
    return img.convert("RGB")


def open_rgb(source: Path | bytes) -> Image.Image:
    """A file or encoded bytes → upright RGB PIL image (EXIF orientation applied, limits checked)."""
    return decode_rgb(source)


@dataclass(frozen=True)
class Letterbox:
    """Detection input: scale the longer side to `size` (aspect kept), pad to size x size with
    grey 114 centred — ultralytics' LetterBox(auto=False) — RGB float [0, 1] NCHW.

    `__call__` returns the input and the geometry needed to map boxes back to the image."""

    size: int
    pad_value: int = 114
    interpolation: str = "bilinear"

    kind = "letterbox"

    @classmethod
    def from_dict(cls, d: dict) -> Letterbox:
        return cls(size=int(d["size"]), pad_value=int(d.get("pad_value", 114)),
                   interpolation=d.get("interpolation", "bilinear"))

    def to_dict(self) -> dict:
        return {"kind": self.kind, "size": self.size, "pad_value": self.pad_value,
                "interpolation": self.interpolation,
                "input": "float32 RGB NCHW in [0, 1], letterboxed (aspect kept, grey padding)"}

    @staticmethod
    def open(source: Path | bytes) -> Image.Image:
        return open_rgb(source)

    def geometry(self, width: int, height: int) -> tuple[float, int, int, int, int]:
        """(scale, new_w, new_h, left, top) exactly as ultralytics rounds them."""
        r = min(self.size / height, self.size / width)
        nw, nh = round(width * r), round(height * r)
        left, top = round((self.size - nw) / 2 - 0.1), round((self.size - nh) / 2 - 0.1)
        return r, nw, nh, left, top

    def apply(self, img: Image.Image) -> tuple[np.ndarray, tuple[float, int, int]]:
        """PIL image → ((1, 3, size, size) float32, (scale, left, top))."""
        r, nw, nh, left, top = self.geometry(*img.size)
        if (nw, nh) != img.size:
            img = img.resize((nw, nh), _INTERP[self.interpolation])
        canvas = np.full((self.size, self.size, 3), self.pad_value, dtype=np.uint8)
        canvas[top: top + nh, left: left + nw] = np.asarray(img, dtype=np.uint8)
        x = np.ascontiguousarray(canvas.transpose(2, 0, 1)[None], dtype=np.float32) / np.float32(255.0)
        return x, (r, left, top)

    def __call__(self, source: Path | bytes) -> np.ndarray:
        return self.apply(self.open(source))[0]

    @staticmethod
    def unmap(boxes: np.ndarray, geom: tuple[float, int, int], width: int, height: int) -> np.ndarray:
        """xyxy boxes in input pixels → original image pixels, clipped to the image."""
        r, left, top = geom
        out = boxes.copy()
        out[:, [0, 2]] = ((boxes[:, [0, 2]] - left) / r).clip(0, width)
        out[:, [1, 3]] = ((boxes[:, [1, 3]] - top) / r).clip(0, height)
        return out


def preprocess_from_dict(d: dict) -> ImagePreprocess | Letterbox:
    """The recorded preprocessing of a run or export (classify: resize+crop; detect: letterbox)."""
    return Letterbox.from_dict(d) if d.get("kind") == "letterbox" else ImagePreprocess.from_dict(d)
