"""No network at run time, proven on the whole fast path: data → finetune → export → bench →
report → predict, in a child process per task that (a) runs in a network namespace with
no interfaces (`unshare -n`, where the kernel lets us) and (b) records every attempt to open a
connection or resolve a name through a Python audit hook. The test needs zero attempts, so a
telemetry ping, font download or hub call that slips in later fails it even where unshare is
unavailable."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HOOK = r'''
import json, sys
attempts = []
def hook(event, args):
    if event in ("socket.connect", "socket.getaddrinfo", "socket.gethostbyname", "urllib.Request",
                 "http.client.connect"):
        attempts.append(f"{event} {args[1] if event == 'socket.connect' else args[0]!r}")
sys.addaudithook(hook)
'''

CHILD = HOOK + r'''
from click.testing import CliRunner
from edgetune.cli.main import cli
work, task = sys.argv[1], sys.argv[2]
data = {
    "classify": [["data", "fashion-mnist", "--out", f"{work}/data", "--per-class", "20", "--val-per-class", "10"],
                 ["finetune", "--model", "test_tinynet", "--data", f"{work}/data", "--out", f"{work}/run",
                  "--epochs", "2"]],
    "detect": [["data", "objects-on-photos", "--out", f"{work}/data", "--train", "8", "--val", "4", "--long-side", "96"],
               ["finetune", "--model", "test_yolo_tiny", "--data", f"{work}/data/data.yaml", "--out", f"{work}/run",
                "--epochs", "1", "--batch", "4", "--img-size", "64"]],
}[task]
bench = ["bench", f"{work}/run/export/cpu-int8", "--profile", "raspberry-pi-5", "--runs", "100"]
steps = [*data, ["export", f"{work}/run", "--target", "cpu-int8", "--calib-size", "8"], bench]
if task == "classify":
    # OpenVINO's converter and NNCF once (their telemetry has its own test); the device estimate
    # once: its reference model is built from ultralytics' YAML into the empty cache, the part
    # that could reach for a download. The other tasks' benches skip it (then it is arithmetic).
    steps.append(["export", f"{work}/run", "--target", "openvino-int8", "--calib-size", "8"])
else:
    bench.append("--no-estimate")
steps.append(["report", f"{work}/run"])
done = []
for args in steps:
    r = CliRunner().invoke(cli, args + ["--json"] if args[0] != "data" else args)
    if r.exit_code != 0:
        print(json.dumps({"failed": args, "stderr": r.stderr[-1500:], "attempts": attempts}))
        sys.exit(1)
    done.append(args[0])
import glob
pattern = {"classify": "data/val/*/*.png", "detect": "data/images/val/*.jpg"}[task]
src = sorted(glob.glob(f"{work}/{pattern}"))[0]
r = CliRunner().invoke(cli, ["predict", f"{work}/run/export/cpu-int8", src, "--json"])
if r.exit_code != 0:
    print(json.dumps({"failed": ["predict"], "stderr": r.stderr[-1500:], "attempts": attempts}))
    sys.exit(1)
done.append("predict")
print(json.dumps({"steps": done, "attempts": attempts}))
'''


def _unshare_works() -> bool:
    return shutil.which("unshare") is not None and subprocess.run(
        ["unshare", "-n", "true"], capture_output=True).returncode == 0


# Every in-process test already fails on a connection attempt (the audit hook in conftest.py);
# these fresh processes add the kernel's proof, for the classifier's path (with OpenVINO, NNCF and
# the device estimate's reference build) and the detector's (ultralytics: the most network-minded
# library here). The keyword path runs in-process under the hook (tests/test_kws.py).
# They are slow tests (in CI's selection).
@pytest.mark.slow
@pytest.mark.parametrize("task", ["classify", "detect"])
def test_whole_fast_path_with_the_network_denied(task, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGETUNE_CACHE", str(tmp_path / "cache"))  # nothing pre-fetched to lean on
    cmd = [sys.executable, "-c", CHILD, str(tmp_path / "w"), task]
    namespaced = _unshare_works()
    if namespaced:
        cmd = ["unshare", "-n", *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    out = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.stdout.strip() else {}
    assert proc.returncode == 0, (out or proc.stderr[-2000:])
    assert out["attempts"] == [], out["attempts"]
    assert out["steps"] == ["data", "finetune", "export", "bench", *(["export"] if task == "classify" else []),
                            "report", "predict"]
    print(f"network namespace: {namespaced}; connection attempts: {len(out['attempts'])}")
    assert Path(tmp_path / "w" / "run" / "report.html").is_file()


def test_the_audit_hook_sees_a_connection_attempt():
    """The guard above is only as good as its hook: a deliberate connect must be recorded."""
    code = HOOK + (
        "import socket\n"
        "try:\n    socket.create_connection(('192.0.2.1', 80), timeout=0.2)\nexcept OSError:\n    pass\n"
        "print(json.dumps(attempts))\n")
    cmd = [sys.executable, "-c", code]
    if _unshare_works():
        cmd = ["unshare", "-n", *cmd]
    attempts = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
    assert any(a.startswith("socket.connect") and "192.0.2.1" in a for a in attempts), attempts


def test_openvino_and_nncf_telemetry_are_declined_without_a_consent_file(tmp_path):
    """OpenVINO's converter and NNCF send analytics unless ~/intel holds a 'no' or CI=true is set
    (no environment switch exists). Importing edgetune declines them for the process, and leaves
    the user's home alone; without edgetune the same check says NO_FILE, which means 'send'."""
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "TF_BUILD", "JENKINS_URL")}
    env["HOME"] = str(tmp_path)
    check = ("from openvino_telemetry.utils.opt_in_checker import OptInChecker; "
             "print(OptInChecker().check(False, True).name)")
    with_edgetune = subprocess.run([sys.executable, "-c", "import edgetune; " + check +
                                    "; from nncf.telemetry.wrapper import NNCFTelemetry; "
                                    "print(NNCFTelemetry()._impl.consent)"],
                                   capture_output=True, text=True, env=env)
    without = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, env=env)
    assert with_edgetune.stdout.split() == ["DECLINED", "False"], with_edgetune.stderr[-1500:]
    assert without.stdout.split() == ["NO_FILE"], without.stderr[-1500:]
    assert not (tmp_path / "intel" / "openvino_telemetry").exists()
