"""Does `edgetune bench` measure what the runtimes' own tools measure? And how stable is it?

    python benchmarks/bench_fidelity.py

Writes RESULTS.md sections "bench-fidelity" and "bench-stability". Artefacts: the int8 exports
of benchmarks/export.py's three runs (ONNX Runtime cpu-int8, OpenVINO openvino-int8).

- fidelity: bench's pinned worker (what `edgetune bench` runs) vs the runtime's own measurement
  on the same artefact and cores (taskset), like for like:
  * ONNX Runtime: its shipped timing tool `python -m onnxruntime.tools.onnxruntime_test MODEL N`
    (mean over 1000 runs incl. its one cold run, default threads = the 2 physical cores) vs bench's mean; and its profiler
    (`model_run` events of SessionOptions.enable_profiling, median) vs bench's p50 — the profiler
    times every node too, so it carries its own overhead, shown rather than hidden;
  * OpenVINO: `benchmark_app -hint none -api sync -nstreams 1 -nthreads 2` (its UI allows -nthreads only without a hint), its Median, vs
    bench's p50.
  3 interleaved rounds; medians of rounds; ratio bench / tool.
- stability: bench's p50 over 5 back-to-back reruns (200 runs each, as `edgetune bench`),
  spread = (max − min) / median.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from _results import write_section

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work" / "export"
ARTEFACTS = {"EfficientNet-Lite0": "EfficientNet-Lite0", "yolo11n": "yolo11n", "KWS": "speech_embedding_kws"}
THREADS = 2
RUNS = 200
TEST_TOOL_RUNS = 1000
ROUNDS = 3
COMMAND = "python benchmarks/bench_fidelity.py"

_ORT_CHILD = r"""
import json, os, sys
import numpy as np, onnxruntime as ort
path, threads, runs, prof = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:threads])
so = ort.SessionOptions()
so.intra_op_num_threads = threads
so.inter_op_num_threads = 1
so.enable_profiling = True
so.profile_file_prefix = prof
s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
i = s.get_inputs()[0]
x = np.full([d if isinstance(d, int) else 1 for d in i.shape], 0.5, np.float32)
for _ in range(50 + runs):
    s.run(None, {i.name: x})
