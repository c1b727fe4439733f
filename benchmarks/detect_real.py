"""int8 on a real detection set: yolo11n fine-tuned on NEON aerial tree crowns (edgetune data
aerial-trees), every int8 target exported plain (`--max-drop none`) and with the default 1-pt
budget (no --max-drop). Writes RESULTS.md "detect-real".

    python benchmarks/detect_real.py            # reuses _work/trees/run when it exists
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from _results import write_section

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work" / "trees"
ET = [sys.executable, "-m", "edgetune.cli.main"]
FINETUNE = ["--model", "yolo11n", "--epochs", "40", "--img-size", "320", "--patience", "40"]
TARGETS = ("cpu-int8", "openvino-int8", "litert-int8")


def cli(*args: str) -> dict:
    proc = subprocess.run([*ET, *args, "--json"], capture_output=True, text=True)
    if proc.returncode not in (0, 5):
        raise SystemExit(f"edgetune {' '.join(args)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return json.loads(proc.stdout)


def main() -> None:
    data, run = WORK / "data", WORK / "run"
    if not (data / "data.yaml").is_file():
        cli("data", "aerial-trees", "--out", str(data))
    if not (run / "checkpoint.pt").is_file() and not (run / "edgetune.json").is_file():
        cli("finetune", "--data", str(data / "data.yaml"), "--out", str(run), *FINETUNE)
    fp32 = cli("export", str(run), "--target", "cpu-fp32")
    rows = []
    for target in TARGETS:
        t0 = time.perf_counter()
        plain = cli("export", str(run), "--target", target, "--max-drop", "none")
        t_plain = time.perf_counter() - t0
        t0 = time.perf_counter()
        default = cli("export", str(run), "--target", target)
        aa = default.get("accuracy_aware") or {}
        rows.append(f"| {target} | {plain['drop'] * 100:+.2f} | {default['drop'] * 100:+.2f} | "
                    f"{len(aa.get('float_layers', []))} | {default['pass']} | {t_plain:.0f} | "
                    f"{time.perf_counter() - t0:.0f} |")
        print(rows[-1], flush=True)
    meta = json.loads((data / "provenance.json").read_text())
    write_section("detect-real", "\n".join([
        "## detect-real: int8 on real aerial tree crowns, plain vs the default budget (issue 17)", "",
        "`python benchmarks/detect_real.py` — yolo11n (COCO weights) fine-tuned with `edgetune finetune "
        f"{' '.join(FINETUNE)}` on `edgetune data aerial-trees` ({meta['source']}; train and val from different "
        f"NEON plots); fp32 mAP50-95 on val {fp32['metric_fp32']:.4f}. Drops in mAP50-95 points vs fp32.", "",
        "| target | plain drop (`--max-drop none`) | default drop (no --max-drop) | layers in float | pass | "
        "plain export s | default export s |", "|---|---|---|---|---|---|---|", *rows]))


if __name__ == "__main__":
    main()
