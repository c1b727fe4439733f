"""One Session API over ONNX Runtime and OpenVINO. Imports no torch, so a device with the light
install runs `bench` and `predict` on an exported artefact."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgetune.errors import RunDirError

# Where an OpenVINO IR carries the precision it was validated at (written by edgetune.export.openvino).
PRECISION_KEY = ["runtime_options", "INFERENCE_PRECISION_HINT"]


def stored_precision_hint(model) -> str | None:
    """The INFERENCE_PRECISION_HINT stored in an openvino.Model's rt_info, if any."""
    return model.get_rt_info(PRECISION_KEY).astype(str) if model.has_rt_info(PRECISION_KEY) else None


class Session:
    """`run(x) -> list of outputs` for one model file, with a fixed thread count."""

    def __init__(self, model_path: str | Path, *, threads: int | None = None) -> None:
        self.path = Path(model_path)
        if not self.path.is_file():
            raise RunDirError(f"model file {self.path} not found", hint="run `edgetune export` first")
        self.threads = threads
        if self.path.suffix == ".onnx":
            self.runtime = "onnxruntime"
            self._init_ort(threads)
        elif self.path.suffix == ".xml":
            self.runtime = "openvino"
            self._init_ov(threads)
        else:
            raise RunDirError(f"{self.path} is neither .onnx nor OpenVINO .xml")

    def _init_ort(self, threads: int | None) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.inter_op_num_threads = 1
        if threads:
            opts.intra_op_num_threads = threads
        opts.log_severity_level = 3
        try:
            self._ort = ort.InferenceSession(str(self.path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise RunDirError(f"ONNX Runtime cannot load {self.path}: {str(exc).splitlines()[0][:200]}",
                              hint="re-run `edgetune export`") from None
        inp = self._ort.get_inputs()[0]
        self.input_name, self.input_shape = inp.name, tuple(inp.shape)
        self.output_shape = tuple(d if isinstance(d, int) else None for d in self._ort.get_outputs()[0].shape)
        self._run = lambda x: self._ort.run(None, {self.input_name: x})

    def _init_ov(self, threads: int | None) -> None:
        import openvino as ov

        core = ov.Core()
        try:
            self._compile_ov(core, core.read_model(str(self.path)), threads)
        except RuntimeError as exc:  # a truncated .bin, a foreign .xml: OpenVINO's C++ message, first line
            raise RunDirError(f"OpenVINO cannot load {self.path}: {str(exc).strip().splitlines()[0][:200]}",
                              hint="re-run `edgetune export`") from None

    def _compile_ov(self, core, model, threads: int | None) -> None:
        config: dict[str, object] = {"PERFORMANCE_HINT": "LATENCY"}
        hint = stored_precision_hint(model)
        if hint:
            config["INFERENCE_PRECISION_HINT"] = hint
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        compiled = core.compile_model(model, "CPU", config)
        port = compiled.input(0)
        self.input_name = port.get_any_name()
        self.input_shape = tuple(port.get_partial_shape().to_shape()) if port.get_partial_shape().is_static else ()
        self.output_shape = tuple(d.get_length() if d.is_static else None
                                  for d in compiled.output(0).get_partial_shape())
        request = compiled.create_infer_request()
        self._run = lambda x: [np.asarray(v) for v in request.infer({0: x}).values()]

    @classmethod
    def from_openvino_model(cls, model, *, threads: int | None = None) -> Session:
        """A Session over an in-memory openvino.Model, compiled as a saved IR would be (the
        accuracy-aware search scores variants this way before one is saved)."""
        import openvino as ov

        self = cls.__new__(cls)
        self.path, self.threads, self.runtime = Path("<in memory>"), threads, "openvino"
        self._compile_ov(ov.Core(), model, threads)
        return self

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        return self._run(np.ascontiguousarray(x, dtype=np.float32))
