"""Does `bench --remote` measure what a bench on the device itself measures, and what does the
ssh round trip cost?

    python benchmarks/bench_remote.py      (root, with openssh-server installed; after benchmarks/export.py)

The "device" is this machine behind a throw-away loopback sshd (tests/loopback_sshd.py), so the
two numbers are of the same CPU. Like for like, both bench a bare copy of the export folder (what
a device holds: no val data, so the metric is export.json's): `edgetune bench FOLDER --profile
raspberry-pi-5 --no-estimate` here vs the same with `--remote`, alternating in ABBA order, ROUNDS rounds. Reports the
median p50 of each, their ratio, and the median wall time of each command (the difference is
the cost of ssh + tar + the remote interpreter start). Writes the RESULTS.md section
"bench-remote".
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _results import write_section

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from loopback_sshd import HOST, available, loopback_sshd  # noqa: E402

RUN = Path(__file__).resolve().parent / "_work" / "export" / "EfficientNet-Lite0" / "run"
ROUNDS = 8
COMMAND = "python benchmarks/bench_remote.py"
EDGETUNE = [sys.executable, "-m", "edgetune.cli.main"]


def bench(folder: Path, extra: list[str]) -> tuple[float, float]:
    """(p50 ms, wall s) of one `edgetune bench FOLDER … --json` call."""
    t = time.perf_counter()
    proc = subprocess.run([*EDGETUNE, "bench", str(folder), "--profile", "raspberry-pi-5", "--no-estimate", "--json",
                           *extra], capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode not in (0, 6):
        raise SystemExit(proc.stderr.strip().splitlines()[-1])
    return json.loads(proc.stdout.strip().splitlines()[-1])["latency_ms"]["p50"], wall


def main() -> None:
    if not available():
        raise SystemExit("needs sshd and root: apt-get install openssh-server")
    if not (RUN / "export" / "cpu-int8").is_dir():
        raise SystemExit(f"{RUN} has no cpu-int8 export: run `python benchmarks/export.py` first")
    with tempfile.TemporaryDirectory() as tmp, loopback_sshd(Path(tmp)) as opts:
        folder = Path(shutil.copytree(RUN / "export" / "cpu-int8", Path(tmp) / "device" / "cpu-int8"))
        remote = ["--remote", HOST, "--remote-edgetune", " ".join(EDGETUNE),
                  *[a for o in opts for a in ("--ssh-option", o)]]
        got: dict[str, list[tuple[float, float]]] = {"here": [], "remote": []}
        for rnd in range(ROUNDS):
            order = (("here", []), ("remote", remote))
            for name, extra in order if rnd % 2 == 0 else order[::-1]:  # ABBA: no side always goes first
                got[name].append(bench(folder, extra))
                print(f"round {rnd + 1} {name}: p50 {got[name][-1][0]:.3f} ms, wall {got[name][-1][1]:.1f} s",
                      flush=True)
    p50 = {k: float(np.median([v[0] for v in got[k]])) for k in got}
    wall = {k: float(np.median([v[1] for v in got[k]])) for k in got}
    lines = ["## bench --remote vs bench here (same CPU over loopback ssh)", "",
             f"`{COMMAND}` — a bare copy of Lite0 cpu-int8 (benchmarks/export.py's run), profile raspberry-pi-5 (2 threads here), "
             f"200 runs, --no-estimate; the two commands alternate (ABBA order), {ROUNDS} rounds, medians.", "",
             "| | p50 ms (per round) | median p50 | median wall s |", "|---|---|---|---|"]
    for k in got:
        lines.append(f"| {k} | {', '.join(f'{v[0]:.2f}' for v in got[k])} | {p50[k]:.3f} | {wall[k]:.1f} |")
    lines += ["", f"- p50 remote / here: {p50['remote'] / p50['here']:.3f}",
              f"- cost of the ssh path (wall remote − here): {wall['remote'] - wall['here']:+.1f} s per bench"]
    write_section("bench-remote", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
