"""`bench --emulate` (issue 21): the metric as an aarch64 board computes it, from the emulated
device of tools/emulated_device.py. Fast tests cover what needs no device: the one-line errors;
the slow ones use the device when it is set up (skipped with the reason otherwise) and check that
the base dependencies still have aarch64 wheels."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import invoke, invoke_json

from edgetune.emulated import SETUP, device_dir

REPO = Path(__file__).resolve().parents[1]


def test_missing_device_names_the_setup_command(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGETUNE_EMU_DIR", str(tmp_path / "none"))
    res = invoke("bench", tmp_path, "--profile", "raspberry-pi-5", "--emulate")
    assert res.exit_code == 7 and res.stderr.strip() == (
        f"edgetune: error: no emulated aarch64 device in {tmp_path / 'none'} (hint: create and start it: {SETUP})")


def test_stopped_device_and_a_hand_edited_device_file(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGETUNE_EMU_DIR", str(tmp_path))
    port = 2222
    (tmp_path / "sshd.pid").write_text("999999999")  # no such process
    (tmp_path / "device.json").write_text(json.dumps({"host": "root@127.0.0.1", "port": port, "edgetune": "x",
                                                      "ssh_options": ["-o", f"Port={port}"], "shared": ["/work"],
                                                      "pid_file": str(tmp_path / "sshd.pid")}))
    res = invoke("bench", tmp_path, "--profile", "raspberry-pi-5", "--emulate")
    assert res.exit_code == 7 and f"the emulated aarch64 device is not running (its sshd for port {port} is gone)" in res.stderr
    for bad in ({"port": "x"}, [1, 2], {"host": "h", "port": 1, "edgetune": "e", "ssh_options": "-o Port=1"}):
        (tmp_path / "device.json").write_text(json.dumps(bad))
        res = invoke("bench", tmp_path, "--profile", "raspberry-pi-5", "--emulate")
        assert res.exit_code == 7 and "is not a device file written by tools/emulated_device.py" in res.stderr


def test_emulate_and_remote_together_is_a_usage_error(tmp_path):
    res = invoke("bench", tmp_path, "--profile", "raspberry-pi-5", "--emulate", "--remote", "pi@board")
    assert res.exit_code == 2 and "--emulate and --remote are two different devices" in res.stderr


def test_tool_refuses_a_host_that_cannot_in_one_line(tmp_path):
    import shutil

    as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if os.geteuid() == 0 else []
    if as_nobody and not shutil.which("setpriv"):
        pytest.skip("root without setpriv (util-linux): cannot drop to a user to show the not-root line")
    p = subprocess.run([*as_nobody, "/usr/bin/python3" if as_nobody else sys.executable, str(REPO / "tools/emulated_device.py"),
                        "setup", "--dir", str(tmp_path)], capture_output=True, text=True)
    assert p.returncode == 7 and p.stderr.strip().startswith("emulated_device: needs root")


def _device_running() -> bool:
    from edgetune.emulated import find_device

    try:
        find_device()
    except Exception:  # noqa: BLE001
        return False
    return True


@pytest.mark.slow
def test_emulated_metric_matches_x86_for_a_float_artefact(tiny_run, tiny_exports):
    """The real remote path into the emulated board: a float artefact's metric there equals x86's."""
    if not _device_running():
        pytest.skip(f"no emulated aarch64 device running in {device_dir()} ({SETUP})")
    if not any(Path(str(tiny_run)).resolve().is_relative_to(p) for p in
               json.loads((device_dir() / "device.json").read_text())["shared"]):
        pytest.skip("the test's run folder is not shared with the emulated device (start it with --share /tmp/pytest-of-$USER)")
    r = invoke_json("bench", tiny_run, "--target", "cpu-fp32", "--profile", "raspberry-pi-5", "--emulate")
    assert r["measured_on"] == "emulated aarch64 (qemu): metric only, no latency" and "latency_ms" not in r
    assert r["metric_source"] == "measured"
    assert abs(r["metric"] - tiny_exports["cpu-fp32"]["metric"]) <= 0.002


@pytest.mark.slow
def test_base_dependencies_have_aarch64_wheels(tmp_path):
    """`pip install edgetune` on a Raspberry Pi must not need a compiler: every base dependency
    has a wheel for aarch64 with glibc 2.36 (Debian bookworm = Raspberry Pi OS) and CPython 3.11
    on the package index (reaches the index)."""
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    # the base install, and the device-side runtimes of the LiteRT and NCNN targets (not their converters)
    deps = [*project["dependencies"], *extras["litert"], *(d for d in extras["ncnn"] if d.startswith("ncnn=="))]
    platforms = [a for v in range(17, 37) for a in ("--platform", f"manylinux_2_{v}_aarch64")]  # pip 23 lists each
    p = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(tmp_path), "--only-binary",
                        ":all:", *platforms, "--platform", "manylinux2014_aarch64",
                        "--python-version", "3.11", "--implementation", "cp", *deps],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-2000:]
    wheels = [w.name for w in tmp_path.glob("*.whl")]
    assert any(w.startswith("onnxruntime-") and "aarch64" in w for w in wheels), wheels
    assert any(w.startswith("openvino-") and "aarch64" in w for w in wheels), wheels
    assert any(w.startswith("ai_edge_litert-") and "aarch64" in w for w in wheels), wheels
