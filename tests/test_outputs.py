"""Outputs that cannot be written: a read-only run or --out folder fails before the work starts,
and a disk that fills up during export leaves no partial artefact. Real file systems, not mocks:
a read-only bind mount and a tiny tmpfs, in a private mount namespace (`unshare -m`, root)."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

ET = f"{sys.executable} -m edgetune.cli.main"


def _namespaced(script: str) -> subprocess.CompletedProcess:
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode:
        pytest.skip("needs `unshare -m` (root) for a real read-only / full file system")
    return subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, timeout=600)


def test_read_only_run_folder_fails_before_export_work(tiny_run, tmp_path):
    run = shutil.copytree(tiny_run, tmp_path / "run", ignore=shutil.ignore_patterns("export", "bench"))
    r = _namespaced(f"mount --bind {run} {run} && mount -o remount,ro,bind {run} && "
                    f"{ET} export {run} --target cpu-fp32")
    assert r.returncode == 8, r.stderr[-1500:]
    assert r.stderr.strip().splitlines()[-1] == (f"edgetune: error: cannot write to export folder {run / 'export'}: "
                                                 "Read-only file system (hint: choose a folder you can write to "
                                                 "(and that has free space))")
    assert not (run / "export").exists()


def test_read_only_out_folder_fails_before_training(fm_data, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    r = _namespaced(f"mount --bind {ro} {ro} && mount -o remount,ro,bind {ro} && "
                    f"{ET} finetune --model test_tinynet --data {fm_data} --out {ro / 'run'} --epochs 1")
    assert r.returncode == 8, r.stderr[-1500:]
    assert f"cannot write to --out folder {ro / 'run'}: Read-only file system" in r.stderr
    assert "training on" not in r.stderr and "Traceback" not in r.stderr


def test_disk_full_during_export_keeps_nothing_partial(tiny_run, tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    # A 2 MB tmpfs holding the run (checkpoint + manifest + data are well under it); the filler
    # leaves ~40 kB, less than the ONNX artefact (~100 kB), so the export's commit hits ENOSPC.
    script = (f"mount -t tmpfs -o size=2m tmpfs {mnt} && cp -r {tiny_run} {mnt}/run && rm -rf {mnt}/run/export "
              f"{mnt}/run/bench && avail=$(df --output=avail -B1 {mnt} | tail -1) && "
              f"head -c $((avail - 40000)) /dev/zero > {mnt}/filler; "
              f"{ET} export {mnt}/run --target cpu-fp32; echo EXIT=$?; ls -a {mnt}/run/export")
    r = _namespaced(script)
    assert "EXIT=8" in r.stdout, r.stdout + r.stderr[-1500:]
    line = [x for x in r.stderr.splitlines() if x.startswith("edgetune: error:")]
    assert len(line) == 1 and "No space left on device" in line[0]
    assert line[0].endswith("(hint: check free space and permissions; no partial output was kept)")
    listing = r.stdout.split("EXIT=8", 1)[1].split()
    assert listing == [".", ".."], listing  # no cpu-fp32/, no temp folder
