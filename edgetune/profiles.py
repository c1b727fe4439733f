"""Device profiles (profiles/*.yaml): capability + default budgets + published reference latencies.

A profile is data about a device, and every number in it has a source in the same file: the
`sources` mapping must cover `cpu`, `memory`, `targets` and `budgets`, and each reference
latency carries its own. Loading checks the schema and reports `file: field 'x.y' problem` in one
line (`edgetune profiles check FILE`), so a hand-written profile fails before a bench does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgetune.errors import ProfileError
from edgetune.paths import shipped_dir
from edgetune.registry import Registry
from edgetune.tasks.names import TASK_NAMES
from edgetune.untrusted import NAME_RULE, is_safe_name
from edgetune.yamlio import FieldReader, load_yaml_mapping

BUDGET_KEYS = ("latency_p50_ms", "latency_p99_ms", "size_mb", "peak_rss_mb", "min_metric")
SOURCE_KEYS = ("cpu", "memory", "targets", "budgets")
ARCHES = ("x86_64", "aarch64")


@dataclass(frozen=True)
class ReferenceLatency:
    """A published latency of a public reference model on the device (e.g. Ultralytics' Raspberry
    Pi 5 table for yolo11n): bench measures the same model on the host and scales by the ratio."""

    model: str  # a name in edgetune.reference.REFERENCE_MODELS
    imgsz: int
    runtime: str  # a backend that can build reference models (edgetune.export.backends)
    precision: str
    latency_ms: float
    source: str
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.model, "imgsz": self.imgsz, "runtime": self.runtime, "precision": self.precision,
                "latency_ms": self.latency_ms, "source": self.source, "note": self.note}


@dataclass(frozen=True)
class Npu:
    """The board's NPU as a target sees it: the runtime that compiles for it and the chip it
    compiles for (`export --target rknn-int8 --profile rockchip-rk3566` builds for the RK3566)."""

    runtime: str  # a backend with platforms (edgetune.export.backends)
    platform: str  # one of that backend's platforms

    def as_dict(self) -> dict[str, str]:
        return {"runtime": self.runtime, "platform": self.platform}


@dataclass(frozen=True)
class DeviceProfile:
    name: str
    description: str
    arch: str  # "x86_64" | "aarch64"
    cpu_model: str
    cores: int
    threads: int
    isa: tuple[str, ...]
    ram_mb: int
    storage_mb: int
    targets: tuple[str, ...]  # preferred targets, best first
    budgets: dict[str, dict[str, float]]  # task → budget key → limit
    sources: dict[str, str]
    accelerators: tuple[str, ...] = ()  # present on the board but not targeted (GPU, NPU), said plainly
    references: tuple[ReferenceLatency, ...] = ()
    npu: Npu | None = None
    source_file: str = ""

    def budgets_for(self, task: str) -> dict[str, float]:
        return dict(self.budgets.get(task, {}))


def _known_targets() -> list[str]:
    from edgetune.export.targets import TARGETS

    return TARGETS.names()


def _budgets(r: FieldReader, path: Path) -> dict[str, dict[str, float]]:
    budgets: dict[str, dict[str, float]] = {}
    for task, limits in r.get("budgets", dict).items():
        if task not in TASK_NAMES:
            raise ProfileError(f"{path}: field 'budgets.{task}' is not a task", hint="tasks: " + ", ".join(TASK_NAMES))
        if not isinstance(limits, dict):
            raise ProfileError(f"{path}: field 'budgets.{task}' must be a mapping of limits")
        br = FieldReader(limits, str(path), ProfileError, f"budgets.{task}.")
        for key in limits:
            if key not in BUDGET_KEYS:
                raise ProfileError(f"{path}: field 'budgets.{task}.{key}' is not a known budget",
                                   hint="known: " + ", ".join(BUDGET_KEYS))
        budgets[task] = {k: float(br.get(k, (int, float), check=lambda v: v > 0, expect="a positive number"))
                         for k in limits}
    return budgets


def _references(r: FieldReader, path: Path) -> tuple[ReferenceLatency, ...]:
    from edgetune.export.backends import BACKENDS
    from edgetune.reference import REFERENCE_MODELS

    runtimes = [n for n in BACKENDS.names() if BACKENDS.get(n).reference_format]
    refs = []
    for i, item in enumerate(r.get("reference_latencies", list, [])):
        if not isinstance(item, dict):
            raise ProfileError(f"{path}: field 'reference_latencies[{i}]' must be a mapping")
        e = FieldReader(item, str(path), ProfileError, f"reference_latencies[{i}].")
        refs.append(ReferenceLatency(
            model=e.get("model", str, check=lambda m: m in REFERENCE_MODELS,
                        expect="one of " + ", ".join(REFERENCE_MODELS)),
            imgsz=e.get("imgsz", int, check=lambda v: 32 <= v <= 4096 and v % 32 == 0,
                        expect="a multiple of 32 in [32, 4096]"),
            runtime=e.get("runtime", str, check=lambda v: v in runtimes, expect=" or ".join(runtimes)),
            precision=e.get("precision", str, check=lambda v: v == "fp32",
                            expect="fp32 (int8 speed-ups differ per quantiser; only fp32 references scale)"),
            latency_ms=float(e.get("latency_ms", (int, float), check=lambda v: v > 0, expect="a positive number")),
            source=e.get("source", str, check=lambda v: bool(v.strip()), expect="a non-empty citation"),
            note=e.get("note", str, ""),
        ))
    return tuple(refs)


def _npu(r: FieldReader) -> Npu | None:
    from edgetune.export.backends import BACKENDS

    if r.get("npu", dict, None) is None:
        return None
    n = r.sub("npu")
    compilers = [b for b in BACKENDS.names() if BACKENDS.get(b).platforms]
    runtime = n.get("runtime", str, check=lambda v: v in compilers, expect=" or ".join(compilers))
    chips = BACKENDS.get(runtime).platforms
    return Npu(runtime, n.get("platform", str, check=lambda v: v in chips, expect="one of " + ", ".join(chips)))


def load_profile(path: Path) -> DeviceProfile:
    """Parse and check one profile YAML; every problem is one `ProfileError` line naming the field."""
    data = load_yaml_mapping(path, ProfileError, "profile")
    r = FieldReader(data, str(path), ProfileError)
    cpu = r.sub("cpu")
    mem = r.sub("memory")
    cores = cpu.get("cores", int, check=lambda v: v >= 1, expect="a positive integer")
    targets = tuple(r.get("targets", list))
    known = _known_targets()
    for t in targets:
        if t not in known:
            raise ProfileError(f"{path}: field 'targets' names unknown target {t!r}", hint="known: " + ", ".join(known))
    src = r.sub("sources")
    sources = {k: src.get(k, str, check=lambda v: bool(v.strip()), expect="a non-empty citation")
               for k in SOURCE_KEYS}
    return DeviceProfile(
        name=r.get("name", str, check=is_safe_name, expect=NAME_RULE), description=r.get("description", str, ""),
        arch=cpu.get("arch", str, check=lambda a: a in ARCHES, expect=" or ".join(ARCHES)),
        cpu_model=cpu.get("model", str),
        cores=cores,
        threads=cpu.get("threads", int, check=lambda v: 1 <= v <= cores, expect=f"an integer in [1, {cores}]"),
        isa=tuple(cpu.get("isa", list)),
        ram_mb=mem.get("ram_mb", int, check=lambda v: v > 0, expect="a positive integer"),
        storage_mb=mem.get("storage_mb", int, check=lambda v: v > 0, expect="a positive integer"),
        targets=targets, budgets=_budgets(r, path), sources=sources,
        accelerators=tuple(str(a) for a in r.get("accelerators", list, [])),
        references=_references(r, path), npu=_npu(r), source_file=str(path),
    )


PROFILES: Registry[DeviceProfile] = Registry("profile", list_command="edgetune profiles")


def _load_all() -> None:
    for path in sorted(shipped_dir("profiles").glob("*.yaml")):
        p = load_profile(path)
        if p.name != path.stem:
            raise ProfileError(f"{path}: field 'name' is {p.name!r} but the file is {path.name}")
        PROFILES.register(p.name, p)


PROFILES.set_loader(_load_all)


def get_profile(name_or_path: str) -> DeviceProfile:
    """A shipped profile by name, or any profile YAML by path."""
    if name_or_path.endswith((".yaml", ".yml")) or "/" in name_or_path:
        return load_profile(Path(name_or_path))
    return PROFILES.get(name_or_path)


def check_budgets(profile: DeviceProfile, task: str, measured: dict[str, float]) -> list[str]:
    """Names of the violated budgets, each with measured vs limit."""
    violations = []
    for key, limit in profile.budgets_for(task).items():
        value = measured.get(key)
        if value is None:
            continue
        bad = value < limit if key == "min_metric" else value > limit
        if bad:
            violations.append(f"{key}: {value:.4g} {'<' if key == 'min_metric' else '>'} {limit:g}")
    return violations
