"""Latency measurement in a fresh process, so peak RSS is the inference process's own. It sits
below both `export` (auto's candidates, the accuracy-aware search's cost) and `bench`, and imports
neither: `measure_in_child` / `latency_p50` here, the child's side below.

    python -m edgetune.latency MODEL INPUT.npy THREADS RUNS [IMAGE]  → one JSON line on stdout
    python -m edgetune.latency --pair MODEL_A A.npy MODEL_B B.npy THREADS ROUNDS

With IMAGE, the end-to-end latency is measured too: the file's bytes → the task's preprocessing →
inference → its decoding (softmax top-k, or NMS and box mapping) — what a device application pays.

`--pair` measures the ratio of two models' latencies, alternating short blocks of each in one
pinned process: on a shared host the load moves by 20–40 % between runs a minute apart
(RESULTS.md "bench-stability"), and alternating puts both terms of the ratio under the same load.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgetune.fsutil import work_dir


def _pin(threads: int) -> list[int] | None:
    """Pin to the first `threads` allowed cores where the OS lets us (Linux)."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    allowed = sorted(os.sched_getaffinity(0))
    cores = allowed[:threads]
    try:
        os.sched_setaffinity(0, cores)
    except OSError:
        return None
    return cores


def peak_rss_kb() -> int:
    """This process's peak resident set. VmHWM belongs to the current address space; ru_maxrss
    would also carry the parent's size across fork+exec (Linux keeps the old high-water mark),
    which reported 1.7 GB for a 4 MB int8 model benchmarked from inside pytest."""
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _percentiles(times: np.ndarray) -> dict[str, float]:
    return {"p50": float(np.percentile(times, 50)), "p90": float(np.percentile(times, 90)),
            "p99": float(np.percentile(times, 99)), "mean": float(times.mean()), "min": float(times.min())}


def measure(model: str, x: np.ndarray, threads: int, runs: int, max_warmup: int = 300,
            image: str | None = None) -> dict:
    from edgetune.runtime import open_session

    pinned = _pin(threads)
    t_load = time.perf_counter()
    session = open_session(model, threads=threads)
    load_s = time.perf_counter() - t_load
    once = _timer(session, x)
    warm = _warm_up(once, max_warmup)
    t0 = time.perf_counter()
    times = np.array([once() for _ in range(runs)])
    wall = time.perf_counter() - t0
    e2e = _end_to_end(session, model, image, runs) if image else None
    rss_kb = peak_rss_kb()
    return {
        "latency_ms": _percentiles(times), "latency_e2e_ms": e2e,
        "throughput_per_s": runs / wall, "runs": runs, "warmup_runs": len(warm), "threads": threads,
        "pinned_cores": pinned, "runtime": session.runtime, "load_seconds": load_s,
        "peak_rss_mb": rss_kb / 1024.0,
    }


def _timer(session, x: np.ndarray):
    def once() -> float:
        t = time.perf_counter()
        session.run(x)
        return (time.perf_counter() - t) * 1e3
    return once


def _warm_up(once, max_warmup: int = 300) -> list[float]:
    """Run until the median of the last 10 runs is within 5 % of the 10 before (caches, JIT, clocks)."""
    warm = [once() for _ in range(20)]
    while len(warm) < max_warmup:
        a, b = np.median(warm[-20:-10]), np.median(warm[-10:])
        if abs(a - b) <= 0.05 * a:
            break
        warm.extend(once() for _ in range(10))
    return warm


def measure_pair(model_a: str, xa: np.ndarray, model_b: str, xb: np.ndarray, threads: int, rounds: int,
                 block_b: int = 5) -> dict:
    """Median over `rounds` of p50(A block) / p50(B block), the blocks alternating and each about
    as long in time as `block_b` runs of B, so a load change lands on both sides of a ratio."""
    from edgetune.runtime import open_session

    pinned = _pin(threads)
    once_a = _timer(open_session(model_a, threads=threads), xa)
    once_b = _timer(open_session(model_b, threads=threads), xb)
    warm_a, warm_b = _warm_up(once_a), _warm_up(once_b)
    per_b = float(np.median(warm_b[-10:])) / max(float(np.median(warm_a[-10:])), 1e-6)
    block_a = int(min(max(block_b * per_b, block_b), 2000))
    ratios, times_a, times_b = [], [], []
    for _ in range(rounds):
        ta = [once_a() for _ in range(block_a)]
        tb = [once_b() for _ in range(block_b)]
        ratios.append(float(np.median(ta) / np.median(tb)))
        times_a += ta
        times_b += tb
    return {"ratio": float(np.median(ratios)), "ratios": ratios, "a_p50_ms": float(np.median(times_a)),
            "b_p50_ms": float(np.median(times_b)), "rounds": rounds, "block_a": block_a, "block_b": block_b,
            "threads": threads, "pinned_cores": pinned}


def measure_in_child(artifact: Path, x: np.ndarray, threads: int, runs: int,
                     image: Path | None = None) -> dict[str, Any]:
    """Latency percentiles (and end-to-end ones with `image`), peak RSS and throughput of one
    artefact, measured in a fresh pinned process."""
    return spawn([artifact, x, threads, runs] + ([image] if image else []), what=str(artifact))


def latency_p50(artifact: Path, x: np.ndarray, threads: int, runs: int = 100) -> float:
    """Median latency (ms) of one artefact in the pinned child process: what export uses to
    compare artefacts (auto's candidates, the accuracy-aware search's plain vs final)."""
    return float(measure_in_child(artifact, x, threads, runs)["latency_ms"]["p50"])


def spawn(args: list, what: str) -> dict:
    """Run this module in a fresh interpreter; array arguments travel as temp .npy files. Its JSON
    result, or one `EdgetuneError` line naming `what` was being measured."""
    import subprocess

    from edgetune.errors import EdgetuneError

    with work_dir("bench") as tmp:
        argv = []
        for i, a in enumerate(args):
            if isinstance(a, np.ndarray):
                np.save(Path(tmp) / f"{i}.npy", a)
                a = Path(tmp) / f"{i}.npy"
            argv.append(str(a))
        proc = subprocess.run([sys.executable, "-m", "edgetune.latency", *argv], capture_output=True, text=True,
                              env=os.environ.copy())
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise EdgetuneError(f"benchmark process failed on {what}: {last}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _end_to_end(session, model: str, image: str, runs: int) -> dict[str, float]:
    """Encoded image bytes in memory → prediction; file I/O is the application's business."""
    from edgetune.run import read_export_meta
    from edgetune.tasks import get_task

    meta = read_export_meta(Path(model).parent)  # bounded and checked, like every export.json read
    task = get_task(meta.task)
    raw = Path(image).read_bytes()
    for _ in range(10):
        task.predict(session, meta.spec, raw)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        task.predict(session, meta.spec, raw)
        times.append((time.perf_counter() - t) * 1e3)
    return _percentiles(np.array(times))


def main() -> None:
    if sys.argv[1] == "--pair":
        a, xa, b, xb, threads, rounds = sys.argv[2:8]
        print(json.dumps(measure_pair(a, np.load(xa), b, np.load(xb), int(threads), int(rounds))))
        return
    model, inp, threads, runs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    image = sys.argv[5] if len(sys.argv) > 5 else None
    print(json.dumps(measure(model, np.load(inp), threads, runs, image=image)))


if __name__ == "__main__":
    main()
