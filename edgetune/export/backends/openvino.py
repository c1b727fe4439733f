"""The OpenVINO backend: `openvino-fp32/fp16/int8`, converted from the validated ONNX graph, fp16 weights, NNCF int8.

Conversion starts from the ONNX graph that was already checked against PyTorch, so every
target shares one proof of correctness (and the STFT front end of KWS, which OpenVINO reads
from ONNX with a static batch). Measured against converting the PyTorch module directly
(benchmarks/RESULTS.md "ov-convert"): as exact (max |Δ| vs PyTorch 2.9e-6 / 9.2e-6 / 6.9e-6 for
Lite0 / yolo11n / KWS) and as fast or faster at inference (5.95 vs 7.05, 36.0 vs 39.2, 9.4 vs 12.2 ms).

The runtime precision travels inside model.xml (rt_info `runtime_options`), read back by
this backend's Session: OpenVINO runs "fp32" as bf16 on CPUs that have it unless told
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

from edgetune.errors import CalibrationError, RunDirError, UnsupportedOpError, UsageError
from edgetune.export.backends import Backend, BuildContext
from edgetune.export.targets import Target
from edgetune.progress import log
from edgetune.runtime import Session

# Where an OpenVINO IR carries the precision it was validated at.
PRECISION_KEY = ["runtime_options", "INFERENCE_PRECISION_HINT"]

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


class OpenVinoSurgeon:
    """Variants of an NNCF-quantised OpenVINO model (in memory, before saving)."""

    def __init__(self, quantized: Any, fp32: Any, precision_hint: str | None = "f32") -> None:
        self.quantized, self.fp32, self.hint = quantized, fp32, precision_hint

    def candidates(self) -> list[str]:
        """Compute ops with a FakeQuantize on their input path (back to the previous compute ops)."""
        return [op.get_friendly_name() for op in self.quantized.get_ordered_ops()
                if op.get_type_name() in COMPUTE_OPS and self._walk(op, bypass=False)]

    @staticmethod
    def _walk(op: Any, *, bypass: bool) -> int:
        """FakeQuantize ops on `op`'s inputs and on the path of non-compute ops feeding it;
        bypassed (inputs re-wired to the float tensor) when `bypass`. Returns how many."""
        found, todo, seen = 0, [op], {op.get_friendly_name()}
        while todo:
            node = todo.pop()
            for port in node.inputs():
                src = port.get_source_output().get_node()
                if src.get_type_name() == "FakeQuantize":
                    found += 1
                    if bypass:
                        port.replace_source_output(src.input_value(0))
                    src = src.input_value(0).get_node()
                if src.get_type_name() not in (*COMPUTE_OPS, "Parameter", "Constant") \
                        and src.get_friendly_name() not in seen:
                    seen.add(src.get_friendly_name())
                    todo.append(src)
        return found

    def variant(self, layers: Sequence[str]) -> Any:
        """The quantised model with `layers` back in float: their inputs' FakeQuantize bypassed and
        their int8 weights (NNCF stores them compressed: int8 Constant → Convert → Multiply by
        the scale, no FakeQuantize to bypass) replaced by the fp32 model's. Without the weights a
        layer was only half restored: on the suite's glyphs probe head, restoring every layer still
        lost the plain 8.3 pt, from the head's int8 weights."""
        m = self.quantized.clone()
        wanted = set(layers)
        reference = {op.get_friendly_name(): op for op in self.fp32.get_ordered_ops() if op.get_friendly_name() in wanted}
        for op in m.get_ordered_ops():
            if op.get_friendly_name() in wanted:
                self._walk(op, bypass=True)
                self._float_weights(op, reference.get(op.get_friendly_name()))
        return m

    @staticmethod
    def _float_weights(op: Any, ref: Any) -> None:
        """Feed `op` the float weights its counterpart `ref` in the fp32 model reads from a Constant."""
        import openvino as ov

        if ref is None or op.get_input_size() < 2 or op.input_value(1).get_node().get_type_name() == "Constant":
            return
        src = ref.input_value(1).get_node()
        if src.get_type_name() != "Constant" or tuple(src.get_output_shape(0)) != tuple(op.get_input_shape(1)):
            return
        op.input(1).replace_source_output(ov.op.Constant(src.get_data().astype(np.float32)).output(0))

    def _session(self, model: Any) -> Session:
        if self.hint:
            model.set_rt_info(self.hint, PRECISION_KEY)  # compiled exactly as the saved IR will be
        return BACKEND.compile(model, Path("<in memory>"))

    def session(self, layers: Sequence[str]) -> Any:
        return self._session(self.variant(layers))

    def reference(self) -> Any:
        return self._session(self.fp32)

    def save(self, layers: Sequence[str], path: Path) -> None:
        save(self.variant(layers), path, precision_hint=self.hint)


def stored_precision_hint(model: Any) -> str | None:
    """The INFERENCE_PRECISION_HINT stored in an openvino.Model's rt_info, if any."""
    return model.get_rt_info(PRECISION_KEY).astype(str) if model.has_rt_info(PRECISION_KEY) else None


