"""The Rockchip RKNN backend: `rknn-int8` and `rknn-fp16` for the RK3588's NPU.

Converted by Rockchip's rknn-toolkit2 from the validated fp32 ONNX graph, like every target. The
toolkit pins torch ≤ 2.4, onnx ≤ 1.18 and numpy ≤ 1.26.4, so it lives in a tool environment of
its own (edgetune.tools_env; `edgetune tools install rknn`) and is driven as a subprocess through
a line-per-request JSON protocol (edgetune/export/rknn_worker.py; arrays as .npy files).

Where the metric comes from. A `.rknn` file runs on the NPU only (rknn-toolkit-lite2 on the board).
On this x86 host the toolkit's **simulator** runs the model it has just built, so the held-out
metric measured at export is labelled "simulated NPU" in export.json, never a device measurement;
`bench --remote user@rk3588` measures the board (its Session below uses rknnlite there).

int8: the toolkit's w8a8 (per-channel int8 weights, int8 activations), calibrated on the export's
one calibration set (the same stratified, hashed subset as every int8 target). "Back to float"
for `--max-drop` is the toolkit's hybrid quantisation (the chosen layers computed in float16),
ranked by the toolkit's own per-layer accuracy analysis (the simulator's single-layer error
against float), searched like every backend's (edgetune.export.accuracy_aware).
"""

from __future__ import annotations

import atexit
import functools
import json
import re
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgetune.errors import RunDirError, UnsupportedOpError, UsageError
from edgetune.export.backends import Backend, BuildContext
from edgetune.export.targets import Target
from edgetune.progress import log
from edgetune.runtime import Session

# The chips rknn-toolkit2 2.3.2 compiles for whose NPUs run the models edgetune trains (each built and
# simulated here); the default first. A profile's `npu.platform` picks one (export --profile).
PLATFORMS = ("rk3588", "rk3576", "rk3566", "rk3568", "rk3562")
FIDELITY_COSINE = 0.99  # the toolkit's float16 build vs the fp32 graph, per real val input
FIDELITY_INPUTS = 8
_OTHER_TARGET = "use a cpu-*, openvino-* or litert-* target for this model"
SIMULATED = "simulated NPU (rknn-toolkit2's simulator on this host)"
ANALYSIS_INPUTS = 4  # val samples the per-layer accuracy analysis averages over
# run with -I: the script's own folder (edgetune/export, which has an onnx.py) must not shadow packages
_WORKER = Path(__file__).resolve().parents[1] / "rknn_worker.py"


