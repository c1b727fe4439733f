"""Atomic file writes and hashing: a killed process never leaves a half-written artefact."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Read once at import: os.umask can only be read by setting it, process-wide, so doing it on every
# write would briefly give files made by other threads (dataloaders) a 0 umask.
_UMASK = _read_umask()
_FILE_MODE = 0o666 & ~_UMASK
_DIR_MODE = 0o777 & ~_UMASK


@contextlib.contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temp path beside `final`; rename it into place only if the block succeeds."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, _FILE_MODE)  # mkstemp makes 0600; a report or artefact is meant to be shared
    try:
        yield tmp_path
        os.replace(tmp_path, final)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_json(path: Path, data: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


@contextlib.contextmanager
def atomic_dir(final: Path, *, owned: tuple[str, ...] | None = None) -> Iterator[Path]:
    """Build a directory under a temp name and swap it into place as a whole on success.

    `owned`: the entries this writer produces. Anything else already in `final` (a user's notes,
    a device's bench/ results, a nested folder) is moved into the new directory before the swap
    instead of being deleted with the old one; without `owned`, the whole old folder is replaced.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    os.chmod(tmp, _DIR_MODE)  # mkdtemp makes 0700; an export or data set is meant to be shared
    carried: list[str] = []
    try:
        yield tmp
        if final.exists():
            if owned is not None:
                for entry in sorted(os.listdir(final)):
                    if entry not in owned and not (tmp / entry).exists():
                        os.replace(final / entry, tmp / entry)
                        carried.append(entry)
            old = final.with_name(f".{final.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final, old)
            os.replace(tmp, final)
            carried.clear()
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    finally:
        for entry in carried:  # the swap failed: give the user's entries back
            os.replace(tmp / entry, final / entry)
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_json(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def ensure_writable_dir(path: Path, what: str) -> None:
    """Prove a file can be written at `path` before any long work starts: a read-only or missing
    output folder fails in one line now, not after an hour of training. Folders it had to create
    for the probe are removed again, so a later input error leaves nothing behind."""
    from edgetune.errors import OutputError

    path = Path(path).absolute()
    created = [p for p in (path, *path.parents) if not p.exists()]
    try:
        for attempt in range(3):
            path.mkdir(parents=True, exist_ok=True)
            try:
                fd, probe = tempfile.mkstemp(prefix=".edgetune-write-probe.", dir=path)
                break
            except FileNotFoundError:  # a concurrent edgetune removed the folder it had made for its own probe
                if attempt == 2:
                    raise
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(f"cannot write to {what} {path}: {exc.strerror}",
                          hint="choose a folder you can write to (and that has free space)") from None
    finally:
        for p in created:  # deepest first
            try:
                p.rmdir()
            except OSError:
                break


_WORK_DIR = re.compile(r"edgetune-[a-z]+-(\d+)-")
STALE_WORK_DIR_S = 3600  # another pid namespace sharing /tmp may hide a live owner: only old ones go


def work_dir(kind: str) -> tempfile.TemporaryDirectory:
    """A temp folder for `kind` of work (export, quantise, bench…), named with this process's pid.

    Removed on every exit path Python sees (errors, Ctrl-C, SIGTERM: see cli.common); folders a
    kill -9 left behind are swept by the next process that makes one, once their owner is gone."""
    _sweep_once()
    return tempfile.TemporaryDirectory(prefix=f"edgetune-{kind}-{os.getpid()}-")


@functools.cache
def _sweep_once() -> None:
    """One sweep per process: an export makes several work folders, a bench several workers."""
    sweep_stale_work_dirs()


def sweep_stale_work_dirs(now: float | None = None) -> list[Path]:
    """Remove this user's edgetune temp folders whose process no longer exists (best effort)."""
    import time

    now = time.time() if now is None else now
    removed = []
    for entry in Path(tempfile.gettempdir()).glob("edgetune-*-*-*"):
        m = _WORK_DIR.match(entry.name)
        try:
            st = entry.lstat()
            if not m or not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or now - st.st_mtime < STALE_WORK_DIR_S:
                continue
            os.kill(int(m.group(1)), 0)  # still running: keep
        except ProcessLookupError:
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
        except OSError:
            continue
    return removed
