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


def test_export_emulate_takes_one_int8_target(tiny_run):
    res = invoke("export", tiny_run, "--target", "cpu-fp32", "--emulate")
    assert res.exit_code == 2 and res.stderr.strip() == (
        "edgetune: error: --emulate judges int8 targets by the metric an aarch64 board computes; cpu-fp32 is fp32, "
        "checked against PyTorch instead (hint: use it with an int8 target (cpu-int8, openvino-int8, litert-int8), "
        "or run `edgetune bench --emulate` on this one)")
    res = invoke("export", tiny_run, "--target", "auto", "--profile", "raspberry-pi-5", "--emulate")
    assert res.exit_code == 2 and "--target auto also measures latency, which emulation cannot" in res.stderr


def test_export_emulate_without_a_device_fails_before_building(tiny_run, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGETUNE_EMU_DIR", str(tmp_path / "none"))
    res = invoke("export", tiny_run, "--target", "cpu-int8", "--emulate")
    assert res.exit_code == 7 and f"no emulated aarch64 device in {tmp_path / 'none'}" in res.stderr
    assert not (Path(tiny_run) / "export-failed" / "cpu-int8").exists()


def test_emulated_device_refuses_a_val_split_it_cannot_remake(tmp_path):
    from edgetune.contract import DataRef
    from edgetune.emulated import EmulatedDevice, device_data
    from edgetune.errors import AssetError, UsageError

    dev = EmulatedDevice("root@127.0.0.1", 2222, (), "edgetune", (str(tmp_path / "shared"),))
    with pytest.raises(UsageError) as e:
        device_data(dev, DataRef(root="/d", layout="split:0.2"))
    assert e.value.message == ("the emulated device measures on a val folder, and this run split its val 0.2 of /d "
                               "itself (layout split:0.2)")
    with pytest.raises(AssetError, match="is not visible inside the emulated device"):
        device_data(dev, DataRef(root=str(tmp_path / "elsewhere")))
    assert device_data(dev, DataRef(root=str(tmp_path / "shared" / "set"))) == str(tmp_path / "shared" / "set")


def _files(folder: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


def test_bench_metric_only_measures_here_and_writes_nothing(tiny_run, tiny_exports):
    before = _files(Path(tiny_run))
    r = invoke_json("bench", tiny_run, "--target", "cpu-int8", "--profile", "raspberry-pi-5", "--metric-only")
    assert r["metric"] == tiny_exports["cpu-int8"]["metric"] and r["metric_source"] == "measured"
    assert "latency_ms" not in r and _files(Path(tiny_run)) == before


def _copy(run: Path, tmp_path: Path) -> Path:
    import shutil

    return Path(shutil.copytree(run, tmp_path / Path(run).name, ignore=shutil.ignore_patterns("bench", "fleet")))


def test_export_emulate_gates_on_the_device_metric(tiny_run, tiny_exports, monkeypatch, tmp_path):
    """The plumbing of `export --emulate` with the device replaced by one that evaluates here but
    reports plain int8 five points lower (as if the board's kernels lost accuracy): the gate,
    the search and export.json follow the device, this host's metric is recorded beside it. (The
    real device is exercised by the slow tests below.)"""
    import edgetune.emulated as emulated
    from edgetune.artifact import open_export
    from edgetune.tasks import get_task

    calls: list[str] = []

    def fake_device(folder, data, *, quiet=False):
        export = open_export(folder)
        metric = get_task(export.meta.task).evaluate(export.open_session(), export.meta.spec, data)[export.meta.spec.metric_name]
        calls.append(export.meta.target)
        plain = export.meta.target == "cpu-int8" and calls.count("cpu-int8") == 1
        return {"metric": metric - 0.05 if plain else metric}

    monkeypatch.setattr(emulated, "device_metric", fake_device)
    monkeypatch.setattr(emulated, "find_device", lambda: None)
    monkeypatch.setattr(emulated, "device_data", lambda dev, ref: None)
    run = _copy(tiny_run, tmp_path)  # the session's tiny_run keeps the artefact other tests compare with
    r = invoke_json("export", run, "--target", "cpu-int8", "--calib-size", 100, "--emulate")
    host = tiny_exports["cpu-int8"]
    assert calls[:2] == ["cpu-fp32", "cpu-int8"] and len(calls) >= 3  # reference, plain, then searched variants
    e = r["emulated_aarch64"]
    # like with like: the host export searched too when its own plain int8 lost more than the budget
    host_plain = (host.get("accuracy_aware") or {}).get("plain_drop", host["drop"])
    assert r["accuracy_aware"]["plain_drop"] == pytest.approx(host_plain + 0.05)
    assert r["accuracy_aware"]["met"] and r["drop"] <= 0.01 and r["metric"] == e["metric"]
    assert e["metric_fp32"] == r["metric_fp32"] == host["metric_fp32"] and e["host_metric_fp32"] == host["metric_fp32"]
    meta = json.loads((run / "export" / "cpu-int8" / "export.json").read_text())
    assert meta["emulated_aarch64"]["measured_on"] == emulated.LABEL and meta["metric"] == e["metric"]


def _device_sharing(*paths: Path):
    """The running emulated device that sees `paths`, or skip with the reason (CI has none)."""
    from edgetune.emulated import find_device

    try:
        dev = find_device()
    except Exception:  # noqa: BLE001
        pytest.skip(f"no emulated aarch64 device running in {device_dir()} ({SETUP})")
    if not all(any(Path(str(p)).resolve().is_relative_to(s) for s in dev.shared) for p in paths):
        pytest.skip("the test's folders are not shared with the emulated device (start it with "
                    "--share /tmp/pytest-of-$USER as well)")
    return dev


@pytest.mark.slow
def test_emulated_metric_matches_x86_for_a_float_artefact(tiny_run, tiny_exports):
    """The real remote path into the emulated board: a float artefact's metric there equals x86's."""
    _device_sharing(tiny_run)
    r = invoke_json("bench", tiny_run, "--target", "cpu-fp32", "--profile", "raspberry-pi-5", "--emulate")
    assert r["measured_on"] == "emulated aarch64 (qemu): metric only, no latency" and "latency_ms" not in r
    assert r["metric_source"] == "measured"
    assert abs(r["metric"] - tiny_exports["cpu-fp32"]["metric"]) <= 0.002


@pytest.mark.slow
def test_remote_bench_on_the_emulated_board_for_all_three_tasks(tiny_run, fm_data, det_run, det_data, kws_run,
                                                                 kws_data, tmp_path):
    """`bench --remote` into the emulated aarch64 board, the real path (tar over ssh, the board's
    own `edgetune bench` on its ARM kernels, the result kept in the run) for each task's int8
    artefact; the board measures the metric on the shared val data."""
    dev = _device_sharing(tmp_path, fm_data, det_data, kws_data)
    ssh = [a for o in dev.ssh_options for a in ("--ssh-option", o)]
    for run, data in ((tiny_run, fm_data), (det_run[0], det_data), (kws_run[0], kws_data)):
        run = _copy(run, tmp_path)  # the session's runs keep their artefacts for other tests
        host = invoke_json("export", run, "--target", "cpu-int8", "--max-drop", "none")
        res = invoke("bench", run, "--target", "cpu-int8", "--profile", "raspberry-pi-5", "--runs", 100,
                     "--data", data, "--remote", dev.host, "--remote-edgetune", dev.edgetune, *ssh, "--json")
        # latency under emulation is ~100x a Pi's, so its budgets may fail (6): the result still comes back
        assert res.exit_code in (0, 6), res.stderr
        r = json.loads(res.stdout)
        assert r["remote"] == dev.host and r["measured_on"].endswith("aarch64)"), r["measured_on"]
        assert r["metric_source"] == "measured" and abs(r["metric"] - host["metric"]) <= 0.05, (run, r, host)
        assert r["runs"] == 100 and r["latency_ms"]["p50"] > 0
        kept = json.loads((Path(run) / "bench" / "raspberry-pi-5" / "cpu-int8.json").read_text())
        assert kept["remote"] == dev.host and kept["metric"] == r["metric"]


@pytest.mark.slow
def test_base_dependencies_have_aarch64_wheels(tmp_path):
    """`pip install edgetune` on a Raspberry Pi must not need a compiler: every base dependency
    has a wheel for aarch64 with glibc 2.36 (Debian bookworm = Raspberry Pi OS) and CPython 3.11
    on the package index (reaches the index)."""
    import importlib.util

    import tomllib

    spec = importlib.util.spec_from_file_location("emulated_device", REPO / "tools" / "emulated_device.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    # the base install, and the device-side runtimes of the LiteRT and NCNN targets (what the emulated device installs)
    deps = [*tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"], *tool.device_runtimes()]
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
