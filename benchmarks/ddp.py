"""Data-parallel fine-tuning: `finetune --nproc 2` (2 gloo DDP processes) vs 1 process, same
data, weights, seed, epochs and global batch, side by side in one run. RESULTS.md "ddp".

    python benchmarks/ddp.py [--epochs 3] [--kws-epochs 20] [--seeds 0,1]      # after `make demo` (its data)

classify: EfficientNet-Lite0 (pretrained, LP-FT) on make demo's Fashion-MNIST set at 128 px;
kws: speech_embedding_kws, head on cached embeddings (`--freeze backbone`) on make demo's
generated keywords. Each seed runs with 1 then 2 processes; the seeds show how far two runs
that differ only in their random streams (dropout masks, float summation order) land apart, which
is the yardstick for the 1-vs-2 difference. Wall time is the whole command (process start, data decode, probe, epochs).
On a 2-core host each process gets one core (torch threads = cores / processes), so what this
shows is identical behaviour, not a speed-up; the speed-up is for hosts with more cores or GPUs.
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
WORK = REPO / "benchmarks" / "_work" / "ddp"
ET = str(Path(sys.executable).with_name("edgetune"))


def finetune(args: list[str], out: Path, nproc: int) -> tuple[dict, float]:
    shutil.rmtree(out, ignore_errors=True)
    t = time.perf_counter()
    p = subprocess.run([ET, "finetune", *args, "--out", str(out), "--nproc", str(nproc), "--json", "--quiet"],
                       capture_output=True, text=True)
    wall = time.perf_counter() - t
    if p.returncode:
        raise SystemExit(p.stderr[-2000:])
    return json.loads(p.stdout.strip().splitlines()[-1]), wall


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--kws-epochs", type=int, default=20)
    ap.add_argument("--seeds", default="0,1")
    args = ap.parse_args()
    demo = REPO / "runs" / "demo"
    jobs = {
        "classify (efficientnet_lite0, 128 px)": ["--model", "efficientnet_lite0", "--data", str(demo / "data"),
                                                  "--img-size", "128", "--epochs", str(args.epochs), "--freeze", "none"],
        "kws (speech_embedding_kws, head on cached embeddings)": [
            "--model", "speech_embedding_kws", "--data", str(demo / "kws-data"), "--freeze", "backbone",
            "--epochs", str(args.kws_epochs)],
    }
    rows = []
    for name, job_args in jobs.items():
        for seed in args.seeds.split(","):
            got = {}
            for nproc in (1, 2):
                result, wall = finetune([*job_args, "--seed", seed], WORK / f"{name.split()[0]}-{seed}-{nproc}", nproc)
                got[nproc] = (result, wall)
                print(f"{name} seed {seed} × {nproc}: {result['metric_name']} {result['metric']:.4f} in {wall:.0f} s",
                      flush=True)
            (r1, w1), (r2, w2) = got[1], got[2]
            rows.append(f"| {name} | {seed} | {r1['metric_name']} | {r1['metric']:.4f} | {r2['metric']:.4f} | "
                        f"{r2['metric'] - r1['metric']:+.4f} | {w1:.0f} s | {w2:.0f} s | {w1 / w2:.2f}× |")
    command = " ".join(["python benchmarks/ddp.py", *sys.argv[1:]])
    write_section("ddp", "\n".join([
        "## Data-parallel fine-tuning: 2 gloo DDP processes vs 1",
        "",
        f"`{command}` (make demo's data; same weights, seed, epochs and global batch; one run per seed and "
        "process count, side by side on this 2-core host, where each process gets one core). The spread "
        "between seeds of the 1-process runs is the yardstick for the 1-vs-2 difference: both come from "
        "random streams only (dropout masks, float summation order).",
        "",
        "| job | seed | metric | 1 process | 2 processes | 2 − 1 | wall, 1 | wall, 2 | speed-up |",
        "|---|---|---|---|---|---|---|---|---|",
        *rows,
    ]))


if __name__ == "__main__":
    main()
