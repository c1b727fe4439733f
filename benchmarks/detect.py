"""Detection claims, measured side by side in one run; writes the detect section of RESULTS.md.

    python benchmarks/detect.py [--quick]

On two generated data sets (real object crops pasted on real photos, different seeds, classes,
image sizes and backgrounds):
1. Transfer value: COCO-pretrained yolo11n vs the same architecture from random init, same
   epochs and images, mAP50-95 on the val split.
2. int8 vs fp32: edgetune's cpu-int8 and cpu-fp32 artefacts, and ultralytics' own
   `export(format="onnx", int8=True)` of the same checkpoint calibrated on the same data — all
   scored by the same evaluator at the same letterbox shape, latency p50 interleaved.
3. Fine-tune speed: `edgetune finetune` vs plain ultralytics training (its defaults, in a fresh
   process) on the same data, weights and epochs (data set A).
Nothing runs concurrently.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

from _results import cached_run, interleaved_p50s, medians, write_section

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work" / "detect"
ET = [sys.executable, "-m", "edgetune.cli.main"]
SIZE = 320
BATCH = 16
DATASETS = {  # name → objects-on-photos arguments
    "A": ["--seed", 0, "--train", 240, "--val", 60, "--long-side", 480],
    "B": ["--seed", 7, "--train", 160, "--val", 60, "--long-side", 640, "--classes", "person,cat,coin,logo,rocket",
          "--max-objects", 6],
}

PLAIN = r"""
import json, sys, time
t = time.perf_counter()
from ultralytics import YOLO
m = YOLO("yolo11n.yaml"); m.load(sys.argv[1])
m.train(data=sys.argv[2], epochs=int(sys.argv[3]), imgsz=int(sys.argv[4]), batch=int(sys.argv[5]),
        project=sys.argv[6], name="plain", exist_ok=True, plots=False,
        seed=int(sys.argv[7]) if len(sys.argv) > 7 else 0)
print(json.dumps({"wall": time.perf_counter() - t, "map50_95": float(m.metrics.box.map),
                  "map50": float(m.metrics.box.map50)}))
"""

ULTRA_INT8 = r"""
import json, shutil, sys
from ultralytics import YOLO
src, data, size, dest = sys.argv[1:5]
path = YOLO(src).export(format="onnx", int8=True, data=data, imgsz=int(size), batch=1)
shutil.copyfile(path, dest)
print(json.dumps({"exported": path}))
"""


def sh(args: list, *, ok=(0,), env=None) -> dict:
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True, env=env)
    if proc.returncode not in ok:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(map(str, args))}\n{proc.stderr[-3000:]}")
    lines = [ln for ln in proc.stdout.strip().splitlines() if ln.startswith("{")]
    return json.loads(lines[-1]) if lines else {}


def dataset(name: str) -> Path:
    out = WORK / f"data_{name}"
    if not (out / "data.yaml").is_file():
        shutil.rmtree(out, ignore_errors=True)
        sh(ET + ["data", "objects-on-photos", "--out", out, *DATASETS[name], "--json"])
    return out / "data.yaml"


def finetune(data: Path, name: str, *extra) -> dict:
    """One CLI fine-tune (reused when already finished with the same arguments)."""
    out = WORK / "runs" / name
    args = [str(a) for a in extra]
    m, wall, _ = cached_run(out, args, lambda: sh(
        ET + ["finetune", "--model", "yolo11n", "--data", data, "--out", out, "--img-size", SIZE,
              "--batch", BATCH, "--freeze", "none", "--quiet", "--json", *extra]))  # every layer, as D1-D4 were measured
    return {"metric": m["best"]["map50_95"], "map50": m["best"]["map50"], "wall": wall, "run": out}


def plain_env() -> dict:
    """Plain ultralytics as a user runs it, made network-safe only (offline switch, local font):
    no thread, worker, cache or OpenMP settings of edgetune's."""
    from edgetune.paths import cache_dir

    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    env.update(YOLO_OFFLINE="1", YOLO_AUTOINSTALL="0", YOLO_CONFIG_DIR=str(cache_dir() / "ultralytics"))
    return env


