"""Which converter makes edgetune's `.tflite`: litert-torch (from the run's PyTorch model) vs onnx2tf
(from the validated ONNX graph), on the same fine-tuned runs — works, held-out metric and drop,
size, conversion time, install weight. Writes the "litert-converters" section of RESULTS.md.

    python benchmarks/litert_converters.py [RUN ...]   (default: make demo's runs/demo/run, det, kws)

onnx2tf pins onnxruntime 1.23, onnx 1.19, numpy 1.26 and TensorFlow 2.19, so it gets its own
virtual environment (made here, under the system temp folder, from the package index). It
downloads sample images from GitHub for every 4-D image input; with no network that is patched to
the run's own calibration images, which only makes it *more* likely to succeed here than for a user.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _results import write_section
from runtimes import export

O2T_PINS = ["onnx2tf==1.29.24", "tensorflow==2.19.0", "tf_keras==2.19.0", "onnx==1.19.1", "onnxruntime==1.23.0",
            "numpy==1.26.4", "onnx-graphsurgeon==0.5.8", "sng4onnx", "simple-onnx-processing-tools==1.1.32",
            "psutil==5.9.5", "protobuf==4.25.5", "h5py==3.11.0", "ml-dtypes==0.5.1", "ai-edge-litert==2.1.0",
            "onnxsim==0.4.36", "onnxoptimizer==0.4.2", "opencv-python==4.11.0.86"]  # onnx2tf 1.29.24's own pins
LITERT_EXPORT = ["litert-torch==0.10.0", "ai-edge-quantizer==0.10.0"]
_O2T = """
import sys, time, numpy as np, onnx, onnx2tf, onnx2tf.onnx2tf as core
from onnx2tf.utils import common_functions as cf
onnx_path, out, calib = sys.argv[1:4]
x = np.load(calib)
sample = np.transpose(x, (0, 2, 3, 1)) if x.ndim == 4 else x
cf.download_test_image_data = core.download_test_image_data = lambda: sample  # no GitHub here
t = time.perf_counter()
try:
    onnx2tf.convert(input_onnx_file_path=onnx_path, output_folder_path=out, non_verbose=True)
    print("SECONDS", time.perf_counter() - t)
except BaseException as exc:
    print("ERROR", (type(exc).__name__ + ": " + " ".join(str(exc).split()))[:160])
"""


def du_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink()) / 1e6


def venv(path: Path, packages: list[str], *, on_top_of: Path | None = None) -> tuple[float, float]:
    """Create `path` with `packages` (seconds, MB added); `on_top_of`: a site-packages it sees
    (what the packages add to edgetune's own environment)."""
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    if on_top_of is not None:
        site = next((path / "lib").glob("python3*/site-packages"))
        (site / "edgetune-base.pth").write_text(str(on_top_of) + "\n")
    subprocess.run([str(path / "bin" / "pip"), "install", "-q", *packages], check=True, capture_output=True)
    seconds = time.perf_counter() - t
    return seconds, du_mb(path)


def main(runs: list[Path]) -> None:
    import numpy as np

    from edgetune.run import RunDir
    from edgetune.tasks import get_task

    rows = ["| run | converter | works | metric (fp32 ONNX) | drop | size MB | convert s |", "|---|---|---|---|---:|---:|---:|"]
    with tempfile.TemporaryDirectory(prefix="litert-converters-") as tmp:
        tmp = Path(tmp)
        o2t_s, o2t_mb = venv(tmp / "onnx2tf", O2T_PINS)
        base = next((Path(sys.prefix) / "lib").glob("python3*/site-packages"))
        lt_s, lt_mb = venv(tmp / "litert-torch", LITERT_EXPORT, on_top_of=base)
        for run in runs:
            manifest = RunDir(run).read_manifest()
            name = f"{manifest.model} ({manifest.task})"
            fp32 = export(run, "cpu-fp32")
            lite = export(run, "litert-fp32")
            if "error" in lite:
                rows.append(f"| {name} | litert-torch | no: exit {lite['exit']}: {lite['error']} | | | | |")
            else:
                rows.append(f"| {name} | litert-torch | yes | {lite['metric']:.4f} ({fp32['metric']:.4f}) | "
                            f"{lite['drop']:+.4f} | {lite['size_mb']:.2f} | {lite['seconds']:.0f} |")
            calib, _ = get_task(manifest.task).calibration_inputs(manifest.spec, manifest.data, size=20, default=20)
            np.save(tmp / "calib.npy", np.concatenate(calib))
            out = tmp / f"o2t-{run.name}"
            proc = subprocess.run([str(tmp / "onnx2tf" / "bin" / "python"), "-c", _O2T, fp32["artifact"], str(out),
                                   str(tmp / "calib.npy")], capture_output=True, text=True)
            err = next((ln[6:] for ln in proc.stdout.splitlines() if ln.startswith("ERROR ")), None)
            made = sorted(out.glob("*_float32.tflite")) if out.is_dir() else []
            if err or not made:
                rows.append(f"| {name} | onnx2tf | no: {err or proc.stderr.strip()[-160:]} | | | | |")
            else:
                secs = float(next(ln.split()[1] for ln in proc.stdout.splitlines() if ln.startswith("SECONDS")))
                rows.append(f"| {name} | onnx2tf | converted (NHWC input; not scored) | | | "
                            f"{made[0].stat().st_size / 1e6:.2f} | {secs:.0f} |")
            shutil.rmtree(out, ignore_errors=True)
    command = "python benchmarks/litert_converters.py " + " ".join(map(str, runs))
    write_section("litert-converters", "## litert-converters: litert-torch vs onnx2tf for the LiteRT targets (issue 16)\n\n"
                  f"`{command}`\n\n" + "\n".join(rows) + "\n\n"
                  f"Install weight: litert-torch + ai-edge-quantizer add {lt_mb:.0f} MB to edgetune's environment "
                  f"({lt_s:.0f} s from the package index; jax, transformers, torchao come with them). onnx2tf "
                  f"cannot join it (its pins conflict with edgetune's: onnxruntime 1.23, onnx 1.19, numpy 1.26); "
                  f"its own environment with TensorFlow 2.19 is {o2t_mb:.0f} MB ({o2t_s:.0f} s). The device side "
                  "is the same for both: the 22 MB `ai-edge-litert` interpreter.\n")
    print("\n".join(rows))


if __name__ == "__main__":
    main([Path(a) for a in sys.argv[1:]] or [Path("runs/demo") / n for n in ("run", "det", "kws")])
