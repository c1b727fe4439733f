"""Rockchip RKNN targets on make demo's three fine-tuned models: the simulated-NPU metric of
rknn-fp16, plain rknn-int8 (`--max-drop none`) and rknn-int8 with the hybrid search under a tight
budget, beside fp32; conversion and export times. RESULTS.md "rknn".

    edgetune tools install rknn && python benchmarks/rknn.py [--budget 0.003]

Every export runs inside an empty network namespace (`unshare -n`, when this host allows it), so
the table also shows that neither edgetune nor rknn-toolkit2 needs the network at export time.
The metric is the toolkit's simulator on this x86 host ("simulated NPU"), not a board's.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from _results import write_section

REPO = Path(__file__).resolve().parents[1]
ET = str(Path(sys.executable).with_name("edgetune"))
RUNS = {"classify": REPO / "runs/demo/run", "detect": REPO / "runs/demo/det", "kws": REPO / "runs/demo/kws"}
WORK = REPO / "benchmarks" / "_work" / "rknn"


def offline_prefix() -> list[str]:
    """`unshare -n` when it works here (root, or user namespaces): no network at all."""
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True)
    return ["unshare", "-n"] if probe.returncode == 0 else []


class Unsupported(Exception):
    """The toolkit could not convert this model (edgetune's one line)."""


def export(run: Path, target: str, *extra: str) -> tuple[dict, float]:
    t = time.perf_counter()
    p = subprocess.run([*offline_prefix(), ET, "export", str(run), "--target", target, *extra, "--json"],
                       capture_output=True, text=True)
    wall = time.perf_counter() - t
    if p.returncode == 4:  # UnsupportedOpError: the toolkit refused the graph
        raise Unsupported(p.stderr.strip().splitlines()[-1].removeprefix("edgetune: error: "))
    if p.returncode not in (0, 5):
        raise SystemExit(f"{run.name} {target} {extra}: {p.stderr[-1500:]}")
    out = json.loads(p.stdout.strip().splitlines()[-1])
    meta = json.loads((Path(out["artifact"]).parent / "export.json").read_text())
    return {**out, "record": meta}, wall


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--budget", type=float, default=0.003, help="the tight --max-drop for the searched row")
    args = ap.parse_args()
    rows = []
    offline = bool(offline_prefix())
    for task, src in RUNS.items():
        run = WORK / task
        shutil.rmtree(run, ignore_errors=True)
        shutil.copytree(src, run, ignore=shutil.ignore_patterns("export", "export-failed", "bench", "fleet"))
        try:
            fp16, w16 = export(run, "rknn-fp16")
        except Unsupported as exc:
            rows.append(f"| {task} | refused: {str(exc)[:400]} | | | | | |")
            print(rows[-1], flush=True)
            continue
        name = fp16["metric_name"]
        pts = lambda d: f"{100 * d:+.2f} pt"  # noqa: E731
        head = f"| {task} ({name}) | {fp16['metric_fp32']:.4f} | {fp16['metric']:.4f} ({pts(-fp16['drop'])}) | "
        try:
            plain, wp = export(run, "rknn-int8", "--max-drop", "none")
            searched, ws = export(run, "rknn-int8", "--max-drop", str(args.budget))
        except Unsupported as exc:
            rows.append(head + f"refused: {str(exc)[:400]} | | | {w16:.0f} s (fp16) |")
            print(rows[-1], flush=True)
            continue
        aa = searched["record"].get("accuracy_aware") or {}
        rows.append(
            head + f"{plain['metric']:.4f} ({pts(-plain['drop'])}) | {searched['metric']:.4f} ({pts(-searched['drop'])}), "
            + (f"{len(aa['float_layers'])} of {aa['candidates']} layers float16" if aa else "no search needed")
            + f", {'pass' if searched['pass'] else 'missed'} | {plain['record']['rknn']['convert_seconds']:.0f} s | "
            f"{w16:.0f} / {wp:.0f} / {ws:.0f} s |")
        print(rows[-1], flush=True)
    command = " ".join(["python benchmarks/rknn.py", *sys.argv[1:]])
    toolkit = json.loads((WORK / "classify" / "export" / "rknn-fp16" / "export.json").read_text())["rknn"]["toolkit"]
    write_section("rknn", "\n".join([
        "## rknn: Rockchip NPU targets, simulated (issue 19)",
        "",
        f"`{command}` (make demo's three runs, copied; {toolkit} in its tool environment, RK3588; "
        f"metric = the toolkit's simulator on this x86 host on the whole val split, never a board's; "
        f"{'every export in an empty network namespace (unshare -n): nothing needed the network' if offline else 'network not cut off here'}). "
        f"Drops are metric − fp32 in points (negative: lost). Searched: `--max-drop {args.budget}`, layers back to "
        "float16 through the toolkit's hybrid quantisation, ranked by its per-layer accuracy analysis.",
        "",
        "| task | fp32 (ONNX) | rknn-fp16 | rknn-int8 plain | rknn-int8 searched | int8 conversion | export wall fp16 / plain / searched |",
        "|---|---|---|---|---|---|---|",
        *rows,
    ]))


if __name__ == "__main__":
    main()
