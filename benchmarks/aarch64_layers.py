"""Which int8 layers an aarch64 build of ONNX Runtime computes differently from this x86 host.

RESULTS.md "aarch64-parity" measured the whole-model gap; this finds where it starts. Every
QuantizeLinear output of a cpu-int8 (QDQ) artefact is made a graph output — the uint8 tensors
between ORT's fused int8 kernels (QLinearConv, QLinearMul, …; exposing them leaves the fusion and
the final output unchanged, checked here) — and the same real val inputs are run on x86 and inside
the emulated aarch64 device (tools/emulated_device.py). A tensor whose inputs agree on both hosts
but which differs itself is an *origin*: the kernel producing it rounds differently on ARM. The
rest only carry an earlier difference forward.

    sudo python tools/emulated_device.py start
    python benchmarks/aarch64_layers.py [RUN ...] [--images 8]     # default: make demo's three runs

The device side (`compare` sub-command) needs only numpy and onnxruntime: it runs in the light
install inside the device, on files in benchmarks/_work/ (shared read-only), and prints JSON.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RUNS = [REPO / "runs/demo/run", REPO / "runs/demo/det", REPO / "runs/demo/kws"]
WORK = REPO / "benchmarks" / "_work" / "aarch64_layers"
DEVICE_PYTHON = "/opt/edgetune/bin/python"  # tools/emulated_device.py's VENV
PARITY = REPO / "benchmarks" / "_work" / "aarch64_parity.json"  # benchmarks/aarch64_parity.py's rows


def probe_model(src: Path, dst: Path) -> tuple[list[dict], str]:
    """`src` with every QuantizeLinear output as a graph output, saved at `dst`; per probed
    tensor: its name, the compute node feeding the Q (the layer), and the probed tensors (or the
    model input) it reads; and the model input's name."""
    import onnx

    m = onnx.load(str(src))
    producer = {o: n for n in m.graph.node for o in n.output}
    weights = {i.name for i in m.graph.initializer}
    probes = [n for n in m.graph.node if n.op_type == "QuantizeLinear" and n.input[0] not in weights]
    feed = m.graph.input[0].name
    probed = {q.output[0] for q in probes}

    def upstream(tensor: str, seen: set[str]) -> set[str]:
        """Probed tensors (or the graph input) reached walking back from `tensor`."""
        if tensor in probed or tensor not in producer:
            return {tensor} if tensor not in weights and tensor else set()
        if tensor in seen:
            return set()
        seen.add(tensor)
        return set().union(*(upstream(i, seen) for i in producer[tensor].input))

    rows = []
    for q in probes:
        layer = producer.get(q.input[0])
        rows.append({"tensor": q.output[0], "layer": layer.name if layer else q.input[0],
                     "op": layer.op_type if layer else "input",
                     "inputs": sorted(upstream(q.input[0], set()) & (probed | {feed}))})
        m.graph.output.append(onnx.helper.make_tensor_value_info(q.output[0], onnx.TensorProto.UINT8, None))
    onnx.save(m, str(dst))
    return rows, feed


def run_probe(model: Path, inputs: Path, *, fused: bool = True) -> dict[str, list]:
    """Every graph output for every sample in `inputs` (.npz: one array per model input, axis 0 =
    sample), on this machine's ONNX Runtime, 1 thread. `fused=False` disables graph optimisation:
    DequantizeLinear → float op → QuantizeLinear as written, the exact arithmetic the int8 kernels
    approximate (up to float rounding: 1 step)."""
    import numpy as np
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    if not fused:
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    s = ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"])
    names = [o.name for o in s.get_outputs()]
    feeds = np.load(inputs)
    out: dict[str, list] = {n: [] for n in names}
    for k in range(len(feeds[feeds.files[0]])):
        for n, v in zip(names, s.run(None, {i.name: feeds[i.name][k] for i in s.get_inputs()}), strict=True):
            out[n].append(v)
    return out


def compare(model: Path, inputs: Path, reference: Path) -> None:
    """Run `model` on `inputs` here and print, per output, how it differs from `reference` (.npz
    of the same outputs computed elsewhere), as one JSON line. The device side of this script."""
    import numpy as np

    ref = np.load(reference)
    result = {}
    for name, values in run_probe(model, inputs).items():
        d = np.abs(np.stack(values).astype(np.float64) - ref[name].astype(np.float64))
        result[name] = {"differ": float((d > 0).mean()), "count": int((d > 0).sum()), "size": int(d.size),
                        "max": float(d.max()), "mean": float(d.mean()), "scale": float(np.abs(ref[name]).max()),
                        "per_input": [float(v.max()) for v in d]}
    print(json.dumps(result))


