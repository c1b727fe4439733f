"""Targets: declarative export configurations (like optimum's OnnxConfig), one registry.

A target says which backend (runtime) runs the artefact, at what precision, which quantiser makes
it and how closely its outputs must match PyTorch. Each backend declares its own targets
(edgetune.export.backends); this registry collects them. `auto` is not a target but a choice among
them (edgetune.export.auto), made by measuring the candidates a device profile allows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from edgetune.registry import Registry

if TYPE_CHECKING:
    from edgetune.export.backends import Backend

AUTO = "auto"


@dataclass(frozen=True)
class Target:
    id: str
    runtime: str  # the backend's name
    precision: str  # "fp32" | "fp16" | "int8"
    quantizer: str | None  # None | the backend's quantiser ("ort-static", "nncf")
    atol: float | None  # max |Δ| vs PyTorch on real inputs; None: judged by the task metric instead
    description: str
    compress_fp16: bool = False  # store weights as fp16
    precision_hint: str | None = None  # the compute precision stored in the artefact (OpenVINO)

    @property
    def backend(self) -> Backend:
        from edgetune.export.backends import get_backend

        return get_backend(self.runtime)

    @property
    def artifact(self) -> str:
        """The main file inside export/<target>/."""
        return self.backend.artifact

    @property
    def files(self) -> tuple[str, ...]:
        """Every file the artefact consists of."""
        return self.backend.files

    @property
    def needs(self) -> str:
        return self.backend.install

    def size_mb(self, folder: Path) -> float:
        """The artefact's size on disk: every file it consists of (model.xml alone is tiny)."""
        return sum((folder / f).stat().st_size for f in self.files) / 1e6


TARGETS: Registry[Target] = Registry("target", list_command="edgetune targets")


def _load() -> None:
    from edgetune.export.backends import BACKENDS

    for name in BACKENDS.names():
        for target in BACKENDS.get(name).targets():
            TARGETS.register(target.id, target)


TARGETS.set_loader(_load)


def get_target(name: str) -> Target:
    return TARGETS.get(name)
