"""The classify path end to end on a really trained tiny model: finetune → export → bench → predict."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import invoke, invoke_fresh, invoke_json


def test_finetune_writes_run_contract(tiny_run):
    m = json.loads((tiny_run / "edgetune.json").read_text())
    assert m["status"] == "done" and m["task"] == "classify" and m["model"] == "test_tinynet"
    assert len(m["labels"]) == 10 and len(m["data"]["hash"]) == 64 and m["seed"] == 0
    assert m["preprocessing"]["size"] == 32 and len(m["history"]) >= 1
    assert (tiny_run / "checkpoint.pt").is_file() and (tiny_run / "last.pt").is_file()
    # Trained on real images it is far above chance (0.1); the floor leaves room for noise.
    assert m["best"]["top1"] >= 0.45


def test_finetune_json_contract(tmp_path, fm_data):
    r = invoke_json("finetune", "--model", "test_tinynet", "--data", fm_data, "--out", tmp_path / "r", "--epochs", 2)
    assert {"run", "metric", "best", "epochs", "seconds"} <= set(r)
    assert 0.0 <= r["metric"] <= 1.0 and r["epochs"] == 2


def test_same_seed_same_metrics(tmp_path, fm_data):
    """Determinism: the same seed and data give identical per-epoch metrics."""
    runs = [invoke_json("finetune", "--model", "test_tinynet", "--data", fm_data, "--out", tmp_path / f"r{i}",
                        "--epochs", 2, "--seed", 7) for i in range(2)]
    hist = [json.loads((tmp_path / f"r{i}" / "edgetune.json").read_text())["history"] for i in range(2)]
    assert [h["top1"] for h in hist[0]] == [h["top1"] for h in hist[1]]
    assert runs[0]["metric"] == runs[1]["metric"]


def test_resume_continues_from_last_epoch(tmp_path, fm_data):
    out = tmp_path / "r"
    invoke_json("finetune", "--model", "test_tinynet", "--data", fm_data, "--out", out, "--epochs", 2)
    again = invoke("finetune", "--model", "test_tinynet", "--data", fm_data, "--out", out, "--epochs", 2, "--quiet")
    assert again.exit_code == 3 and "already holds a run (hint: pass --resume" in again.stderr
    r = invoke_json("finetune", "--model", "test_tinynet", "--data", fm_data, "--out", out, "--epochs", 4, "--resume")
    hist = json.loads((out / "edgetune.json").read_text())["history"]
    assert r["epochs"] == 4 and [h["epoch"] for h in hist] == [1, 2, 3, 4]


def test_resume_keeps_the_input_size_the_run_started_with(tmp_path, fm_data):
    out = tmp_path / "r"
    invoke_json("finetune", "--model", "test_tinynet", "--data", fm_data, "--out", out, "--epochs", 1,
                "--img-size", 48)
    invoke_json("finetune", "--model", "test_tinynet", "--data", fm_data, "--out", out, "--epochs", 2, "--resume")
    m = json.loads((out / "edgetune.json").read_text())
    assert m["preprocessing"]["size"] == 48  # not the size the rule would choose now (the card's 32)


def test_export_fp32_matches_pytorch(tiny_exports, tiny_run):
    r = tiny_exports["cpu-fp32"]
    assert r["max_abs_diff"] < 1e-4 and r["drop"] == 0.0
    best = json.loads((tiny_run / "edgetune.json").read_text())["best"]["top1"]
    assert r["metric_fp32"] == pytest.approx(best, abs=1e-9)  # same val set, same preprocessing


def test_export_int8_keeps_accuracy_and_records_calibration(tiny_exports, tiny_run):
    r = tiny_exports["cpu-int8"]
    assert r["drop"] <= 0.05, r
    assert r["size_mb"] < tiny_exports["cpu-fp32"]["size_mb"] / 2
    meta = json.loads((tiny_run / "export" / "cpu-int8" / "export.json").read_text())
    cal = meta["calibration"]
    assert cal["size"] == 100 and len(cal["indices"]) == 100 and cal["per_class_min"] == 10
    assert meta["quantization"]["per_channel"] is True


def test_calibration_subset_is_deterministic(tiny_run):
    from dataclasses import replace

    from edgetune.run import RunDir
    from edgetune.tasks import get_task

    manifest = RunDir(tiny_run).read_manifest()
    task, data = get_task("classify"), manifest.data
    a = task.calibration_inputs(manifest.spec, replace(data, seed=0), size=50)[1]
    b = task.calibration_inputs(manifest.spec, replace(data, seed=0), size=50)[1]
    c = task.calibration_inputs(manifest.spec, replace(data, seed=1), size=50)[1]
    assert a["hash"] == b["hash"] and a["indices"] == b["indices"] and a["hash"] != c["hash"]


def test_accuracy_gate_exit_code_agrees_with_drop(tiny_run, tmp_path):
    import shutil

    run = shutil.copytree(tiny_run, tmp_path / "run")  # do not overwrite the shared exports
    res = invoke("export", run, "--target", "cpu-int8", "--max-drop", "0", "--calib-size", 20, "--json")
    r = json.loads(res.stdout)
    assert (res.exit_code == 5) == (r["drop"] > 0) and r["pass"] == (r["drop"] <= 0)
    if res.exit_code == 5:
        assert "dropped" in res.stderr and "more than --max-drop 0" in res.stderr


@pytest.mark.parametrize("args, code, message", [
    (["--target", "cpu-int8", "--max-drop", "-0.1"], 2, "--max-drop must be ≥ 0"),
    (["--target", "cpu-int16"], 2, "unknown target 'cpu-int16'; did you mean 'cpu-int8'"),
    (["--target", "cpu-int8", "--calib-size", "100000"], 3, "--calib-size 100000 is larger than the training split (400 images)"),
])
def test_export_bad_input(tiny_run, args, code, message):
    res = invoke("export", tiny_run, *args)
    assert res.exit_code == code and message in res.stderr, res.stderr


def test_export_of_missing_run(tmp_path):
    res = invoke("export", tmp_path / "nope", "--target", "cpu-fp32")
    assert res.exit_code == 3
    assert f"run directory {tmp_path / 'nope'} does not exist" in res.stderr


def test_bench_reports_and_passes(tiny_run, tiny_exports):
    r = invoke_json("bench", tiny_run, "--target", "cpu-int8", "--profile", "x86-64-avx512", "--runs", 100)
    lat = r["latency_ms"]
    assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"]
    from edgetune.cpu import usable_cores

    assert r["pass"] is True and r["violations"] == [] and r["threads"] == min(2, usable_cores())  # the profile's 2
    assert r["metric"] == pytest.approx(tiny_exports["cpu-int8"]["metric"]) and r["metric_source"] == "measured"
    assert r["metric_at_export"] == tiny_exports["cpu-int8"]["metric"]  # a board's gap to export (an NPU's simulator)
    assert r["gap_to_export"] == pytest.approx(r["metric"] - r["metric_at_export"], abs=1e-6)
    # The worker's own peak (VmHWM), not pytest's 1+ GB carried over by fork+exec.
    assert 10 < r["peak_rss_mb"] < 400 and r["size_mb"] > 0
    assert (tiny_run / "bench" / "x86-64-avx512" / "cpu-int8.json").is_file()


def test_bench_budget_violation_is_named(tiny_run, tiny_exports, tmp_path):
    text = Path("profiles/x86-64-avx512.yaml").read_text().replace(
        "classify: {latency_p50_ms: 20", "classify: {latency_p50_ms: 0.00001")
    prof = tmp_path / "strict.yaml"
    prof.write_text(text)
    res = invoke("bench", tiny_run, "--target", "cpu-fp32", "--profile", prof, "--json")
    assert res.exit_code == 6
    r = json.loads(res.stdout)
    assert r["pass"] is False and r["violations"][0].startswith("latency_p50_ms: ")
    assert "misses budget(s): latency_p50_ms" in res.stderr


def test_predict_without_torch(tiny_run, tiny_exports, fm_data):
    """predict runs in a fresh interpreter and never imports torch (the light install path)."""
    imgs = sorted((fm_data / "val" / "trouser").glob("*.png"))[:5]
    out = invoke_fresh("predict", tiny_run / "export" / "cpu-int8", *imgs)
    tops = [p["top"][0]["label"] for p in out["predictions"]]
    assert tops.count("trouser") >= 3  # trousers are the easiest class; a trained model gets most


def test_runtime_imports_no_torch():
    code = "import sys, edgetune.runtime, edgetune.bench, edgetune.profiles; assert 'torch' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_report_table(tiny_run, tiny_exports):
    r = invoke_json("report", tiny_run)
    assert {row["target"] for row in r["rows"]} >= {"cpu-fp32", "cpu-int8"}
    assert (tiny_run / "report.md").read_text().startswith("# edgetune report")


def test_predict_bad_image(tiny_exports, tiny_run, tmp_path):
    bad = tmp_path / "x.jpg"
    bad.write_bytes(b"not a jpeg")
    res = invoke("predict", tiny_run / "export" / "cpu-fp32", bad)
    assert res.exit_code == 3 and f"cannot read image {bad}" in res.stderr


def test_onnx_input_is_unit_range_rgb(tiny_exports):
    import onnx

    m = onnx.load(tiny_exports["cpu-fp32"]["artifact"])
    dims = [d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 3, 32, 32]
    assert np.dtype(onnx.helper.tensor_dtype_to_np_dtype(m.graph.input[0].type.tensor_type.elem_type)) == np.float32


def test_default_calibration_size_caps_at_small_training_split(tiny_run):
    """Without --calib-size a 400-image split calibrates on 200; with 30 images it would use all 30
    instead of failing, while an explicit size larger than the split stays an error (above)."""
    from edgetune.run import RunDir
    from edgetune.tasks import get_task

    manifest = RunDir(tiny_run).read_manifest()
    task = get_task("classify")
    assert task.calibration_inputs(manifest.spec, manifest.data, size=None)[1]["size"] == 200
    assert task.calibration_inputs(manifest.spec, manifest.data, size=None, default=1000)[1]["size"] == 400


def test_the_whole_flow_from_python_without_click(tmp_path, fm_data):
    """edgetune.finetune / export_run / predict are the library calls the CLI makes: a script gets
    the same results without Click, and errors as typed exceptions instead of exit codes."""
    import edgetune
    from edgetune.errors import UnknownNameError

    run = tmp_path / "run"
    r = edgetune.finetune("test_tinynet", fm_data, run, epochs=2, quiet=True)
    assert r["run"] == str(run) and r["metric_name"] == "top1" and r["epochs"] == 2
    e = edgetune.export_run(run, "cpu-fp32", quiet=True)
    assert e["max_abs_diff"] <= 1e-3 and e["metric"] == pytest.approx(r["metric"], abs=0.02)
    img = sorted((fm_data / "val" / "bag").glob("*.png"))[0]
    code = ("import sys, edgetune; p = edgetune.predict(sys.argv[1], [sys.argv[2]], top_k=2); "
            "assert 'click' not in sys.modules and 'torch' not in sys.modules, 'click or torch imported'; "
            "print(len(p['predictions'][0]['top']), p['target'])")
    out = subprocess.run([sys.executable, "-c", code, str(run / "export" / "cpu-fp32"), str(img)],
                         capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.split() == ["2", "cpu-fp32"], out.stderr[-1500:]
    with pytest.raises(UnknownNameError, match="unknown target 'cpu-int9'"):
        edgetune.export_run(run, "cpu-int9")


def test_predict_needs_only_the_export_folder_not_the_run_manifest(tiny_run, tiny_exports, fm_data, tmp_path):
    """predict reads export.json alone: a damaged manifest in the run around it does not stop it
    (bench, which needs the run's data, still names the manifest)."""
    import shutil

    run = shutil.copytree(tiny_run, tmp_path / "run", ignore=shutil.ignore_patterns("bench"))
    (run / "edgetune.json").write_text('{"task": 3')
    img = sorted((fm_data / "val" / "bag").glob("*.png"))[0]
    out = invoke_json("predict", run / "export" / "cpu-fp32", img)
    assert out["target"] == "cpu-fp32" and out["predictions"][0]["top"]
    res = invoke("bench", run / "export" / "cpu-fp32", "--profile", "x86-64-avx512", "--runs", 100)
    assert res.exit_code == 3 and "run manifest" in res.stderr, res.stderr
