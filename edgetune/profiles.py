"""Device profiles (profiles/*.yaml): capability + default budgets; bench reports pass/fail.

A profile is data about a device, every number with a source. Loading checks the schema and
reports `file: field 'x.y' problem` in one line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edgetune.errors import ProfileError
from edgetune.paths import shipped_dir
from edgetune.registry import Registry
from edgetune.yamlio import FieldReader, load_yaml_mapping
from edgetune.zoo import TASKS

BUDGET_KEYS = ("latency_p50_ms", "latency_p99_ms", "size_mb", "peak_rss_mb", "min_metric")


@dataclass(frozen=True)
class DeviceProfile:
    name: str
    description: str
    arch: str  # "x86_64" | "aarch64"
    cores: int
    threads: int
    isa: tuple[str, ...]
    ram_mb: int
    storage_mb: int
    targets: tuple[str, ...]  # preferred targets, best first
    budgets: dict[str, dict[str, float]]  # task → budget key → limit
    sources: tuple[str, ...] = field(default_factory=tuple)
    source_file: str = ""

    def budgets_for(self, task: str) -> dict[str, float]:
        return dict(self.budgets.get(task, {}))


def load_profile(path: Path) -> DeviceProfile:
    data = load_yaml_mapping(path, ProfileError, "profile")
    r = FieldReader(data, str(path), ProfileError)
    cpu = r.sub("cpu")
    mem = r.sub("memory")
    budgets_raw = r.get("budgets", dict)
    budgets: dict[str, dict[str, float]] = {}
    for task, limits in budgets_raw.items():
        if task not in TASKS:
            raise ProfileError(f"{path}: field 'budgets.{task}' is not a task", hint="tasks: " + ", ".join(TASKS))
        br = FieldReader(limits if isinstance(limits, dict) else {}, str(path), ProfileError, f"budgets.{task}.")
        if not isinstance(limits, dict):
            raise ProfileError(f"{path}: field 'budgets.{task}' must be a mapping of limits")
        for key in limits:
            if key not in BUDGET_KEYS:
                raise ProfileError(f"{path}: field 'budgets.{task}.{key}' is not a known budget",
                                   hint="known: " + ", ".join(BUDGET_KEYS))
        budgets[task] = {k: float(br.get(k, (int, float), check=lambda v: v > 0, expect="a positive number"))
                         for k in limits}
    cores = cpu.get("cores", int, check=lambda v: v >= 1, expect="a positive integer")
    return DeviceProfile(
        name=r.get("name", str), description=r.get("description", str, ""),
        arch=cpu.get("arch", str, check=lambda a: a in ("x86_64", "aarch64"), expect="x86_64 or aarch64"),
        cores=cores,
        threads=cpu.get("threads", int, check=lambda v: 1 <= v <= cores, expect=f"an integer in [1, {cores}]"),
        isa=tuple(cpu.get("isa", list, [])),
        ram_mb=mem.get("ram_mb", int, check=lambda v: v > 0, expect="a positive integer"),
        storage_mb=mem.get("storage_mb", int, check=lambda v: v > 0, expect="a positive integer"),
        targets=tuple(r.get("targets", list, [])), budgets=budgets,
        sources=tuple(r.get("sources", list, [])), source_file=str(path),
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
