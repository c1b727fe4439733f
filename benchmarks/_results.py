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
        text = head + block + rest.split(end, 1)[1].lstrip("\n")
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
