"""Which ONNX Runtime int8 configuration holds accuracy? Measured on real fine-tuned runs.

    python benchmarks/int8_configs.py RUN [RUN ...]

For each run: export fp32, then quantise with each configuration below (same calibration subset:
200 stratified training images) and report val top-1 and latency p50 at 1 thread (edgetune.latency,
same process layout as `edgetune bench`). Appends a section to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

from edgetune.export.backends.onnxruntime import first_compute_nodes
from edgetune.export.onnx import export_onnx
from edgetune.latency import measure_in_child as run_worker
from edgetune.run import RunDir
from edgetune.runtime import open_session
from edgetune.tasks import get_task
from edgetune.train.classifier import load_trained

CONFIGS = {  # name: (per_channel, reduce_range, keep stem conv float, weight type)
    "per-tensor": (False, False, False, QuantType.QInt8),
    "per-channel": (True, False, False, QuantType.QInt8),
    "per-channel, 7-bit weights (reduce_range)": (True, True, False, QuantType.QInt8),
    "per-channel, stem conv float (default)": (True, False, True, QuantType.QInt8),
    "per-channel U8U8": (True, False, False, QuantType.QUInt8),
}


def main(runs: list[Path]) -> None:
    task = get_task("classify")
    lines = ["", "## int8 configurations (ONNX Runtime static QDQ, MinMax, 200 calibration images)", "",
             f"Command: `python benchmarks/int8_configs.py {' '.join(str(r) for r in runs)}`. "
             "Latency: p50 of 300 runs, 1 thread, batch 1.", "",
             "| run | configuration | val top-1 | drop | p50 ms |", "|---|---|---|---|---|"]
    for run in runs:
        manifest = RunDir(run).read_manifest()
        model = load_trained(manifest, run / "checkpoint.pt")
        x = task.export_inputs(manifest.spec, manifest.data, count=1)[0]
        calib, _ = task.calibration_inputs(manifest.spec, manifest.data, size=200)
        with tempfile.TemporaryDirectory() as tmp:
            fp32, prepped = Path(tmp) / "fp32.onnx", Path(tmp) / "prepped.onnx"
            export_onnx(model, x, fp32)
            quant_pre_process(str(fp32), str(prepped), skip_symbolic_shape=True)
            base = task.evaluate(open_session(fp32), manifest.spec, manifest.data)["top1"]
            lat = run_worker(fp32, x, 1, 300)["latency_ms"]["p50"]
            lines.append(f"| {run.name} | fp32 | {base:.3f} | – | {lat:.2f} |")
            for name, (pc, rr, stem, wt) in CONFIGS.items():
                out = Path(tmp) / "q.onnx"
                reader = type("R", (CalibrationDataReader,), {
                    "__init__": lambda s, cal=calib: setattr(s, "it", iter([{"input": c} for c in cal])),
                    "get_next": lambda s: next(s.it, None)})()
                quantize_static(str(prepped), str(out), reader, quant_format=QuantFormat.QDQ, per_channel=pc,
                                reduce_range=rr, activation_type=QuantType.QUInt8, weight_type=wt,
                                nodes_to_exclude=first_compute_nodes(prepped) if stem else [],
                                extra_options={"WeightSymmetric": True})
                acc = task.evaluate(open_session(out), manifest.spec, manifest.data)["top1"]
                lat = run_worker(out, x, 1, 300)["latency_ms"]["p50"]
                lines.append(f"| {run.name} | {name} | {acc:.3f} | {base - acc:+.3f} | {lat:.2f} |")
                print(lines[-1], flush=True)
    results = Path(__file__).with_name("RESULTS.md")
    results.write_text(results.read_text() + "\n".join(lines) + "\n")


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main([Path(a) for a in sys.argv[1:]])
