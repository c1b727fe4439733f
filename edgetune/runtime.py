"""One Session API over every runtime: `open_session(path)` picks the backend that owns the file's
suffix (edgetune.export.backends). Imports no torch, so a device with the light install runs
`bench` and `predict` on an exported artefact."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgetune.errors import RunDirError


class Session:
    """`run(x) -> list of outputs` for one model, with a fixed thread count. A backend fills in
    the input name and the shapes its runtime reports (None: a dynamic dimension)."""

    runtime: str

    def __init__(self, path: Path, threads: int | None, runtime: str, run: Callable[[np.ndarray], list[np.ndarray]],
                 *, input_name: str, input_shape: tuple, output_shape: tuple) -> None:
        self.path, self.threads, self.runtime, self._run = Path(path), threads, runtime, run
        self.input_name, self.input_shape, self.output_shape = input_name, input_shape, output_shape

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        return self._run(np.ascontiguousarray(x, dtype=np.float32))


def open_session(model_path: str | Path, *, threads: int | None = None) -> Session:
    """A Session over a model file, by the backend whose artefact has that suffix."""
    from edgetune.export.backends import backend_for_file

    path = Path(model_path)
    if not path.is_file():
        raise RunDirError(f"model file {path} not found", hint="run `edgetune export` first")
    return backend_for_file(path).session(path, threads=threads)
