"""Every runtime's targets on fine-tuned runs, side by side: held-out metric and drop vs fp32, size,
build time and p50 (alternating rounds in edgetune's pinned latency child, so the host's load hits
every artefact alike), then `--target auto` for an ARM profile with the new targets among its
candidates. Writes the "runtimes" section of RESULTS.md.

    python benchmarks/runtimes.py [RUN ...]     (default: make demo's runs/demo/run, det, kws)

int8 targets are exported with --max-drop 0.01 (the accuracy-aware search may return layers to
float; the table says how many). On this x86 host NCNN and LiteRT run their x86 kernels: the ARM
speed-ups that motivate them are not what these numbers measure.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from _results import interleaved_p50s, medians, write_section

TARGETS = ("cpu-fp32", "cpu-int8", "ncnn-fp32", "ncnn-fp16", "litert-fp32", "litert-int8")
AUTO_PROFILE = "raspberry-pi-5"
MAX_DROP = "0.01"
ET = [sys.executable, "-m", "edgetune.cli.main"]


def export(run: Path, target: str, *extra: str) -> dict:
    args = ["--max-drop", MAX_DROP] if target.endswith("int8") or target == "auto" else []
    proc = subprocess.run([*ET, "export", str(run), "--target", target, *args, *extra, "--json", "--quiet"],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        line = next((ln for ln in proc.stderr.splitlines() if ln.startswith("edgetune: error:")), proc.stderr[-200:])
        return {"error": line.removeprefix("edgetune: error: "), "exit": proc.returncode}
    return json.loads(proc.stdout)


def main(runs: list[Path]) -> None:
    from edgetune.run import RunDir
    from edgetune.tasks import get_task

    rows = ["| run | target | metric | drop vs fp32 | layers back to float | size MB | build s | "
            "p50 ms 1 thread | p50 ms 2 threads |", "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    autos = ["| run | auto's pick | its drop | candidates (p50 ms at 2 threads, drop) |", "|---|---|---:|---|"]
    for run in runs:
        manifest = RunDir(run).read_manifest()
        name = f"{manifest.model} ({manifest.task})"
        results = {t: export(run, t) for t in TARGETS}
        built = {t: Path(r["artifact"]) for t, r in results.items() if "error" not in r}
        x = get_task(manifest.task).export_inputs(manifest.spec, manifest.data, count=1)[0]
        p50 = medians(interleaved_p50s(built, x, threads=(1, 2), rounds=3, runs=200))
        for t, r in results.items():
            if "error" in r:
                rows.append(f"| {name} | {t} | exit {r['exit']}: {r['error']} | | | | | | |")
                continue
            floated = len(r.get("accuracy_aware", {}).get("float_layers", [])) if t.endswith("int8") else ""
            rows.append(f"| {name} | {t} | {r['metric_name']} {r['metric']:.4f} | {r['drop']:+.4f} | {floated} | "
                        f"{r['size_mb']:.2f} | {r['seconds']:.0f} | {p50[(t, 1)]:.2f} | {p50[(t, 2)]:.2f} |")
        auto = export(run, "auto", "--profile", AUTO_PROFILE)
        if "error" in auto:
            autos.append(f"| {name} | exit {auto['exit']}: {auto['error']} | | |")
        else:
            cands = ", ".join(f"{c['target']} {c['p50_ms']:.2f} ({c['drop']:+.4f})" if c["error"] is None
                              else f"{c['target']}: {c['error']}" for c in auto["candidates"])
            autos.append(f"| {name} | {auto['target']} | {auto['drop']:+.4f} | {cands} |")
    command = "python benchmarks/runtimes.py " + " ".join(map(str, runs))
    write_section("runtimes", "## runtimes: every runtime's targets side by side (issue 16)\n\n"
                  f"`{command}` (int8 with --max-drop {MAX_DROP}; p50: medians of 3 alternating rounds of 200 "
                  "runs; x86 host, 2 cores)\n\n" + "\n".join(rows)
                  + f"\n\n`--target auto --profile {AUTO_PROFILE} --max-drop {MAX_DROP}` (the profile's targets, "
                  "measured on this host at min(profile threads, usable cores)):\n\n" + "\n".join(autos)
                  + "\n\nNCNN and LiteRT here run their x86 kernels (LiteRT: XNNPACK): the numbers show the drop "
                  "and size that hold everywhere, not the ARM speed-up (measure that with `bench --remote` on "
                  "the board).\n")
    print("\n".join(rows + [""] + autos))


if __name__ == "__main__":
    main([Path(a) for a in sys.argv[1:]] or [Path("runs/demo") / n for n in ("run", "det", "kws")])
