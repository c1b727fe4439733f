"""Export-engine numbers, side by side in one run; writes the "export" section of RESULTS.md.

    python benchmarks/export.py

Models (the runs the other benchmarks made; a missing one names the command that makes it):
EfficientNet-Lite0 fine-tuned on Fashion-MNIST K=100 (classify), yolo11n on objects-on-photos set A
(detect), speech_embedding_kws frozen default trained on espeak-ng voices and tested on unseen
synthesisers (kws). Each run is copied, so its own exports stay as they were.

1. Every target, plain: metric, drop vs fp32, size, p50 at 1 and 2 threads.
2. Calibration choices: ORT MinMax/Percentile/Entropy; NNCF performance vs mixed preset, and its
   range estimators — the measured defaults come from here.
3. Accuracy-aware: `--max-drop GOAL` (0.5 pt classify, 1 mAP50-95 detect, 1 pt KWS) on both int8
   targets, plus a tighter budget (GOAL/4) so the search runs where plain PTQ already meets the goal.
4. Peers on the same model and data: plain `quantize_static` defaults (classify), ultralytics' own
   int8 ONNX export (detect, the artefact benchmarks/detect.py made).
5. `--target auto --profile x86-64-avx512`: the choice, and its p50 vs cpu-fp32 at the profile's threads.
6. onnxslim: node count and p50 of the fp32 graph with and without it.

Latency: every artefact in one interleaved pass (3 rounds × 1 and 2 threads, 150 timed runs each
in a pinned child process); p50 = median of the 3 rounds. Nothing else runs meanwhile.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

from _results import interleaved_p50s, medians, write_section

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work" / "export"
ET = [sys.executable, "-m", "edgetune.cli.main"]
TARGETS = ("cpu-fp32", "cpu-int8", "openvino-fp32", "openvino-fp16", "openvino-int8")
MODELS = {  # name → (source run, made by, goal)
    "EfficientNet-Lite0 (classify)": (HERE / "_work" / "runs" / "Fashion-MNIST K=100_full",
                                      "python benchmarks/run_all.py", 0.005),
    "yolo11n (detect)": (HERE / "_work" / "detect" / "runs" / "A_pretrained", "python benchmarks/detect.py", 0.01),
    "speech_embedding_kws (kws)": (HERE / "_work" / "kws" / "runs" / "embedding-frozen", "python benchmarks/kws.py",
                                   0.01),
}
ULTRA_INT8 = HERE / "_work" / "detect" / "A_pretrained_ultralytics_int8.onnx"


def export(run: Path, target: str, *args) -> dict:
    proc = subprocess.run([*ET, "export", str(run), "--target", target, *map(str, args), "--json"],
                          capture_output=True, text=True)
    if proc.returncode not in (0, 5):
        raise SystemExit(f"export {target} {args} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout)


def keep(run: Path, target: str, label: str) -> Path:
    """Copy export/<target>/ aside (later exports overwrite it); returns the copied artefact."""
    dst = run.parent / "artefacts" / label
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(run / "export" / target, dst)
    meta = json.loads((dst / "export.json").read_text())
    return dst / Path(meta["artifact"]).name


def copy_run(src: Path, made_by: str, name: str) -> Path:
    if not (src / "edgetune.json").is_file():
        raise SystemExit(f"{src} is missing: run `{made_by}` first")
    dst = WORK / name.split()[0] / "run"
    shutil.rmtree(dst.parent, ignore_errors=True)
    dst.mkdir(parents=True)
    for f in ("edgetune.json", "checkpoint.pt", "data.yaml"):
        if (src / f).is_file():
            shutil.copyfile(src / f, dst / f)
    return dst


def peers(run: Path, task_name: str, fp32: Path) -> dict[str, tuple[Path, float]]:
    """Peer artefacts and their metric by edgetune's evaluator."""
    from edgetune.run import RunDir
    from edgetune.runtime import open_session
    from edgetune.tasks import get_task

    task = get_task(task_name)
    manifest = RunDir(run).read_manifest()
    out: dict[str, tuple[Path, float]] = {}
    if task_name == "classify":
        from onnxruntime.quantization import CalibrationDataReader, quantize_static

        calib, _ = task.calibration_inputs(manifest.spec, manifest.data, size=None)

        class Reader(CalibrationDataReader):
            def __init__(self):
                self.it = iter([{"input": x} for x in calib])

            def get_next(self):
                return next(self.it, None)

        path = run.parent / "artefacts" / "peer-quantize_static-defaults.onnx"
        quantize_static(str(fp32), str(path), Reader())  # all defaults: QDQ, per-tensor, S8S8, MinMax
        out["ORT quantize_static defaults"] = (path, task.evaluate(open_session(path), manifest.spec, manifest.data)[task.metric_name])
    if task_name == "detect" and ULTRA_INT8.is_file():
        out["ultralytics int8 ONNX"] = (ULTRA_INT8, task.evaluate(open_session(ULTRA_INT8), manifest.spec, manifest.data)[task.metric_name])
    return out


