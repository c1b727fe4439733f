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


def venv(path: Path, packages: list[str]) -> tuple[float, float]:
    """A fresh virtual environment at `path` with `packages`: (seconds, MB)."""
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    subprocess.run([str(path / "bin" / "pip"), "install", "-q", *packages], check=True, capture_output=True)
    seconds = time.perf_counter() - t
    return seconds, du_mb(path)


def _closure(roots: list[tuple[str, set[str]]]) -> set[str]:
    """Installed distributions (normalised names) that `roots` (name, extras) pull in."""
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name, extras = todo.pop()
        key = canonicalize_name(name)
        try:
            dist = metadata.distribution(key)
        except metadata.PackageNotFoundError:
            continue
        if key in seen and not extras:
            continue
        seen.add(key)
        for line in dist.requires or []:
            req = Requirement(line)
            if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in extras | {""}):
                todo.append((req.name, set(req.extras)))
    return seen


def added_by(extra: str, others: tuple[str, ...]) -> float:
    """MB of installed files that edgetune[extra] brings beyond edgetune[others] (package RECORDs)."""
    from importlib import metadata

    rest = _closure([("edgetune", set(others))])
    new = _closure([("edgetune", {*others, extra})]) - rest
    return sum(f.size or 0 for n in new for f in (metadata.distribution(n).files or [])) / 1e6


def main(runs: list[Path]) -> None:
    import numpy as np

    from edgetune.run import RunDir
    from edgetune.tasks import get_task

    rows = ["| run | converter | works | metric (fp32 ONNX) | drop | size MB | convert s |", "|---|---|---|---|---:|---:|---:|"]
    with tempfile.TemporaryDirectory(prefix="litert-converters-") as tmp:
        tmp = Path(tmp)
        o2t_s, o2t_mb = venv(tmp / "onnx2tf", O2T_PINS)
        lt_mb = added_by("litert-export", ("train", "kws", "ncnn"))
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
                  f"Install weight: `edgetune[litert-export]` (litert-torch, ai-edge-quantizer and what they pull in "
                  f"beyond `edgetune[train,kws,ncnn]`: jax, transformers, torchao…) is {lt_mb:.0f} MB of installed "
                  "files (their RECORDs). onnx2tf "
                  f"cannot join it (its pins conflict with edgetune's: onnxruntime 1.23, onnx 1.19, numpy 1.26); "
                  f"its own environment with TensorFlow 2.19 is {o2t_mb:.0f} MB ({o2t_s:.0f} s). The device side "
                  f"is the same for both: the `ai-edge-litert` interpreter ({added_by('litert', ('train', 'kws', 'ncnn')):.0f} MB installed, "
                  "a 22 MB wheel).\n")
    print("\n".join(rows))


if __name__ == "__main__":
    main([Path(a) for a in sys.argv[1:]] or [Path("runs/demo") / n for n in ("run", "det", "kws")])
