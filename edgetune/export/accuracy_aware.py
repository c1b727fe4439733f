"""Accuracy-aware int8, one algorithm for every backend: return the fewest layers to float that
bring the drop within `--max-drop`.

Same idea as NNCF's `quantize_with_accuracy_control`, made cheap enough for 2 cores. NNCF's own
re-ranks every remaining quantiser group whenever a step does not help (~1.5 s per group on
yolo11n); on yolo11n it had not finished after 8 minutes (nncf#1652 is the known complaint).

"Back to float" is graph surgery on the plain int8 graph (a `Surgeon` per backend, in its module): the layer's
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

import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from edgetune.export.gate import Gate
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
    candidates: int = 0  # quantised layers the search could return to float


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
                        [{"float_layers": j, "metric": m, "drop": gate.drop(m)} for j, m in sorted(trials.items())],
                        candidates=len(ranked))


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

    # Optional: `ranked() -> [(layer, score)]`, most sensitive first, from the runtime's own
    # per-layer accuracy analysis; `search` then uses it instead of one session per layer.
    # Optional: `partial_candidates = True` when its candidates leave quantised tensors it cannot
    # restore (then "every candidate in float" does not mean "no quantisation left").


def output_error(session: Any, inputs: Sequence[np.ndarray], refs: Sequence[list[np.ndarray]],
                 scale: np.ndarray | None) -> float:
    """Mean squared error of every output against the fp32 outputs (detectors: boxes / input size)."""
    total = 0.0
    for x, ref in zip(inputs, refs, strict=True):
        for got, want in zip(session.run(x), ref, strict=True):
            d = (got - want) if scale is None or got.shape != want.shape else (got - want) / scale
            total += float(np.mean(np.square(d)))
    return total / max(len(inputs), 1)


def search(surgeon: Surgeon, ranking_inputs: Sequence[np.ndarray], gate: Gate,
           evaluate: Callable[[list[str]], float], *, scale: np.ndarray | None = None,
           quiet: bool = False) -> SearchResult:
    """Rank the surgeon's quantised layers by sensitivity, then find the fewest to float.

    `evaluate(layers)` is the task metric on the whole val split of the variant with `layers` in
    float (a session here, or the variant's files on the emulated device)."""
    from edgetune.progress import track

    t0 = time.perf_counter()
    candidates = surgeon.candidates()
    own_ranking = getattr(surgeon, "ranked", None)  # a runtime's own per-layer accuracy analysis
    if own_ranking is not None:
        log(f"ranking {len(candidates)} quantised layers by the runtime's per-layer accuracy analysis", quiet=quiet)
        ranked = own_ranking()
    else:
        reference = surgeon.reference()
        refs = [reference.run(x) for x in ranking_inputs]
        log(f"ranking {len(candidates)} quantised layers by sensitivity", quiet=quiet)
        ranked = rank_layers(track(candidates, total=len(candidates), desc="ranking layers", quiet=quiet),
                             lambda layers: output_error(surgeon.session(layers), ranking_inputs, refs, scale))

    def metric_of(layers: list[str]) -> float:
        m = evaluate(layers)
        log(f"  {len(layers):3d} layer(s) in float: metric {m:.4f} (drop {gate.drop(m):+.4f})", quiet=quiet)
        return m

    result = fewest_prefix([name for name, _ in ranked], metric_of, gate)
    score = "single_layer_error" if own_ranking is not None else "error_reduction"
    result.ranking = [{"layer": n, score: s} for n, s in ranked[:10]]
    result.seconds = round(time.perf_counter() - t0, 2)
    return result


def unmet_note(aa: dict[str, Any]) -> tuple[str, str | None]:
    """Why a search found no mix, for the gate's error line, and a hint when the usual one (more
    calibration data) cannot help: when even every quantised layer in float misses the budget,
    the remaining drop is not quantisation's (a borderline val sample, or the runtime's own float
    arithmetic), and restoring layers or calibrating differently cannot fix it."""
    last = max(aa.get("trials") or [{"float_layers": 0}], key=lambda t: t["float_layers"])
    if aa.get("candidates") and last["float_layers"] == aa["candidates"]:
        if aa.get("partial_candidates"):
            return (f"; with all {aa['candidates']} compute layers back in float it still drops {last['drop']:.4f}: "
                    f"the rest is in tensors this runtime's search cannot restore (the input, other activations)",
                    "calibrate on more samples (--calib-size), or use --max-drop above that drop")
        return (f"; with all {aa['candidates']} quantised layers back in float it still drops {last['drop']:.4f}, "
                f"so the rest is not quantisation (a borderline val sample, or the runtime's own arithmetic)",
                "with few val samples one flip can exceed the budget: use a larger val split, or --max-drop above "
                "that drop (--max-drop none records it only)")
    return (f"; the accuracy-aware search found no mix within budget (best: drop {aa['drop']:.4f} with "
            f"{len(aa['float_layers'])} layer(s) in float)", None)


def restore_until_within(ctx: Any, target: Any, path: Path, meta: dict[str, Any],
                         surgeon: Callable[[], Surgeon]) -> dict[str, Any] | None:
    """Evaluate plain int8; when it misses --max-drop, write the fewest layers to float at `path`
    and record what that costs in latency. Returns the plain artefact's metrics when it is kept as
    is (None after a search: the new artefact is evaluated by the caller)."""
    metrics = ctx.evaluate(path)
    gate = ctx.gate(target)
    judged = ctx.judged_metric(target, path.parent, metrics[ctx.task.metric_name])
    if ctx.options.emulate:
        _record_device(meta, judged, gate, metrics, ctx)
    if gate.passes(judged) or not ctx.options.search:
        return metrics
    plain_drop = gate.drop(judged)
    log(f"{target.id}: plain int8 drops {plain_drop:.4f} > {gate.describe()}: "
        f"searching for the fewest layers to keep in float", quiet=ctx.quiet)
    plain = ctx.work / f"{target.id}-plain"
    plain.mkdir()
    for f in target.files:
        shutil.copyfile(path.parent / f, plain / f)
    s = surgeon()
    ranking = ctx.task.export_inputs(ctx.spec, ctx.data, count=RANKING_INPUTS)
    candidate = ctx.work / f"{target.id}-candidate"

    def on_device(layers: list[str]) -> float:
        candidate.mkdir(exist_ok=True)
        s.save(layers, candidate / target.artifact)
        return ctx.device_metric(target, candidate)

    evaluate = on_device if ctx.options.emulate else (lambda layers: ctx.metric(s.session(layers)))
    result = search(s, ranking, gate, evaluate, scale=ctx.scale, quiet=ctx.quiet)
    s.save(result.float_layers, path)
    if ctx.options.emulate:
        _record_device(meta, result.metric, gate, None, ctx)
    meta["quantization"]["float_layers_after_search"] = result.float_layers
    meta["accuracy_aware"] = {"plain_drop": plain_drop, **_record(result, plain / target.artifact, path, ctx.inputs[0],
                                                                   target.backend.runs_here),
                              **({"partial_candidates": True} if getattr(s, "partial_candidates", False) else {})}
    return None


def _record_device(meta: dict[str, Any], metric: float, gate: Gate, host: dict[str, Any] | None, ctx: Any) -> None:
    """--emulate: the device's metric, which the gate and export.json's metric and drop use, with
    this host's beside it (None after a search: the caller evaluates the final artefact here)."""
    from edgetune.emulated import LABEL

    key = ctx.task.metric_name
    meta["emulated_aarch64"] = {"measured_on": LABEL, "metric": metric, "metric_fp32": gate.reference,
                                "drop": gate.drop(metric), "host_metric_fp32": float(ctx.metrics_fp32[key]),
                                "host_metric": float(host[key]) if host else None}


def _record(result: SearchResult, plain: Path, final: Path, x: np.ndarray, runs_here: bool) -> dict[str, Any]:
    """What the search found and what it costs in latency (1 thread, this host; none for an
    artefact that runs on an accelerator only)."""
    from edgetune.latency import latency_p50

    lat = {name: latency_p50(p, x, 1) for name, p in (("plain", plain), ("restored", final))} if runs_here else {}
    return {"met": result.met, "float_layers": result.float_layers, "candidates": result.candidates,
            "metric": result.metric,
            "drop": result.drop, "trials": result.trials, "ranking": result.ranking, "seconds": result.seconds,
            "latency_p50_ms_1thread": {k: round(v, 3) for k, v in lat.items()}}
