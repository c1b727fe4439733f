"""Targets: declarative export configurations (like optimum's OnnxConfig), one registry.

A target says which runtime runs the artefact, at what precision, which quantiser makes it and
how closely its outputs must match PyTorch. OpenVINO targets slot in here (issue 5).
"""

from __future__ import annotations

from dataclasses import dataclass

from edgetune.registry import Registry


@dataclass(frozen=True)
class Target:
    id: str
    runtime: str  # "onnxruntime" | "openvino"
    precision: str  # "fp32" | "int8" | ...
    quantizer: str | None  # None | "ort-static"
    atol: float | None  # max |Δ| vs PyTorch on real inputs; None: judged by the task metric instead
    artifact: str  # file name inside export/<target>/
    description: str
    needs: str


TARGETS: Registry[Target] = Registry("target", list_command="edgetune targets")

for _t in (
    Target("cpu-fp32", "onnxruntime", "fp32", None, 1e-3, "model.onnx",
           "ONNX Runtime, float32; the reference artefact every other target is judged against",
           "onnxruntime (light install)"),
    Target("cpu-int8", "onnxruntime", "int8", "ort-static", None, "model.onnx",
           "ONNX Runtime, static int8 QDQ: per-channel int8 weights, uint8 activations, "
           "calibrated on a stratified training subset", "onnxruntime (light install)"),
):
    TARGETS.register(_t.id, _t)


def get_target(name: str) -> Target:
    return TARGETS.get(name)
