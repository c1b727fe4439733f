"""Accuracy-aware int8 for ONNX Runtime: return the fewest layers to float that bring the drop
within `--max-drop`.

Same idea as NNCF's `quantize_with_accuracy_control` (which edgetune uses for OpenVINO), made
cheap enough for 2 cores:

1. Rank. For each quantised compute layer, a variant of the int8 graph with just that layer
   back in float is made by graph surgery (its inputs re-wired around their Q/DQ pairs to the
   float tensors — no re-calibration), and scored by how much it lowers the output error against
   fp32 on a few validation inputs. One session per layer: ~0.2 s for Lite0, ~1 s for yolo11n.
2. Search. Layers go back to float in rank order; the number k is found by doubling then
   bisection on the *task metric* of real re-quantisations (calibration ranges are cached), so
   about 2·log2(layers) evaluations instead of one per layer.

If even every ranked layer in float misses the budget, the best mix tried is reported.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

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


def rank_layers(candidates: Sequence[str], error_with_float: Callable[[list[str]], float]) -> list[tuple[str, float]]:
    """Layers sorted by how much keeping each one alone in float lowers the output error."""
    base = error_with_float([])
    scored = [(c, base - error_with_float([c])) for c in candidates]
    return sorted(scored, key=lambda t: -t[1])


def fewest_prefix(ranked: Sequence[str], metric_of: Callable[[list[str]], float], metric_fp32: float,
                  max_drop: float) -> SearchResult:
    """Smallest k such that the first k ranked layers in float keep the drop ≤ max_drop: doubling
    (1, 2, 4, …, all) then bisection. Assumes plain PTQ (k = 0) already missed the budget."""
    trials: dict[int, float] = {}

    def ok(k: int) -> bool:
        if k not in trials:
            trials[k] = metric_of(list(ranked[:k]))
        return metric_fp32 - trials[k] <= max_drop + 1e-12

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
    return SearchResult(list(ranked[:chosen]), metric, metric_fp32 - metric, hi is not None,
                        [{"float_layers": j, "metric": m, "drop": metric_fp32 - m} for j, m in sorted(trials.items())])


def float_variant(qdq: Any, reference: dict[str, Any], reference_inits: dict[str, Any], layers: Sequence[str]) -> Any:
    """A copy of the QDQ ModelProto `qdq` with `layers` reading float tensors: each input that comes
    through a DequantizeLinear is re-wired to the tensor the reference (pre-quantisation) node read."""
    import onnx

    m = onnx.ModelProto()
    m.CopyFrom(qdq)
    producers = {out: n for n in m.graph.node for out in n.output}
    present = {i.name for i in m.graph.initializer}
    wanted = set(layers)
    for node in m.graph.node:
        if node.name not in wanted or node.name not in reference:
            continue
        for i, name in enumerate(node.input):
            p = producers.get(name)
            if p is None or p.op_type != "DequantizeLinear" or i >= len(reference[node.name].input):
                continue
            src = reference[node.name].input[i]
            if src in reference_inits:  # a weight/bias: its DQ output may carry the float name, so rename
                renamed = src + "/float"
                if renamed not in present:
                    init = onnx.TensorProto()
                    init.CopyFrom(reference_inits[src])
                    init.name = renamed
                    m.graph.initializer.append(init)
                    present.add(renamed)
                src = renamed
            node.input[i] = src
    return m


def output_error(session: Any, inputs: Sequence[np.ndarray], refs: Sequence[list[np.ndarray]],
                 scale: np.ndarray | None) -> float:
    """Mean squared error of every output against the fp32 outputs (detectors: boxes / input size)."""
    total = 0.0
    for x, ref in zip(inputs, refs):
        for got, want in zip(session.run(x), ref):
            d = (got - want) if scale is None or got.shape != want.shape else (got - want) / scale
            total += float(np.mean(np.square(d)))
    return total / max(len(inputs), 1)


def search_ort(quantizer: Any, plain_int8: Path, ranking_inputs: Sequence[np.ndarray], metric_fp32: float,
               max_drop: float, evaluate: Callable[[Path], float], workdir: Path, *,
               scale: np.ndarray | None = None, quiet: bool = False) -> SearchResult:
    """Rank the quantised layers of `plain_int8` by sensitivity, then find the fewest to float.

    `quantizer` is an `OrtStaticQuantizer` (its cached calibration makes each re-quantisation ~1-3 s);
    `evaluate(path)` is the task metric of an ONNX file on the whole val split."""
    import onnx

    from edgetune.progress import track
    from edgetune.runtime import Session

    t0 = time.perf_counter()
    ref_model = onnx.load(str(quantizer.prepped))
    reference = {n.name: n for n in ref_model.graph.node}
    reference_inits = {i.name: i for i in ref_model.graph.initializer}
    qdq = onnx.load(str(plain_int8))
    fp32_session = Session(quantizer.prepped)
    refs = [fp32_session.run(x) for x in ranking_inputs]
    candidates = quantizer.candidates()

    def error_with_float(layers: list[str]) -> float:
        with tempfile.NamedTemporaryFile(suffix=".onnx", dir=workdir) as f:
            onnx.save(float_variant(qdq, reference, reference_inits, layers), f.name)
            return output_error(Session(f.name), ranking_inputs, refs, scale)

    log(f"int8 misses --max-drop {max_drop}: ranking {len(candidates)} quantised layers by sensitivity",
        quiet=quiet)
    errors = {c: error_with_float([] if c is None else [c])  # None: plain int8, the baseline
              for c in track([None, *candidates], desc="ranking layers", quiet=quiet)}
    ranked = rank_layers(candidates, lambda layers: errors[layers[0] if layers else None])

    def metric_of(layers: list[str]) -> float:
        path = workdir / f"search-{len(layers)}.onnx"
        quantizer.quantize(path, layers)
        m = evaluate(path)
        log(f"  {len(layers):3d} layer(s) in float: metric {m:.4f} (drop {metric_fp32 - m:+.4f})", quiet=quiet)
        return m

    result = fewest_prefix([name for name, _ in ranked], metric_of, metric_fp32, max_drop)
    result.ranking = [{"layer": n, "error_reduction": s} for n, s in ranked[:10]]
    result.seconds = round(time.perf_counter() - t0, 2)
    return result
