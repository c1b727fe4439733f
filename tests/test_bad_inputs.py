"""Bad inputs not covered elsewhere (each: exact one line, exit code), and docs/RELIABILITY.md kept
in step with the tests: every row names a test that exists and whose source holds the row's
message, so the table cannot drift from what is checked."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from conftest import invoke

DOC = Path(__file__).resolve().parents[1] / "docs" / "RELIABILITY.md"


def _one_line(res, code: int) -> str:
    assert res.exit_code == code, res.stderr
    errors = [line for line in res.stderr.strip().splitlines() if line.startswith("edgetune: error: ")]
    assert len(errors) == 1 and "Traceback" not in res.stderr, res.stderr  # progress lines may precede it
    return errors[0][len("edgetune: error: "):]


def test_data_yaml_pointing_nowhere(tmp_path):
    y = tmp_path / "data.yaml"
    y.write_text("path: /nowhere/at/all\ntrain: images/train\nval: images/val\nnames: [a]\n")
    msg = _one_line(invoke("finetune", "--model", "test_yolo_tiny", "--data", y, "--out", tmp_path / "r"), 3)
    assert msg == (f"{y}: path /nowhere/at/all does not exist (hint: fix 'path:' (absolute, or relative to the "
                   "YAML))")


def test_data_yaml_missing(tmp_path):
    y = tmp_path / "nope.yaml"
    msg = _one_line(invoke("finetune", "--model", "test_yolo_tiny", "--data", y, "--out", tmp_path / "r"), 3)
    assert msg == f"data YAML {y} not found (hint: --data takes an ultralytics data.yaml (path/train/val/names))"


@pytest.mark.parametrize("args, expected", [
    (["export", "RUN", "--target", "cpu-in8"],
     "unknown target 'cpu-in8'; did you mean 'cpu-int8' or 'cpu-fp32' or 'rknn-int8'? "
     "(hint: `edgetune targets` lists them)"),
    (["bench", "RUN", "--target", "cpu-int8", "--profile", "raspbery-pi-5"],
     "unknown profile 'raspbery-pi-5'; did you mean 'raspberry-pi-5' or 'raspberry-pi-4'? "
     "(hint: `edgetune profiles` lists them)"),
    (["export", "RUN", "--target", "cpu-int8", "--max-drop", "-0.1"],
     "--max-drop must be ≥ 0 (an absolute drop in the task metric), got -0.1"),
    (["bench", "RUN", "--target", "cpu-int8", "--profile", "x86-64-avx512", "--runs", "10"],
     "--runs must be ≥ 100 for stable percentiles, got 10"),
], ids=["unknown-target", "unknown-profile", "negative-max-drop", "too-few-runs"])
def test_usage_errors_on_a_run(tiny_run, tiny_exports, args, expected):
    msg = _one_line(invoke(*[tiny_run if a == "RUN" else a for a in args]), 2)
    assert msg == expected


def test_calibration_larger_than_the_data(tiny_run, tmp_path):
    run = shutil.copytree(tiny_run, tmp_path / "run", ignore=shutil.ignore_patterns("export", "bench"))
    msg = _one_line(invoke("export", run, "--target", "cpu-int8", "--calib-size", 100000), 3)
    assert msg == "--calib-size 100000 is larger than the training split (400 images) (hint: use --calib-size 400 or fewer)"
    assert not (run / "export" / "cpu-int8").exists()


def test_resume_a_run_of_another_model(tiny_run, det_data, tmp_path):
    run = shutil.copytree(tiny_run, tmp_path / "run", ignore=shutil.ignore_patterns("export", "bench"))
    msg = _one_line(invoke("finetune", "--model", "test_yolo_tiny", "--data", det_data, "--out", run, "--resume"), 3)
    assert msg == (f"{run} holds a classify run of test_tinynet; --resume continues it with the same --model, not "
                   "test_yolo_tiny (hint: pass --model test_tinynet, or a new --out for test_yolo_tiny)")


def test_profile_with_a_wrong_type(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text(Path("profiles/raspberry-pi-5.yaml").read_text().replace("cores: 4", "cores: four"))
    assert _one_line(invoke("profiles", "check", p), 3) == f"{p}: field 'cpu.cores' must be a positive integer, got 'four'"


def test_bench_a_target_never_exported(tiny_run):
    msg = _one_line(invoke("bench", tiny_run, "--target", "openvino-fp16", "--profile", "x86-64-avx512"), 3)
    assert msg == (f"export metadata {tiny_run / 'export' / 'openvino-fp16' / 'export.json'} not found (hint: run "
                   f"`edgetune export {tiny_run} --target openvino-fp16` first)")


# -- docs/RELIABILITY.md stays in step with the tests ----------------------------------------------

ROW = re.compile(r"^\| (\d+) \| (.+?) \| (.+?) \| (\d+) \| `(.+?)` \| `(tests/[\w/]+\.py)::(\w+)` \|$")


def test_reliability_table_matches_the_tests():
    rows = [ROW.match(line) for line in DOC.read_text().splitlines() if line.startswith("| ") and "::" in line]
    assert rows and all(rows), "a malformed row in docs/RELIABILITY.md"
    assert len(rows) >= 25
    root = DOC.parents[1]
    for m in rows:
        number, _, _, code, message, file, test = m.groups()
        src = (root / file).read_text()
        assert re.search(rf"^def {test}\(", src, re.M), f"row {number}: {file}::{test} does not exist"
        # the longest literal stretch of the message (placeholders like {run} stand for paths)
        fragment = max(re.split(r"\{[^}]*\}|…", message), key=len).strip()[:40]
        joined = re.sub(r"[\"']\s*\n\s*[fr]?[\"']", "", src).replace("`", "")  # literals joined; the table cannot show backticks
        assert fragment in joined, \
            f"row {number}: message not found in {file}: {fragment!r}"
        assert int(code) in (2, 3, 4, 5, 6, 7, 8, 9, 130, 137, 143)


def test_resume_keeps_the_frozen_layers_it_started_with(fm_data, tmp_path):
    """A resumed run trains the layers it started training: without --freeze it keeps the run's
    own (its saved optimiser state holds exactly those), and a different --freeze is one line."""
    run = tmp_path / "run"
    args = ("finetune", "--model", "test_tinynet", "--data", fm_data, "--out", run, "--lr", 3e-3, "--quiet")
    assert invoke(*args, "--epochs", 1, "--freeze", "1").exit_code == 0
    msg = _one_line(invoke(*args, "--epochs", 2, "--resume", "--freeze", "none"), 3)
    assert msg == (f"{run} was started with --freeze 1; --resume continues it with the same frozen layers, not "
                   "--freeze none (hint: drop --freeze (or pass --freeze 1), or start a new --out)")
    res = invoke(*args, "--epochs", 2, "--resume")
    assert res.exit_code == 0, res.stderr
    manifest = json.loads((run / "edgetune.json").read_text())
    assert manifest["config"]["freeze"] == "1" and manifest["epochs_done"] == 2