class Simulator:
    """One tool-environment process holding one built model (the simulator runs what was built)."""

    def __init__(self, onnx: Path, work: Path, dataset: Path | None, what: str, platform: str,
                 output_scale: np.ndarray | None = None) -> None:
        from edgetune import tools_env

        self.onnx, self.work, self.dataset, self.what, self.platform = onnx, work, dataset, what, platform
        self.output_scale = output_scale  # the built graph's output was divided by it (see _normalised)
        self.kept: list[str] = []  # layers every int8 build keeps in float16 (a detector's box decode)
        work.mkdir(parents=True, exist_ok=True)
        self.log = work / "rknn-toolkit.log"
        self._err = open(self.log, "ab")  # noqa: SIM115 — closed with the process
        self.proc = subprocess.Popen([str(tools_env.python("rknn", what)), "-I", str(_WORKER)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self._err, text=True, cwd=work)
        self._n = 0
        _LIVE.append(self)

    def call(self, op: str, **req: Any) -> dict[str, Any]:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps({"op": op, **req}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise UnsupportedOpError(f"{self.what}: rknn-toolkit2 stopped during {op}", hint=_OTHER_TARGET)
        answer = json.loads(line)
        if not answer.pop("ok"):
            raise UnsupportedOpError(f"{self.what}: rknn-toolkit2 cannot {op} this model: {answer['error']}",
                                     hint=_OTHER_TARGET)
        return answer

    def build(self, float_layers: Sequence[str] = (), *, quantize: bool = True) -> float:
        """Build int8 with `float_layers` in float16 (hybrid quantisation), or fp16."""
        layers = [*self.kept, *(n for n in float_layers if n not in self.kept)] if quantize else []
        tag = f"hybrid-{len(layers)}" if layers else "plain"
        return self.call("build", onnx=str(self.onnx), platform=self.platform, quantize=quantize and self.dataset is not None,
                         dataset=str(self.dataset), float_layers=layers,
                         work=str(self.work / f"step-{tag}-{self._next()}"))["seconds"]

    def layers(self) -> list[str]:
        return self.graph["layers"]

    @functools.cached_property
    def graph(self) -> dict[str, Any]:
        """{"layers": quantisable compute layers, "graph": every layer's [op, output tensor]}: the
        toolkit's first hybrid step, run once per simulator (its graph and calibration never change)."""
        return self.call("layers", onnx=str(self.onnx), platform=self.platform, dataset=str(self.dataset),
                         work=str(self.work / f"layers-{self._next()}"))

    def analysis(self, inputs: Sequence[Path]) -> Path:
        return Path(self.call("analysis", inputs=[str(p) for p in inputs],
                              output=str(self.work / f"analysis-{self._next()}"))["report"])

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        i = self._next()
        src = self.work / f"in-{i}.npy"
        np.save(src, x)
        outs = [np.load(p) for p in self.call("run", input=str(src), output=str(self.work / f"out-{i}"))["outputs"]]
        for p in [src, *(self.work / f"out-{i}_{k}.npy" for k in range(len(outs)))]:
            p.unlink(missing_ok=True)
        return _rescaled(outs, self.output_scale)

    def session(self, path: Path) -> Session:
        def run(x: np.ndarray) -> list[np.ndarray]:  # the built model takes one sample
            outs = [self.run(sample[None]) for sample in x]
            return [np.concatenate([o[k].reshape(1, *o[k].shape[1:]) for o in outs]) for k in range(len(outs[0]))]

        name, shape = self.input
        return Session(path, None, "rknn", run, input_name=name, input_shape=shape, output_shape=())

    @functools.cached_property
    def input(self) -> tuple[str, tuple[int, ...]]:
        """The graph's input name and shape (read once: every search step opens a session)."""
        return _onnx_input(self.onnx)

    def export(self, path: Path) -> None:
        self.call("export", path=str(path))

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()  # type: ignore[union-attr]
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._err.close()

    def _next(self) -> int:
        self._n += 1
        return self._n


_LIVE: list[Simulator] = []
_SIMULATED: dict[Path, Simulator] = {}  # artefacts written this export → the simulator holding them


def _close_all() -> None:
    """Stop every toolkit process (each holds torch and a model: hundreds of MB)."""
    for sim in _LIVE:
        sim.close()
    _LIVE.clear()
    _SIMULATED.clear()


atexit.register(_close_all)


class RknnSurgeon:
    """Hybrid-quantised variants of the plain int8 model (edgetune.export.accuracy_aware.Surgeon)."""

    partial_candidates = True  # compute layers only: the input and other activations stay int8

    def __init__(self, sim: Simulator, ctx: BuildContext, work: Path) -> None:
        self.sim, self.ctx, self.work = sim, ctx, work
        self._layers: list[str] | None = None

    def candidates(self) -> list[str]:
        if self._layers is None:
            self._layers = self.sim.layers()
        return self._layers

    def ranked(self) -> list[tuple[str, float]]:
        """Candidates by the toolkit's accuracy analysis: 1 − the simulator's single-layer cosine
        against float (fused activations' errors counted to their convolution), worst first."""
        self.sim.build([])
        self.work.mkdir(parents=True, exist_ok=True)
        files = []
        for i, x in enumerate(self.ctx.inputs[:ANALYSIS_INPUTS]):
            files.append(self.work / f"analysis-input-{i}.npy")
            np.save(files[-1], x)
        reports = [self.sim.analysis([f]) for f in files]
        scores: dict[str, float] = {}
        for report in reports:
            for layer, err in parse_analysis(report.read_text(errors="replace")).items():
                scores[layer] = scores.get(layer, 0.0) + err / len(reports)
        known = set(self.candidates())
        return sorted(((k, v) for k, v in scores.items() if k in known), key=lambda t: -t[1])

    def session(self, layers: Sequence[str]) -> Session:
        self.sim.build(layers)
        return self.sim.session(self.work / "candidate.rknn")

    def reference(self) -> Session:
        from edgetune.runtime import open_session

        return open_session(self.ctx.fp32)

    def save(self, layers: Sequence[str], path: Path) -> None:
        self.sim.build(layers)
        self.sim.export(path)
        _SIMULATED[path.resolve()] = self.sim


def parse_analysis(text: str) -> dict[str, float]:
    """{compute layer's output tensor: 1 − single-layer cosine} from the toolkit's error_analysis.txt. A
    convolution fused with the activation after it has an empty row; the next row with numbers
    (the fused output) carries its error."""
    scores: dict[str, float] = {}
    pending: list[str] = []
    for line in text.splitlines():
        m = re.match(r"\[(\w+)\]\s+(\S+)\s*(?:$|([\d.]+)\s*\|\s*([\d.]+)\s+([\d.]+)\s*\|)", line)
        if not m:
            continue
        op, name, single_cos = m.group(1), m.group(2), m.group(5)
        if single_cos is None:
            pending.append(name) if op in ("Conv", "Gemm", "MatMul", "ConvTranspose") else None
            continue
        err = 1.0 - float(single_cos)
        for layer in [*pending, *([name] if op in ("Conv", "Gemm", "MatMul", "ConvTranspose") else [])]:
            scores[layer] = err
        pending = []
    return scores


class RknnBackend(Backend):
    name = "rknn"
    title = "RKNN (Rockchip NPU)"
    artifact = "model.rknn"
    install = "rknn-toolkit-lite2 and the board's librknnrt (Rockchip's Debian images ship both)"
    batch_axis = False
    runs_here = False  # simulated during export; latency only on the board
    platforms = PLATFORMS

    def targets(self) -> tuple[Target, ...]:
        chip = f"Rockchip NPU ({PLATFORMS[0].upper()}; --profile for another Rockchip chip)"
        return (
            Target("rknn-fp16", self.name, "fp16", None, None,
                   f"{chip}, float16, converted by rknn-toolkit2; metric from its simulator"),
            Target("rknn-int8", self.name, "int8", "rknn-w8a8", None,
                   f"{chip}, int8 w8a8 by rknn-toolkit2 on the export's calibration set; metric from its simulator"),
        )

    def session(self, path: Path, *, threads: int | None = None) -> Session:
        if path.resolve() in _SIMULATED:  # written by this export: its simulator holds the model
            return _SIMULATED[path.resolve()].session(path)
        try:
            from rknnlite.api import RKNNLite  # on a Rockchip board
        except ImportError:
            raise UsageError(f"{path} runs on a Rockchip NPU only (rknn-toolkit-lite2 on the board); this host "
                             "simulates it during `edgetune export` (the metric in export.json)",
                             hint="bench it on the board: `edgetune bench RUN --target rknn-int8 --remote user@rk3588`"
                             ) from None
        rt, record = RKNNLite(verbose=False), _export_meta(path).get("rknn", {})
        if rt.load_rknn(str(path)) != 0 or rt.init_runtime() != 0:
            built = record.get("platform")
            raise RunDirError(f"rknn-toolkit-lite2 cannot load {path} on this board"
                              + (f" (it was compiled for the {built.upper()})" if built else ""),
                              hint="export it for this board's chip: `edgetune export RUN --target "
                                   f"{path.parent.name} --profile <this board's profile>`")

        scale = None if record.get("output_scale") is None else np.asarray(record["output_scale"], dtype=np.float32)

        def run(x: np.ndarray) -> list[np.ndarray]:
            outs = [rt.inference(inputs=[sample[None]], data_format="nchw" if x.ndim == 4 else None) for sample in x]
            outs = [np.concatenate([np.asarray(o[k], dtype=np.float32) for o in outs]) for k in range(len(outs[0]))]
            return _rescaled(outs, scale)

        return Session(path, threads, self.name, run, input_name="input", input_shape=(), output_shape=())

    def build(self, ctx: BuildContext, target: Target, path: Path, meta: dict[str, Any]) -> dict[str, Any] | None:
        _close_all()  # a new build: the previous export's simulators are done (one toolkit process at a time)
        work = ctx.work / f"{target.id}-rknn"
        work.mkdir(parents=True, exist_ok=True)
        dataset, graph, scale = None, ctx.fp32, None
        if target.quantizer:
            calib, record = ctx.calibration()
            dataset = _write_dataset(calib, work / "calibration")
            meta["calibration"] = record
            if ctx.scale is not None:  # one int8 scale for the whole output: put its rows in one range
                scale = np.asarray(ctx.scale, dtype=np.float32)
                graph = _normalised(ctx.fp32, scale, work / "normalised.onnx")
        platform = ctx.options.platform or PLATFORMS[0]
        sim = Simulator(graph, work, dataset, f"building {target.id}", platform, output_scale=scale)
        if scale is not None:  # and its box decode, in input pixels, keeps float16 in every int8 build
            sim.kept = _box_decode(sim.graph["graph"])
        log(f"{target.id}: converting with rknn-toolkit2 for the {platform.upper()}"
            f"{f' (int8 on {len(calib)} calibration samples)' if dataset else ''}", quiet=ctx.quiet)
        meta["rknn_float_fidelity"] = _check_fidelity(sim, ctx, target)  # before int8 is judged at all
        if target.quantizer:
            meta["quantization"] = {"quantizer": "rknn-toolkit2 w8a8", "weights": "int8 per channel",
                                    "activations": "int8 per tensor (asymmetric)"}
        seconds = sim.build([], quantize=dataset is not None)
        sim.export(path)
        _SIMULATED[path.resolve()] = sim
        meta["measured_on"] = SIMULATED  # the metric (and the drop) are the simulator's, not a board's
        meta["rknn"] = {"platform": platform, "toolkit": _toolkit_version(), "converted_from": "validated fp32 ONNX",
                        "convert_seconds": round(seconds, 1)}
        if scale is not None:  # what a board multiplies the output by (the graph divided it)
            meta["rknn"]["output_scale"] = scale.tolist()
            meta["rknn"]["kept_float16"] = {"layers": sim.kept, "why": "a detector's box decode (DFL, anchors, "
                                            "stride): in int8 it carries input pixels in 1/255 steps"}
        if not target.quantizer:
            return None
        return ctx.accuracy_aware(target, path, meta, lambda: RknnSurgeon(sim, ctx, work / "search"))


def _check_fidelity(sim: Simulator, ctx: BuildContext, target: Target) -> dict[str, Any]:
    """The toolkit's float16 build must compute what the validated fp32 graph computes on real
    val inputs (per-output cosine ≥ FIDELITY_COSINE, every value finite): a conversion that
    does not (the KWS front end's power spectrum overflows float16 on the NPU) is refused in
    one line, rather than exported as an fp16 model at chance level or searched as int8."""
    from edgetune.runtime import open_session

    sim.build([], quantize=False)
    ref = open_session(ctx.fp32)
    worst, finite = 1.0, True
    for x in ctx.inputs[:FIDELITY_INPUTS]:
        for got, want in zip(sim.run(x), ref.run(x), strict=True):
            got, want = got.ravel().astype(np.float64), want.ravel().astype(np.float64)
            if not np.isfinite(got).all():
                finite = False
                continue
            denom = float(np.linalg.norm(got) * np.linalg.norm(want)) or 1.0
            worst = min(worst, float(got @ want) / denom)
    if not finite or worst < FIDELITY_COSINE:
        what = "non-finite outputs (a float16 overflow on the NPU)" if not finite else f"output cosine {worst:.3f}"
        raise UnsupportedOpError(f"{target.id}: the model rknn-toolkit2 builds does not compute the validated ONNX "
                                 f"graph: {what} against fp32 on {min(len(ctx.inputs), FIDELITY_INPUTS)} real val "
                                 f"inputs (float16 build, simulator)", hint=_OTHER_TARGET)
    return {"min_cosine_vs_fp32": round(worst, 6), "inputs": min(len(ctx.inputs), FIDELITY_INPUTS)}


def _normalised(onnx_path: Path, scale: np.ndarray, dest: Path) -> Path:
    """The graph with its output rows divided by `scale` (a detector's box rows by the input size)
    where they are joined: each input of the output's Concat along the rows is divided by its slice.

    int8 gives a tensor one scale: a detector's box pixels (0-320) and 0-1 class scores joined in
    one tensor left every score at 0 (mAP 0.000). Divided before they meet, both lie in 0-1; the
    session multiplies the output back (a board's too, from export.json)."""
    import onnx
    from onnx import helper, numpy_helper, shape_inference

    model = shape_inference.infer_shapes(onnx.load(str(onnx_path)))
    out = model.graph.output[0].name
    concat = next(n for n in model.graph.node if out in n.output)
    axis = next((a.i for a in concat.attribute if a.name == "axis"), None)
    if concat.op_type != "Concat" or axis not in (1, -2):
        raise UnsupportedOpError("rknn-int8: this detector's output is not joined by a Concat of its rows; "
                                 "its box and score rows cannot be given one range", hint=_OTHER_TARGET)
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in model.graph.value_info}
    row, inputs, muls = 0, [], []
    for i, name in enumerate(concat.input):
        if name not in shapes:
            raise UnsupportedOpError(f"rknn-int8: the shape of '{name}', joined into this detector's output, is not "
                                     "known; its box and score rows cannot be given one range", hint=_OTHER_TARGET)
        rows = shapes[name][1]
        part = (1.0 / scale[:, row:row + rows]).astype(np.float32)
        row += rows
        if np.all(part == 1.0):
            inputs.append(name)
            continue
        const = f"edgetune_output_scale_{i}"
        model.graph.initializer.append(numpy_helper.from_array(part, const))
        muls.append(helper.make_node("Mul", [name, const], [const + "_out"], name=const))
        inputs.append(const + "_out")
    concat.input[:] = inputs
    nodes = list(model.graph.node)
    at = nodes.index(concat)
    model.graph.ClearField("node")
    model.graph.node.extend(nodes[:at] + muls + nodes[at:])  # topological order: the Muls feed the Concat
    onnx.save(model, str(dest))
    return dest


def _box_decode(graph: list[list[str]]) -> list[str]:
    """The toolkit's layers of an ultralytics Detect head's decode (DFL onwards, outside the box
    and class conv branches), by output tensor: in int8 they carry box pixels in 1/255 steps."""
    from edgetune.export.detect_head import conv_branches

    first = next((i for i, (_, out) in enumerate(graph) if "/dfl/" in out), None)
    if first is None:
        return []
    head = graph[first][1].split("/dfl/")[0] + "/"
    branch = conv_branches(head)
    start = next(i for i, (_, out) in enumerate(graph) if out.startswith(head) and not branch.match(out))
    return [out for _, out in graph[start:] if not branch.match(out)]


def _rescaled(outs: list[np.ndarray], scale: np.ndarray | None) -> list[np.ndarray]:
    return outs if scale is None else [(outs[0] * scale).astype(np.float32), *outs[1:]]


def _export_meta(path: Path) -> dict[str, Any]:
    """The artefact's export.json (its chip, its output scale); checked like every run file."""
    from edgetune.run import EXPORT_META, read_json_file

    return read_json_file(path.parent / EXPORT_META, what="export metadata")


def _toolkit_version() -> str:
    from edgetune import tools_env

    return next(r for r in tools_env.spec("rknn").requirements if r.startswith("rknn-toolkit2"))


def _onnx_input(path: Path) -> tuple[str, tuple[int, ...]]:
    import onnx

    inp = onnx.load(str(path), load_external_data=False).graph.input[0]
    return inp.name, tuple(d.dim_value or 1 for d in inp.type.tensor_type.shape.dim)


def _write_dataset(calib: Sequence[np.ndarray], folder: Path) -> Path:
    """The calibration samples as .npy files and the list file the toolkit reads."""
    folder.mkdir(parents=True)
    lines = []
    for i, x in enumerate(calib):
        np.save(folder / f"{i}.npy", np.asarray(x, dtype=np.float32)[None] if x.ndim in (1, 3) else x)
        lines.append(str(folder / f"{i}.npy"))
    (folder / "dataset.txt").write_text("\n".join(lines) + "\n")
    return folder / "dataset.txt"


BACKEND = RknnBackend()
