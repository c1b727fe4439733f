"""int8 numerics on ARM kernels: each task's artefacts evaluated on this x86 host and inside the
emulated aarch64 device (tools/emulated_device.py; qemu-user runs the aarch64 builds of ONNX
Runtime and OpenVINO, so their ARM kernels compute the metric). RESULTS.md "aarch64-parity".

    sudo python tools/emulated_device.py setup && sudo python tools/emulated_device.py start
    python benchmarks/aarch64_parity.py [RUN ...]      # default: make demo's three runs

x86 = the metric `export` measured on the val split (export.json); aarch64 = `edgetune bench
--emulate` on the same val files. Emulated wall time is reported only as the cost of the check:
latency under emulation says nothing about a board.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from _results import write_section

REPO = Path(__file__).resolve().parents[1]
ET = str(Path(sys.executable).with_name("edgetune"))
RUNS = [REPO / "runs/demo/run", REPO / "runs/demo/det", REPO / "runs/demo/kws"]
TARGETS = ("cpu-int8", "openvino-int8")


def cli(*args: object) -> dict:
    p = subprocess.run([ET, *map(str, args), "--json"], capture_output=True, text=True)
    if p.returncode:
        raise SystemExit(f"{' '.join(map(str, args))}: {p.stderr.strip()}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> None:
    runs = [Path(a) for a in sys.argv[1:]] or RUNS
    rows = []
    for run in runs:
        task = json.loads((run / "edgetune.json").read_text())["task"]
        for target in TARGETS:
            meta_file = run / "export" / target / "export.json"
            if not meta_file.is_file():
                cli("export", run, "--target", target)
            meta = json.loads(meta_file.read_text())
            t = time.perf_counter()
            emu = cli("bench", run, "--target", target, "--profile", "raspberry-pi-5", "--emulate")
            rows.append({"task": task, "target": target, "metric_name": emu["metric_name"], "x86": meta["metric"],
                         "aarch64": emu["metric"], "source": emu["metric_source"], "seconds": time.perf_counter() - t})
            print(rows[-1], flush=True)
    lines = ["Command: `python benchmarks/aarch64_parity.py` (make demo's runs; aarch64 = `edgetune bench --emulate`, "
             "Debian bookworm arm64 under qemu-user with edgetune's light install; same val files).", "",
             "| task | target | metric | x86 (export.json) | aarch64 (emulated) | aarch64 − x86 | emulated eval s |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['task']} | {r['target']} | {r['metric_name']} | {r['x86']:.4f} | {r['aarch64']:.4f} | "
              f"{r['aarch64'] - r['x86']:+.4f} | {r['seconds']:.0f} |" for r in rows]
    write_section("aarch64-parity", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
