"""OpenVINO artefacts: conversion from the validated ONNX graph, fp16 weights, NNCF int8.

Conversion starts from the ONNX graph that was already checked against PyTorch, so every
target shares one proof of correctness (and the STFT front end of KWS, which OpenVINO reads
from ONNX with a static batch). Converting the yolo11n/lite0/KWS graphs took 0.9-1.6 s and the
OpenVINO f32 outputs matched ORT to 1.4e-6/4.9e-4 px/3.3e-6 (benchmarks/RESULTS.md "export").

The runtime precision travels inside model.xml (rt_info `runtime_options`), read back by
`edgetune.runtime.Session`: OpenVINO runs "fp32" as bf16 on CPUs that have it unless told
`INFERENCE_PRECISION_HINT=f32` (ENVIRONMENT.md), so the openvino-fp32 artefact says so itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgetune.errors import CalibrationError, UnsupportedOpError, UsageError

PRECISION_KEY = ["runtime_options", "INFERENCE_PRECISION_HINT"]
PRESETS = ("performance", "mixed")
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


def stored_precision_hint(model: Any) -> str | None:
    return model.get_rt_info(PRECISION_KEY).astype(str) if model.has_rt_info(PRECISION_KEY) else None


def ov_names(model: Any, onnx_nodes: Iterable[str]) -> list[str]:
    """OpenVINO op names that come from the given ONNX node names. The ONNX frontend keeps a
    node's name, splitting a biased Conv into `NAME/WithoutBiases` + `NAME` (the Add)."""
    wanted = set(onnx_nodes)
    out = []
    for op in model.get_ops():
        name = op.get_friendly_name()
        if name in wanted or name.rsplit("/", 1)[0] in wanted:
            out.append(name)
    return out


def _advanced(calib_method: str | None):
    import nncf
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet

    if calib_method is None:
        return None
    if calib_method not in CALIB_METHODS:
        raise UsageError(f"--calib-method {calib_method} is not available for NNCF (OpenVINO int8)",
                         hint="use " + ", ".join(CALIB_METHODS) + ", or leave it out for NNCF's default")
    est = {"minmax": RangeEstimatorParametersSet.MINMAX, "percentile": RangeEstimatorParametersSet.MEAN_QUANTILE}
    del nncf
    return AdvancedQuantizationParameters(activations_range_estimator_params=est[calib_method])


def _common(model: Any, calib: Sequence[np.ndarray], keep_float: Sequence[str], preset: str,
            model_type: str | None, calib_method: str | None) -> tuple[dict, dict]:
    import nncf

    if not calib:
        raise CalibrationError("no calibration inputs for int8 quantisation", hint="use --calib-size 1 or more")
    if preset not in PRESETS:
        raise UsageError(f"unknown NNCF preset {preset!r}", hint="use " + ", ".join(PRESETS))
    ignored = ov_names(model, keep_float)
    kwargs = {"preset": nncf.QuantizationPreset(preset), "subset_size": len(calib),
              "model_type": nncf.ModelType.TRANSFORMER if model_type == "transformer" else None,
              "ignored_scope": nncf.IgnoredScope(names=ignored, validate=False)}
    record = {"quantizer": f"nncf.quantize ({nncf.__version__})", "preset": preset, "model_type": model_type or "cnn",
              "calibration_method": calib_method or "nncf default", "kept_float": list(keep_float),
              "ignored_ov_ops": len(ignored)}
    return kwargs, record


def quantize_int8(model: Any, calib: Sequence[np.ndarray], *, keep_float: Sequence[str] = (),
                  preset: str = "performance", model_type: str | None = None,
                  calib_method: str | None = None) -> tuple[Any, dict]:
    """NNCF post-training int8 of an OpenVINO model, with `keep_float` ONNX nodes left float."""
    import nncf

    kwargs, record = _common(model, calib, keep_float, preset, model_type, calib_method)
    q = nncf.quantize(model, nncf.Dataset(list(calib)), advanced_parameters=_advanced(calib_method), **kwargs)
    return q, record


def quantize_int8_accuracy(model: Any, calib: Sequence[np.ndarray], ranking: Sequence[np.ndarray],
                           metric: Callable[[Any], float], max_drop: float, *, keep_float: Sequence[str] = (),
                           preset: str = "performance", model_type: str | None = None,
                           calib_method: str | None = None, max_iterations: int = 32) -> tuple[Any, dict]:
    """NNCF's `quantize_with_accuracy_control`: plain PTQ, then quantisers are removed in the order
    of their measured effect on the outputs of `ranking` inputs until the drop in `metric` (the
    task metric of a compiled model on the whole val split) is within `max_drop`."""
    import nncf
    from nncf.quantization.advanced_parameters import AdvancedAccuracyRestorerParameters

    kwargs, record = _common(model, calib, keep_float, preset, model_type, calib_method)

    def validate(compiled: Any, _items: Iterable[Any]) -> tuple[float, None]:
        return metric(compiled), None  # the task metric on the full val split; ranking uses outputs

    q = nncf.quantize_with_accuracy_control(
        model, nncf.Dataset(list(calib)), nncf.Dataset(list(ranking)), validate, max_drop=max_drop,
        drop_type=nncf.DropType.ABSOLUTE, advanced_quantization_parameters=_advanced(calib_method),
        advanced_accuracy_restorer_parameters=AdvancedAccuracyRestorerParameters(
            max_num_iterations=max_iterations, ranking_subset_size=len(ranking)), **kwargs)
    record["quantizer"] = record["quantizer"].replace("nncf.quantize", "nncf.quantize_with_accuracy_control")
    return q, record


def float_ops(quantized: Any) -> list[str]:
    """Convolution/MatMul ops of a quantised model whose input is not fed through a FakeQuantize:
    the layers that run in float (what export.json lists)."""
    return [op.get_friendly_name() for op in quantized.get_ordered_ops()
            if op.get_type_name() in ("Convolution", "GroupConvolution", "MatMul")
            and op.input_value(0).get_node().get_type_name() != "FakeQuantize"]
