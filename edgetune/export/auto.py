"""`--target auto --profile P`: build every target the profile allows, measure each here with
the profile's threads, keep the fastest whose drop is within --max-drop.

No fixed rule is right: on this CPU ORT int8 is slower than ORT fp32 for MobileNetV3 while
OpenVINO int8/bf16 are the fastest (ENVIRONMENT.md), and yolo11n's int8 beats its fp32 on ORT.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from edgetune.cpu import usable_cores
from edgetune.errors import AccuracyGateError, EdgetuneError
from edgetune.export.gate import Gate
from edgetune.export.targets import TARGETS, get_target
from edgetune.progress import log

ROUNDS = 2  # candidates are measured in alternating rounds; the lower median of the two counts
RUNS = 100


def candidate_targets(profile: Any) -> list[str]:
    """The profile's preferred targets that edgetune can build; all targets when it names none."""
    names = [t for t in profile.targets if t in TARGETS] or list(TARGETS.names())
    return list(dict.fromkeys(names))


def choose(candidates: list[dict[str, Any]], gate: Gate) -> dict[str, Any] | None:
    """The fastest candidate (lowest p50) within the gate's budget; None when none is."""
    ok = [c for c in candidates if c.get("error") is None and gate.within(c["drop"])]
    return min(ok, key=lambda c: (c["p50_ms"], c["drop"])) if ok else None


def table(candidates: list[dict[str, Any]], chosen: str | None, metric_name: str) -> str:
    rows = [f"{'target':<15} {metric_name:>10} {'drop':>8} {'p50 ms':>8} {'MB':>7}"]
    for c in candidates:
        mark = "  ← chosen" if c["target"] == chosen else ""
        if c.get("error"):
            rows.append(f"{c['target']:<15} failed: {c['error']}")
        else:
            rows.append(f"{c['target']:<15} {c['metric']:>10.4f} {c['drop']:>+8.4f} {c['p50_ms']:>8.2f} "
                        f"{c['size_mb']:>7.2f}{mark}")
    return "\n".join(rows)


def export_auto(ctx: Any, profile_name: str, *, build: Callable, commit: Callable,
                measure: Callable[..., float] | None = None) -> dict[str, Any]:
    """Build and measure the candidates, commit the chosen one with the whole table in export.json."""
    from edgetune.profiles import get_profile

    profile = get_profile(profile_name)
    if measure is None:
        from edgetune.latency import latency_p50

        measure = lambda artifact, x, threads: latency_p50(artifact, x, threads, RUNS)  # noqa: E731
    threads = min(profile.threads, usable_cores())
    names = candidate_targets(profile)
    log(f"auto: building {len(names)} candidate(s) for {profile.name}: {', '.join(names)}", quiet=ctx.quiet)
    built, candidates = {}, []
    gate = ctx.gate()
    for name in names:
        try:
            b = build(ctx, get_target(name))
        except EdgetuneError as exc:  # one target failing (e.g. an op OpenVINO lacks) must not end the choice
            candidates.append({"target": name, "error": exc.message})
            continue
        built[name] = b
        m = float(b.metrics[ctx.task.metric_name])
        candidates.append({"target": name, "metric": m, "drop": gate.drop(m), "p50_ms": float("inf"),
                           "size_mb": b.size_mb, "error": None})
    for _ in range(ROUNDS):
        for c in candidates:
            if c["error"] is None:
                c["p50_ms"] = min(c["p50_ms"], measure(built[c["target"]].artifact, ctx.inputs[0], threads))
    chosen = choose(candidates, gate)
    log(table(candidates, chosen and chosen["target"], ctx.task.metric_name), quiet=ctx.quiet)
    record = {"profile": profile.name, "threads": threads, "max_drop": gate.max_drop, "rounds": ROUNDS, "runs": RUNS,
              "chosen": chosen and chosen["target"], "candidates": candidates}
    if chosen is None:
        best = max((c for c in candidates if c["error"] is None), key=lambda c: c["metric"], default=None)
        raise AccuracyGateError(f"auto: no candidate for {profile.name} stays within --max-drop {gate.max_drop}"
                                + (f" (best: {best['target']} drop {best['drop']:.4f})" if best else ""),
                                hint="raise --max-drop, or add a float target to the profile's targets",
                                payload={"target": None, "candidates": candidates})
    result = commit(ctx, built[chosen["target"]], {"auto": record})
    result["candidates"] = candidates
    return result

