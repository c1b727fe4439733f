"""The run contract, typed: what `finetune` writes (edgetune.json) and `export` writes (export.json),
read back by every other command.

Both files are JSON that may be hand-edited, truncated, foreign or hostile, so each type is read
in one place (`from_dict`, through the field reader: a bad field is one line naming it) and
written in one place (`to_dict`). Fields no command relies on (histories, quantisation records,
versions…) travel untouched in `extra`, so a newer edgetune's extra fields survive a round trip.

`ModelSpec` is what an artefact needs to be used (labels, input format, decoding); the manifest and
export.json both carry it, so a bare export folder on a device is enough to predict and bench.
`DataRef` is where a run's data is and how it was split; a bare export folder has none — that is
the typed "no manifest" state (`None`), never a made-up one.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from edgetune.errors import RunDirError
from edgetune.tasks.names import METRIC_NAMES, TASK_NAMES
from edgetune.untrusted import safe_name
from edgetune.yamlio import FieldReader

SCHEMA_VERSION = 1
_MANIFEST_HINT = "the manifest is written by `edgetune finetune`; restore it or re-run the fine-tune"
_EXPORT_HINT = "export.json is written by `edgetune export`; restore it or export again"


def _labels(r: FieldReader, path: str) -> tuple[str, ...]:
    labels = r.get("labels", list)
    if not labels or not all(isinstance(x, str) for x in labels):
        raise RunDirError(f"{path}: field 'labels' must be a non-empty list of strings")
    return tuple(labels)


@dataclass(frozen=True)
class ModelSpec:
    """How to use the model: its task, classes, input format and decoding."""

    task: str
    model: str
    labels: tuple[str, ...]
    preprocessing: dict[str, Any]
    metric_name: str
    postprocess: dict[str, Any] | None = None

    @classmethod
    def read(cls, r: FieldReader, path: str) -> ModelSpec:
        task = r.get("task", str, check=lambda t: t in TASK_NAMES, expect="one of " + ", ".join(TASK_NAMES))
        return cls(task=task, model=r.get("model", str), labels=_labels(r, path),
                   preprocessing=r.get("preprocessing", dict),
                   metric_name=r.get("metric_name", str, METRIC_NAMES[task]), postprocess=r.get("postprocess", dict, None))

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "model": self.model, "labels": list(self.labels),
                "preprocessing": self.preprocessing, "metric_name": self.metric_name, "postprocess": self.postprocess}

    def with_postprocess(self, **changes: Any) -> ModelSpec:
        """The same model decoded with other settings (predict --conf)."""
        return replace(self, postprocess={**(self.postprocess or {}), **changes})


@dataclass(frozen=True)
class DataRef:
    """Where a run's data set is and how its val split was made (`seed`: the split and
    validation-noise seed, the run's seed)."""

    root: str
    layout: str = "train/val"  # "train/val" | "split:<fraction>" | "yolo"
    yaml: str | None = None  # detect: the data.yaml
    keywords: tuple[str, ...] | None = None  # kws: the word folders that are keywords
    hash: str | None = None
    seed: int = 0
    details: dict[str, Any] = field(default_factory=dict)  # counts and notes, recorded only

    @property
    def val_split(self) -> float | None:
        """The held-out fraction when the run split one folder itself."""
        return float(self.layout.split(":", 1)[1]) if self.layout.startswith("split:") else None

    def given(self, path: str | Path) -> DataRef:
        """The same kind of data at another place (`--data` on a device): its own val split, as is."""
        p = str(path)
        return replace(self, root=p, yaml=p if self.yaml else None, hash=None, details={},
                       layout="train/val" if self.val_split is not None else self.layout)

    @classmethod
    def read(cls, r: FieldReader, seed: int) -> DataRef:
        keywords = r.get("keywords", list, None)
        known = ("root", "layout", "yaml", "keywords", "hash")
        return cls(root=r.get("root", str), layout=r.get("layout", str, "train/val"), yaml=r.get("yaml", str, None),
                   keywords=tuple(str(k) for k in keywords) if keywords else None, hash=r.get("hash", str, None),
                   seed=seed, details={k: v for k, v in r.data.items() if k not in known})

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"root": self.root, "layout": self.layout}
        if self.yaml is not None:
            out["yaml"] = self.yaml
        if self.keywords is not None:
            out["keywords"] = list(self.keywords)
        return {**out, "hash": self.hash, **self.details}


@dataclass(frozen=True)
class WeightsRef:
    """The pretrained weights a run started from (None: random init)."""

    source: str | None
    file: str | None
    sha256: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "file": self.file, "sha256": self.sha256}


