"""PyTorch → ONNX, then proof that the ONNX graph computes what PyTorch computes on real inputs."""

from __future__ import annotations

import contextlib
import io
import re
import warnings
from pathlib import Path

import numpy as np
import torch

from edgetune.errors import ExportValidationError, UnsupportedOpError
from edgetune.fsutil import work_dir
from edgetune.runtime import open_session

OPSET = 18
_OP = re.compile(r"aten[:.]+[A-Za-z0-9_.]+")


def _export(model: torch.nn.Module, x: torch.Tensor, path: Path, *, dynamo: bool, output_name: str,
            dynamic_batch: bool) -> None:
    # The dynamo exporter prints its steps on stdout, which must stay pure for --json.
    with warnings.catch_warnings(), torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        if dynamo:
            kwargs = {"dynamo": True, "external_data": False, "verbose": False}
            if dynamic_batch:
                kwargs["dynamic_shapes"] = ({0: torch.export.Dim("batch", min=1, max=1024)},)
        else:
            kwargs = {"dynamo": False}
            if dynamic_batch:
                kwargs["dynamic_axes"] = {"input": {0: "batch"}, output_name: {0: "batch"}}
        torch.onnx.export(model, (x,), str(path), input_names=["input"], output_names=[output_name],
                          opset_version=OPSET, **kwargs)


def export_onnx(model: torch.nn.Module, example: np.ndarray, path: Path, *, dynamo: bool = False,
                output_name: str = "logits", dynamic_batch: bool = False) -> None:
    """Static-shape export (batch 1) unless `dynamic_batch`. The legacy TorchScript exporter is used
    for CNNs (measured faster to export, identical graphs after ORT optimisation); `dynamo=True` is
    needed for STFT front ends (KWS). An operator ONNX cannot express is named with its layer."""
    model.eval()
    x = torch.from_numpy(example)
    try:
        _export(model, x, path, dynamo=dynamo, output_name=output_name, dynamic_batch=dynamic_batch)
    except Exception as exc:  # torch raises several unrelated types (UnsupportedOperatorError, TorchExportError…)
        ops = _OP.findall(str(exc))
        if not ops and "nsupported" not in str(exc):
            raise
        op = ops[0] if ops else str(exc).splitlines()[0][:120]
        layer = _locate(model, x, dynamo=dynamo)
        raise UnsupportedOpError(f"ONNX export (opset {OPSET}) cannot express {op}"
                                 + (f" in layer '{layer}'" if layer else ""),
                                 hint="replace that layer with ONNX-exportable ops, or report the model name") from None


def _locate(model: torch.nn.Module, x: torch.Tensor, *, dynamo: bool) -> str | None:
    """The first leaf module that fails to export on its own (its inputs recorded by one forward
    pass), i.e. the layer holding the unsupported operator."""
    seen: list[tuple[str, torch.nn.Module, tuple]] = []
    hooks = [m.register_forward_pre_hook(lambda mod, args, n=n: seen.append((n, mod, args)))
             for n, m in model.named_modules() if n and not list(m.children())]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    for name, module, args in seen:
        if len(args) != 1 or not isinstance(args[0], torch.Tensor):
            continue
        with work_dir("onnx") as tmp:
            try:
                _export(module, args[0], Path(tmp) / "layer.onnx", dynamo=dynamo, output_name="out",
                        dynamic_batch=False)
            except Exception:
                return name
    return None


def output_diffs(model: torch.nn.Module, onnx_path: Path, inputs: list[np.ndarray],
                 scale: np.ndarray | None = None) -> list[float]:
    """Largest |PyTorch − runtime| per output over every input, each element divided by `scale`
    when given (detectors: box coordinates by the input size). Works for any `Session` file."""
    session = open_session(onnx_path)
    worst: list[float] = []
    with torch.no_grad():
        for x in inputs:
            ref = model(torch.from_numpy(x))
            refs = [r.numpy() for r in (ref if isinstance(ref, (tuple, list)) else [ref])]
            for i, (r, got) in enumerate(zip(refs, session.run(x), strict=False)):
                err = np.abs(r - got) if scale is None else np.abs(r - got) / scale
                if i == len(worst):
                    worst.append(0.0)
                worst[i] = max(worst[i], float(np.nan_to_num(err, nan=np.inf).max()))
    return worst


def max_abs_diff(model: torch.nn.Module, onnx_path: Path, inputs: list[np.ndarray],
                 scale: np.ndarray | None = None) -> float:
    return max(output_diffs(model, onnx_path, inputs, scale))


def validate(model: torch.nn.Module, onnx_path: Path, inputs: list[np.ndarray], atol: float,
             scale: np.ndarray | None = None, names: list[str] | None = None, what: str = "ONNX") -> float:
    diffs = output_diffs(model, onnx_path, inputs, scale)
    bad = [(i, d) for i, d in enumerate(diffs) if not d <= atol]
    if bad:
        unit = "" if scale is None else " (boxes relative to the input size)"
        per = ", ".join(f"output '{(names or [])[i] if names and i < len(names) else i}' max |Δ| {d:.3g}"
                        for i, d in bad)
        raise ExportValidationError(
            f"{what} output differs from PyTorch beyond atol {atol:g}{unit} on {len(inputs)} real validation "
            f"inputs: {per}", hint="report this with the model name; try another opset or the cpu-fp32 target")
    return max(diffs)
