"""Perceptual hashes for near-duplicate images, and the pairs within a Hamming distance.

pHash (Zauner 2010, the `imagehash` library's phash): grey, 32×32, 2-D DCT, the 8×8 lowest
frequencies against their median → 64 bits. Resizing, re-encoding and mild colour changes move
few bits; different photos differ in about half. The DCT is a 32×32 matrix product here, so the
light install (no scipy) hashes too.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

HASH_SIDE = 32
LOW = 8
# The near-duplicate rule, chosen on the tuning half of benchmarks/leak_threshold.py (RESULTS.md
# "leak-threshold"): there a leaked copy (75 % size, JPEG q80) stayed within 2 bits of its
# original and the nearest *different* image was ≥ 14 bits away, on sets of 64 px and larger.
# On 8-28 px grey glyphs and products, different images came within 0-2 bits and leaked copies
# drifted up to 24: pHash cannot tell them apart, so smaller images get exact checks only.
MAX_DISTANCE = 8
MIN_SIDE = 64


@lru_cache(maxsize=1)
def _dct_matrix(n: int = HASH_SIDE) -> np.ndarray:
    k, i = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    return np.cos(np.pi * (2 * i + 1) * k / (2 * n))


def phash(image: object) -> int:
    """64-bit pHash of a PIL image or an (H, W[, C]) uint8 array."""
    from PIL import Image

    im = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image))
    grey = np.asarray(im.convert("L").resize((HASH_SIDE, HASH_SIDE), Image.Resampling.LANCZOS), dtype=np.float64)
    m = _dct_matrix()
    low = (m @ grey @ m.T)[:LOW, :LOW]
    bits = (low > np.median(low)).ravel()
    return int(np.packbits(bits).view(">u8")[0])


def near_pairs(a: np.ndarray, b: np.ndarray, max_distance: int, chunk: int = 2048) -> list[tuple[int, int, int]]:
    """(i, j, distance) for every a[i], b[j] within `max_distance` bits (uint64 hashes), in
    chunks so 50,000 × 50,000 images never build a 20 GB matrix."""
    a, b = np.asarray(a, dtype=np.uint64), np.asarray(b, dtype=np.uint64)
    out: list[tuple[int, int, int]] = []
    for s in range(0, len(a), chunk):
        d = np.bitwise_count(a[s:s + chunk, None] ^ b[None, :])
        ii, jj = np.nonzero(d <= max_distance)
        out += [(int(i) + s, int(j), int(d[i, j])) for i, j in zip(ii, jj, strict=True)]
    return out


def nearest(a: np.ndarray, b: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """For each a[i], the smallest Hamming distance to any b[j] (the calibration's statistic)."""
    a, b = np.asarray(a, dtype=np.uint64), np.asarray(b, dtype=np.uint64)
    return np.concatenate([np.bitwise_count(a[s:s + chunk, None] ^ b[None, :]).min(axis=1)
                           for s in range(0, len(a), chunk)]) if len(a) and len(b) else np.zeros(0, int)
