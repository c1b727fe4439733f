"""Where a fine-tune keeps its decoded training samples: in RAM, in a file on disk, or nowhere.

The classifier decodes every image once into fixed-size uint8 rows (edgetune.data.imagefolder)
and then draws batches of rows each epoch. In RAM that costs rows × bytes per row: a 50,000-image
set at 128 px (146 px stored squares) is 3.2 GB. `--cache`:

- `ram`: one numpy array (the fastest; the default when it fits the memory budget);
- `disk`: the rows in one file in a private folder of the cache, read back per batch with
  positioned reads: the file's pages live in the kernel's page cache, which the kernel reclaims
  under pressure, so the process's own memory stays one batch wide (a memory map would count
  every page it touched in the process's RSS);
- `none`: every image decoded again from its file each time it is drawn (no copy anywhere; the
  slowest, for when neither RAM nor disk space can hold the rows).

`auto` takes `ram` when the rows fit MEMORY_FRACTION of the memory available now (MemAvailable),
else `disk` when they fit the free disk space, else `none`, and says which and why (the manifest
records it).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgetune.errors import UsageError

MODES = ("auto", "ram", "disk", "none")
MEMORY_FRACTION = 0.5  # the decoded rows may take half of the memory available when training starts


@dataclass(frozen=True)
class CacheChoice:
    mode: str  # ram | disk | none
    note: str  # why, for the log and the manifest
    bytes: int  # the decoded rows' size

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "note": self.note, "gb": round(self.bytes / 1e9, 3)}


def available_memory() -> int:
    """Bytes the kernel says a new allocation can take without swapping (MemAvailable)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def disk_free(folder: Path | None = None) -> int:
    """Free bytes where the disk rows would go (the nearest existing folder above it)."""
    path = folder or _default_folder()
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


def choose(requested: str, rows: int, row_bytes: int, *, available: int | None = None,
           free_disk: int | None = None) -> CacheChoice:
    """The cache mode for `rows` decoded rows of `row_bytes` each: `auto` takes RAM when they fit
    its budget, else disk when they fit in the free disk space (with 10 % to spare), else none."""
    if requested not in MODES:
        raise UsageError(f"--cache must be one of {', '.join(MODES)}, got {requested!r}")
    size = rows * row_bytes
    if requested != "auto":
        return CacheChoice(requested, f"--cache {requested}", size)
    budget = int((available if available is not None else available_memory()) * MEMORY_FRACTION)
    gb = lambda n: f"{n / 1e9:.2f} GB"  # noqa: E731
    if size <= budget:
        return CacheChoice("ram", f"decoded set {gb(size)} fits in RAM (budget {gb(budget)})", size)
    free = free_disk if free_disk is not None else disk_free()
    if size * 1.1 <= free:
        return CacheChoice("disk", f"decoded set {gb(size)} exceeds the RAM budget {gb(budget)}: streamed from disk",
                           size)
    return CacheChoice("none", f"decoded set {gb(size)} fits neither the RAM budget {gb(budget)} nor the free disk "
                               f"({gb(free)}): decoded again at every draw", size)


class _RowFile:
    """Fixed-shape uint8 rows indexed like the first axis of an array (an int, a slice or an index
    array, then the other axes), one row read at a time by `_read`."""

    shape_row: tuple[int, ...]
    _n: int

    def __len__(self) -> int:
        return self._n

    @property
    def shape(self) -> tuple[int, ...]:
        return (self._n, *self.shape_row)

    def _read(self, i: int) -> np.ndarray:
        raise NotImplementedError

    def __getitem__(self, key: Any) -> np.ndarray:
        first, rest = (key[0], key[1:]) if isinstance(key, tuple) else (key, ())
        if isinstance(first, (int, np.integer)):
            return self._read(int(first))[rest]
        idx = range(self._n)[first] if isinstance(first, slice) else np.asarray(first)
        out = np.empty((len(idx), *self.shape_row), dtype=np.uint8)
        for j, i in enumerate(idx):
            out[j] = self._read(int(i))
        return out[(slice(None), *rest)]

    def close(self) -> None:
        pass


class DiskRows(_RowFile):
    """The rows in one file, written once and read back with positioned reads (`--cache disk`)."""

    def __init__(self, path: Path, rows: int, shape: tuple[int, ...]) -> None:
        self.shape_row, self._n = shape, rows
        self.row_bytes = int(np.prod(shape))
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        os.ftruncate(self._fd, rows * self.row_bytes)

    def __setitem__(self, i: int, row: np.ndarray) -> None:
        os.pwrite(self._fd, np.ascontiguousarray(row, dtype=np.uint8).tobytes(), int(i) * self.row_bytes)

    def _read(self, i: int) -> np.ndarray:
        raw = os.pread(self._fd, self.row_bytes, i * self.row_bytes)
        return np.frombuffer(raw, dtype=np.uint8).reshape(self.shape_row)

    def close(self) -> None:
        os.close(self._fd)


class LazyRows(_RowFile):
    """Rows decoded from their files each time they are read (`--cache none`)."""

    def __init__(self, decode: Callable[[int], np.ndarray], rows: int, shape: tuple[int, ...]) -> None:
        self._decode, self._n, self.shape_row = decode, rows, shape

    def __setitem__(self, i: int, row: np.ndarray) -> None:
        pass  # the check pass decodes every row once; nothing is kept

    def _read(self, i: int) -> np.ndarray:
        return self._decode(i)


Rows = np.ndarray | DiskRows | LazyRows


@contextmanager
def storage(choice: CacheChoice, folder: Path | None = None) -> Iterator[Callable[..., Rows]]:
    """Yields `allocate(name, rows, shape, decode)` for the chosen mode; the disk files live in a
    private folder (mode 0700) under the cache and are removed when the block ends, whatever ends it."""
    made: list[Rows] = []
    tmp = None
    if choice.mode == "disk":
        base = folder or _default_folder()
        base.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f"decoded-{os.getpid()}-", dir=base))

    def allocate(name: str, rows: int, shape: tuple[int, ...], decode: Callable[[int], np.ndarray]) -> Rows:
        if choice.mode == "ram":
            arr: Rows = np.empty((rows, *shape), dtype=np.uint8)
        elif choice.mode == "disk":
            arr = DiskRows(tmp / f"{name}.u8", rows, shape)  # type: ignore[operator]
        else:
            arr = LazyRows(decode, rows, shape)
        made.append(arr)
        return arr

    try:
        yield allocate
    finally:
        for arr in made:
            if isinstance(arr, _RowFile):
                arr.close()
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _default_folder() -> Path:
    from edgetune.paths import cache_dir

    return cache_dir() / "decoded"
