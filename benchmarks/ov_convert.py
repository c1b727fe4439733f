"""OpenVINO conversion path: from the validated ONNX graph (edgetune's choice) vs directly from
PyTorch (`ov.convert_model(module, example_input=...)`); writes the "ov-convert" section of RESULTS.md.

    python benchmarks/ov_convert.py

Same three fine-tuned runs as benchmarks/export.py. For each path: conversion seconds, op count,
max |Δ| vs PyTorch on 16 real val inputs, and p50 latency (f32 hint, 1 thread, 3 interleaved
rounds of 150 runs in a pinned child process).
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from _results import interleaved_p50s, medians, write_section
from export import MODELS


def main() -> None:
    import openvino as ov
    import torch

    from edgetune.export.backends import openvino as ovx
    from edgetune.export.onnx import export_onnx, output_diffs
    from edgetune.run import open_run
    from edgetune.tasks import get_task

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (src, _, _) in MODELS.items():
            run, manifest = open_run(src)
            task = get_task(manifest.task)
            model = task.load_model(manifest, run.checkpoint)
            inputs = task.export_inputs(manifest.spec, manifest.data, count=16)
            work = Path(tmp) / name.split()[0]
            work.mkdir()
            paths, info = {}, {}
            t = time.perf_counter()
            export_onnx(model, inputs[0], work / "fp32.onnx", output_name=task.output_name, dynamo=task.onnx_dynamo)
            m = ovx.convert(work / "fp32.onnx")
            info["from ONNX"] = (time.perf_counter() - t, len(m.get_ops()))
            ovx.save(m, work / "onnx.xml", precision_hint="f32")
            paths["from ONNX"] = work / "onnx.xml"
            t = time.perf_counter()
            try:
                with torch.no_grad():
                    m = ov.convert_model(model.eval(), example_input=torch.from_numpy(inputs[0]))
                info["from PyTorch"] = (time.perf_counter() - t, len(m.get_ops()))
                ovx.save(m, work / "torch.xml", precision_hint="f32")
                paths["from PyTorch"] = work / "torch.xml"
            except Exception as exc:  # record, do not hide
                info["from PyTorch"] = (time.perf_counter() - t, f"failed: {str(exc).splitlines()[0][:120]}")
            p50 = {label: v for (label, _), v in medians(interleaved_p50s(paths, inputs[0], threads=(1,),
                                                                            runs=150)).items()}
            for label in info:
                secs, ops = info[label]
                if label in paths:
                    diff = max(output_diffs(model, paths[label], inputs, task.output_scale(manifest.spec)))
                    rows.append([name, label, f"{secs:.1f}", str(ops), f"{diff:.2g}",
                                 f"{p50[label]:.2f}"])
                else:
                    rows.append([name, label, f"{secs:.1f}", str(ops), "–", "–"])
    md = ["## OpenVINO conversion path (issue 5)", "",
          "Measured by `python benchmarks/ov_convert.py`: converting the validated ONNX graph vs converting the "
          "PyTorch module directly. p50 at 1 thread, f32 hint, median of 3 interleaved rounds.", "",
          "| model | path | convert s | ops | max abs diff vs PyTorch | p50 ms |", "|---|---|---|---|---|---|",
          *[f"| {' | '.join(r)} |" for r in rows]]
    write_section("ov-convert", "\n".join(md))
    print("\n".join(md))
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
