"""Does `edgetune bench` measure what the runtimes' own tools measure? And how stable is it?

    python benchmarks/bench_fidelity.py

Writes RESULTS.md sections "bench-fidelity" and "bench-stability". Artefacts: the int8 exports
of benchmarks/export.py's three runs (ONNX Runtime cpu-int8, OpenVINO openvino-int8).

- fidelity: bench's pinned worker (what `edgetune bench` runs) vs the runtime's own measurement
  on the same artefact, threads and cores: ONNX Runtime's profiler (`model_run` events of
  SessionOptions.enable_profiling) and OpenVINO's `benchmark_app` (-hint latency -api sync,
  its "Median" latency). 3 interleaved rounds; medians of rounds; ratio bench / tool.
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


def ort_own_p50(model: Path) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run([sys.executable, "-c", _ORT_CHILD, str(model), str(THREADS), str(RUNS),
                              str(Path(tmp) / "prof")], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["p50"]


def benchmark_app_p50(model: Path) -> float:
    exe = shutil.which("benchmark_app") or str(Path(sys.executable).parent / "benchmark_app")
    cores = ",".join(str(c) for c in sorted(os.sched_getaffinity(0))[:THREADS])
    out = subprocess.run(["taskset", "-c", cores, exe, "-m", str(model), "-d", "CPU", "-hint", "latency",
                          "-api", "sync", "-nthreads", str(THREADS), "-nstreams", "1", "-niter", str(RUNS),
                          "-infer_precision", "f32"],
                         capture_output=True, text=True, check=True)
    lines = out.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if "Latency:" in line)
    return float(re.search(r"Median:\s+([\d.]+)\s*ms", "\n".join(lines[start:start + 6])).group(1))


def bench_p50(model: Path) -> float:
    from edgetune.bench import latency_p50
    from edgetune.runtime import Session

    x = np.full(Session(model).input_shape, 0.5, dtype=np.float32)
    return latency_p50(model, x, THREADS, RUNS)


def main() -> None:
    pairs = []  # (model, target, file, own tool)
    for label, folder in ARTEFACTS.items():
        exp = WORK / folder / "run" / "export"
        pairs.append((label, "cpu-int8", exp / "cpu-int8" / "model.onnx", "ORT profiler", ort_own_p50))
        pairs.append((label, "openvino-int8", exp / "openvino-int8" / "model.xml", "benchmark_app", benchmark_app_p50))
    bench, own = {}, {}
    for r in range(ROUNDS):
        for label, target, path, _, tool in pairs:
            bench.setdefault((label, target), []).append(bench_p50(path))
            own.setdefault((label, target), []).append(tool(path))
            print(f"round {r + 1}: {label} {target}: bench {bench[(label, target)][-1]:.3f} ms, "
                  f"own {own[(label, target)][-1]:.3f} ms", flush=True)
    rows = ["| model | artefact | own tool | bench p50 ms | tool p50 ms | ratio bench/tool | bench rounds | tool rounds |",
            "|---|---|---|---|---|---|---|---|"]
    ratios = []
    for label, target, _, tool_name, _ in pairs:
        b, o = np.median(bench[(label, target)]), np.median(own[(label, target)])
        ratios.append(b / o)
        rows.append(f"| {label} | {target} | {tool_name} | {b:.3f} | {o:.3f} | {b / o:.3f} | "
                    f"{', '.join(f'{v:.2f}' for v in bench[(label, target)])} | "
                    f"{', '.join(f'{v:.2f}' for v in own[(label, target)])} |")
    write_section("bench-fidelity", "\n".join([
        "## bench vs the runtimes' own latency tools", "",
        f"`{COMMAND}` — {THREADS} threads pinned to the same cores, batch 1, {RUNS} timed runs, "
        f"{ROUNDS} interleaved rounds, median of rounds. ORT: its profiler's `model_run` durations "
        "(SessionOptions.enable_profiling); OpenVINO: `benchmark_app -hint latency -api sync -nstreams 1 "
        "-infer_precision f32`, its Median.", "", *rows, "",
        f"Ratios {min(ratios):.3f}–{max(ratios):.3f} (median {np.median(ratios):.3f})."]))

    reruns = {}
    for label, target, path, _, _ in pairs:
        reruns[(label, target)] = [bench_p50(path) for _ in range(5)]
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
