"""PyTorch → ONNX, then proof that the ONNX graph computes what PyTorch computes on real inputs."""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import numpy as np
import torch

from edgetune.errors import ExportValidationError
from edgetune.runtime import Session

OPSET = 18


def export_onnx(model: torch.nn.Module, example: np.ndarray, path: Path, *, dynamo: bool = False,
                output_name: str = "logits") -> None:
    """Static-shape export (batch 1 by default). The legacy TorchScript exporter is used for CNNs
    (measured faster to export, identical graphs after ORT optimisation); `dynamo=True` is needed
    for STFT front ends (KWS)."""
    model.eval()
    x = torch.from_numpy(example)
    # The dynamo exporter prints its steps on stdout, which must stay pure for --json.
    with warnings.catch_warnings(), torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        kwargs = {"dynamo": True, "external_data": False, "verbose": False} if dynamo else {"dynamo": False}
        torch.onnx.export(model, (x,), str(path), input_names=["input"], output_names=[output_name],
                          opset_version=OPSET, **kwargs)


def max_abs_diff(model: torch.nn.Module, onnx_path: Path, inputs: list[np.ndarray],
                 scale: np.ndarray | None = None) -> float:
    """Largest |PyTorch − ONNX Runtime| over every output element of every input, each element
    divided by `scale` when given (detectors: box coordinates by the input size)."""
    session = Session(onnx_path, threads=None)
    worst = 0.0
    with torch.no_grad():
        for x in inputs:
            ref = model(torch.from_numpy(x)).numpy()
            got = session.run(x)[0]
            err = np.abs(ref - got) if scale is None else np.abs(ref - got) / scale
            worst = max(worst, float(err.max()))
    return worst


def validate(model: torch.nn.Module, onnx_path: Path, inputs: list[np.ndarray], atol: float,
             scale: np.ndarray | None = None) -> float:
    diff = max_abs_diff(model, onnx_path, inputs, scale)
    if not diff <= atol:  # also catches NaN
        unit = "" if scale is None else " (boxes relative to the input size)"
        raise ExportValidationError(
            f"ONNX output differs from PyTorch by {diff:.3g}{unit} (> atol {atol:g}) on "
            f"{len(inputs)} real validation images", hint="report this with the model name; try another opset")
    return diff
