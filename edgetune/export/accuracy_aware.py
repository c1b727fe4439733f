"""Accuracy-aware int8, one algorithm for both runtimes: return the fewest layers to float that
bring the drop within `--max-drop`.

Same idea as NNCF's `quantize_with_accuracy_control`, made cheap enough for 2 cores. NNCF's own
re-ranks every remaining quantiser group whenever a step does not help (~1.5 s per group on
yolo11n); on yolo11n it had not finished after 8 minutes (nncf#1652 is the known complaint).

"Back to float" is graph surgery on the plain int8 graph (a `Surgeon` per runtime): the layer's
inputs are re-wired around their quantise/dequantise ops (ORT: Q/DQ pairs; OpenVINO:
FakeQuantize) to the float tensors and float weights. The rest stays exactly as calibrated (no
re-calibration), and the layer computes in float even where its input is shared with quantised
ops (re-quantising with the layer excluded would not do that: a quantised Concat or Add in front
of it still rounds its input).

1. Rank. For each quantised compute layer, the variant with just that layer in float is scored
   by how much it lowers the output error against fp32 on a few validation inputs. One session
   per layer: ~0.2 s for Lite0, ~1 s for yolo11n.
2. Search. Layers go back to float in rank order; the number k is found by doubling then
   bisection on the *task metric* over the whole val split, so about 2·log2(layers) evaluations
   instead of one per layer.

If even every ranked layer in float misses the budget, the best mix tried is reported.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from edgetune.export.gate import Gate
from edgetune.export.openvino import COMPUTE_OPS as OV_COMPUTE
from edgetune.export.quantize_ort import COMPUTE_OPS as COMPUTE
from edgetune.progress import log

RANKING_INPUTS = 32


@dataclass
class SearchResult:
    float_layers: list[str]  # returned to float, in rank order (the chosen prefix)
    metric: float
    drop: float
    met: bool
    trials: list[dict] = field(default_factory=list)  # every evaluated k: metric and drop
    ranking: list[dict] = field(default_factory=list)  # most sensitive layers first, with scores
    seconds: float = 0.0


def rank_layers(candidates: Iterable[str], error_with_float: Callable[[list[str]], float]) -> list[tuple[str, float]]:
    """Layers sorted by how much keeping each one alone in float lowers the output error
    (`error_with_float([])` is plain int8's; `candidates` is iterated once)."""
    base = error_with_float([])
    scored = [(c, base - error_with_float([c])) for c in candidates]
    return sorted(scored, key=lambda t: -t[1])


def fewest_prefix(ranked: Sequence[str], metric_of: Callable[[list[str]], float], gate: Gate) -> SearchResult:
    """Smallest k such that the first k ranked layers in float pass the gate: doubling
    (1, 2, 4, …, all) then bisection. Assumes plain PTQ (k = 0) already missed the budget."""
    trials: dict[int, float] = {}

    def ok(k: int) -> bool:
        if k not in trials:
            trials[k] = metric_of(list(ranked[:k]))
        return gate.passes(trials[k])

    lo, hi, k = 0, None, 1
    while ranked:
        k = min(k, len(ranked))
        if ok(k):
            hi = k
            break
        lo = k
        if k == len(ranked):
            break
        k *= 2
    if hi is not None:
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if ok(mid) else (mid, hi)
        chosen = hi
    else:  # nothing met the budget: the best mix tried
        chosen = max(trials, key=lambda j: (trials[j], -j)) if trials else 0
    metric = trials.get(chosen, float("nan"))
    return SearchResult(list(ranked[:chosen]), metric, gate.drop(metric), hi is not None,
                        [{"float_layers": j, "metric": m, "drop": gate.drop(m)} for j, m in sorted(trials.items())])


class Surgeon(Protocol):
    """Variants of one plain int8 model with chosen compute layers back in float."""

    def candidates(self) -> list[str]:
        """Quantised compute layers, in graph order."""

    def session(self, layers: Sequence[str]) -> Any:
        """A runtime Session of the variant with `layers` in float ([]: plain int8)."""

    def reference(self) -> Any:
        """A Session of the fp32 model (the outputs the ranking compares against)."""

    def save(self, layers: Sequence[str], path: Path) -> None:
        """Write the variant as the artefact."""


class OrtSurgeon:
    """Variants of an ORT QDQ graph; `reference_path` is the pre-quantisation graph."""

    def __init__(self, qdq_path: Path, reference_path: Path, candidates: Sequence[str], workdir: Path) -> None:
        import onnx

        self.qdq = onnx.load(str(qdq_path))
        self.reference_path, self.workdir, self._candidates = reference_path, workdir, list(candidates)
        ref = onnx.load(str(reference_path))
        self.ref_nodes = {n.name: n for n in ref.graph.node}
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
        todo, seen = [n for n in layers if n in by_name], set(layers)
        while todo:
            node = by_name[todo.pop()]
            ref = self.ref_nodes.get(node.name)
            if ref is None:
                continue
            for i, name in enumerate(node.input):
                p = producers.get(name)
                if p is not None and p.op_type == "DequantizeLinear" and i < len(ref.input):
                    node.input[i] = self._float_input(m, ref.input[i], present)
                up = producers.get(node.input[i])  # the node computing the (now float) input
                if up is not None and up.op_type not in (*COMPUTE, "QuantizeLinear", "DequantizeLinear") \
                        and up.name not in seen:
                    seen.add(up.name)
                    todo.append(up.name)
        prune(m)
        return m

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

    def session(self, layers: Sequence[str]) -> Any:
        from edgetune.runtime import Session

        with tempfile.NamedTemporaryFile(suffix=".onnx", dir=self.workdir) as f:
            self.save(layers, Path(f.name))
            return Session(f.name)  # ORT has read the file; it may go

    def reference(self) -> Any:
        from edgetune.runtime import Session

        return Session(self.reference_path)


class OpenVinoSurgeon:
    """Variants of an NNCF-quantised OpenVINO model (in memory, before saving)."""

    def __init__(self, quantized: Any, fp32: Any, precision_hint: str | None = "f32") -> None:
        self.quantized, self.fp32, self.hint = quantized, fp32, precision_hint

    def candidates(self) -> list[str]:
        """Compute ops with a FakeQuantize on their input path (back to the previous compute ops)."""
        return [op.get_friendly_name() for op in self.quantized.get_ordered_ops()
                if op.get_type_name() in OV_COMPUTE and self._walk(op, bypass=False)]

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
                if src.get_type_name() not in (*OV_COMPUTE, "Parameter", "Constant") \
                        and src.get_friendly_name() not in seen:
                    seen.add(src.get_friendly_name())
                    todo.append(src)
        return found

    def variant(self, layers: Sequence[str]) -> Any:
        m = self.quantized.clone()
        wanted = set(layers)
        for op in m.get_ordered_ops():
            if op.get_friendly_name() in wanted:
                self._walk(op, bypass=True)
        return m

    def _session(self, model: Any) -> Any:
        from edgetune.runtime import PRECISION_KEY, Session

        if self.hint:
            model.set_rt_info(self.hint, PRECISION_KEY)  # compiled exactly as the saved IR will be
        return Session.from_openvino_model(model)

    def session(self, layers: Sequence[str]) -> Any:
        return self._session(self.variant(layers))

    def reference(self) -> Any:
        return self._session(self.fp32)

    def save(self, layers: Sequence[str], path: Path) -> None:
        from edgetune.export.openvino import save

        save(self.variant(layers), path, precision_hint=self.hint)


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


def output_error(session: Any, inputs: Sequence[np.ndarray], refs: Sequence[list[np.ndarray]],
                 scale: np.ndarray | None) -> float:
    """Mean squared error of every output against the fp32 outputs (detectors: boxes / input size)."""
    total = 0.0
    for x, ref in zip(inputs, refs, strict=True):
        for got, want in zip(session.run(x), ref, strict=True):
            d = (got - want) if scale is None or got.shape != want.shape else (got - want) / scale
            total += float(np.mean(np.square(d)))
    return total / max(len(inputs), 1)


def search(surgeon: Surgeon, ranking_inputs: Sequence[np.ndarray], gate: Gate, evaluate: Callable[[Any], float], *,
           scale: np.ndarray | None = None, quiet: bool = False) -> SearchResult:
    """Rank the surgeon's quantised layers by sensitivity, then find the fewest to float.

    `evaluate(session)` is the task metric of a runtime Session on the whole val split."""
    from edgetune.progress import track

    t0 = time.perf_counter()
    reference = surgeon.reference()
    refs = [reference.run(x) for x in ranking_inputs]
    candidates = surgeon.candidates()
    log(f"ranking {len(candidates)} quantised layers by sensitivity", quiet=quiet)
    ranked = rank_layers(track(candidates, total=len(candidates), desc="ranking layers", quiet=quiet),
                         lambda layers: output_error(surgeon.session(layers), ranking_inputs, refs, scale))

    def metric_of(layers: list[str]) -> float:
        m = evaluate(surgeon.session(layers))
        log(f"  {len(layers):3d} layer(s) in float: metric {m:.4f} (drop {gate.drop(m):+.4f})", quiet=quiet)
        return m

    result = fewest_prefix([name for name, _ in ranked], metric_of, gate)
    result.ranking = [{"layer": n, "error_reduction": s} for n, s in ranked[:10]]
    result.seconds = round(time.perf_counter() - t0, 2)
    return result
