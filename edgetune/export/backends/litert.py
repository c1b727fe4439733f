"""The LiteRT (TFLite) backend: `litert-fp32` and full-integer `litert-int8`.

LiteRT drives the i.MX 8M Plus NPU (NXP's VX delegate), Coral, Android and every MCU flow. The
artefact is a `.tflite` run by the `ai-edge-litert` interpreter wheel (22 MB, no TensorFlow, no
torch): that is all a device needs.

Converter (measured, benchmarks/RESULTS.md "litert-converters"): Google's `litert-torch` converts the run's
PyTorch model (the same module the validated ONNX graph came from) and `ai-edge-quantizer`
quantises the float `.tflite` with the export's one calibration set. `onnx2tf` was the other
candidate and was refused: it converted none of the three fine-tuned demo models' validated ONNX
graphs (layout errors in the normalised stem, the Detect anchors, the STFT), it pins onnxruntime
1.23, onnx 1.19, numpy 1.26 and TensorFlow 2.19 (edgetune pins newer: it needs an environment of
its own, 2.6 GB, against litert-torch's 0.84 GB inside edgetune's), and it downloads sample images
from GitHub during every image-model conversion.

`litert-int8` is static int8 (int8 weights per channel, int8 activations). Its input and output
stay float by default (the model quantises its input itself); `--int8-io` makes them int8, which
NPU delegates and MCUs need: the Session then quantises inputs and dequantises outputs with the
scales stored in the file, so bench, predict and the metric see the same arrays. "Back to float"
for `--max-drop` is a re-quantisation from the same calibration statistics with chosen ops left
float (`NO_QUANTIZE`), which the TFLite format allows op by op.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgetune.errors import RunDirError, UnsupportedOpError
from edgetune.export.backends import Backend, BuildContext, require
from edgetune.export.targets import Target
from edgetune.progress import log
from edgetune.runtime import Session

_PIP = "pip install 'edgetune[litert]'"
_PIP_EXPORT = "pip install 'edgetune[litert-export]'"
COMPUTE_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "BATCH_MATMUL", "TRANSPOSE_CONV")
_SIGNATURE = "serving_default"


@contextlib.contextmanager
def _native_output_to(log_file: Path | str) -> Iterator[None]:
    """The converter's, quantiser's and interpreter's own prints and C++ logs (fd 1 and 2) into
    `log_file`: `--json` keeps a pure stdout and the terminal keeps edgetune's lines only."""
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(log_file, "ab") as f:
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]


def convert(model: Any, example: np.ndarray, out: Path, log_file: Path, *, target: str = "litert") -> None:
    """The float `.tflite` of a PyTorch module (litert-torch), for inputs shaped like `example`."""
    import torch

    from edgetune.export.context import use_portable_ops

    use_portable_ops(model)  # LiteRT has no complex type: an FFT front end goes through as a real DFT
    with _native_output_to(log_file):  # its import already logs (absl, oneDNN)
        litert_torch = require("litert_torch", "building a LiteRT target", _PIP_EXPORT)
        try:
            edge = litert_torch.convert(model.eval(), (torch.from_numpy(np.ascontiguousarray(example)),))
            edge.export(str(out))
        except Exception as exc:  # the converter raises many kinds; each means "this graph does not convert"
            reason = _one_line(exc)
        else:
            return
    raise UnsupportedOpError(f"{target}: litert-torch cannot convert this model: {reason}",
                             hint="use a cpu-*, openvino-* or ncnn-* target for this model")


def ops(path: Path) -> list[tuple[str, str]]:
    """(op name, scope) of every op of the main subgraph in execution order; the scope is the op's
    output tensor names, each followed by ";" — exactly how ai-edge-quantizer's recipes address an op."""
    interpreter = require("ai_edge_litert.interpreter", f"reading {path}", _PIP)
    with _native_output_to(os.devnull):
        it = interpreter.Interpreter(model_path=str(path))
    names = {t["index"]: t["name"] for t in it.get_tensor_details()}
    listed = []
    for op in it._get_ops_details():  # noqa: SLF001 - the interpreter's only op listing
        outputs = [names[i] for i in op["outputs"] if i >= 0 and names.get(i)]
        listed.append((op["op_name"], ";".join(outputs) + ";" if outputs else ""))
    return listed


def front_end_scopes(listed: list[tuple[str, str]]) -> list[str]:
    """Scopes of a signal front end (KWS: framing, DFT, power, mel matmul, log) whose dB-scale
    range int8 would crush — the same part the ONNX targets keep float: every op up to the last one
    inside the model's `frontend` module (litert-torch scopes ops by module path: `…_frontend/…`),
    or, in a model without one, every op before the first convolution; and the first compute op
    after it, which reads the dB features (quantising it cost the ONNX targets 2.4-3.1 pt top-1).
    `listed`: the model's ops()."""
    inside = [i for i, (_, scope) in enumerate(listed) if re.search(r"_frontend[/;]", scope)]
    end = inside[-1] + 1 if inside else next(
        (i for i, (name, _) in enumerate(listed) if name in ("CONV_2D", "DEPTHWISE_CONV_2D")), 0)
    first = next((i for i in range(end, len(listed)) if listed[i][0] in COMPUTE_OPS), end - 1)
    return [scope for _, scope in listed[:first + 1] if scope]