def on_device(model: Path, inputs: Path, reference: Path) -> dict:
    cmd = [sys.executable, str(REPO / "tools" / "emulated_device.py"), "run", "--", DEVICE_PYTHON,
           str(Path(__file__).resolve()), "compare", str(model), str(inputs), str(reference)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode:
        raise SystemExit(f"device side failed: {p.stderr.strip()[-2000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def exactness(model: Path, work: Path, layer: dict, x86: dict, feeds: Path) -> dict:
    """An origin layer alone (its int8 inputs → its int8 output), fed the very tensors both hosts
    gave it on the inputs where they agreed: x86's and ARM's fused kernels against the unfused
    (exact) arithmetic, in quantisation steps."""
    import numpy as np
    import onnx.utils

    keep = [k for k, d in enumerate(layer["per_input"]) if d > 0 and
            all(x86["diff"][i]["per_input"][k] == 0 for i in layer["inputs"])]
    names = layer["inputs"]
    sub = work / f"layer{layer['index']}.onnx"
    onnx.utils.extract_model(str(model), str(sub), names, [layer["tensor"]])
    np.savez(work / "layer_in.npz", **{n: np.stack([x86["values"][n][k] for k in keep]) for n in names})
    exact = run_probe(sub, work / "layer_in.npz", fused=False)
    np.savez(work / "layer_exact.npz", **{k: np.stack(v) for k, v in exact.items()})
    fused = np.stack(run_probe(sub, work / "layer_in.npz")[layer["tensor"]]).astype(np.float64)
    arm = on_device(sub, work / "layer_in.npz", work / "layer_exact.npz")[layer["tensor"]]
    d = np.abs(fused - np.stack(exact[layer["tensor"]]).astype(np.float64))
    return {"x86_vs_exact_max": float(d.max()), "x86_vs_exact_count": int((d > 0).sum()),
            "arm_vs_exact_max": arm["max"], "arm_vs_exact_count": arm["count"], "elements": arm["size"]}


def analyse(run: Path, images: int) -> dict:
    import numpy as np

    sys.path.insert(0, str(REPO))
    from edgetune.run import open_run
    from edgetune.tasks import get_task

    rdir, manifest = open_run(run)
    task = get_task(manifest.task)
    model = run / "export" / "cpu-int8" / "model.onnx"
    if not model.is_file():
        raise SystemExit(f"{model} is missing: run `edgetune export {run} --target cpu-int8` first")
    work = WORK / run.name
    work.mkdir(parents=True, exist_ok=True)
    rows, feed = probe_model(model, work / "probe.onnx")
    x = np.stack(task.export_inputs(manifest.spec, manifest.data, count=images))
    np.savez(work / "inputs.npz", **{feed: x})
    ref = run_probe(work / "probe.onnx", work / "inputs.npz")
    plain = run_probe(model, work / "inputs.npz")
    output = next(iter(plain))
    assert np.array_equal(np.stack(plain[output]), np.stack(ref[output])), "probing changed the model's output"
    np.savez(work / "x86.npz", **{k: np.stack(v) for k, v in ref.items()})
    diff = on_device(work / "probe.onnx", work / "inputs.npz", work / "x86.npz")
    diff[feed] = {"per_input": [0.0] * len(x)}  # the same input on both hosts
    x86 = {"diff": diff, "values": ref | {feed: list(x)}}
    for i, r in enumerate(rows):  # an origin on any one input (later ones may hide it under an earlier difference)
        r |= diff[r["tensor"]] | {"index": i}
        r["origin"] = any(d > 0 and all(diff[t]["per_input"][k] == 0 for t in r["inputs"])
                          for k, d in enumerate(r["per_input"]))
        if r["origin"]:
            r["exactness"] = exactness(model, work, r, x86, work / "inputs.npz")
    return {"run": str(run), "task": manifest.task, "images": len(x), "layers": rows, "output": diff[output],
            "metric_name": task.metric_name, "metric_fused": host_metric(task, manifest, model, fused=True),
            "metric_exact": host_metric(task, manifest, model, fused=False)}


def host_metric(task: Any, manifest: Any, model: Path, *, fused: bool) -> float:
    """The artefact's val metric here, with ORT's fused int8 kernels or the exact (unfused) arithmetic."""
    import onnxruntime as ort

    from edgetune.runtime import Session

    so = ort.SessionOptions()
    if not fused:
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    s = ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    session = Session(model, None, "onnxruntime", lambda x: s.run(None, {name: x}), input_name=name,
                      input_shape=(), output_shape=())
    return float(task.evaluate(session, manifest.spec, manifest.data)[task.metric_name])


def markdown(results: list[dict]) -> str:
    command = " ".join(["python benchmarks/aarch64_layers.py", *sys.argv[1:]])
    parity = json.loads(PARITY.read_text()) if PARITY.is_file() else {}
    origins = [x["exactness"] for r in results for x in r["layers"] if x["origin"]]
    lines = ["## aarch64-layers: where x86 and aarch64 int8 differ, and which one is exact (issue 21)", "",
             f"Command: `{command}`. cpu-int8 (ORT QDQ, u8 activations / s8 per-channel weights); every uint8 "
             "tensor between fused int8 kernels compared, x86 (this AVX2 host) vs the emulated aarch64 device "
             "(Cortex-A76 features, dot-product kernels), same real val inputs. *Origin*: inputs equal on both, "
             "output differs on some input (there the two builds' kernels compute differently).", "",
             f"Over all {len(origins)} origins, fed identical int8 inputs: x86's fused kernels differ from the exact "
             f"arithmetic in {sum(e['x86_vs_exact_count'] for e in origins):,} elements (up to "
             f"{max((e['x86_vs_exact_max'] for e in origins), default=0):.0f} steps), aarch64's in "
             f"{sum(e['arm_vs_exact_count'] for e in origins):,} (up to "
             f"{max((e['arm_vs_exact_max'] for e in origins), default=0):.0f}).", "",
             "| task | int8 tensors | differ anywhere | origins (by op) | largest origin Δ (steps) | "
             "final output max abs Δ | metric x86 fused | x86 exact (unfused) | aarch64 (aarch64-parity) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        layers = r["layers"]
        origins = [x for x in layers if x["origin"]]
        ops = ", ".join(f"{op} {n}" for op, n in Counter(x["op"] for x in origins).most_common()) or "none"
        worst = max((x["max"] for x in origins), default=0)
        lines.append(f"| {r['task']} ({r['images']} val inputs) | {len(layers)} | "
                     f"{sum(x['max'] > 0 for x in layers)} | {len(origins)}: {ops} | {worst:.0f} | "
                     f"{r['output']['max']:.3g} (of {r['output']['scale']:.3g}) | {r['metric_fused']:.4f} | "
                     f"{r['metric_exact']:.4f} | {arm(parity, r)} |")
    for r in results:
        origins = sorted((x for x in r["layers"] if x["origin"]), key=lambda x: -x["exactness"]["x86_vs_exact_count"])
        if origins:
            lines += ["", f"{r['task']}: each origin alone, fed the int8 tensors both hosts agreed on; fused kernels vs "
                      "the unfused DequantizeLinear → float op → QuantizeLinear arithmetic (exact up to 1 step of "
                      "float rounding)", "",
                      "| layer | op | elements | x86 ≠ exact (max steps) | aarch64 ≠ exact (max steps) |",
                      "|---|---|---|---|---|"]
            for x in origins:
                e = x["exactness"]
                lines.append(f"| `{x['layer']}` | {x['op']} | {e['elements']:,} | {e['x86_vs_exact_count']:,} "
                             f"({e['x86_vs_exact_max']:.0f}) | {e['arm_vs_exact_count']:,} ({e['arm_vs_exact_max']:.0f}) |")
    return "\n".join(lines)


def arm(parity: dict, r: dict) -> str:
    row = parity.get(f"{r['run']}:cpu-int8")
    return f"{row['aarch64']:.4f}" if row else "not measured"


def main() -> None:
    import argparse

    if sys.argv[1:2] == ["compare"]:
        compare(*map(Path, sys.argv[2:5]))
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", nargs="*", type=Path)
    ap.add_argument("--images", type=int, default=8)
    a = ap.parse_args()
    results = [analyse(run.resolve(), a.images) for run in a.runs or RUNS]
    (WORK / "layers.json").write_text(json.dumps(results, indent=1))
    sys.path.insert(0, str(Path(__file__).parent))
    from _results import write_section

    text = markdown(results)
    write_section("aarch64-layers", text)
    print(text)


if __name__ == "__main__":
    main()
