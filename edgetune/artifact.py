"""An export folder as `predict`, `bench`, the latency child and a device open it: its
export.json read into a typed `ExportMeta`, every file's sha256 compared with it, and the model's
input/output shapes compared with what it implies — before anything runs. A folder copied to a
device, or swapped on the way, is named in one line instead of failing inside a runtime with an
IndexError or a C++ message.

`open_export(path, target)` takes a run directory with a target, or an export folder alone. On a
device only the export folder exists: then `run` and `manifest` are None (the typed "no
manifest" state), and whatever needs the run's data asks for `--data` instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from edgetune.contract import DataRef, ExportMeta, Manifest
from edgetune.errors import RunDirError, UsageError
from edgetune.fsutil import sha256_file
from edgetune.run import EXPORT_META, RunDir, read_export_meta
from edgetune.runtime import Session, open_session

_HINT = "copy the export folder again, or re-run `edgetune export`"


@dataclass(frozen=True)
class Export:
    """A located export: its folder and metadata, and its run when the run is here."""

    folder: Path
    meta: ExportMeta
    run: RunDir | None

    @cached_property
    def manifest(self) -> Manifest | None:
        """The run's manifest, read only by what needs the run's data (bench): predict needs
        export.json alone, so a damaged manifest beside it must not stop a prediction."""
        return self.run.read_manifest() if self.run is not None and self.run.manifest_path.is_file() else None

    @property
    def model_file(self) -> Path:
        return self.folder / self.meta.artifact_name

    def data(self, override: str | Path | None = None) -> DataRef | None:
        """The data to measure on: `override` (--data), else the run's own; None when neither is here."""
        if override is not None:
            if self.manifest is not None:
                return self.manifest.data.given(override)
            from edgetune.tasks import get_task

            return get_task(self.meta.task).user_data(override)
        return self.manifest.data if self.manifest is not None else None

    def open_session(self, *, threads: int | None = None) -> Session:
        """A Session over the verified artefact (every file's hash and the I/O shapes checked)."""
        verify_files(self.folder, self.meta)
        session = open_session(self.model_file, threads=threads)
        check_shapes(session, self.meta)
        return session


def open_export(path: str | Path, target: str | None = None, *, hint: str | None = None) -> Export:
    """PATH is an export folder (RUN/export/<target>, or a copy of one), or a run directory with
    `target`. Its run is found when the folder sits in one."""
    path = Path(path)
    if (path / EXPORT_META).is_file():
        meta = read_export_meta(path, hint=hint)
        if target and target != meta.target:
            raise UsageError(f"--target {target} does not match the export folder {path} (it holds {meta.target})",
                             hint="drop --target when passing an export folder")
        parent = path.resolve().parent
        run = RunDir(parent.parent) if parent.name == "export" else None
        return Export(path, meta, run if run is not None and run.manifest_path.is_file() else None)
    if not target:
        raise UsageError(f"{path} is not an export folder (no {EXPORT_META}), so --target is needed",
                         hint=hint or "pass RUN --target T, or the export folder RUN/export/T itself")
    run = RunDir(path)
    folder = run.export_dir(target)
    meta = read_export_meta(folder, hint=f"run `edgetune export {run.path} --target {target}` first")
    return Export(folder, meta, run)


def verify_files(folder: Path, meta: ExportMeta) -> None:
    for name, digest in meta.expected_files().items():
        path = folder / name
        if not path.is_file():
            raise RunDirError(f"{path} is missing from the export folder", hint=_HINT)
        if sha256_file(path) != digest:
            raise RunDirError(f"{path} is not the file `edgetune export` wrote (its sha256 differs from "
                              f"export.json's)", hint=_HINT)


def check_shapes(session: Session, meta: ExportMeta) -> None:
    from edgetune.tasks import get_task

    want_in, want_out = get_task(meta.task).io_shapes(meta.spec)
    for what, want, got in (("input", want_in, session.input_shape), ("output", want_out, session.output_shape)):
        if not got:  # a dynamic shape the runtime cannot state: nothing to compare
            continue
        fits = len(got) == len(want) and all(w is None or not isinstance(g, int) or g == w
                                             for w, g in zip(want, got, strict=True))
        if not fits:
            raise RunDirError(f"{session.path} has {what} shape {_shape(got)}, but export.json describes a "
                              f"{meta.task} model with {_shape(want)} ({len(meta.spec.labels)} labels)", hint=_HINT)


def _shape(dims: tuple) -> str:
    return "x".join(str(d) if isinstance(d, int) else "?" for d in dims)
