"""`bench --remote`: the same bench on a device over ssh, tested against a real OpenSSH server on
loopback (tests/loopback_sshd.py). Skips where sshd is not installed (.ci/run installs it as root)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from conftest import invoke
from loopback_sshd import free_port

REMOTE_EDGETUNE = f"{sys.executable} -m edgetune.cli.main"  # the device's edgetune: this venv's


def test_bench_remote_runs_there_and_keeps_the_result_here(tiny_run, tiny_exports, sshd, tmp_path):
    # the device's temp folder lives in a TMPDIR of this test's own (other workers bench remotely too)
    device_tmp = tmp_path / "device-tmp"
    device_tmp.mkdir()
    os.utime(device_tmp, ns=(0, 0))
    res = invoke("bench", tiny_run, "--target", "cpu-int8", "--profile", "raspberry-pi-5", "--remote",
                 "root@127.0.0.1", "--remote-edgetune", REMOTE_EDGETUNE, *sshd,
                 "--ssh-option", f"SetEnv=TMPDIR={device_tmp}", "--json")
    assert res.exit_code == 0, res.stderr[-1500:]
    r = json.loads(res.stdout)
    assert r["remote"] == "root@127.0.0.1" and r["target"] == "cpu-int8" and r["profile"] == "raspberry-pi-5"
    assert r["latency_ms"]["p50"] > 0 and r["peak_rss_mb"] > 10 and r["estimate"] is None  # measured there
    # The device has only the export folder: the metric is the one export measured, and it says so.
    assert r["metric_source"].startswith("export.json (no val data here")
    assert r["metric"] == json.loads((tiny_run / "export" / "cpu-int8" / "export.json").read_text())["metric"]
    kept = json.loads((tiny_run / "bench" / "raspberry-pi-5" / "cpu-int8.json").read_text())
    assert kept["remote"] == "root@127.0.0.1" and kept["latency_ms"] == r["latency_ms"]
    assert "raspberry-pi-5" in (tiny_run / "report.md").read_text()
    # the device's temp folder was made there (the folder changed) and is gone
    assert device_tmp.stat().st_mtime_ns > 0 and list(device_tmp.iterdir()) == []


def test_bench_remote_sends_a_custom_profile_and_gates_on_the_device_numbers(tiny_run, tiny_exports, sshd, tmp_path):
    text = Path("profiles/x86-64-avx512.yaml").read_text().replace(
        "classify: {latency_p50_ms: 20", "classify: {latency_p50_ms: 0.00001")
    prof = tmp_path / "strict.yaml"
    prof.write_text(text)
    res = invoke("bench", tiny_run / "export" / "cpu-fp32", "--profile", prof, "--remote", "root@127.0.0.1",
                 "--remote-edgetune", REMOTE_EDGETUNE, *sshd, "--json")
    assert res.exit_code == 6, res.stderr[-1500:]
    r = json.loads(res.stdout)
    assert r["violations"][0].startswith("latency_p50_ms: ") and r["remote"] == "root@127.0.0.1"
    assert "misses budget(s): latency_p50_ms" in res.stderr
    assert (tiny_run / "bench" / "x86-64-avx512" / "cpu-fp32.json").is_file()


@pytest.mark.parametrize("case", ["unreachable", "no edgetune there", "not edgetune there", "bad data there"])
def test_bench_remote_failures_are_one_line(tiny_run, tiny_exports, sshd, tmp_path, case):
    args = ["bench", tiny_run, "--target", "cpu-int8", "--profile", "raspberry-pi-5", "--remote", "root@127.0.0.1",
            "--remote-edgetune", REMOTE_EDGETUNE, *sshd, "--quiet"]
    if case == "unreachable":  # nothing listens on that port
        args[args.index(sshd[1])] = f"Port={free_port()}"
        code, line = 9, "edgetune: error: ssh to root@127.0.0.1 failed: ssh: connect to host 127.0.0.1 port"
        hint = "(hint: check that `ssh root@127.0.0.1 true` works without a password (a key or an agent); "
    elif case == "no edgetune there":
        args[args.index(REMOTE_EDGETUNE)] = "/nowhere/bin/edgetune"
        code, line = 7, "edgetune: error: /nowhere/bin/edgetune not found on root@127.0.0.1: "
        hint = "(hint: install the light install there (docs/DEVICE.md) or pass --remote-edgetune with its path"
    elif case == "not edgetune there":  # a command that exits 0 and prints no result is not a pass
        args[args.index(REMOTE_EDGETUNE)] = "true"
        code, line = 9, "edgetune: error: true on root@127.0.0.1 exited 0 without a bench result: no output"
        hint = "(hint: point --remote-edgetune at edgetune itself, the same version as here)"
    else:  # the device's edgetune rejects what it got: its message and exit code come back
        args += ["--data", "/nowhere/val"]
        code, line = 3, "edgetune: error: on root@127.0.0.1 (exit 3): data folder /nowhere/val does not exist"
        hint = "(hint: pass --data DIR"  # the device's own hint
    res = invoke(*args)
    assert res.exit_code == code, res.stderr[-1500:]
    assert len(res.stderr.strip().splitlines()) == 1 and res.stderr.startswith(line), res.stderr
    assert hint in res.stderr
