"""Fashion-MNIST (Zalando, MIT/Expat licence) without a hub.

Sources, in order: a small subset embedded in the package (100 train + 50 test images per
class, ~0.5 MB, enough for the demo), the Debian package `dataset-fashion-mnist` when installed
(/usr/share/datasets/fashion-mnist), or the same package fetched with `apt-get download` and
unpacked with `dpkg-deb -x` (no root install) into the edgetune cache.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgetune.errors import DataError

CLASSES = ("t-shirt_top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
           "ankle_boot")
EMBEDDED = Path(__file__).with_name("fashion_mnist_subset.npz")
SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
DEB_PACKAGE = "dataset-fashion-mnist"
_FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
          "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}


@dataclass(frozen=True)
class Split:
    images: np.ndarray  # (N, 28, 28) uint8
    labels: np.ndarray  # (N,) int64


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _debian_dir(fetch: bool) -> Path:
    from edgetune.data.debian import debian_files

    return debian_files(DEB_PACKAGE, str(SYSTEM_DIR.relative_to("/")), [f for pair in _FILES.values() for f in pair],
                        fetch=fetch, hint="run `edgetune data fashion-mnist --source debian` once, or use --source embedded",
                        cache_name="fashion-mnist")


def load(source: str = "auto", *, need_train: int = 0, need_test: int = 0) -> tuple[Split, Split, str]:
    """Return (train, test, source used). `auto` = embedded when it holds enough images a class."""
    if source not in ("auto", "embedded", "debian"):
        raise DataError(f"unknown Fashion-MNIST source {source!r}", hint="use auto, embedded or debian")
    if source in ("auto", "embedded"):
        with np.load(EMBEDDED) as z:
            train = Split(z["x_train"], z["y_train"].astype(np.int64))
            test = Split(z["x_test"], z["y_test"].astype(np.int64))
        have_train = int(np.bincount(train.labels).min())
        have_test = int(np.bincount(test.labels).min())
        if need_train <= have_train and need_test <= have_test:
            return train, test, "embedded"
        if source == "embedded":
            raise DataError(f"the embedded subset has {have_train} train / {have_test} test images per "
                            f"class; asked for {need_train} / {need_test}",
                            hint="use --source debian for the full 60k+10k set")
    folder = _debian_dir(fetch=True)
    train = Split(_read_idx(folder / _FILES["train"][0]), _read_idx(folder / _FILES["train"][1]).astype(np.int64))
    test = Split(_read_idx(folder / _FILES["test"][0]), _read_idx(folder / _FILES["test"][1]).astype(np.int64))
    return train, test, f"debian:{folder}"


def sample_per_class(split: Split, per_class: int, seed: int) -> np.ndarray:
    """Indices of `per_class` images of each class, chosen by `seed`, in a stable order."""
    rng = np.random.default_rng(seed)
    picks = []
    for c in range(len(CLASSES)):
        idx = np.flatnonzero(split.labels == c)
        if len(idx) < per_class:
            raise DataError(f"class {CLASSES[c]} has only {len(idx)} images, asked for {per_class}")
        picks.append(np.sort(rng.choice(idx, size=per_class, replace=False)))
    return np.concatenate(picks)
