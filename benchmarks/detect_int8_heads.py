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
from pathlib import Path

from _results import interleaved_p50s, medians, write_section

from edgetune.export.backends.onnxruntime import quantize_static_int8
from edgetune.export.detect_head import head_policies
from edgetune.run import open_run
from edgetune.runtime import open_session
from edgetune.tasks import get_task


def main() -> None:
    task = get_task("detect")
    rows = []
    for arg in sys.argv[1:]:
        run, manifest = open_run(arg)
        fp32 = run.export_dir("cpu-fp32") / "model.onnx"
        calib, _ = task.calibration_inputs(manifest.spec, manifest.data, size=None)
        x = task.export_inputs(manifest.spec, manifest.data, count=1)[0]
        ref = task.evaluate(open_session(fp32, threads=2), manifest.spec, manifest.data)
        paths, scores, kept = {"fp32 (reference)": fp32}, {"fp32 (reference)": ref}, {"fp32 (reference)": "–"}
        for name, keep in head_policies(fp32)[0].items():
            out = Path(tempfile.mkdtemp()) / "int8.onnx"
            quantize_static_int8(fp32, out, calib, keep_float=keep)
            paths[name], scores[name], kept[name] = out, task.evaluate(open_session(out, threads=2), manifest.spec, manifest.data), str(len(keep))
        lat = {k: v for (k, _), v in medians(interleaved_p50s(paths, x, threads=(1,))).items()}
        for name in paths:
            m = scores[name]
            rows.append([run.path.name, name, kept[name], f"{m['map50_95']:.4f}", f"{m['map50']:.4f}", f"{lat[name]:.2f}"])
            print(rows[-1], flush=True)
    md = ["### D4. int8: which parts of the YOLO head stay float", "",
          f"`python benchmarks/detect_int8_heads.py {' '.join(sys.argv[1:])}` (ONNX Runtime static QDQ, per-channel "
          "U8S8, MinMax on 200 seeded training images; p50 at 1 thread: median of 3 interleaved pinned runs of 200 inferences, this machine).", "",
          "| run | policy | nodes kept float | mAP50-95 | mAP50 | p50 ms |", "|---|---|---|---|---|---|"]
    md += [f"| {' | '.join(r)} |" for r in rows]
    write_section("detect-int8", "\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
