"""Which parts of a YOLO head must stay float under ONNX Runtime int8 — the measurement behind
`edgetune.export.detect_head`. Writes the detect-int8 section of RESULTS.md.

    python benchmarks/detect_int8_heads.py RUN [RUN...]   (runs with a cpu-fp32 export, e.g. from
                                                           benchmarks/detect.py's _work/detect/runs/*_pretrained)

Policies (all keep the stem conv float, as every edgetune int8 export does):
  none          everything else int8
  decode        DFL, anchor decoding, Concat and Sigmoid float
  decode+final  also the last 1x1 box/class convs of every scale (edgetune's default)
  head          the whole Detect module float
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _results import write_section

from edgetune.export.detect_head import head_policies
from edgetune.export.quantize_ort import quantize_static_int8
from edgetune.run import open_run
from edgetune.runtime import Session
from edgetune.tasks import get_task


def p50(path: Path, x: np.ndarray, runs: int = 200) -> float:
    s = Session(path, threads=1)
    for _ in range(30):
        s.run(x)
    t = []
    for _ in range(runs):
        t0 = time.perf_counter()
        s.run(x)
        t.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(t))


def main() -> None:
    task = get_task("detect")
    rows = []
    for arg in sys.argv[1:]:
        run, manifest = open_run(arg)
        fp32 = run.export_dir("cpu-fp32") / "model.onnx"
        calib, _ = task.calibration_inputs(manifest, size=None, seed=int(manifest["seed"]))
        x = task.export_inputs(manifest, count=1)[0]
        ref = task.evaluate(Session(fp32, threads=2), manifest)
        rows.append([run.name, "fp32 (reference)", "–", f"{ref['map50_95']:.4f}", f"{ref['map50']:.4f}",
                     f"{p50(fp32, x):.2f}"])
        for name, keep in head_policies(fp32)[0].items():
            out = Path(tempfile.mkdtemp()) / "int8.onnx"
            quantize_static_int8(fp32, out, calib, keep_float=keep)
            m = task.evaluate(Session(out, threads=2), manifest)
            rows.append([run.name, name, str(len(keep)), f"{m['map50_95']:.4f}", f"{m['map50']:.4f}", f"{p50(out, x):.2f}"])
            print(rows[-1], flush=True)
    md = ["### D4. int8: which parts of the YOLO head stay float", "",
          f"`python benchmarks/detect_int8_heads.py {' '.join(sys.argv[1:])}` (ONNX Runtime static QDQ, per-channel "
          "U8S8, MinMax on 200 seeded training images; p50 at 1 thread, 200 runs, this machine).", "",
          "| run | policy | nodes kept float | mAP50-95 | mAP50 | p50 ms |", "|---|---|---|---|---|---|"]
    md += [f"| {' | '.join(r)} |" for r in rows]
    write_section("detect-int8", "\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
