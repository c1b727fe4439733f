"""The ONNX Runtime backend: `cpu-fp32` (the validated graph itself) and `cpu-int8` (static QDQ).
ONNX Runtime static int8 (QDQ) quantisation.

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

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgetune.errors import CalibrationError, RunDirError, UsageError
from edgetune.export.backends import Backend, BuildContext
from edgetune.export.targets import Target
from edgetune.fsutil import work_dir
from edgetune.progress import log
from edgetune.runtime import Session

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


class OrtSurgeon:
    """Variants of an ORT QDQ graph; `reference_path` is the pre-quantisation graph."""

    def __init__(self, qdq_path: Path, reference_path: Path, candidates: Sequence[str], workdir: Path) -> None:
        import onnx

        self.qdq = onnx.load(str(qdq_path))
        self.reference_path, self.workdir, self._candidates = reference_path, workdir, list(candidates)
        ref = onnx.load(str(reference_path))
        self.ref_nodes = {n.name: n for n in ref.graph.node}
        self.ref_producers = {out: n for n in ref.graph.node for out in n.output}
        self.inits = {i.name: i for i in ref.graph.initializer}

    def variant(self, layers: Sequence[str]) -> Any:
        """A pruned copy with `layers` and their input path back to the previous compute layers
        (activations, Add, Concat, pooling…) reading float tensors: each input that comes through a
        DequantizeLinear is re-wired to the tensor the reference (pre-quantisation) node read."""
        import onnx

        m = onnx.ModelProto()
        m.CopyFrom(self.qdq)
        by_name = {n.name: n for n in m.graph.node}
        producers = {out: n for n in m.graph.node for out in n.output}
        present = {i.name for i in m.graph.initializer}
        refolded: dict[str, Any] = {}  # tensor → the float Clip/Relu re-applied to it
        todo, seen = [n for n in layers if n in by_name], set(layers)
        while todo:
            node = by_name[todo.pop()]
            ref = self.ref_nodes.get(node.name)
            if ref is None:
                continue
            for i, name in enumerate(node.input):
                p = producers.get(name)
                if p is not None and p.op_type == "DequantizeLinear" and i < len(ref.input):
                    name = ref.input[i]
                    node.input[i] = self._float_input(m, name, present)
                    node.input[i] = self._refold(m, node.input[i], producers, present, refolded)
                up = producers.get(name)  # the node computing the (now float) input
                if up is not None and up.op_type not in (*COMPUTE_OPS, "QuantizeLinear", "DequantizeLinear") \
                        and up.name not in seen:
                    seen.add(up.name)
                    todo.append(up.name)
        _float_graph_outputs(m, [by_name[n] for n in layers if n in by_name])
        if refolded:  # keep the graph topologically sorted: each re-applied node right behind its input
            nodes = list(m.graph.node)
            del m.graph.node[:]
            for n in nodes:
                m.graph.node.extend([n, *(refolded[o] for o in n.output if o in refolded)])
        prune(m)
        return m

    def _refold(self, m: Any, src: str, producers: dict[str, Any], present: set[str],
                refolded: dict[str, Any]) -> str:
        """ORT's quantiser removes a Clip or Relu behind a layer and lets the next QuantizeLinear's
        range clip instead (the layer's output takes the removed node's tensor name). A consumer
        that now reads that tensor in float must clip it itself: without this, restoring the speech
        embedding's clamped layers to float made the drop worse, not better (21 layers in float: top-1
        0.957 → 0.786). Returns the tensor to read (`src` when nothing was removed)."""
        import onnx

        ref_producer, producer = self.ref_producers.get(src), producers.get(src)
        if ref_producer is None or producer is None or ref_producer.name == producer.name \
                or ref_producer.op_type not in ("Clip", "Relu"):
            return src
        out = f"{src}/refolded"
        if src not in refolded:
            node = onnx.NodeProto()
            node.CopyFrom(ref_producer)
            node.name = f"{ref_producer.name}/refolded"
            node.input[0] = src
            for k in range(1, len(node.input)):  # Clip's min/max
                if node.input[k]:
                    node.input[k] = self._float_input(m, node.input[k], present)
            node.output[0] = out
            refolded[src] = node
        return out

    def _float_input(self, m: Any, src: str, present: set[str]) -> str:
        """The float tensor name for a reference input; weights/biases are added as initializers
        under a new name (the DQ output may carry the original one)."""
        import onnx

        if src not in self.inits:
            return src
        renamed = src + "/float"
        if renamed not in present:
            init = onnx.TensorProto()
            init.CopyFrom(self.inits[src])
            init.name = renamed
            m.graph.initializer.append(init)
            present.add(renamed)
        return renamed

    def candidates(self) -> list[str]:
        return list(self._candidates)

    def save(self, layers: Sequence[str], path: Path) -> None:
        import onnx

        onnx.save(self.variant(layers), str(path))

    def session(self, layers: Sequence[str]) -> Session:
        with tempfile.NamedTemporaryFile(suffix=".onnx", dir=self.workdir) as f:
            self.save(layers, Path(f.name))
            return BACKEND.session(Path(f.name))  # ORT has read the file; it may go

    def reference(self) -> Session:
        return BACKEND.session(self.reference_path)


def _float_graph_outputs(m: Any, layers: Sequence[Any]) -> None:
    """A float layer that computes a graph output (a classifier's last Gemm) writes it directly,
    not through the QuantizeLinear → DequantizeLinear pair the quantiser put behind it (that pair
    alone left logits off by 0.013 with every layer in float)."""
    outputs = {o.name for o in m.graph.output}
    consumers: dict[str, list[Any]] = {}
    for n in m.graph.node:
        for t in n.input:
            consumers.setdefault(t, []).append(n)
    for node in layers:
        q = consumers.get(node.output[0], [])
        if len(q) != 1 or q[0].op_type != "QuantizeLinear":
            continue
        dq = consumers.get(q[0].output[0], [])
        if len(dq) != 1 or dq[0].op_type != "DequantizeLinear" or dq[0].output[0] not in outputs:
            continue
        node.output[0] = dq[0].output[0]
        m.graph.node.remove(dq[0])
        m.graph.node.remove(q[0])


def prune(model: Any) -> None:
    """Drop nodes whose outputs nobody reads (the bypassed Q/DQ pairs) and unused initializers."""
    graph = model.graph
    while True:
        used = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
        dead = [n for n in graph.node if not any(o in used for o in n.output)]
        if not dead:
            break
        for n in dead:
            graph.node.remove(n)
    used = {i for n in graph.node for i in n.input}
    for init in [i for i in graph.initializer if i.name not in used]:
        graph.initializer.remove(init)


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"
    title = "ONNX Runtime"
    artifact = "model.onnx"
    install = "onnxruntime (light install)"
    honours = ("calib_method", "per_channel")
    calib_methods = METHODS
    # Measured default (benchmarks/RESULTS.md "export", "Calibration choices"): MinMax was best or
    # tied on Lite0, yolo11n and KWS.
    default_calib_method = "minmax"
    reference_format = "onnx"

    def targets(self) -> tuple[Target, ...]:
        return (
            Target("cpu-fp32", self.name, "fp32", None, 1e-3,
                   "ONNX Runtime, float32; the reference artefact every other target is judged against"),
            Target("cpu-int8", self.name, "int8", "ort-static", None,
                   "ONNX Runtime, static int8 QDQ: per-channel int8 weights, uint8 activations, "
                   "calibrated on a stratified training subset"),
        )

    def session(self, path: Path, *, threads: int | None = None) -> Session:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.inter_op_num_threads = 1
        if threads:
            opts.intra_op_num_threads = threads
        opts.log_severity_level = 3
        try:
            sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise RunDirError(f"ONNX Runtime cannot load {path}: {str(exc).splitlines()[0][:200]}",
                              hint="re-run `edgetune export`") from None
        inp = sess.get_inputs()[0]
        out_shape = tuple(d if isinstance(d, int) else None for d in sess.get_outputs()[0].shape)
        return Session(path, threads, self.name, lambda x: sess.run(None, {inp.name: x}), input_name=inp.name,
                       input_shape=tuple(inp.shape), output_shape=out_shape)

    def build(self, ctx: BuildContext, target: Target, path: Path, meta: dict[str, Any]) -> dict[str, Any] | None:
        if target.quantizer is None:  # the validated fp32 graph itself: already checked and measured
            shutil.copyfile(ctx.fp32, path)
            meta["max_abs_diff"] = ctx.fp32_max_abs_diff
            return ctx.metrics_fp32
        calib, record = ctx.calibration()
        method = self.calib_method(ctx.options)
        log(f"{target.id}: calibrating int8 on {record['size']} training samples ({method}, "
            f"{'per-channel' if ctx.options.per_channel else 'per-tensor'})", quiet=ctx.quiet)
        keep, keep_record = ctx.task.quantize_keep_float(ctx.fp32)
        qdir = ctx.work / f"{target.id}-q"
        qdir.mkdir()
        quantizer = OrtStaticQuantizer(ctx.fp32, calib, qdir, per_channel=ctx.options.per_channel, method=method,
                                       keep_float=keep)
        meta["quantization"] = {**quantizer.quantize(path), "task_kept_float": keep_record}
        meta["calibration"] = record
        return ctx.accuracy_aware(target, path, meta,
                                  lambda: OrtSurgeon(path, quantizer.prepped, quantizer.candidates(), qdir))


BACKEND = OnnxRuntimeBackend()