def quantisation(run: Path, data: Path) -> tuple[list[list[str]], dict]:
    from edgetune.run import RunDir
    from edgetune.runtime import open_session
    from edgetune.tasks import get_task

    exp = {t: sh(ET + ["export", run, "--target", t, "--json"], ok=(0, 5)) for t in ("cpu-fp32", "cpu-int8")}
    ultra = WORK / f"{run.name}_ultralytics_int8.onnx"
    if not ultra.is_file():
        tmp = WORK / f"{run.name}_ultra_src"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        shutil.copyfile(run / "checkpoint.pt", tmp / "best.pt")
        sh([sys.executable, "-c", ULTRA_INT8, tmp / "best.pt", data, SIZE, ultra], env=plain_env())
    task = get_task("detect")
    manifest = RunDir(run).read_manifest()
    u = task.evaluate(open_session(ultra, threads=2), manifest.spec, manifest.data)
    arts = {"edgetune cpu-fp32": Path(exp["cpu-fp32"]["artifact"]), "edgetune cpu-int8": Path(exp["cpu-int8"]["artifact"]),
            "ultralytics onnx int8": ultra}
    lat = medians(interleaved_p50s(arts, task.export_inputs(manifest.spec, manifest.data, count=1)[0]))
    fp32 = exp["cpu-fp32"]["metrics"]
    rows = []
    for name, m, size in (("edgetune cpu-fp32", fp32, exp["cpu-fp32"]["size_mb"]),
                          ("edgetune cpu-int8", exp["cpu-int8"]["metrics"], exp["cpu-int8"]["size_mb"]),
                          ("ultralytics onnx int8", u, ultra.stat().st_size / 1e6)):
        rows.append([name, f"{m['map50_95']:.4f}", f"{m['map50']:.4f}", f"{fp32['map50_95'] - m['map50_95']:+.4f}",
                     f"{size:.2f}", f"{lat[(name, 1)]:.2f}", f"{lat[(name, 2)]:.2f}"])
    return rows, {"lat": lat, "exp": exp, "ultra": u}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="2 epochs (smoke run, not for RESULTS.md)")
    args = ap.parse_args()
    epochs = 2 if args.quick else 10
    WORK.mkdir(parents=True, exist_ok=True)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    transfer_rows, quant_rows, speed = [], [], {}
    for name in DATASETS:
        data = dataset(name)
        meta = json.loads((data.parent / "provenance.json").read_text())
        label = f"{name} ({len(meta['classes'])} classes, {DATASETS[name][3]}+{DATASETS[name][5]} images)"
        pre = finetune(data, f"{name}_pretrained", "--epochs", epochs)
        rnd = finetune(data, f"{name}_random", "--epochs", epochs, "--no-pretrained")
        for arm, r in (("COCO-pretrained (yolo11n-seg carrier)", pre), ("random init", rnd)):
            transfer_rows.append([label, arm, f"{r['metric']:.3f}", f"{r['map50']:.3f}", f"{r['wall']:.0f}"])
        rows, _ = quantisation(pre["run"], data)
        quant_rows += [[label, *r] for r in rows]
        if name == "A":
            from edgetune.assets import resolve_weights
            from edgetune.zoo import get_card

            w = resolve_weights(get_card("yolo11n"), online=False).path
            proj = WORK / "plain"
            shutil.rmtree(proj, ignore_errors=True)
            plain = sh([sys.executable, "-c", PLAIN, w, pre["run"] / "data.yaml", epochs, SIZE, BATCH, proj],
                       env=plain_env())
            speed = {"plain": plain, "edgetune": pre}

    cmd = "python benchmarks/detect.py" + (" --quick" if args.quick else "")
    md = ["## Detection (yolo11n)", "",
          f"Measured {started} on {platform.processor() or platform.machine()}, {os.cpu_count()} cores, by `{cmd}`, "
          f"one job at a time. {epochs} epochs at {SIZE} px, batch {BATCH}, on two `edgetune data objects-on-photos` "
          "sets (real object crops on real photos; val images on backgrounds never seen in training). mAP50-95 "
          "as a fraction.", "",
          "### D1. Transfer value", "",
          "Fine-tune metric = ultralytics' final validation of the best checkpoint.", "",
          "| data | weights | mAP50-95 | mAP50 | wall s |", "|---|---|---|---|---|"]
    md += [f"| {' | '.join(r)} |" for r in transfer_rows]
    md += ["", "### D2. int8 vs fp32, and ultralytics' own int8", "",
           "All artefacts scored by edgetune's evaluator (ultralytics' NMS/mAP definitions, verified by tests) at "
           "the true 320x320 letterbox. p50 = median of 3 interleaved runs of 200 timed inferences (batch 1). "
           "ultralytics int8 = `YOLO(best.pt).export(format='onnx', int8=True, data=...)` of the same checkpoint.", "",
           "| data | artefact | mAP50-95 | mAP50 | drop vs fp32 | size MB | p50 ms 1 thr | p50 ms 2 thr |",
           "|---|---|---|---|---|---|---|---|"]
    md += [f"| {' | '.join(r)} |" for r in quant_rows]
    if speed:
        p, e = speed["plain"], speed["edgetune"]
        md += ["", "### D3. Fine-tune speed vs plain ultralytics", "",
               f"Data set A, same weights, {epochs} epochs, {SIZE} px, batch {BATCH}. Plain = `YOLO('yolo11n.yaml')"
               ".load(w).train(...)` with ultralytics' defaults in a fresh process (it trains on cpu_count − 1 = "
               f"{max(1, (os.cpu_count() or 2) - 1)} thread(s), 2 dataloader workers, no image cache).", "",
               "| trainer | wall s | mAP50-95 | mAP50 |", "|---|---|---|---|",
               f"| plain ultralytics | {p['wall']:.0f} | {p['map50_95']:.3f} | {p['map50']:.3f} |",
               f"| edgetune finetune | {e['wall']:.0f} | {e['metric']:.3f} | {e['map50']:.3f} |", "",
               f"Speed-up: {p['wall'] / e['wall']:.2f}× (wall time, whole command, same epochs)."]
    write_section("detect", "\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
