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

import platform
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from edgetune.contract import ExportMeta, Manifest
from edgetune.errors import RunDirError
from edgetune.fsutil import write_json
from edgetune.untrusted import MAX_JSON_BYTES, inside, parse_json, read_text, safe_name

MANIFEST = "edgetune.json"
EXPORT_META = "export.json"


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
        return inside(self.path, "export", safe_name(target, "target"))

    def failed_export_dir(self, target: str) -> Path:
        """Where a build that failed its accuracy gate is kept for inspection (never export/)."""
        return inside(self.path, "export-failed", safe_name(target, "target"))

    def bench_path(self, profile: str, target: str) -> Path:
        """Names may come from a profile file or a device's answer: validated, kept inside the run."""
        return inside(self.path, "bench", safe_name(profile, "profile"), f"{safe_name(target, 'target')}.json")

    def read_manifest(self) -> Manifest:
        data = read_json_file(self.manifest_path, what="run manifest",
                              hint=f"is {self.path} a run directory made by `edgetune finetune`?")
        return Manifest.from_dict(data, str(self.manifest_path))

    def write_manifest(self, manifest: Manifest) -> None:
        write_json(self.manifest_path, manifest.to_dict())

    def exports(self) -> dict[str, ExportMeta]:
        """Every finished export (those whose export.json exists), by target id."""
        out: dict[str, ExportMeta] = {}
        root = self.path / "export"
        if root.is_dir():
            for meta in sorted(root.glob(f"*/{EXPORT_META}")):
                if not meta.parent.name.startswith("."):  # an unfinished atomic_dir, left by a kill -9
                    out[meta.parent.name] = read_export_meta(meta.parent)
        return out


def open_run(path: str | Path, *, task: str | None = None) -> tuple[RunDir, Manifest]:
    """Open an existing run directory and its manifest, checking it is finished and of `task`."""
    run = RunDir(Path(path))
    if not run.path.is_dir():
        raise RunDirError(f"run directory {run.path} does not exist",
                          hint="pass the --out folder of an earlier `edgetune finetune`")
    manifest = run.read_manifest()
    if task is not None and manifest.task != task:
        raise RunDirError(f"run {run.path} is a {manifest.task!r} run, not {task!r}")
    if not run.checkpoint.is_file():
        raise RunDirError(f"run {run.path} has no checkpoint.pt",
                          hint="finish the fine-tune (or `edgetune finetune --resume`) first")
    return run, manifest


def check_run_location(out: Path, data: Path) -> None:
    """A run directory must not overlap its data folder (the next scan would read export/ as a
    class, or train on its own outputs) nor sit inside another run or export folder (a re-export
    there would replace the folder holding it). Checked before any work, for every task. A data
    YAML (detect) names its own image folders: only its folder itself and its parents are refused."""
    from edgetune.errors import UsageError

    o, data = Path(out).resolve(), Path(data)
    if data.exists():
        d = data.resolve() if data.is_dir() else data.resolve().parent
        inside_data = o.is_relative_to(d) and data.is_dir()
        if o == d or inside_data or d.is_relative_to(o):
            where = "is" if o == d else "is inside" if inside_data else "contains"
            raise UsageError(f"--out {out} {where} the data folder {d}",
                             hint="put runs beside the data, e.g. --out runs/NAME")
    for parent in o.parents:
        for marker, what in ((EXPORT_META, "export folder"), (MANIFEST, "run directory")):
            if (parent / marker).is_file():
                raise UsageError(f"--out {out} is inside the {what} {parent}",
                                 hint="choose a folder outside other runs, e.g. --out runs/NAME")


def read_json_file(path: Path, *, what: str, hint: str | None = None) -> dict[str, Any]:
    """A JSON object from a file that may be hand-edited, truncated or hostile: size and nesting
    bounded (edgetune.untrusted), every problem one RunDirError line."""
    if not path.is_file():
        raise RunDirError(f"{what} {path} not found", hint=hint)
    text = read_text(path, limit=MAX_JSON_BYTES, what=what)
    data = parse_json(text, what=f"{what} {path}", hint=hint)
    if not isinstance(data, dict):
        raise RunDirError(f"{what} {path} is not a JSON object", hint=hint)
    return data


def read_export_meta(folder: Path, *, hint: str | None = None) -> ExportMeta:
    """An export folder's export.json with the fields every command relies on checked (a
    hand-edited, truncated or foreign one fails here in one line naming the field)."""
    from edgetune.export.targets import TARGETS

    path = Path(folder) / EXPORT_META
    data = read_json_file(path, what="export metadata", hint=hint)
    names = {t: TARGETS.get(t).artifact for t in TARGETS.names()}
    return ExportMeta.from_dict(data, str(path), artifact_names=names)


def read_bench_result(path: Path) -> dict[str, Any]:
    """A bench JSON (RUN/bench/<profile>/<target>.json) with the fields `report` reads checked."""
    data = read_json_file(path, what="bench result", hint="re-run `edgetune bench` to write it again")
    check_bench_result(data, str(path))
    return data


def check_bench_result(data: dict[str, Any], source: str) -> None:
    """The fields of a bench result that `report` and the remote path rely on, with their types."""
    from edgetune.yamlio import FieldReader

    r = FieldReader(data, source, RunDirError)
    try:
        safe_name(r.get("profile", str), f"{source}: profile")
        safe_name(r.get("target", str), f"{source}: target")
        r.get("metric", (int, float))
        lat = r.sub("latency_ms")
        lat.get("p50", (int, float))
        lat.get("p99", (int, float))
        for key in ("throughput_per_s", "peak_rss_mb"):
            r.get(key, (int, float))
        r.get("pass", bool)
        if not all(isinstance(v, str) for v in r.get("violations", list)):
            raise RunDirError(f"{source}: field 'violations' must be a list of strings")
        est = r.sub("estimate", None)
        est.get("available", bool, None)
        est.get("latency_p50_ms", (int, float), None)
        stream = r.get("stream", (dict, str), None)
        if isinstance(stream, dict):
            r.sub("stream").sub("at_threshold").get("fa_per_hour", (int, float))
        r.get("curves", dict, None)
    except RunDirError as exc:
        raise RunDirError(exc.message, hint="re-run `edgetune bench` to write it again") from None