class OpenVinoBackend(Backend):
    name = "openvino"
    title = "OpenVINO"
    artifact = "model.xml"
    install = "openvino (light install: pip install openvino); nncf too at export time for int8"
    honours = ("calib_method", "preset", "model_type")
    calib_methods = CALIB_METHODS
    default_calib_method = None  # NNCF's own range estimator beat MinMax/Percentile on two of three
    reference_format = "openvino"

    @property
    def files(self) -> tuple[str, ...]:
        return (self.artifact, "model.bin")

    def import_reference(self, exported: Path, dest: Path) -> None:
        """ultralytics writes an IR folder: its .xml and .bin become model.xml and model.bin."""
        import shutil

        xml = next(exported.glob("*.xml"))
        shutil.copyfile(xml, dest / self.artifact)
        shutil.copyfile(xml.with_suffix(".bin"), dest / "model.bin")

    def targets(self) -> tuple[Target, ...]:
        return (
            Target("openvino-fp32", self.name, "fp32", None, 1e-3,
                   "OpenVINO IR, float32 weights, executed in f32 (precision hint stored in the IR, so CPUs "
                   "with bf16 do not silently run it as bf16)", precision_hint="f32"),
            Target("openvino-fp16", self.name, "fp16", None, None,
                   "OpenVINO IR, fp16-compressed weights (half the size); executed as bf16/fp16 where the CPU "
                   "has it (AMX, AVX512-BF16, Arm fp16), f32 otherwise", compress_fp16=True),
            Target("openvino-int8", self.name, "int8", "nncf", None,
                   "OpenVINO IR, NNCF post-training int8 calibrated on the same stratified training subset; "
                   "float parts executed in f32", precision_hint="f32"),
        )

    def session(self, path: Path, *, threads: int | None = None) -> Session:
        import openvino as ov

        try:
            return self.compile(ov.Core().read_model(str(path)), path, threads)
        except RuntimeError as exc:  # a truncated .bin, a foreign .xml: OpenVINO's C++ message, first line
            raise RunDirError(f"OpenVINO cannot load {path}: {str(exc).strip().splitlines()[0][:200]}",
                              hint="re-run `edgetune export`") from None

    def compile(self, model: Any, path: Path, threads: int | None = None) -> Session:
        """A Session over an openvino.Model, compiled with the precision hint it stores (the
        accuracy-aware search scores in-memory variants exactly as the saved IR will run)."""
        import openvino as ov

        config: dict[str, object] = {"PERFORMANCE_HINT": "LATENCY"}
        hint = stored_precision_hint(model)
        if hint:
            config["INFERENCE_PRECISION_HINT"] = hint
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        compiled = ov.Core().compile_model(model, "CPU", config)
        port = compiled.input(0)
        in_shape = tuple(port.get_partial_shape().to_shape()) if port.get_partial_shape().is_static else ()
        out_shape = tuple(d.get_length() if d.is_static else None for d in compiled.output(0).get_partial_shape())
        request = compiled.create_infer_request()
        return Session(path, threads, self.name, lambda x: [np.asarray(v) for v in request.infer({0: x}).values()],
                       input_name=port.get_any_name(), input_shape=in_shape, output_shape=out_shape)

    def build(self, ctx: BuildContext, target: Target, path: Path, meta: dict[str, Any]) -> dict[str, Any] | None:
        """IR from the validated ONNX (fp32/fp16, or NNCF int8); metrics when measured."""
        model = convert(ctx.fp32)
        # A task whose graph cannot compute in half precision (kws: the log-mel front end) keeps f32
        # compute even in the fp16-weights IR: in f16 (Arm's default) its logits were off by 4.9 and
        # every argmax wrong; in bf16 (AMX hosts) off by 0.15 (RESULTS.md "ov-fp16-kws").
        hint = target.precision_hint or (None if ctx.task.half_precision_compute else "f32")
        meta["openvino"] = {"converted_from": "validated fp32 ONNX", "compress_to_fp16": target.compress_fp16,
                            "inference_precision_hint": hint or "device default (bf16/fp16 where the CPU has it, "
                                                                 "else f32)"}
        if target.quantizer is None:
            save(model, path, compress_fp16=target.compress_fp16, precision_hint=hint)
            return None
        from edgetune.export.backends.onnxruntime import first_compute_nodes

        calib, record = ctx.calibration()
        keep, keep_record = ctx.task.quantize_keep_float(ctx.fp32)
        # The first compute layer stays float under NNCF too (same rule as ORT: it sees raw pixels,
        # or log-mels behind a float front end).
        keep = keep + first_compute_nodes(ctx.fp32, skip=keep)
        log(f"{target.id}: NNCF int8 on {record['size']} training samples (preset {ctx.options.preset})",
            quiet=ctx.quiet)
        quantized, meta["quantization"] = quantize_int8(
            model, calib, keep_float=keep, onnx_nodes=_node_names(ctx.fp32), preset=ctx.options.preset,
            model_type=ctx.options.model_type, calib_method=self.calib_method(ctx.options))
        meta["quantization"]["task_kept_float"] = keep_record
        meta["calibration"] = record
        save(quantized, path, precision_hint=target.precision_hint)
        return ctx.accuracy_aware(target, path, meta,
                                  lambda: OpenVinoSurgeon(quantized, convert(ctx.fp32), target.precision_hint))


def _node_names(path: Path) -> list[str]:
    import onnx

    return [n.name for n in onnx.load(str(path), load_external_data=False).graph.node]


BACKEND = OpenVinoBackend()
