"""int8 numerics on ARM kernels: each task's artefacts evaluated on this x86 host and inside the
emulated aarch64 device (tools/emulated_device.py; qemu-user runs the aarch64 builds of ONNX
Runtime and OpenVINO, so their ARM kernels compute the metric). RESULTS.md "aarch64-parity".

    sudo python tools/emulated_device.py setup && sudo python tools/emulated_device.py start
    python benchmarks/aarch64_parity.py [RUN ...] [--targets cpu-int8,openvino-int8,litert-int8]   # default: make demo's runs

Each row is saved in benchmarks/_work/aarch64_parity.json as it is measured, and the table is
written from every saved row, so a long run can be done in parts.

x86 = the metric `export` measured on the val split (export.json); aarch64 = `edgetune bench
--emulate` on the same val files (the device runs `bench --metric-only`; rows measured before that
existed also timed 100 discarded runs, which their wall time includes). Emulated wall time is
reported only as the cost of the check: latency under emulation says nothing about a board.
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
TARGETS = ("cpu-int8", "openvino-int8", "litert-int8")
SAVED = REPO / "benchmarks" / "_work" / "aarch64_parity.json"


def cli(*args: object) -> dict:
    p = subprocess.run([ET, *map(str, args), "--json"], capture_output=True, text=True)
    if p.returncode:
        raise SystemExit(f"{' '.join(map(str, args))}: {p.stderr.strip()}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("runs", nargs="*", type=Path)
    ap.add_argument("--targets", default=",".join(TARGETS))
    ap.add_argument("--table", action="store_true", help="only rewrite RESULTS.md's table from the saved rows")
    args = ap.parse_args()
    runs, targets = [r.resolve() for r in args.runs] or RUNS, args.targets.split(",")
    command = " ".join(["python benchmarks/aarch64_parity.py", *sys.argv[1:]])
    SAVED.parent.mkdir(parents=True, exist_ok=True)
    saved = json.loads(SAVED.read_text()) if SAVED.is_file() else {}
    for run in [] if args.table else runs:
        task = json.loads((run / "edgetune.json").read_text())["task"]
        for target in targets:
            meta_file = run / "export" / target / "export.json"
            if not meta_file.is_file():
                cli("export", run, "--target", target)
            meta = json.loads(meta_file.read_text())
            t = time.perf_counter()
            emu = cli("bench", run, "--target", target, "--profile", "raspberry-pi-5", "--emulate")
            row = {"task": task, "target": target, "metric_name": emu["metric_name"], "x86": meta["metric"],
                   "aarch64": emu["metric"], "source": emu["metric_source"], "seconds": time.perf_counter() - t,
                   "timed_runs": "latency_ms" in emu, "command": command}
            saved[f"{run}:{target}"] = row
            SAVED.write_text(json.dumps(saved, indent=1))
            print(row, flush=True)
    rows = list(saved.values())
    commands = "`, `".join(dict.fromkeys(r.get("command", "python benchmarks/aarch64_parity.py --targets cpu-int8")
                                         for r in rows))
    lines = ["## aarch64-parity: int8 metrics on x86 vs the emulated Cortex-A76 (issue 21)", "",
             f"Commands: `{commands}` (make demo's runs; aarch64 = `edgetune bench --emulate`, "
             "Debian bookworm arm64 under qemu-user with edgetune's light install; same val files).", "",
             "| task | target | metric | x86 (export.json) | aarch64 (emulated) | aarch64 − x86 | emulated eval s |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['task']} | {r['target']} | {r['metric_name']} | {r['x86']:.4f} | {r['aarch64']:.4f} | "
              f"{r['aarch64'] - r['x86']:+.4f} | {r['seconds']:.0f}{'*' if r.get('timed_runs', True) else ''} |"
              for r in rows]
    if any(r.get("timed_runs", True) for r in rows):
        lines += ["", "\\* measured before `bench --metric-only`: includes 100 discarded timed runs under emulation."]
    missing = [f"{json.loads((run / 'edgetune.json').read_text())['task']} {t}" for run in RUNS for t in TARGETS
               if f"{run}:{t}" not in saved]
    if missing:
        lines += ["", f"No row yet: {', '.join(missing)} (docs/DEVICE.md §6 says why)."]
    write_section("aarch64-parity", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
