"""How far an openvino-fp16 artefact's outputs move at each inference precision the CPU plugin
may pick (RESULTS.md "ov-fp16-kws"): f32, bf16 (AMX / AVX512-BF16 hosts' default) and f16 (Arm's
default), against the f32-executed openvino-fp32 artefact, on the run's own validation inputs.

    python benchmarks/ov_half_precision.py RUN [RUN ...]   # runs with openvino-fp32 and -fp16 exported
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np


def _outputs(core, xml: Path, hint: str, xs: list[np.ndarray]) -> np.ndarray:
    compiled = core.compile_model(core.read_model(str(xml)), "CPU", {"INFERENCE_PRECISION_HINT": hint})
    return np.concatenate([compiled(x)[0] for x in xs])


def main(runs: list[str]) -> None:
    import openvino as ov

    from edgetune.run import RunDir
    from edgetune.tasks import get_task

    core = ov.Core()
    default = core.get_property("CPU", "INFERENCE_PRECISION_HINT")
    print(f"CPU plugin default inference precision here: {default}\n")
    print("| run (task) | precision | max abs diff vs f32 | argmax agreement |")
    print("|---|---|---|---|")
    for run in map(Path, runs):
        manifest = RunDir(run).read_manifest()
        task = get_task(manifest.task)
        xs = task.export_inputs(manifest.spec, manifest.data, count=16)

        ref = _outputs(core, run / "export" / "openvino-fp32" / "model.xml", "f32", xs)
        for hint in ("f32", "bf16", "f16"):
            out = _outputs(core, run / "export" / "openvino-fp16" / "model.xml", hint, xs)
            agree = float((out.argmax(1) == ref.argmax(1)).mean()) if ref.ndim == 2 else float("nan")
            print(f"| {run.name} ({manifest.task}) | {hint} | {np.abs(out - ref).max():.4f} | {agree:.2f} |")


if __name__ == "__main__":
    main(sys.argv[1:])
