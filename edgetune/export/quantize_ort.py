"""ONNX Runtime static int8 (QDQ) quantisation.

Default: per-channel symmetric int8 weights, asymmetric uint8 activations, MinMax calibration.
Per-tensor weights wreck depthwise-heavy nets (EfficientNet-Lite0 top-1 0.86 → 0.32–0.57, see
ENVIRONMENT.md), so per-channel is the default that holds accuracy.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgetune.errors import DataError

METHODS = ("minmax", "percentile", "entropy")


class _Reader:
    """onnxruntime CalibrationDataReader over a list of model inputs."""

    def __init__(self, name: str, inputs: Sequence[np.ndarray]) -> None:
        self._it = iter([{name: x} for x in inputs])

    def get_next(self):
        return next(self._it, None)

    def rewind(self) -> None:  # pragma: no cover - interface completeness
        pass


def quantize_static_int8(fp32: Path, out: Path, calib: Sequence[np.ndarray], *, per_channel: bool = True,
                         method: str = "minmax") -> dict:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if not calib:
        raise DataError("no calibration inputs for int8 quantisation", hint="use --calib-size 1 or more")
    if method not in METHODS:
        raise DataError(f"unknown calibration method {method!r}", hint="use " + ", ".join(METHODS))
    reader_cls = type("Reader", (_Reader, CalibrationDataReader), {})
    cm = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
          "entropy": CalibrationMethod.Entropy}[method]
    extra = {"ActivationSymmetric": False, "WeightSymmetric": True}
    if method == "entropy":
        extra["CalibNumBins"] = 2048  # ORT 1.32 defaults to 128 bins = MinMax (ENVIRONMENT.md)
    if method == "percentile":
        extra["CalibPercentile"] = 99.999
    with tempfile.TemporaryDirectory(prefix="edgetune-q-") as tmp:
        prepped = Path(tmp) / "prepped.onnx"
        quant_pre_process(str(fp32), str(prepped), skip_symbolic_shape=True)
        import onnx

        name = onnx.load(str(prepped), load_external_data=False).graph.input[0].name
        quantize_static(str(prepped), str(out), reader_cls(name, calib), quant_format=QuantFormat.QDQ,
                        per_channel=per_channel, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=cm, extra_options=extra)
    return {"quantizer": "onnxruntime.quantize_static", "format": "QDQ", "per_channel": per_channel,
            "activations": "uint8 asymmetric", "weights": "int8 symmetric", "calibration_method": method}
