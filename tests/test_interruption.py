"""Interruption: Ctrl-C and kill -9 during finetune lose at most the running epoch and resume to the
same result; a kill during export never leaves an artefact that a later command would trust."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import invoke_json

from edgetune.fsutil import sha256_file

ET = [sys.executable, "-m", "edgetune.cli.main"]
# Enough epochs (about 0.25 s each) that a signal sent after the first lands mid-run even when the
# test process is starved for a second on a loaded 2-core host; with 4 the run could end first.
EPOCHS = 12


def _finetune(data: Path, out: Path, *extra: str) -> list[str]:
    return [*ET, "finetune", "--model", "test_tinynet", "--data", str(data), "--out", str(out), "--epochs", str(EPOCHS),
            "--patience", str(EPOCHS), "--seed", "3", "--quiet", *extra]


def _epochs_done(out: Path) -> int:
    try:
        return len(json.loads((out / "edgetune.json").read_text()).get("history", []))
    except (OSError, ValueError):
        return 0


def _start_and_stop_after(cmd: list[str], out: Path, epochs: int, sig: int) -> tuple[subprocess.Popen, int]:
    """Start `cmd`, wait until `epochs` epochs are in the manifest, then send `sig` at once
    (mid-way through the next epoch). Returns the process and the epochs done when signalled."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while _epochs_done(out) < epochs:
        assert proc.poll() is None, proc.communicate()[1][-1500:]
        assert time.time() < deadline
        time.sleep(0.01)
    done = _epochs_done(out)
    proc.send_signal(sig)
    proc.wait(timeout=120)
    return proc, done


def _history(out: Path) -> list[dict]:
    return json.loads((out / "edgetune.json").read_text())["history"]


@pytest.fixture(scope="module")
def uninterrupted(fm_data, tmp_path_factory) -> list[dict]:
    out = tmp_path_factory.mktemp("uninterrupted") / "run"
    subprocess.run(_finetune(fm_data, out), check=True, capture_output=True)
    return _history(out)


def _same_result(resumed: list[dict], reference: list[dict]) -> None:
    assert [h["epoch"] for h in resumed] == list(range(1, EPOCHS + 1))
    # Same seed, restored RNG state and optimiser: the metrics agree exactly per epoch on CPU.
    assert [h["top1"] for h in resumed] == [h["top1"] for h in reference]
    assert [h["loss"] for h in resumed] == pytest.approx([h["loss"] for h in reference], abs=1e-4)


def test_kill_9_mid_epoch_then_resume(fm_data, tmp_path, uninterrupted):
    out = tmp_path / "run"
    proc, done = _start_and_stop_after(_finetune(fm_data, out), out, 2, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    saved = _epochs_done(out)
    assert saved >= done >= 2  # at most the running epoch was lost
    r = subprocess.run(_finetune(fm_data, out, "--resume"), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-1500:]
    assert f"resuming after epoch {saved}" in r.stderr
    _same_result(_history(out), uninterrupted)


def test_ctrl_c_saves_and_exits_130_then_resume(fm_data, tmp_path, uninterrupted):
    out = tmp_path / "run"
    proc, done = _start_and_stop_after(_finetune(fm_data, out), out, 1, signal.SIGINT)
    err = proc.stderr.read()
    assert proc.returncode == 130, err[-1500:]
    line = [x for x in err.strip().splitlines() if x.startswith("edgetune: error:")]
    assert len(line) == 1 and line[0].startswith("edgetune: error: interrupted during epoch ")
    assert line[0].endswith(f"is saved in {out / 'last.pt'} (hint: continue with the same command plus --resume)")
    assert (out / "last.pt").is_file() and "Traceback" not in err
    r = subprocess.run(_finetune(fm_data, out, "--resume"), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-1500:]
    _same_result(_history(out), uninterrupted)


@pytest.mark.parametrize("delay", [0.5, 1.5, 3.0, 5.0])
def test_kill_9_during_export_leaves_nothing_to_trust(tiny_run, tiny_exports, tmp_path, delay):
    import shutil

    run = shutil.copytree(tiny_run, tmp_path / "run", ignore=shutil.ignore_patterns("export", "bench"))
    proc = subprocess.Popen([*ET, "export", str(run), "--target", "cpu-int8", "--calib-size", "100", "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(delay)
    proc.kill()
    proc.wait()
    final = run / "export" / "cpu-int8"
    if final.exists():  # the rename happened: then it is complete and self-consistent
        meta = json.loads((final / "export.json").read_text())
        assert sha256_file(final / "model.onnx") == meta["sha256"]
    # Whatever the kill left behind (temp folders), later commands see only committed exports.
    listed = invoke_json("report", run)["rows"]
    assert {r["target"] for r in listed} <= {"cpu-int8"}
    again = invoke_json("export", run, "--target", "cpu-int8", "--calib-size", "100")
    assert again["target"] == "cpu-int8" and (final / "export.json").is_file()
    assert [p.name for p in (run / "export").iterdir() if p.name.startswith(".")] == [], "temp folders left"


def test_two_exports_into_one_run_at_once(tiny_run, tmp_path):
    """Two processes exporting the same target into the same run both finish, and what is committed
    is complete and self-consistent: every export builds in its own temp folder and is swapped in
    whole (the race of two swaps into one folder; other targets have folders of their own)."""
    import shutil

    run = shutil.copytree(tiny_run, tmp_path / "run", ignore=shutil.ignore_patterns("export", "bench"))
    cmd = [*ET, "export", str(run), "--target", "cpu-fp32", "--quiet"]  # the swap is the same for every target
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-1500:]
    meta = json.loads((run / "export" / "cpu-fp32" / "export.json").read_text())
    assert sha256_file(run / "export" / "cpu-fp32" / "model.onnx") == meta["sha256"]
    assert sorted(p.name for p in (run / "export").iterdir()) == ["cpu-fp32"]  # no temp folder left


def test_same_seed_same_metrics_and_calibration_subset(fm_data, tmp_path):
    """Determinism (CPU): same seed and data → identical per-epoch metrics and losses, and the same
    calibration subset (indices and hash) for int8; a different seed changes the subset."""
    runs = []
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        out = tmp_path / name
        invoke_json("finetune", "--model", "test_tinynet", "--data", fm_data, "--out", out, "--epochs", 2,
                    "--seed", seed, "--quiet")
        invoke_json("export", out, "--target", "cpu-int8", "--calib-size", 50)
        meta = json.loads((out / "export" / "cpu-int8" / "export.json").read_text())
        runs.append((_history(out), meta))
    (ha, ma), (hb, mb), (_, mc) = runs
    assert [(h["top1"], h["loss"]) for h in ha] == [(h["top1"], h["loss"]) for h in hb]
    assert ma["calibration"]["hash"] == mb["calibration"]["hash"] and ma["calibration"]["indices"] == mb["calibration"]["indices"]
    assert ma["metric"] == mb["metric"]
    assert mc["calibration"]["indices"] != ma["calibration"]["indices"]