def detect_head_scopes(listed: list[tuple[str, str]]) -> list[str]:
    """Scopes of an ultralytics Detect head's decode (DFL, anchors, the box/score concat and every
    op after it) and of its final box/class convs: quantised with the rest, the shared output
    scale zeroes the class scores (ultralytics#22644; the ONNX targets keep the same part float,
    edgetune.export.detect_head). litert-torch names ops by module path without the ModuleList
    attribute: the cv2/cv3 branches are the head's `Sequential_i`, their final conv `Conv2d_2`.
    `listed`: the model's ops()."""
    keep, in_head = [], False
    for _, scope in listed:
        m = re.search(r"Detect_\d+(/[^;]*)?;", scope)
        inner = (m.group(1) or "") if m else ""
        in_head = in_head or m is not None
        branch = m is not None and inner.startswith("/torch.nn.modules.container.Sequential_")
        final = re.fullmatch(r"/torch\.nn\.modules\.container\.Sequential_\d+/torch\.nn\.modules\.conv\.Conv2d_2", inner)
        if in_head and scope and (not branch or final):
            keep.append(scope)
    return keep


FLOAT_PARTS = {"front-end": front_end_scopes, "detect-head": detect_head_scopes}  # Task.int8_float_parts


class LiteRtQuantizer:
    """Full-integer int8 of a float `.tflite` by ai-edge-quantizer, calibrated once; `quantize`
    writes a variant with chosen ops left float (the plain one and the search's)."""

    def __init__(self, float_model: Path, listed: list[tuple[str, str]], calib: Sequence[np.ndarray], *,
                 per_channel: bool = True, int8_io: bool = False, keep_float: Sequence[str] = (),
                 log_file: Path) -> None:
        self.float_model, self.listed, self.per_channel, self.int8_io = float_model, listed, per_channel, int8_io
        self.keep, self.log_file = list(keep_float), log_file
        with _native_output_to(log_file):
            interpreter = require("ai_edge_litert.interpreter", "building litert-int8", _PIP)
            self.input_name = interpreter.Interpreter(model_path=str(float_model)).get_signature_list()[
                _SIGNATURE]["inputs"][0]
            require("ai_edge_quantizer", "building litert-int8", _PIP_EXPORT)
            q = self._quantizer([])
            self.statistics = q.calibrate({_SIGNATURE: [{self.input_name: x} for x in calib]}, num_threads=1)

    def _quantizer(self, extra_float: Sequence[str]) -> Any:
        from ai_edge_quantizer import qtyping, quantizer

        q = quantizer.Quantizer(str(self.float_model))
        granularity = qtyping.QuantGranularity.CHANNELWISE if self.per_channel else qtyping.QuantGranularity.TENSORWISE
        q.add_static_config(regex=".*", operation_name=qtyping.TFLOperationName.ALL_SUPPORTED,
                            activation_num_bits=8, weight_num_bits=8, weight_granularity=granularity)
        if not self.int8_io:
            for io in (qtyping.TFLOperationName.INPUT, qtyping.TFLOperationName.OUTPUT):
                q.update_quantization_recipe(regex=".*", operation_name=io, algorithm_key="no_quantize")
        for scope in [*self.keep, *extra_float]:
            q.update_quantization_recipe(regex="^" + re.escape(scope) + "$",
                                         operation_name=qtyping.TFLOperationName.ALL_SUPPORTED,
                                         algorithm_key="no_quantize")
        return q

    def candidates(self) -> list[str]:
        """Compute ops quantised by default (their scopes): what the search may return to float."""
        kept = set(self.keep)
        return [scope for name, scope in self.listed if name in COMPUTE_OPS and scope and scope not in kept]

    def quantize(self, out: Path, float_ops: Sequence[str] = ()) -> dict[str, Any]:
        with _native_output_to(self.log_file):
            q = self._quantizer(float_ops)
            result = q.quantize(self.statistics, enable_progress_report=False, enable_progress_bar=False)
        out.write_bytes(result.quantized_model)
        return {"quantizer": "ai-edge-quantizer static_wi8_ai8", "weights": "int8 symmetric "
                + ("per-channel" if self.per_channel else "per-tensor"), "activations": "int8",
                "io": "int8" if self.int8_io else "float32", "kept_float_ops": len(self.keep)}


