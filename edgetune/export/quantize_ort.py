"""ONNX Runtime static int8 (QDQ) quantisation.

Default: per-channel symmetric int8 weights, asymmetric uint8 activations (U8S8, the fast
MLAS path), MinMax calibration, and the first convolution (the one that sees raw pixels) kept in
float. Why each, measured on fine-tuned EfficientNet-Lite0 (benchmarks/RESULTS.md):
- per-tensor weights wreck depthwise-heavy nets (top-1 0.86 → 0.32–0.57, ENVIRONMENT.md);
- on x86 CPUs without VNNI, U8S8 saturates in the int16 pair sums; the stem conv (3 input
  channels, pixel-range inputs) is where it bites: 0.838 → 0.762 quantised, 0.832 with the stem
  in float; 7-bit weights (reduce_range) gave 0.796, U8U8 0.830 but 8x slower than fp32;
- Percentile/Entropy calibration did not help here (0.756/0.762) but stay selectable.

Returning further layers to float after calibration is graph surgery on the int8 model
(edgetune.export.accuracy_aware), not a re-quantisation.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgetune.errors import CalibrationError, UsageError
from edgetune.fsutil import work_dir

METHODS = ("minmax", "percentile", "entropy")
COMPUTE_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")


class _Reader:
    """onnxruntime CalibrationDataReader over a list of model inputs."""

    def __init__(self, name: str, inputs: Sequence[np.ndarray]) -> None:
        self._it = iter([{name: x} for x in inputs])

    def get_next(self):
        return next(self._it, None)

    def rewind(self) -> None:  # pragma: no cover - interface completeness
        pass


def compute_nodes(model_path: Path, skip: Sequence[str] = ()) -> list[str]:
    """Names of the Conv/Gemm/MatMul nodes in graph order, less those in `skip`: the layers whose
    int8 weights and inputs carry the quantisation error."""
    import onnx

    skip = set(skip)
    return [n.name for n in onnx.load(str(model_path), load_external_data=False).graph.node
            if n.op_type in COMPUTE_OPS and n.name not in skip]


def first_compute_nodes(model_path: Path, skip: Sequence[str] = ()) -> list[str]:
    """Name of the first Conv/Gemm/MatMul in graph order that is not already kept float (`skip`):
    the first layer int8 would see, fed by pixels — or, behind a float front end, by log-mel
    features (KWS: quantising that conv cost 2.4-3.1 pt top-1, keeping it float 0; RESULTS.md "kws-notes")."""
    return compute_nodes(model_path, skip)[:1]


class OrtStaticQuantizer:
    """Pre-processes the fp32 graph (ORT's shape inference and fusions); `quantize(out)` calibrates
    and writes the int8 QDQ model. `prepped` is the float graph the int8 one was made from."""

    def __init__(self, fp32: Path, calib: Sequence[np.ndarray], workdir: Path, *, per_channel: bool = True,
                 method: str = "minmax", keep_first_float: bool = True, keep_float: Sequence[str] = ()) -> None:
        import onnx
        from onnxruntime.quantization.shape_inference import quant_pre_process

        if not calib:
            raise CalibrationError("no calibration inputs for int8 quantisation", hint="use --calib-size 1 or more")
        if method not in METHODS:
            raise UsageError(f"unknown calibration method {method!r} for ONNX Runtime",
                             hint="use " + ", ".join(METHODS))
        self.calib, self.per_channel, self.method = list(calib), per_channel, method
        self.prepped = Path(workdir) / "prepped.onnx"
        quant_pre_process(str(fp32), str(self.prepped), skip_symbolic_shape=True)
        self.input_name = onnx.load(str(self.prepped), load_external_data=False).graph.input[0].name
        first = first_compute_nodes(self.prepped, skip=keep_float) if keep_first_float else []
        self.kept = first + list(keep_float)

    def candidates(self) -> list[str]:
        """Compute layers still quantised by default: what the accuracy-aware search may return to float."""
        return compute_nodes(self.prepped, skip=self.kept)

    def quantize(self, out: Path) -> dict:
        from onnxruntime.quantization import (
            CalibrationDataReader,
            CalibrationMethod,
            QuantFormat,
            QuantType,
            quantize_static,
        )

        reader_cls = type("Reader", (_Reader, CalibrationDataReader), {})
        cm = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
              "entropy": CalibrationMethod.Entropy}[self.method]
        extra = {"ActivationSymmetric": False, "WeightSymmetric": True}
        if self.method == "entropy":
            extra["CalibNumBins"] = 2048  # ORT 1.32 defaults to 128 bins = MinMax (ENVIRONMENT.md)
        if self.method == "percentile":
            extra["CalibPercentile"] = 99.999
        quantize_static(str(self.prepped), str(out), reader_cls(self.input_name, self.calib),
                        quant_format=QuantFormat.QDQ, per_channel=self.per_channel, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, calibrate_method=cm, nodes_to_exclude=self.kept,
                        extra_options=extra)
        return {"quantizer": "onnxruntime.quantize_static", "format": "QDQ", "per_channel": self.per_channel,
                "activations": "uint8 asymmetric", "weights": "int8 symmetric", "calibration_method": self.method,
                "kept_float": list(self.kept)}


def quantize_static_int8(fp32: Path, out: Path, calib: Sequence[np.ndarray], *, per_channel: bool = True,
                         method: str = "minmax", keep_first_float: bool = True,
                         keep_float: Sequence[str] = ()) -> dict:
    """One-shot int8 quantisation (benchmarks); `keep_float`: node names left in float."""
    with work_dir("quantize") as tmp:
        q = OrtStaticQuantizer(fp32, calib, Path(tmp), per_channel=per_channel, method=method,
                               keep_first_float=keep_first_float, keep_float=keep_float)
        return q.quantize(out)
