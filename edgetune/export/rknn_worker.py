"""The RKNN tool environment's side of edgetune's protocol (run by that environment's Python,
which has rknn-toolkit2 and its own pins, never edgetune: this file imports only the standard
library, numpy and rknn).

One JSON request per line on stdin, one JSON answer per line on the protocol stream (the original
stdout; the toolkit's own prints and logs go to stderr, which the caller keeps in a log file).
Arrays travel as .npy files in the caller's work folder. Requests:

- {"op": "build", "onnx", "platform", "quantize", "dataset", "float_layers", "work"}: convert (int8
  with `float_layers` kept in float16 through the toolkit's hybrid quantisation, or fp16) and
  keep the built model for the simulator. Answers {"seconds"}.
- {"op": "layers", "onnx", "platform", "dataset", "work"}: the quantisable compute layers, in graph
  order, by their output tensors (the names the hybrid quantisation config takes), and every
  layer's [op type, output tensor]. Answers {"layers", "graph"}.
- {"op": "analysis", "inputs", "output"}: the toolkit's per-layer accuracy analysis of the built
  model. Answers {"report"} (error_analysis.txt).
- {"op": "run", "input", "output"}: the simulator on input.npy → output_<i>.npy. Answers {"outputs"}.
- {"op": "export", "path"}: write the built model as a .rknn file. Answers {}.

Every answer has "ok"; a failure answers {"ok": false, "error": "<the toolkit's last message>"}.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

COMPUTE_OPS = ("Conv", "Gemm", "MatMul", "ConvTranspose")


class Worker:
    def __init__(self) -> None:
        self.rknn = None

    def _fresh(self, req: dict, *, load: bool = True):
        """A new toolkit object configured for the platform (with the ONNX graph loaded, unless
        for hybrid quantisation's step 2, which refuses a loaded model)."""
        from rknn.api import RKNN

        if self.rknn is not None:
            self.rknn.release()
        self.rknn = RKNN(verbose=False)
        _check(self.rknn.config(mean_values=None, std_values=None, target_platform=req["platform"],
                                optimization_level=3), "config")
        if load:
            _check(self.rknn.load_onnx(model=req["onnx"]), "load_onnx")
        return self.rknn

    def build(self, req: dict) -> dict:
        t = time.perf_counter()
        rknn = self._fresh(req)
        if not req["quantize"]:
            _check(rknn.build(do_quantization=False), "build")
        elif not req.get("float_layers"):
            _check(rknn.build(do_quantization=True, dataset=req["dataset"]), "build")
        else:
            model, data, cfg = self._hybrid_files(rknn, req)
            text = Path(cfg).read_text()
            layers = "".join(f"    {json.dumps(name)}: float16\n" for name in req["float_layers"])
            Path(cfg).write_text(text.replace("custom_quantize_layers: {}\n", "custom_quantize_layers:\n" + layers, 1))
            rknn = self._fresh(req, load=False)
            _check(rknn.hybrid_quantization_step2(model_input=model, data_input=data, model_quantization_cfg=cfg),
                   "hybrid_quantization_step2")
        _check(rknn.init_runtime(), "init_runtime (simulator)")
        return {"seconds": time.perf_counter() - t}

    def layers(self, req: dict) -> dict:
        import onnx

        rknn = self._fresh(req)
        model, _, _ = self._hybrid_files(rknn, req)
        graph = onnx.load(model, load_external_data=False).graph
        # the hybrid config names a layer by its output tensor ("operand")
        return {"layers": [n.output[0] for n in graph.node if n.op_type in COMPUTE_OPS],
                "graph": [[n.op_type, n.output[0]] for n in graph.node]}

    @staticmethod
    def _hybrid_files(rknn, req: dict) -> tuple[str, str, str]:
        """Step 1 of the toolkit's hybrid quantisation writes <name>.model/.data/.quantization.cfg
        into the working directory: a folder of its own per request."""
        folder = Path(req["work"])
        folder.mkdir(parents=True, exist_ok=True)
        os.chdir(folder)
        _check(rknn.hybrid_quantization_step1(dataset=req["dataset"]), "hybrid_quantization_step1")
        stem = Path(req["onnx"]).stem
        return tuple(str(folder / f"{stem}{ext}") for ext in (".model", ".data", ".quantization.cfg"))  # type: ignore[return-value]

    def run(self, req: dict) -> dict:
        import numpy as np

        x = np.load(req["input"])
        outs = self.rknn.inference(inputs=[x], data_format="nchw" if x.ndim == 4 else None)
        if outs is None:
            raise RuntimeError("the simulator returned no output")
        paths = []
        for i, y in enumerate(outs):
            path = f"{req['output']}_{i}.npy"
            np.save(path, np.asarray(y, dtype=np.float32))
            paths.append(path)
        return {"outputs": paths}

    def analysis(self, req: dict) -> dict:
        """The toolkit's per-layer accuracy analysis of the built model (simulator vs float) on
        `inputs` (one .npy per model input); its report's path."""
        _check(self.rknn.accuracy_analysis(inputs=req["inputs"], output_dir=req["output"]), "accuracy_analysis")
        return {"report": str(Path(req["output"]) / "error_analysis.txt")}

    def export(self, req: dict) -> dict:
        _check(self.rknn.export_rknn(req["path"]), "export_rknn")
        return {}


def _check(ret: int, what: str) -> None:
    if ret != 0:
        raise RuntimeError(f"rknn-toolkit2 {what} failed (status {ret})")


def _describe(exc: Exception) -> str:
    """The toolkit's last message, and where in it it failed (it re-raises its tracebacks as text)."""
    import re

    text = str(exc).strip()
    where = re.findall(r"in (rknn\.api\.[\w.]+)", text)
    last = text.splitlines()[-1][:300] if text else type(exc).__name__
    return last + (f" (in {where[-1]})" if where else "")


def main() -> None:
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # the toolkit prints: keep them off the protocol stream
    worker = Worker()
    for line in sys.stdin:
        req = json.loads(line)
        try:
            answer = {"ok": True, **getattr(worker, req["op"])(req)}
        except Exception as exc:  # noqa: BLE001 — every failure is answered, the caller raises it typed
            answer = {"ok": False, "error": _describe(exc)}
        protocol.write(json.dumps(answer) + "\n")


if __name__ == "__main__":
    main()