def fmt_drop(d: float) -> str:
    return f"{d * 100:+.2f}"


def main() -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    md = ["## Export engine (issue 5)", "",
          f"Measured {started} on {platform.processor() or platform.machine()}, {os.cpu_count()} cores (no AVX-512/VNNI/"
          "bf16: OpenVINO runs f32 here), by `python benchmarks/export.py`, one job at a time. Drops are in points "
          "of the task metric (top-1 or mAP50-95 × 100; positive = worse than fp32). p50 = median of 3 interleaved "
          "rounds of 150 timed inferences in a pinned child process, batch 1.", ""]
    summary = []
    for name, (src, made_by, goal) in MODELS.items():
        run = copy_run(src, made_by, name)
        task_name = json.loads((run / "edgetune.json").read_text())["task"]
        t_model = time.perf_counter()
        plain = {t: export(run, t) for t in TARGETS}
        arts = {t: keep(run, t, t) for t in TARGETS}
        # calibration choices
        calib_rows = []
        for method in ("minmax", "percentile", "entropy"):
            r = plain["cpu-int8"] if method == "minmax" else export(run, "cpu-int8", "--calib-method", method)
            calib_rows.append(["cpu-int8", f"ORT {method}", fmt_drop(r["drop"]), f"{r['seconds']:.0f}"])
        for args, label in ((["--preset", "performance"], "NNCF performance (symmetric)"),
                            ([], "NNCF mixed (default)"),
                            (["--calib-method", "minmax"], "NNCF mixed + MinMax"),
                            (["--calib-method", "percentile"], "NNCF mixed + Percentile")):
            r = plain["openvino-int8"] if not args else export(run, "openvino-int8", *args)
            calib_rows.append(["openvino-int8", label, fmt_drop(r["drop"]), f"{r['seconds']:.0f}"])
        # accuracy-aware
        aa_rows = []
        for budget in (goal, goal / 4):
            for t in ("cpu-int8", "openvino-int8"):
                r = export(run, t, "--max-drop", budget)
                if "accuracy_aware" in r:
                    label = f"{t} max-drop {budget * 100:g}"
                    arts[label] = keep(run, t, label.replace(" ", "_"))
                    aa = r["accuracy_aware"]
                    meta = json.loads((run / "export" / t / "export.json").read_text())["accuracy_aware"]
                    aa_rows.append([t, f"{budget * 100:g}", fmt_drop(plain[t]["drop"]), fmt_drop(r["drop"]),
                                    str(len(aa["float_layers"])), "yes" if aa["met"] else "no (best found)",
                                    f"{meta['seconds']:.0f}", label])
                else:
                    aa_rows.append([t, f"{budget * 100:g}", fmt_drop(plain[t]["drop"]), fmt_drop(r["drop"]), "0",
                                    "plain PTQ already within", "0", None])
        # peers
        peer = peers(run, task_name, arts["cpu-fp32"])
        for label, (path, _) in peer.items():
            arts[label] = path
        # slim
        slim = export(run, "cpu-fp32", "--slim")
        arts["cpu-fp32 + onnxslim"] = keep(run, "cpu-fp32", "cpu-fp32-slim")
        graph = json.loads((run / "export" / "cpu-fp32" / "export.json").read_text())["graph"]
        # auto (last: it rewrites export/<chosen>/)
        auto = export(run, "auto", "--profile", "x86-64-avx512", "--max-drop", goal)
        from edgetune.run import RunDir
        from edgetune.tasks import get_task

        manifest = RunDir(run).read_manifest()
        x = get_task(task_name).export_inputs(manifest.spec, manifest.data, count=1)[0]
        lat = medians(interleaved_p50s(arts, x, runs=150))
        # tables
        fp32_metric = plain["cpu-fp32"]["metric_fp32"]
        md += [f"### {name}", "",
               f"fp32 {plain['cpu-fp32']['metric_name']} {fp32_metric:.4f} on {plain['cpu-fp32']['metrics']['n']} "
               f"held-out samples; goal: int8 drop ≤ {goal * 100:g}.", "",
               "| target | metric | drop | size MB | p50 ms 1 thr | p50 ms 2 thr | max abs diff vs PyTorch |",
               "|---|---|---|---|---|---|---|"]
        for t in TARGETS:
            r = plain[t]
            md.append(f"| {t} | {r['metric']:.4f} | {fmt_drop(r['drop'])} | {r['size_mb']:.2f} | {lat[(t, 1)]:.2f} | "
                      f"{lat[(t, 2)]:.2f} | {r['max_abs_diff']:.2g} |")
        for label, (path, metric) in peer.items():
            md.append(f"| peer: {label} | {metric:.4f} | {fmt_drop(fp32_metric - metric)} | "
                      f"{path.stat().st_size / 1e6:.2f} | {lat[(label, 1)]:.2f} | {lat[(label, 2)]:.2f} | – |")
        md += ["", "Accuracy-aware (`--max-drop`, points):", "",
               "| target | budget | plain drop | final drop | layers back in float | met | search s | "
               "p50 ms 1 thr plain → final |", "|---|---|---|---|---|---|---|---|"]
        for row in aa_rows:
            label = row.pop()
            trade = f"{lat[(row[0], 1)]:.2f} → {lat[(label, 1)]:.2f}" if label else "–"
            md.append(f"| {' | '.join(row)} | {trade} |")
        md += ["", "Calibration choices (drop in points; the first of each target is the default):", "",
               "| target | calibration | drop | export s |", "|---|---|---|---|"]
        md += [f"| {' | '.join(r)} |" for r in calib_rows]
        cands = ", ".join(f"{c['target']} {c['p50_ms']:.2f} ms ({fmt_drop(c['drop'])})" for c in auto["candidates"]
                          if not c.get("error"))
        speedup = lat[("cpu-fp32", 2)] / lat[(auto["target"], 2)] if auto["target"] in TARGETS else float("nan")
        md += ["", f"`--target auto --profile x86-64-avx512 --max-drop {goal}` (2 threads): chose **{auto['target']}**; "
               f"its own measurements: {cands}. In the interleaved pass above the chosen target is "
               f"**{speedup:.2f}×** faster than cpu-fp32 at 2 threads.", "",
               f"onnxslim on the fp32 graph: {graph.get('nodes_before_slim')} → {graph.get('nodes')} nodes, p50 "
               f"{lat[('cpu-fp32', 1)]:.2f} → {lat[('cpu-fp32 + onnxslim', 1)]:.2f} ms (1 thread), metric "
               f"{slim['metric']:.4f}. Wall time for this model's section: {time.perf_counter() - t_model:.0f} s.", ""]
        summary.append([name, fmt_drop(plain["cpu-int8"]["drop"]), fmt_drop(plain["openvino-int8"]["drop"]),
                        auto["target"], f"{speedup:.2f}×", f"≤ {goal * 100:g}"])
        write_section("export", "\n".join(md))  # partial results survive an interruption
    md[len(md):len(md)] = ["### Summary", "",
                           "| model | cpu-int8 drop | openvino-int8 drop | auto chose | auto vs cpu-fp32 (2 thr) | goal |",
                           "|---|---|---|---|---|---|", *[f"| {' | '.join(r)} |" for r in summary], ""]
    write_section("export", "\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
