"""ONNX Runtime static int8 (QDQ) quantisation.

Default: per-channel symmetric int8 weights, asymmetric uint8 activations (U8S8, the fast
MLAS path), MinMax calibration, and the first convolution (the one that sees raw pixels) kept in
float. Why each, measured on fine-tuned EfficientNet-Lite0 (benchmarks/RESULTS.md):
- per-tensor weights wreck depthwise-heavy nets (top-1 0.86 → 0.32–0.57, ENVIRONMENT.md);
- on x86 CPUs without VNNI, U8S8 saturates in the int16 pair sums; the stem conv (3 input
  channels, pixel-range inputs) is where it bites: 0.838 → 0.762 quantised, 0.832 with the stem
  in float; 7-bit weights (reduce_range) gave 0.796, U8U8 0.830 but 8x slower than fp32;
- Percentile/Entropy calibration did not help here (0.756/0.762) but stay selectable.
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


def first_compute_nodes(model_path: Path, skip: Sequence[str] = ()) -> list[str]:
    """Name of the first Conv/Gemm/MatMul in graph order that is not already kept float (`skip`):
    the first layer int8 would see, fed by pixels — or, behind a float front end, by log-mel
    features (KWS: quantising that conv cost 2.4-3.1 pt top-1, keeping it float 0; RESULTS.md "kws-notes")."""
    import onnx

    for node in onnx.load(str(model_path), load_external_data=False).graph.node:
        if node.op_type in ("Conv", "Gemm", "MatMul") and node.name not in skip:
            return [node.name]
    return []


def quantize_static_int8(fp32: Path, out: Path, calib: Sequence[np.ndarray], *, per_channel: bool = True,
                         method: str = "minmax", keep_first_float: bool = True,
                         keep_float: Sequence[str] = ()) -> dict:
    """`keep_float`: further node names left in float (a task's sensitive layers)."""
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
        kept = (first_compute_nodes(prepped, skip=keep_float) if keep_first_float else []) + list(keep_float)
        quantize_static(str(prepped), str(out), reader_cls(name, calib), quant_format=QuantFormat.QDQ,
                        per_channel=per_channel, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=cm, nodes_to_exclude=kept, extra_options=extra)
    return {"quantizer": "onnxruntime.quantize_static", "format": "QDQ", "per_channel": per_channel,
            "activations": "uint8 asymmetric", "weights": "int8 symmetric", "calibration_method": method,
            "kept_float": kept}