@dataclass(frozen=True)
class Manifest:
    """RUN/edgetune.json: the commit point of a fine-tune."""

    spec: ModelSpec
    data: DataRef
    seed: int
    status: str = "done"  # "running" while training; "done" once the best checkpoint is final
    # what checkpoint.pt holds: {"epoch": e, <metric_name>: its val value}, plus "average_of": [best, last]
    # when it is the average of two epochs' weights (classify's default, edgetune.train.loop)
    best: dict[str, Any] | None = None
    weights: WeightsRef | None = None
    checkpoint_sha256: str | None = None  # detect: the pickle's pin, checked before loading
    card: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    versions: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # task-specific records (history, transfer…)

    @property
    def task(self) -> str:
        return self.spec.task

    @property
    def model(self) -> str:
        return self.spec.model

    @property
    def labels(self) -> tuple[str, ...]:
        return self.spec.labels

    def updated(self, **extra: Any) -> Manifest:
        """A copy with `status`, `best` or `checkpoint_sha256` changed and `extra` records merged."""
        fields = {k: extra.pop(k) for k in ("status", "best", "checkpoint_sha256") if k in extra}
        return replace(self, **fields, extra={**self.extra, **extra})

    @classmethod
    def from_dict(cls, data: dict[str, Any], path: str) -> Manifest:
        """Check the fields every command relies on, with their types (one line naming a bad one)."""
        r = FieldReader(data, path, RunDirError)
        try:
            spec = ModelSpec.read(r, path)
            seed = r.get("seed", int, 0)
            best = r.get("best", dict, None)
            r.sub("best", None).get(spec.metric_name, (int, float), None)
            w = r.sub("weights", None)
            weights = (WeightsRef(w.get("source", str, None), w.get("file", str, None), w.get("sha256", str, None))
                       if data.get("weights") is not None else None)
            known = {"schema", "task", "model", "labels", "preprocessing", "metric_name", "postprocess", "data", "seed",
                     "status", "best", "weights", "checkpoint_sha256", "card", "config", "versions"}
            return cls(spec=spec, data=DataRef.read(r.sub("data"), seed), seed=seed, status=r.get("status", str, "done"),
                       best=best, weights=weights, checkpoint_sha256=r.get("checkpoint_sha256", str, None),
                       card=r.get("card", dict, None), config=r.get("config", dict, None),
                       versions=r.get("versions", dict, None) or {},
                       extra={k: v for k, v in data.items() if k not in known})
        except RunDirError as exc:
            raise RunDirError(exc.message, hint=_MANIFEST_HINT) from None

    def to_dict(self) -> dict[str, Any]:
        out = {"schema": SCHEMA_VERSION, **self.spec.to_dict(), "card": self.card, "data": self.data.to_dict(),
               "weights": self.weights and self.weights.to_dict(), "seed": self.seed, "config": self.config,
               "versions": self.versions, **self.extra, "status": self.status, "best": self.best}
        if self.checkpoint_sha256 is not None:
            out["checkpoint_sha256"] = self.checkpoint_sha256
        return out


@dataclass(frozen=True)
class ExportMeta:
    """RUN/export/<target>/export.json: an artefact, its proof and its metric.

    `files` (name → sha256) covers every file of the artefact; `open_export` checks them all."""

    spec: ModelSpec
    target: str
    artifact: str  # absolute path written at export; only its file name is trusted
    metric: float
    metric_fp32: float
    drop: float
    size_mb: float
    passed: bool
    max_drop: float | None = None
    max_drop_source: str | None = None  # edgetune.export.gate: --max-drop, default, --max-drop none, unset
    max_abs_diff: float | None = None
    files: dict[str, str] = field(default_factory=dict)
    sha256: str | None = None
    curves: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # build records: quantisation, calibration, auto…

    @property
    def task(self) -> str:
        return self.spec.task

    @property
    def artifact_name(self) -> str:
        return Path(self.artifact).name

    def expected_files(self) -> dict[str, str]:
        """name → sha256 of every file of the artefact (exports before `files` existed: the main one)."""
        return dict(self.files) or ({self.artifact_name: self.sha256} if self.sha256 else {})

    @classmethod
    def from_dict(cls, data: dict[str, Any], path: str, *, artifact_names: dict[str, str]) -> ExportMeta:
        """`artifact_names`: target → the artefact file name its backend writes (a target this
        edgetune does not know, or a renamed artefact, is one line naming the field)."""
        r = FieldReader(data, path, RunDirError)
        try:
            target = r.get("target", str, check=lambda t: t in artifact_names, expect="a known target")
            spec = ModelSpec.read(r, path)
            expected = artifact_names[target]
            num = lambda k: float(r.get(k, (int, float)))  # noqa: E731
            files = r.get("files", dict, None) or {}
            for name, digest in files.items():
                safe_name(name, f"{path}: file")
                if not isinstance(digest, str):
                    raise RunDirError(f"{path}: field 'files.{name}' must be a sha256 string")
            known = {"task", "model", "labels", "preprocessing", "metric_name", "postprocess", "target", "artifact",
                     "metric", "metric_fp32", "drop", "size_mb", "pass", "max_drop", "max_drop_source", "max_abs_diff", "files",
                     "sha256", "curves"}
            return cls(spec=spec, target=target,
                       artifact=r.get("artifact", str, check=lambda a: Path(a).name == expected,
                                      expect=f"a path ending in {expected}"),
                       metric=num("metric"), metric_fp32=num("metric_fp32"), drop=num("drop"), size_mb=num("size_mb"),
                       passed=r.get("pass", bool), max_drop=r.get("max_drop", (int, float), None),
                       max_drop_source=r.get("max_drop_source", str, None),
                       max_abs_diff=r.get("max_abs_diff", (int, float), None), files=dict(files),
                       sha256=r.get("sha256", str, None), curves=r.get("curves", dict, None) or {},
                       extra={k: v for k, v in data.items() if k not in known})
        except RunDirError as exc:
            raise RunDirError(exc.message, hint=exc.hint or _EXPORT_HINT) from None

    def to_dict(self) -> dict[str, Any]:
        return {**self.spec.to_dict(), "target": self.target, **self.extra, "metric_fp32": self.metric_fp32,
                "metric": self.metric, "drop": self.drop, "max_drop": self.max_drop,
                "max_drop_source": self.max_drop_source, "pass": self.passed,
                "max_abs_diff": self.max_abs_diff, "size_mb": self.size_mb, "curves": self.curves,
                "artifact": self.artifact, "files": self.files, "sha256": self.sha256}

