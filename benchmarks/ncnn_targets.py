"""NCNN targets vs ONNX Runtime fp32 on fine-tuned runs: held-out metric and drop, size, and p50
measured side by side (alternating rounds in edgetune's pinned latency child, so the host's load
hits every artefact alike). Writes the "ncnn" section of RESULTS.md.

    python benchmarks/ncnn_targets.py [RUN ...]     (default: make demo's runs/demo/run, det, kws)

On this x86 host NCNN runs its x86 kernels; the ARM speed-up that motivates it (a Raspberry Pi 5
median of 2.09x over ONNX Runtime fp32, issue 16's source) is not what these numbers measure.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from _results import interleaved_p50s, medians, write_section

TARGETS = ("cpu-fp32", "ncnn-fp32", "ncnn-fp16")
ET = [sys.executable, "-m", "edgetune.cli.main"]


def export(run: Path, target: str) -> dict:
    proc = subprocess.run([*ET, "export", str(run), "--target", target, "--json", "--quiet"],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        line = next((ln for ln in proc.stderr.splitlines() if ln.startswith("edgetune: error:")), proc.stderr[-200:])
        return {"error": line.removeprefix("edgetune: error: "), "exit": proc.returncode}
    return json.loads(proc.stdout)


def main(runs: list[Path]) -> None:
    from edgetune.run import RunDir
    from edgetune.tasks import get_task

    rows = ["| run | target | metric | drop vs fp32 | size MB | p50 ms 1 thread | p50 ms 2 threads |",
            "|---|---|---|---:|---:|---:|---:|"]
    for run in runs:
        manifest = RunDir(run).read_manifest()
        results = {t: export(run, t) for t in TARGETS}
        built = {t: Path(r["artifact"]) for t, r in results.items() if "error" not in r}
        x = get_task(manifest.task).export_inputs(manifest.spec, manifest.data, count=1)[0]
        p50 = medians(interleaved_p50s(built, x, threads=(1, 2), rounds=3, runs=200))
        for t, r in results.items():
            name = f"{manifest.model} ({manifest.task})"
            if "error" in r:
                rows.append(f"| {name} | {t} | exit {r['exit']}: {r['error']} | | | | |")
                continue
            rows.append(f"| {name} | {t} | {r['metric_name']} {r['metric']:.4f} | {r['drop']:+.4f} | "
                        f"{r['size_mb']:.2f} | {p50[(t, 1)]:.2f} | {p50[(t, 2)]:.2f} |")
    command = "python benchmarks/ncnn_targets.py " + " ".join(map(str, runs))
    write_section("ncnn", "## ncnn: NCNN targets beside ONNX Runtime fp32\n\n"
                  f"`{command}` (medians of 3 alternating rounds of 200 runs; x86 host, 2 cores)\n\n"
                  + "\n".join(rows) + "\n\nNCNN here runs its x86 kernels: the numbers show the drop and size "
                  "that hold everywhere, not the ARM speed-up (measure that with `bench --remote` on the board).\n")
    print("\n".join(rows))


if __name__ == "__main__":
    main([Path(a) for a in sys.argv[1:]] or [Path("runs/demo") / n for n in ("run", "det", "kws")])
