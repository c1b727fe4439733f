"""How good is bench's off-device estimate? Checked against the published numbers themselves.

    python benchmarks/estimate.py

For every shipped profile with reference latencies, every reference model is built and measured
here (edgetune's pinned bench worker, 2 threads, 3 interleaved rounds, median). Then each
published number is predicted from each other published number of the same device:
    device_j ≈ here_j × device_i / here_i
which is what `edgetune bench` does with an artefact in place of model j (bench measures its two
terms alternately in one process; the host side's noise is in "estimate-pairing", a few %, far
below the cross-model error measured here). Same-runtime
pairs are what bench uses; cross-runtime pairs (ONNX Runtime reference → OpenVINO artefact or
back) are bench's fallback when a profile has no reference on the artefact's runtime.
Writes the RESULTS.md section "estimate".
"""

from __future__ import annotations

import itertools

import numpy as np
from _results import write_section

from edgetune.estimate import reference_input
from edgetune.profiles import PROFILES
from edgetune.reference import reference_artifact

THREADS = 2
ROUNDS = 3
RUNS = 60
COMMAND = "python benchmarks/estimate.py"


def main() -> None:
    from edgetune.latency import latency_p50

    profiles = [PROFILES.get(n) for n in PROFILES.names() if PROFILES.get(n).references]
    keys = sorted({(r.model, r.imgsz, r.runtime) for p in profiles for r in p.references})
    arts = {k: reference_artifact(*k) for k in keys}
    samples: dict[tuple, list[float]] = {}
    for rnd in range(ROUNDS):
        for k, path in arts.items():
            samples.setdefault(k, []).append(latency_p50(path, reference_input(k[1]), THREADS, RUNS))
            print(f"round {rnd + 1}: {k}: {samples[k][-1]:.1f} ms", flush=True)
    here = {k: float(np.median(v)) for k, v in samples.items()}

    lines = ["## Off-device estimate vs the published numbers", "",
             f"`{COMMAND}` — reference models built from their ultralytics YAML and exported with ultralytics' "
             f"exporter (640 px, batch 1, fp32), measured here with {THREADS} pinned threads ({ROUNDS} interleaved "
             f"rounds × {RUNS} runs, median). Prediction of device latency j from reference i of the same device: "
             "here_j × device_i / here_i. Error = predicted / published − 1.", "",
             "| device | reference i | predicted j | runtime i → j | here i / j ms | published j ms | predicted ms | error |",
             "|---|---|---|---|---|---|---|---|"]
    same, cross, bench_rule = [], [], []
    for p in profiles:
        first = {rt: next(r for r in p.references if r.runtime == rt) for rt in {r.runtime for r in p.references}}
        for ri, rj in itertools.permutations(p.references, 2):
            hi, hj = here[(ri.model, ri.imgsz, ri.runtime)], here[(rj.model, rj.imgsz, rj.runtime)]
            pred = hj * ri.latency_ms / hi
            err = pred / rj.latency_ms - 1
            (same if ri.runtime == rj.runtime else cross).append(abs(err))
            if ri is first.get(rj.runtime) and ri.runtime == rj.runtime:
                bench_rule.append(abs(err))
            lines.append(f"| {p.name} | {ri.model} | {rj.model} | {ri.runtime} → {rj.runtime} | {hi:.1f} / {hj:.1f} | "
                         f"{rj.latency_ms:g} | {pred:.1f} | {err:+.0%} |")

    def stat(v: list[float]) -> str:
        return f"median |error| {np.median(v):.0%}, worst {max(v):.0%} ({len(v)} predictions)" if v else "none"

    lines += ["", f"- bench's rule (the profile's first reference on the artefact's runtime): {stat(bench_rule)}",
              f"- any same-runtime pair: {stat(same)}",
              f"- cross-runtime pairs (bench's fallback): {stat(cross)}",
              "", "Host reference latencies: " + "; ".join(f"{m}@{s} {rt} {v:.1f} ms" for (m, s, rt), v in here.items())]
    write_section("estimate", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
