"""NCNN targets (a backend plug-in): converted by pnnx from the validated ONNX graph, validated
against PyTorch like every float target, run without torch, detections decoded exactly as from
ONNX Runtime; a graph NCNN cannot run, or a missing runtime, is one line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import _BLOCK, invoke, invoke_fresh, invoke_json


def test_ncnn_classifier_fp32_matches_pytorch_and_fp16_halves_it(tiny_run, tiny_exports, fm_data):
    fp32 = invoke_json("export", tiny_run, "--target", "ncnn-fp32")
    fp16 = invoke_json("export", tiny_run, "--target", "ncnn-fp16")
    n = fp32["metrics"]["n"]
    assert fp32["max_abs_diff"] <= 1e-3 and abs(fp32["drop"]) <= 1.5 / n  # at most one tie flips
    assert fp16["max_abs_diff"] < 0.05 and abs(fp16["drop"]) <= 0.05
    folder = tiny_run / "export" / "ncnn-fp32"
    assert sorted(p.name for p in folder.iterdir()) == ["export.json", "model.ncnn.bin", "model.ncnn.param"]
    weights = {t: (tiny_run / "export" / t / "model.ncnn.bin").stat().st_size for t in ("ncnn-fp32", "ncnn-fp16")}
    assert weights["ncnn-fp16"] < 0.55 * weights["ncnn-fp32"]
    assert "0=32 1=32 2=3" in (folder / "model.ncnn.param").read_text()  # the input shape travels with it
    img = sorted((fm_data / "val" / "sneaker").glob("*.png"))[0]
    ncnn = invoke_fresh("predict", folder, img, "--top-k", 3)  # no torch on a device
    onnx = invoke_json("predict", tiny_run / "export" / "cpu-fp32", img, "--top-k", 3)
    got, want = ncnn["predictions"][0]["top"], onnx["predictions"][0]["top"]
    assert [t["label"] for t in got] == [t["label"] for t in want]
    assert [t["score"] for t in got] == pytest.approx([t["score"] for t in want], abs=1e-4)


def test_ncnn_detector_decodes_like_onnx_runtime(det_run, det_data):
    run = det_run[0]
    onnx = invoke_json("export", run, "--target", "cpu-fp32")
    ncnn = invoke_json("export", run, "--target", "ncnn-fp32")
    assert ncnn["max_abs_diff"] <= 1e-3  # boxes relative to the input size, scores as they are
    assert ncnn["metric"] == pytest.approx(onnx["metric"], abs=2e-3)
    img = sorted((det_data.parent / "images" / "val").glob("*.jpg"))[0]
    # A 2-epoch tiny detector is unsure of everything: compare its (up to) five most confident boxes.
    got = invoke_json("predict", run / "export" / "ncnn-fp32", img, "--conf", "0.001")["predictions"][0]["boxes"][:5]
    want = invoke_json("predict", run / "export" / "cpu-fp32", img, "--conf", "0.001")["predictions"][0]["boxes"][:5]
    assert want and [b["label"] for b in got] == [b["label"] for b in want]  # same NMS, same raw head
    for g, w in zip(got, want, strict=True):
        assert g["xyxy"] == pytest.approx(w["xyxy"], abs=0.5) and g["score"] == pytest.approx(w["score"], abs=2e-3)


def test_ncnn_cannot_run_the_kws_front_end_one_line_exit_4(kws_run):
    run = kws_run[0]
    res = invoke("export", run, "--target", "ncnn-fp32")
    lines = [ln for ln in res.stderr.strip().splitlines() if ln.startswith("edgetune: error:")]
    assert res.exit_code == 4 and len(lines) == 1, res.stderr
    assert lines[0].startswith("edgetune: error: ncnn-fp32: NCNN has no layer for pnnx.Expression (layer '")
    assert lines[0].endswith("(hint: use a cpu-* or openvino-* target for this model)")
    assert not (run / "export" / "ncnn-fp32").exists()


def test_missing_ncnn_runtime_is_exit_7_with_the_pip_line(tiny_run, tiny_exports, fm_data):
    invoke_json("export", tiny_run, "--target", "ncnn-fp32")
    img = sorted((fm_data / "val" / "bag").glob("*.png"))[0]
    code = (_BLOCK.format(names={"ncnn"}) + "import sys; from edgetune.cli.main import main; "
            "sys.argv = ['edgetune', 'predict', sys.argv[1], sys.argv[2]]; main()")
    proc = subprocess.run([sys.executable, "-c", code, str(tiny_run / "export" / "ncnn-fp32"), str(img)],
                          capture_output=True, text=True)
    assert proc.returncode == 7, proc.stderr[-1500:]
    assert proc.stderr.strip().splitlines()[-1].endswith("is not installed (hint: pip install 'edgetune[ncnn]')")
    meta = json.loads((tiny_run / "export" / "ncnn-fp32" / "export.json").read_text())
    assert meta["runtime"] == "ncnn" and set(meta["files"]) == {"model.ncnn.param", "model.ncnn.bin"}


def test_auto_builds_measures_and_may_choose_an_ncnn_target(tiny_run, tmp_path):
    """A profile listing NCNN targets: auto builds them beside the others and keeps the fastest
    within budget (timings stubbed; the choice, the commit and the record are real)."""
    import shutil
    from pathlib import Path

    from edgetune.export.context import Options
    from edgetune.export.pipeline import export_run

    run = shutil.copytree(tiny_run, tmp_path / "run", ignore=shutil.ignore_patterns("export", "bench"))
    profile = tmp_path / "arm.yaml"
    profile.write_text("name: arm\ncpu: {arch: aarch64, model: test cpu, cores: 4, threads: 2, isa: [neon]}\n"
                       "memory: {ram_mb: 4096, storage_mb: 32000}\ntargets: [cpu-fp32, ncnn-fp32, ncnn-fp16]\n"
                       "budgets: {}\nsources: {cpu: test, memory: test, targets: test, budgets: test}\n")
    stub = {"cpu-fp32": 5.0, "ncnn-fp32": 3.0, "ncnn-fp16": 2.0}
    r = export_run(run, "auto", options=Options(max_drop=0.05), profile=str(profile), quiet=True,
                   measure=lambda artifact, x, threads: stub[Path(artifact).parent.name])
    cands = {c["target"]: c for c in r["candidates"]}
    assert set(cands) == set(stub) and all(c["error"] is None for c in cands.values())
    assert r["target"] == "ncnn-fp16" and cands["ncnn-fp16"]["drop"] <= 0.05
    assert sorted(p.name for p in (run / "export" / "ncnn-fp16").iterdir()) == [
        "export.json", "model.ncnn.bin", "model.ncnn.param"]


def test_bench_remote_runs_an_ncnn_artefact_there(tiny_run, tiny_exports, sshd):
    """The remote path is runtime-agnostic: the two-file NCNN artefact travels, runs on the
    device's ncnn and its result is kept in the run."""
    remote_edgetune = f"{sys.executable} -m edgetune.cli.main"  # the device's edgetune: this venv's
    invoke_json("export", tiny_run, "--target", "ncnn-fp32")
    res = invoke("bench", tiny_run, "--target", "ncnn-fp32", "--profile", "raspberry-pi-5", "--remote",
                 "root@127.0.0.1", "--remote-edgetune", remote_edgetune, *sshd, "--json")
    assert res.exit_code == 0, res.stderr[-1500:]
    r = json.loads(res.stdout)
    assert r["target"] == "ncnn-fp32" and r["runtime"] == "ncnn" and r["latency_ms"]["p50"] > 0
    kept = json.loads((tiny_run / "bench" / "raspberry-pi-5" / "ncnn-fp32.json").read_text())
    assert kept["remote"] == "root@127.0.0.1" and kept["latency_ms"] == r["latency_ms"]


def test_layers_this_ncnn_does_not_register_are_named(tmp_path):
    """pnnx can emit a layer type the installed ncnn lacks (ReduceMax from a newer pnnx): the build
    refuses it by name (exit 4) instead of leaving an artefact ncnn cannot load."""
    import ncnn

    from edgetune.export.backends.ncnn import _unknown_layers

    param = tmp_path / "model.ncnn.param"
    param.write_text("7767517\n3 3\nInput in0 0 1 in0\nReduceMax reduce_1 1 1 in0 1 0=1\n"
                     "Convolution conv_2 1 1 1 out0 0=8 1=3 6=216\n")
    assert _unknown_layers(param, ncnn) == [("ReduceMax", "reduce_1")]
