"""OpenVINO artefacts: conversion from the validated ONNX graph, fp16 weights, NNCF int8.

Conversion starts from the ONNX graph that was already checked against PyTorch, so every
target shares one proof of correctness (and the STFT front end of KWS, which OpenVINO reads
from ONNX with a static batch). Measured against converting the PyTorch module directly
(benchmarks/RESULTS.md "ov-convert"): as exact (max |Δ| vs PyTorch 2.9e-6 / 9.2e-6 / 6.9e-6 for
Lite0 / yolo11n / KWS) and as fast or faster at inference (5.95 vs 7.05, 36.0 vs 39.2, 9.4 vs 12.2 ms).

The runtime precision travels inside model.xml (rt_info `runtime_options`), read back by
`edgetune.runtime.Session`: OpenVINO runs "fp32" as bf16 on CPUs that have it unless told
`INFERENCE_PRECISION_HINT=f32` (ENVIRONMENT.md), so the openvino-fp32 artefact says so itself.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgetune.errors import CalibrationError, UnsupportedOpError, UsageError
from edgetune.runtime import PRECISION_KEY

PRESETS = ("performance", "mixed")
COMPUTE_OPS = ("Convolution", "GroupConvolution", "MatMul")  # the layers int8 (or float) is about
CALIB_METHODS = ("minmax", "percentile")  # NNCF range estimators edgetune maps to


def convert(onnx_path: Path) -> Any:
    """ONNX → openvino.Model; an operator OpenVINO cannot read is named in a typed error."""
    import openvino as ov

    try:
        return ov.convert_model(str(onnx_path))
    except Exception as exc:  # OpenVINO raises a generic RuntimeError/OpConversionFailure
        text = str(exc)
        op = next((ln.strip() for ln in text.splitlines() if "OpType" in ln or "operation" in ln.lower()), text[:200])
        raise UnsupportedOpError(f"OpenVINO cannot convert the ONNX graph: {op}",
                                 hint="use a cpu-* (ONNX Runtime) target for this model") from None


def save(model: Any, xml: Path, *, compress_fp16: bool = False, precision_hint: str | None = None) -> None:
    """model.xml + model.bin; `precision_hint` is stored for `Session` to apply at compile time."""
    import openvino as ov

    if precision_hint:
        model.set_rt_info(precision_hint, PRECISION_KEY)
    ov.save_model(model, str(xml), compress_to_fp16=compress_fp16)


def ov_names(model: Any, keep: Iterable[str], onnx_nodes: Iterable[str]) -> list[str]:
    """OpenVINO op names that come from the ONNX nodes in `keep`. The ONNX frontend keeps a node's
    name (a biased Conv becomes `NAME/WithoutBiases` + `NAME`), but decomposes some ops into new
    ones (STFT → Slice/Reshape/RDFT…): an op with no ONNX name whose every consumer is kept is
    kept too, or NNCF would put a FakeQuantize on the raw audio inside the KWS front end
    (measured: top-1 0.83 → 0.69)."""
    wanted, known = set(keep), set(onnx_nodes)
    from_onnx = lambda n: n in known or n.rsplit("/", 1)[0] in known  # noqa: E731
    kept: set[str] = set()
    for op in reversed(model.get_ordered_ops()):
        name = op.get_friendly_name()
        if name in wanted or name.rsplit("/", 1)[0] in wanted:
            kept.add(name)
        elif not from_onnx(name) and op.get_type_name() not in ("Constant", "Parameter", "Result"):
            consumers = [t.get_node().get_friendly_name() for out in op.outputs() for t in out.get_target_inputs()]
            if consumers and all(c in kept for c in consumers):
                kept.add(name)
    return sorted(kept)


def _range_estimator(calib_method: str | None) -> Any:
    """NNCF advanced parameters for `--calib-method` (None: NNCF's own estimator)."""
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet

    if calib_method is None:
        return None
    if calib_method not in CALIB_METHODS:
        raise UsageError(f"--calib-method {calib_method} is not available for NNCF (OpenVINO int8)",
                         hint="use " + ", ".join(CALIB_METHODS) + ", or leave it out for NNCF's default")
    est = {"minmax": RangeEstimatorParametersSet.MINMAX, "percentile": RangeEstimatorParametersSet.MEAN_QUANTILE}
    return AdvancedQuantizationParameters(activations_range_estimator_params=est[calib_method])


@contextlib.contextmanager
def _nncf_on_stderr() -> Iterator[None]:
    """NNCF logs INFO lines and draws progress bars on stdout, which must stay pure for --json:
    its logger goes to stderr at WARNING (edgetune says what is happening), its bars to stderr."""
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)  # "No CUDA runtime" on import
    import nncf  # noqa: F401  (configures its logger on import)

    logger = logging.getLogger("nncf")
    logger.setLevel(logging.WARNING)
    for handler in logger.handlers:
        if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stdout:
            handler.setStream(sys.stderr)
    with contextlib.redirect_stdout(sys.stderr):
        yield


def quantize_int8(model: Any, calib: Sequence[np.ndarray], *, keep_float: Sequence[str] = (),
                  onnx_nodes: Sequence[str] = (), preset: str = "mixed", model_type: str | None = None,
                  calib_method: str | None = None) -> tuple[Any, dict]:
    """NNCF post-training int8 of an OpenVINO model, with `keep_float` ONNX nodes left float."""
    if not calib:
        raise CalibrationError("no calibration inputs for int8 quantisation", hint="use --calib-size 1 or more")
    if preset not in PRESETS:
        raise UsageError(f"unknown NNCF preset {preset!r}", hint="use " + ", ".join(PRESETS))
    with _nncf_on_stderr():
        import nncf

        ignored = ov_names(model, keep_float, onnx_nodes)
        q = nncf.quantize(model, nncf.Dataset(list(calib)), preset=nncf.QuantizationPreset(preset),
                          subset_size=len(calib),
                          model_type=nncf.ModelType.TRANSFORMER if model_type == "transformer" else None,
                          ignored_scope=nncf.IgnoredScope(names=ignored, validate=False),
                          advanced_parameters=_range_estimator(calib_method))
    record = {"quantizer": f"nncf.quantize ({nncf.__version__})", "preset": preset, "model_type": model_type or "cnn",
              "calibration_method": calib_method or "nncf default", "kept_float": list(keep_float),
              "ignored_ov_ops": len(ignored)}
    return q, record


def float_ops(quantized: Any) -> list[str]:
    """Convolution/MatMul ops of a quantised model whose input is not fed through a FakeQuantize:
    the layers that run in float (what export.json lists)."""
    return [op.get_friendly_name() for op in quantized.get_ordered_ops()
            if op.get_type_name() in COMPUTE_OPS and op.input_value(0).get_node().get_type_name() != "FakeQuantize"]
