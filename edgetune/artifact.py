"""An export folder as `predict` and `bench` open it: its metadata checked, every file's sha256
compared with export.json, and the model's input/output shapes compared with what the metadata
implies — before anything runs. A folder copied to a device, or swapped on the way, is named in
one line instead of failing inside a runtime with an IndexError or a C++ message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgetune.errors import RunDirError
from edgetune.fsutil import sha256_file
from edgetune.run import read_export_meta
from edgetune.runtime import Session

_HINT = "copy the export folder again, or re-run `edgetune export`"


def expected_files(meta: dict[str, Any]) -> dict[str, str]:
    """name → sha256 of every file of the artefact (exports before `files` existed: the main one)."""
    files = dict(meta.get("files") or {})
    if not files and meta.get("sha256"):
        files[Path(meta["artifact"]).name] = meta["sha256"]
    return files


def verify_files(folder: Path, meta: dict[str, Any]) -> None:
    for name, digest in expected_files(meta).items():
        path = folder / name
        if not path.is_file():
            raise RunDirError(f"{path} is missing from the export folder", hint=_HINT)
        if sha256_file(path) != digest:
            raise RunDirError(f"{path} is not the file `edgetune export` wrote (its sha256 differs from "
                              f"export.json's)", hint=_HINT)


def check_shapes(session: Session, meta: dict[str, Any]) -> None:
    from edgetune.tasks import get_task

    want_in, want_out = get_task(meta["task"]).io_shapes(meta)
    for what, want, got in (("input", want_in, session.input_shape), ("output", want_out, session.output_shape)):
        if not got:  # a dynamic shape the runtime cannot state: nothing to compare
            continue
        fits = len(got) == len(want) and all(w is None or not isinstance(g, int) or g == w
                                             for w, g in zip(want, got, strict=True))
        if not fits:
            raise RunDirError(f"{session.path} has {what} shape {_shape(got)}, but export.json describes a "
                              f"{meta['task']} model with {_shape(want)} ({len(meta['labels'])} labels)", hint=_HINT)


def _shape(dims: tuple) -> str:
    return "x".join(str(d) if isinstance(d, int) else "?" for d in dims)


def open_export(folder: Path, *, meta: dict[str, Any] | None = None, threads: int | None = None,
                hint: str | None = None) -> tuple[dict[str, Any], Session]:
    """The checked export.json of `folder` (`meta`, when the caller already read it) and a Session
    over its verified artefact."""
    folder = Path(folder)
    meta = meta if meta is not None else read_export_meta(folder, hint=hint)
    verify_files(folder, meta)
    session = Session(folder / Path(meta["artifact"]).name, threads=threads)
    check_shapes(session, meta)
    return meta, session
