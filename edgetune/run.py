"""The run directory: the contract between commands (see shared/ARCHITECTURE.md).

    runs/<name>/edgetune.json      manifest: task, card, labels, preprocessing, data hash, seed,
                                   versions, per-epoch metrics, best metric
    runs/<name>/checkpoint.pt      best weights (state_dict)
    runs/<name>/last.pt            resume state
    runs/<name>/export/<target>/   artefact + export.json
    runs/<name>/bench/<profile>/<target>.json

The manifest is the commit point: it is written last, atomically.
"""

from __future__ import annotations

import json
import platform
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from edgetune.errors import RunDirError
from edgetune.fsutil import write_json

MANIFEST = "edgetune.json"
EXPORT_META = "export.json"
SCHEMA_VERSION = 1


def versions(packages: tuple[str, ...] = ("edgetune", "torch", "torchvision", "timm", "onnx",
                                           "onnxruntime", "openvino")) -> dict[str, str]:
    """Installed versions of the stack, recorded for provenance."""
    out = {"python": platform.python_version(), "platform": f"{sys.platform}-{platform.machine()}"}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


@dataclass(frozen=True)
class RunDir:
    """A run directory on disk."""

    path: Path

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST

    @property
    def checkpoint(self) -> Path:
        return self.path / "checkpoint.pt"

    @property
    def last(self) -> Path:
        return self.path / "last.pt"

    def export_dir(self, target: str) -> Path:
        return self.path / "export" / target

    def bench_path(self, profile: str, target: str) -> Path:
        return self.path / "bench" / profile / f"{target}.json"

    def read_manifest(self) -> dict[str, Any]:
        data = read_json_file(self.manifest_path, what="run manifest",
                              hint=f"is {self.path} a run directory made by `edgetune finetune`?")
        check_manifest(data, self.manifest_path)
        return data

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        manifest = {"schema": SCHEMA_VERSION, **manifest}
        write_json(self.manifest_path, manifest)

    def exports(self) -> dict[str, dict[str, Any]]:
        """Every finished export (those whose export.json exists), by target id."""
        out: dict[str, dict[str, Any]] = {}
        root = self.path / "export"
        if root.is_dir():
            for meta in sorted(root.glob(f"*/{EXPORT_META}")):
                if not meta.parent.name.startswith("."):  # an unfinished atomic_dir, left by a kill -9
                    out[meta.parent.name] = json.loads(meta.read_text())
        return out


def open_run(path: str | Path, *, task: str | None = None) -> tuple[RunDir, dict[str, Any]]:
    """Open an existing run directory and its manifest, checking it is finished and of `task`."""
    run = RunDir(Path(path))
    if not run.path.is_dir():
        raise RunDirError(f"run directory {run.path} does not exist",
                          hint="pass the --out folder of an earlier `edgetune finetune`")
    manifest = run.read_manifest()
    if task is not None and manifest.get("task") != task:
        raise RunDirError(f"run {run.path} is a {manifest.get('task')!r} run, not {task!r}")
    if not run.checkpoint.is_file():
        raise RunDirError(f"run {run.path} has no checkpoint.pt",
                          hint="finish the fine-tune (or `edgetune finetune --resume`) first")
    return run, manifest


def check_manifest(data: dict[str, Any], path: Path) -> None:
    """The fields every command relies on, with their types: a hand-edited or corrupted manifest
    fails here in one line naming the field, not later as a KeyError (found by fuzzing)."""
    from edgetune.yamlio import FieldReader

    hint = "the manifest is written by `edgetune finetune`; restore it or re-run the fine-tune"
    r = FieldReader(data, str(path), RunDirError)
    try:
        from edgetune.tasks import TASKS

        r.get("task", str, check=lambda t: t in TASKS.names(), expect="one of " + ", ".join(TASKS.names()))
        r.get("model", str)
        metric = r.get("metric_name", str)
        labels = r.get("labels", list)
        if not all(isinstance(x, str) for x in labels):
            raise RunDirError(f"{path}: field 'labels' must be a list of strings")
        r.get("preprocessing", dict)
        data_ = r.sub("data")
        data_.get("root", str)
        data_.get("hash", str, None)
        r.get("seed", int, 0)
        for key in ("versions", "card", "config"):
            r.get(key, dict, None)
        r.sub("best", None).get(metric, (int, float), None)
        weights = r.sub("weights", None)
        weights.get("sha256", str, None)
        weights.get("source", str, None)
        r.get("status", str, "done")
    except RunDirError as exc:
        raise RunDirError(exc.message, hint=hint) from None


def read_json_file(path: Path, *, what: str, hint: str | None = None) -> dict[str, Any]:
    if not path.is_file():
        raise RunDirError(f"{what} {path} not found", hint=hint)
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunDirError(f"{what} {path} is not valid JSON ({exc})", hint=hint) from None
    if not isinstance(data, dict):
        raise RunDirError(f"{what} {path} is not a JSON object", hint=hint)
    return data
