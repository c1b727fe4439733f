"""The NCNN backend: `ncnn-fp32` and `ncnn-fp16`, the fastest CPU runtime on ARM boards.

Converted by Tencent's `pnnx` (PyPI; its own binary) from the validated fp32 ONNX graph, like
every other target, and run by the `ncnn` wheel (no torch on the device). ncnn drops the batch
dimension: the Session feeds one sample and puts the batch axis back, so predict, bench and the
task decoders (NMS for detectors) see the same arrays as from ONNX Runtime. The input shape is
written into the param file's Input layer, so the artefact says what it takes.

`ncnn-fp16` stores fp16 weights (half the size) and lets ncnn compute in fp16 where the CPU has
it (Arm's fp16 arithmetic; x86 computes in fp32): judged by the task metric, like openvino-fp16.
Not here: `ncnn-int8`: ncnn's ncnn2table/ncnn2int8 tools are in no wheel, no Debian (bookworm)
package and not in PyPI's ncnn sdist (which carries src/ and python/ only).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from edgetune.errors import RunDirError, UnsupportedOpError
from edgetune.export.backends import Backend, BuildContext, require
from edgetune.export.targets import Target
from edgetune.runtime import Session

_PIP = "pip install 'edgetune[ncnn]'"


def _require(module: str, what: str) -> Any:
    """The optional package (ncnn's OpenMP pool made as spinning as edgetune's defaults allow), or exit 7."""
    from edgetune._env import openmp_spinning

    with openmp_spinning():
        return require(module, what, _PIP)


class NcnnBackend(Backend):
    name = "ncnn"
    title = "NCNN"
    artifact = "model.ncnn.param"
    install = "ncnn (pip install 'edgetune[ncnn]'; pnnx too at export time)"
    batch_axis = False  # ncnn drops the batch dimension

    @property
    def files(self) -> tuple[str, ...]:
        return (self.artifact, "model.ncnn.bin")

    def targets(self) -> tuple[Target, ...]:
        return (
            Target("ncnn-fp32", self.name, "fp32", None, 1e-3,
                   "NCNN (converted by pnnx from the validated ONNX), float32; the ARM boards' fast CPU runtime"),
            Target("ncnn-fp16", self.name, "fp16", None, None,
                   "NCNN, fp16 weights (half the size), fp16 arithmetic where the CPU has it (Arm), fp32 otherwise",
                   compress_fp16=True),
        )

    def session(self, path: Path, *, threads: int | None = None) -> Session:
        ncnn = _require("ncnn", f"running {path}")
        net = ncnn.Net()
        net.opt.use_vulkan_compute = False
        if threads:
            net.opt.num_threads = threads
        weights = path.with_name("model.ncnn.bin")
        if net.load_param(str(path)) != 0 or net.load_model(str(weights)) != 0:
            raise RunDirError(f"NCNN cannot load {path} with {weights.name}", hint="re-run `edgetune export`")
        in_name, out_name = net.input_names()[0], net.output_names()[0]
        shape = _declared_input_shape(path)

        def run(x: np.ndarray) -> list[np.ndarray]:
            ex = net.create_extractor()
            ex.input(in_name, ncnn.Mat(np.ascontiguousarray(x[0])))
            status, out = ex.extract(out_name)
            if status != 0:
                raise RunDirError(f"NCNN failed to run {path} (status {status})", hint="re-run `edgetune export`")
            return [np.array(out)[None]]

        return Session(path, threads, self.name, run, input_name=in_name, input_shape=shape, output_shape=())

    def build(self, ctx: BuildContext, target: Target, path: Path, meta: dict[str, Any]) -> dict[str, Any] | None:
        pnnx = _require("pnnx", f"building {target.id}")
        shape = _onnx_input_shape(ctx.fp32)
        work = ctx.work / f"{target.id}-pnnx"
        work.mkdir()
        graph = work / "model.onnx"
        shutil.copyfile(ctx.fp32, graph)  # pnnx writes its side files beside its input
        args = [pnnx.EXEC_PATH, str(graph), f"inputshape=[{','.join(map(str, shape))}]",
                f"fp16={1 if target.compress_fp16 else 0}", f"ncnnparam={path}",
                f"ncnnbin={path.with_name('model.ncnn.bin')}", *(f"{k}={work / k}" for k in
                                                                ("pnnxparam", "pnnxbin", "pnnxpy", "pnnxonnx", "ncnnpy"))]
        proc = subprocess.run(args, capture_output=True, text=True, cwd=work)
        if proc.returncode != 0 or not path.is_file():
            raise UnsupportedOpError(f"{target.id}: pnnx cannot convert the ONNX graph: {_reason(proc)}",
                                     hint="use a cpu-* or openvino-* target for this model")
        foreign = _unlowered_layers(path) + _unknown_layers(path, _require("ncnn", f"building {target.id}"))
        if foreign:  # ncnn would refuse to load it (or, worse, on the device only)
            kind, layer = foreign[0]
            raise UnsupportedOpError(f"{target.id}: NCNN has no layer for {kind} (layer '{layer}'"
                                     + (f" and {len(foreign) - 1} more" if len(foreign) > 1 else "")
                                     + "), which pnnx could not lower from this graph",
                                     hint="use a cpu-* or openvino-* target for this model")
        _declare_input_shape(path, shape)
        meta["ncnn"] = {"converted_from": "validated fp32 ONNX", "converter": "pnnx", "fp16_weights": target.compress_fp16}
        return None


def _onnx_input_shape(path: Path) -> list[int]:
    import onnx

    dims = onnx.load(str(path), load_external_data=False).graph.input[0].type.tensor_type.shape.dim
    return [d.dim_value or 1 for d in dims]


def _declare_input_shape(param: Path, shape: list[int]) -> None:
    """Write the input shape (ncnn order w, h, c after the batch) into the Input layer."""
    dims = list(reversed(shape[1:]))
    attrs = " ".join(f"{i}={v}" for i, v in enumerate(dims))
    lines = param.read_text().splitlines()
    lines = [re.sub(r"^(Input\s+\S+\s+0\s+1\s+\S+)\s*$", rf"\1 {attrs}", ln) for ln in lines]
    param.write_text("\n".join(lines) + "\n")


def _declared_input_shape(param: Path) -> tuple[int, ...]:
    """(1, c, h, w) from the Input layer's 0=w 1=h 2=c, or () when it declares none."""
    for line in param.read_text(errors="replace").splitlines()[2:]:
        if line.startswith("Input"):
            attrs = dict(a.split("=", 1) for a in line.split()[5:] if "=" in a)
            dims = [int(attrs[k]) for k in ("2", "1", "0") if k in attrs and attrs[k].lstrip("-").isdigit()]
            return (1, *dims) if dims else ()
    return ()


def _layers(param: Path) -> list[tuple[str, str]]:
    """(type, name) of every layer of a param file."""
    rows = [line.split() for line in param.read_text(errors="replace").splitlines()[2:]]
    return [(parts[0], parts[1]) for parts in rows if len(parts) > 1]


def _unlowered_layers(param: Path) -> list[tuple[str, str]]:
    """(type, name) of the layers pnnx left as its own or torch operators (`pnnx.Expression`,
    `torch.stft`…): a dotted type is not an ncnn layer."""
    return [layer for layer in _layers(param) if "." in layer[0]]


def _unknown_layers(param: Path, ncnn: Any) -> list[tuple[str, str]]:
    """(type, name) of the layers this ncnn build does not register (pnnx may emit newer ones)."""
    return [layer for layer in _layers(param) if "." not in layer[0] and ncnn.layer_to_index(layer[0]) < 0]


def _reason(proc: subprocess.CompletedProcess) -> str:
    """pnnx's last meaningful line (it names the unsupported operator)."""
    lines = [ln.strip() for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip() and not ln.startswith("#")]
    return (lines[-1] if lines else f"exit status {proc.returncode}")[:200]


BACKEND = NcnnBackend()
