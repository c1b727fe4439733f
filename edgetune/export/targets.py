"""Targets: declarative export configurations (like optimum's OnnxConfig), one registry.

A target says which runtime runs the artefact, at what precision, which quantiser makes it and
how closely its outputs must match PyTorch. `auto` is not a target but a choice among them
(edgetune.export.auto), made by measuring the candidates a device profile allows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgetune.registry import Registry

AUTO = "auto"


@dataclass(frozen=True)
class Target:
    id: str
    runtime: str  # "onnxruntime" | "openvino"
    precision: str  # "fp32" | "fp16" | "int8"
    quantizer: str | None  # None | "ort-static" | "nncf"
    atol: float | None  # max |Δ| vs PyTorch on real inputs; None: judged by the task metric instead
    artifact: str  # main file inside export/<target>/ (OpenVINO: model.xml, with model.bin beside it)
    description: str
    needs: str
    compress_fp16: bool = False  # OpenVINO: store weights as fp16
    precision_hint: str | None = None  # OpenVINO INFERENCE_PRECISION_HINT stored in the artefact

    @property
    def files(self) -> tuple[str, ...]:
        """Every file the artefact consists of."""
        return (self.artifact, "model.bin") if self.runtime == "openvino" else (self.artifact,)

    def size_mb(self, folder: Path) -> float:
        """The artefact's size on disk: every file it consists of (model.xml alone is tiny)."""
        return sum((folder / f).stat().st_size for f in self.files) / 1e6


TARGETS: Registry[Target] = Registry("target", list_command="edgetune targets")

_ORT = "onnxruntime (light install)"
_OV = "openvino (light install: pip install openvino)"
_NNCF = "openvino + nncf at export time; openvino on the device"
for _t in (
    Target("cpu-fp32", "onnxruntime", "fp32", None, 1e-3, "model.onnx",
           "ONNX Runtime, float32; the reference artefact every other target is judged against", _ORT),
    Target("cpu-int8", "onnxruntime", "int8", "ort-static", None, "model.onnx",
           "ONNX Runtime, static int8 QDQ: per-channel int8 weights, uint8 activations, "
           "calibrated on a stratified training subset", _ORT),
    Target("openvino-fp32", "openvino", "fp32", None, 1e-3, "model.xml",
           "OpenVINO IR, float32 weights, executed in f32 (precision hint stored in the IR, so CPUs "
           "with bf16 do not silently run it as bf16)", _OV, precision_hint="f32"),
    Target("openvino-fp16", "openvino", "fp16", None, None, "model.xml",
           "OpenVINO IR, fp16-compressed weights (half the size); executed as bf16/fp16 where the CPU "
           "has it (AMX, AVX512-BF16, Arm fp16), f32 otherwise", _OV, compress_fp16=True),
    Target("openvino-int8", "openvino", "int8", "nncf", None, "model.xml",
           "OpenVINO IR, NNCF post-training int8 calibrated on the same stratified training subset; "
           "float parts executed in f32", _NNCF, precision_hint="f32"),
):
    TARGETS.register(_t.id, _t)


def get_target(name: str) -> Target:
    return TARGETS.get(name)