class LiteRtSurgeon:
    """Variants of the int8 model with chosen compute ops left float (accuracy_aware.Surgeon)."""

    def __init__(self, quantizer: LiteRtQuantizer, workdir: Path) -> None:
        self.q, self.workdir = quantizer, workdir

    def candidates(self) -> list[str]:
        return self.q.candidates()

    def save(self, layers: Sequence[str], path: Path) -> None:
        self.q.quantize(path, layers)

    def session(self, layers: Sequence[str]) -> Session:
        with tempfile.NamedTemporaryFile(suffix=".tflite", dir=self.workdir) as f:
            self.save(layers, Path(f.name))
            return BACKEND.session(Path(f.name))  # the interpreter has read the file; it may go

    def reference(self) -> Session:
        return BACKEND.session(self.q.float_model)


class LiteRtBackend(Backend):
    name = "litert"
    title = "LiteRT"
    artifact = "model.tflite"
    install = "ai-edge-litert (pip install 'edgetune[litert]'; litert-torch too at export time)"
    honours = ("per_channel", "int8_io")
    batch_axis = False  # converted at batch 1; the Session loops over a batch

    def targets(self) -> tuple[Target, ...]:
        return (
            Target("litert-fp32", self.name, "fp32", None, 1e-3,
                   "LiteRT (TFLite, converted by litert-torch), float32; XNNPACK on CPUs, GPU delegates"),
            Target("litert-int8", self.name, "int8", "ai-edge-quantizer", None,
                   "LiteRT full-integer int8 (ai-edge-quantizer; float I/O, --int8-io for NPU delegates "
                   "and MCUs), calibrated on a stratified training subset"),
        )

    def session(self, path: Path, *, threads: int | None = None) -> Session:
        interpreter = require("ai_edge_litert.interpreter", f"running {path}", _PIP)
        try:
            with _native_output_to(os.devnull):  # "INFO: Created TensorFlow Lite XNNPACK delegate"
                it = interpreter.Interpreter(model_path=str(path), num_threads=threads)
                it.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise RunDirError(f"LiteRT cannot load {path}: {_one_line(exc)}", hint="re-run `edgetune export`") from None
        inp, outs = it.get_input_details()[0], it.get_output_details()

        def run(x: np.ndarray) -> list[np.ndarray]:
            results = []
            for sample in x:  # the artefact has a fixed batch of 1
                it.set_tensor(inp["index"], _to_tensor(sample[None], inp))
                it.invoke()
                results.append([_from_tensor(it.get_tensor(o["index"]), o) for o in outs])
            return [np.concatenate(parts) for parts in zip(*results, strict=True)]

        return Session(path, threads, self.name, run, input_name=inp["name"], input_shape=tuple(inp["shape"]),
                       output_shape=tuple(outs[0]["shape"]))

    def build(self, ctx: BuildContext, target: Target, path: Path, meta: dict[str, Any]) -> dict[str, Any] | None:
        work = ctx.work / f"{target.id}-litert"
        work.mkdir()
        log_file = work / "converter.log"
        float_model = ctx.work / "litert-float.tflite"  # converted once per export (auto builds both targets)
        if not float_model.is_file():
            log(f"{target.id}: converting the PyTorch model with litert-torch", quiet=ctx.quiet)
            convert(ctx.fresh_model(), ctx.inputs[0], float_model, log_file, target=target.id)
        meta["litert"] = {"converter": "litert-torch", "converted_from": "the run's PyTorch model (as the ONNX graph)"}
        if target.quantizer is None:
            shutil.copyfile(float_model, path)
            return None
        calib, record = ctx.calibration()
        listed = ops(float_model)  # read once: the task's float parts and the search's candidates
        keep = [scope for part in ctx.task.int8_float_parts for scope in FLOAT_PARTS[part](listed)]
        log(f"{target.id}: calibrating int8 on {record['size']} training samples (ai-edge-quantizer)", quiet=ctx.quiet)
        quantizer = LiteRtQuantizer(float_model, listed, calib, per_channel=ctx.options.per_channel,
                                    int8_io=ctx.options.int8_io, keep_float=keep, log_file=log_file)
        meta["quantization"] = quantizer.quantize(path)
        meta["calibration"] = record
        return ctx.accuracy_aware(target, path, meta, lambda: LiteRtSurgeon(quantizer, work))


def _to_tensor(x: np.ndarray, detail: dict) -> np.ndarray:
    """Float input → the tensor's type (int8 I/O: quantised with the file's scale and zero point)."""
    if detail["dtype"] == np.float32:
        return x.astype(np.float32, copy=False)
    scale, zero = detail["quantization"]
    info = np.iinfo(detail["dtype"])
    return np.clip(np.round(x / scale) + zero, info.min, info.max).astype(detail["dtype"])


def _from_tensor(y: np.ndarray, detail: dict) -> np.ndarray:
    if detail["dtype"] == np.float32:
        return np.array(y, dtype=np.float32)
    scale, zero = detail["quantization"]
    return ((y.astype(np.float32) - zero) * scale).astype(np.float32)


BACKEND = LiteRtBackend()
