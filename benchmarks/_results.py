"""RESULTS.md is shared by several benchmark scripts: each owns one marked section."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def write_section(name: str, markdown: str) -> None:
    """Replace `<!-- name:begin -->…<!-- name:end -->` in RESULTS.md (append when absent)."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    block = f"{begin}\n{markdown.rstrip()}\n{end}\n"
    text = RESULTS.read_text() if RESULTS.is_file() else ""
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        tail = rest.split(end, 1)[1].lstrip("\n")
        text = head + block + ("\n" + tail if tail else "")  # one blank line before what follows
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + block
    RESULTS.write_text(text)


def cached_run(out: Path, args: list[str], start: Callable[[], dict]) -> tuple[dict, float, bool]:
    """(manifest, wall seconds, reused) of a fine-tune into `out` made by `start()` (which runs the
    CLI). A finished run with the same arguments is reused, so an interrupted benchmark resumes
    where it stopped; its wall time is the one measured when it ran."""
    import json
    import shutil
    import time

    done = out / "edgetune.json"
    if done.is_file():
        m = json.loads(done.read_text())
        if m.get("status") == "done" and m.get("bench_args") == args:
            return m, float(m.get("bench_wall", m.get("seconds", 0.0))), True
    shutil.rmtree(out, ignore_errors=True)
    t = time.perf_counter()
    start()
    wall = time.perf_counter() - t
    m = {**json.loads(done.read_text()), "bench_args": args, "bench_wall": wall}
    done.write_text(json.dumps(m, indent=2))
    return m, wall, False


def interleaved_p50s(artefacts: dict, x, *, threads: tuple[int, ...] = (1, 2), rounds: int = 3,
                     runs: int = 200) -> dict[tuple[str, int], list[float]]:
    """Per-round p50 (ms) of every artefact at every thread count, measured in alternating rounds
    by edgetune's pinned bench worker: a noisy moment on this shared 2-core machine hits every
    artefact alike, so ratios within one call are what to trust."""
    from edgetune.latency import latency_p50

    samples: dict[tuple[str, int], list[float]] = {}
    for _ in range(rounds):
        for label, path in artefacts.items():
            for t in threads:
                samples.setdefault((label, t), []).append(latency_p50(path, x, t, runs))
    return samples


def medians(samples: dict) -> dict:
    import numpy as np

    return {k: float(np.median(v)) for k, v in samples.items()}
