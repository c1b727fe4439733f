"""A fine-tuned YOLO: edgetune's NCNN and LiteRT targets beside ultralytics' own exports of the same
checkpoint (`format=ncnn`, `format=tflite`, `format=tflite int8=True`), every export made with
the network refused (does it work offline?), every artefact scored by edgetune's evaluator on the
same held-out split, p50 measured side by side. Writes the "peers" section of RESULTS.md.

    python benchmarks/peer_exports.py [RUN]     (default: make demo's runs/demo/det)

ultralytics' LiteRT export writes boxes divided by the input size (TF convention); they are scaled
back before scoring. Its int8 calibrates on the data set's val split (ultralytics' default), so
its drop is, if anything, flattered.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from _results import interleaved_p50s, medians, write_section
from runtimes import export

PEERS = {"ultralytics format=ncnn": ("ncnn", False), "ultralytics format=tflite": ("tflite", False),
         "ultralytics format=tflite int8=True": ("tflite", True)}
OURS = ("cpu-fp32", "ncnn-fp32", "litert-fp32", "litert-int8")
_EXPORT = """
import json, socket, sys, time
attempts = []
def refuse(self, address, *a, **k):
    attempts.append(repr(address)); raise OSError("network disabled by the benchmark")
socket.socket.connect = refuse
import edgetune._env  # the offline switches an edgetune user has
from ultralytics import YOLO
t = time.perf_counter()
try:
    int8 = sys.argv[4] == "1"  # ultralytics refuses data= where it does not calibrate
    out = YOLO(sys.argv[1]).export(format=sys.argv[2], imgsz=int(sys.argv[3]), **({"int8": True, "data": sys.argv[5]} if int8 else {}))
    result = {"artifact": str(out), "seconds": time.perf_counter() - t}
except Exception as exc:
    result = {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}
print("RESULT " + json.dumps({**result, "network_attempts": len(attempts)}))
"""


def peer_export(checkpoint: Path, fmt: str, int8: bool, imgsz: int, data_yaml: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", _EXPORT, str(checkpoint), fmt, str(imgsz), "1" if int8 else "0",
                           data_yaml], capture_output=True, text=True, cwd=checkpoint.parent)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    return json.loads(line[7:]) if line else {"error": (proc.stderr.strip().splitlines() or ["no output"])[-1][:200]}


def artefact_file(path: Path) -> Path:
    return path / "model.ncnn.param" if path.is_dir() else path


def main(run: Path) -> None:
    from edgetune.run import RunDir
    from edgetune.runtime import Session, open_session
    from edgetune.tasks import get_task

    manifest = RunDir(run).read_manifest()
    task = get_task(manifest.task)
    x = task.export_inputs(manifest.spec, manifest.data, count=1)[0]
    ours = {t: export(run, t) for t in OURS}
    fp32 = ours["cpu-fp32"]["metric"]
    rows = ["| exporter | works offline | network attempts | export s | map50_95 | drop vs fp32 | size MB | "
            "p50 ms 1 thread | p50 ms 2 threads |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    artefacts, records = {}, {}
    with tempfile.TemporaryDirectory(prefix="peers-") as tmp:
        checkpoint = Path(tmp) / "model.pt"
        shutil.copyfile(RunDir(run).checkpoint, checkpoint)
        for name, (fmt, int8) in PEERS.items():
            r = peer_export(checkpoint, fmt, int8, int(x.shape[-1]), manifest.data.yaml)
            if "error" not in r:
                path = artefact_file(Path(r["artifact"]) if Path(r["artifact"]).is_absolute()
                                     else checkpoint.parent / r["artifact"])
                session = open_session(path)
                if fmt == "tflite":  # boxes come divided by the input size
                    def scaled(z, s=session, size=x.shape[-1]):
                        y = s.run(z)[0].copy()
                        y[:, :4] *= size
                        return [y]
                    session = Session(path, None, "litert", scaled, input_name=session.input_name,
                                      input_shape=session.input_shape, output_shape=session.output_shape)
                r["metric"] = float(task.evaluate(session, manifest.spec, manifest.data)[task.metric_name])
                r["size_mb"] = sum(f.stat().st_size for f in ([path, path.with_name("model.ncnn.bin")]
                                                                if fmt == "ncnn" else [path])) / 1e6
                artefacts[name] = path
            records[name] = r
        for t, r in ours.items():
            if "error" not in r:
                artefacts[f"edgetune {t}"] = Path(r["artifact"])
                records[f"edgetune {t}"] = {**r, "network_attempts": 0}
        p50 = medians(interleaved_p50s(artefacts, x, threads=(1, 2), rounds=3, runs=100))
    for name, r in records.items():
        if "error" in r:
            rows.append(f"| {name} | no: {r['error']} | {r.get('network_attempts', '')} | | | | | | |")
            continue
        rows.append(f"| {name} | yes | {r['network_attempts']} | {r['seconds']:.0f} | {r['metric']:.4f} | "
                    f"{fp32 - r['metric']:+.4f} | {r['size_mb']:.2f} | {p50[(name, 1)]:.2f} | {p50[(name, 2)]:.2f} |")
    command = f"python benchmarks/peer_exports.py {run}"
    write_section("peers", "## peers: ultralytics' own NCNN and LiteRT exports of the same fine-tune (issue 16)\n\n"
                  f"`{command}` ({manifest.model}, {x.shape[-1]} px; drop vs edgetune cpu-fp32 {fp32:.4f}, one "
                  "evaluator and val split for all; p50: medians of 3 alternating rounds of 100 runs, x86 host, "
                  "2 cores; export s of edgetune rows include its ONNX export and validation)\n\n" + "\n".join(rows)
                  + "\n")
    print("\n".join(rows))


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("runs/demo/det"))