events = json.load(open(s.end_profiling()))
runs_us = [e["dur"] for e in events if e.get("name") == "model_run"][-runs:]
print(json.dumps({"p50": float(np.median(runs_us)) / 1e3}))
"""


def _cores() -> str:
    return ",".join(str(c) for c in sorted(os.sched_getaffinity(0))[:THREADS])


def ort_profiler_p50(model: Path) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run([sys.executable, "-c", _ORT_CHILD, str(model), str(THREADS), str(RUNS),
                              str(Path(tmp) / "prof")], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["p50"]


def ort_test_tool_mean(model: Path) -> float:
    """ORT's own `onnxruntime_test`: the mean of TEST_TOOL_RUNS runs, its first (cold, ~12 ms on
    Lite0 int8) included — it has no warm-up, so many runs amortise it to ~0.5 %."""
    out = subprocess.run(["taskset", "-c", _cores(), sys.executable, "-m", "onnxruntime.tools.onnxruntime_test",
                          str(model), str(TEST_TOOL_RUNS)], capture_output=True, text=True, check=True)
    return float(re.search(r"avg latency: ([\d.]+) ms", out.stdout).group(1))


def benchmark_app_p50(model: Path) -> float:
    exe = shutil.which("benchmark_app") or str(Path(sys.executable).parent / "benchmark_app")
    out = subprocess.run(["taskset", "-c", _cores(), exe, "-m", str(model), "-d", "CPU", "-hint", "none",
                          "-api", "sync", "-nthreads", str(THREADS), "-nstreams", "1", "-niter", str(RUNS),
                          "-infer_precision", "f32"],
                         capture_output=True, text=True, check=True)
    lines = out.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if "Latency:" in line)
    return float(re.search(r"Median:\s+([\d.]+)\s*ms", "\n".join(lines[start:start + 6])).group(1))


def bench_stats(model: Path) -> dict[str, float]:
    from edgetune.latency import measure_in_child as run_worker
    from edgetune.runtime import open_session

    x = np.full(open_session(model).input_shape, 0.5, dtype=np.float32)
    return run_worker(model, x, THREADS, RUNS)["latency_ms"]


def main() -> None:
    # (model, artefact file, tool name, tool, bench statistic compared)
    checks = []
    for label, folder in ARTEFACTS.items():
        exp = WORK / folder / "run" / "export"
        onnx, xml = exp / "cpu-int8" / "model.onnx", exp / "openvino-int8" / "model.xml"
        checks.append((label, "cpu-int8", onnx, "onnxruntime_test (mean)", ort_test_tool_mean, "mean"))
        checks.append((label, "cpu-int8", onnx, "ORT profiler model_run (median)", ort_profiler_p50, "p50"))
        checks.append((label, "openvino-int8", xml, "benchmark_app (median)", benchmark_app_p50, "p50"))
    bench, own = {}, {}
    for r in range(ROUNDS):
        for label, target, path, name, tool, stat in checks:
            key = (label, target, name)
            bench.setdefault(key, []).append(bench_stats(path)[stat])
            own.setdefault(key, []).append(tool(path))
            print(f"round {r + 1}: {label} {target} {name}: bench {bench[key][-1]:.3f} ms, tool {own[key][-1]:.3f} ms",
                  flush=True)
    rows = ["| model | artefact | runtime's own tool | bench ms | tool ms | ratio bench/tool | bench rounds | tool rounds |",
            "|---|---|---|---|---|---|---|---|"]
    ratios: dict[str, list[float]] = {}
    for label, target, _, name, _, stat in checks:
        key = (label, target, name)
        b, o = np.median(bench[key]), np.median(own[key])
        ratios.setdefault(name, []).append(b / o)
        rows.append(f"| {label} | {target} | {name} | {b:.3f} ({stat}) | {o:.3f} | {b / o:.3f} | "
                    f"{', '.join(f'{v:.2f}' for v in bench[key])} | {', '.join(f'{v:.2f}' for v in own[key])} |")
    summary = [f"- bench / {name}: {min(v):.3f}–{max(v):.3f}" for name, v in ratios.items()]
    write_section("bench-fidelity", "\n".join([
        "## bench vs the runtimes' own latency tools", "",
        f"`{COMMAND}` — same artefact, same {THREADS} cores (taskset / bench's pinning), batch 1, {RUNS} timed "
        f"runs, {ROUNDS} interleaved rounds, median of rounds; bench's mean is compared with onnxruntime_test's "
        "mean, its p50 with the medians.", "", *rows, "", *summary]))

    reruns = {}
    for label, target, path, *_ in checks:
        if (label, target) not in reruns:
            reruns[(label, target)] = [bench_stats(path)["p50"] for _ in range(5)]
    rows = ["| model | artefact | p50 of 5 reruns (ms) | median | spread (max−min)/median |", "|---|---|---|---|---|"]
    spreads = []
    for (label, target), v in reruns.items():
        spread = (max(v) - min(v)) / np.median(v)
        spreads.append(spread)
        rows.append(f"| {label} | {target} | {', '.join(f'{x:.3f}' for x in v)} | {np.median(v):.3f} | {spread:.1%} |")
    write_section("bench-stability", "\n".join([
        "## bench's p50 across 5 reruns", "",
        f"`{COMMAND}` — the worker `edgetune bench` runs ({RUNS} timed runs after its warm-up, {THREADS} pinned "
        "threads), 5 times back to back per artefact.", "", *rows, "",
        f"Spread {min(spreads):.1%}–{max(spreads):.1%} (median {np.median(spreads):.1%})."]))


if __name__ == "__main__":
    main()
