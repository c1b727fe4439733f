"""The Rockchip RKNN targets (rknn-int8, rknn-fp16): the tool environment's contract, the per-layer
analysis parser, and — where `edgetune tools install rknn` has been run — a real conversion,
simulation and hybrid search of a really trained model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import invoke, invoke_json

from edgetune import tools_env
from edgetune.export.backends.rknn import parse_analysis
from edgetune.profiles import get_profile

ANALYSIS = """\
layer_name                                                                   simulator_error
------------------------------------------------------------------------------------------------------------
[Input] input                                                       1.00000 | 0.00000   1.00000 | 0.00000
[Add] /Sub_output_0                                                 0.99999 | 0.43471   0.99999 | 0.43471
[Conv] /model/conv_stem/Conv_output_0
[Clip] /model/bn1/act/Clip_output_0                                 0.99980 | 20.36210  0.99977 | 21.85307
[Conv] /model/blocks.0/conv_pw/Conv_output_0                        0.99765 | 115.58376 0.99967 | 44.32185
[Gemm] /model/classifier/Gemm_output_0                              0.99000 | 1.00000   0.99500 | 1.00000
"""

installed = pytest.mark.skipif(tools_env.status("rknn")["installed"] is None,
                               reason="the rknn tool environment is not installed (`edgetune tools install rknn`)")


def test_the_analysis_gives_each_compute_layer_its_single_layer_error_fused_activations_included():
    assert parse_analysis(ANALYSIS) == pytest.approx({
        "/model/conv_stem/Conv_output_0": 1 - 0.99977,  # fused with the Clip whose row carries it
        "/model/blocks.0/conv_pw/Conv_output_0": 1 - 0.99967,
        "/model/classifier/Gemm_output_0": 1 - 0.99500,
    })


def test_without_the_tool_environment_export_names_the_command_that_creates_it(tiny_run, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGETUNE_CACHE", str(tmp_path / "empty-cache"))
    res = invoke("export", tiny_run, "--target", "rknn-int8")
    assert res.exit_code == 7
    assert res.stderr.strip().splitlines()[-1] == (
        "edgetune: error: building rknn-int8 needs the Rockchip rknn-toolkit2 (RKNN conversion and NPU simulator) "
        "environment, which is not installed (hint: `edgetune tools install rknn` creates it from the package index "
        "(about 5.5 GB))")
    assert not (tiny_run / "export" / "rknn-int8").exists()


def test_tools_list_says_where_each_environment_lives(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGETUNE_CACHE", str(tmp_path / "c"))
    rows = invoke_json("tools", "list")
    assert rows == [{"name": "rknn", "title": "Rockchip rknn-toolkit2 (RKNN conversion and NPU simulator)",
                     "folder": str(tmp_path / "c" / "tools" / "rknn"), "installed": None}]
    res = invoke("tools", "install", "rknnn")
    assert res.exit_code == 2 and "unknown tool environment 'rknnn'" in res.stderr


@installed
def test_rknn_int8_is_simulated_labelled_and_searched_back_within_budget(tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    # 10 calibration samples: a coarse calibration, so that plain int8 loses (0.5-1 pt here) and
    # the search has something to do
    plain = invoke_json("export", run, "--target", "rknn-int8", "--max-drop", "none", "--calib-size", 10)
    assert plain["measured_on"] == "simulated NPU (rknn-toolkit2's simulator on this host)"
    assert plain["metric_fp32"] - 0.05 < plain["metric"] <= plain["metric_fp32"] + 0.02
    assert (run / "export" / "rknn-int8" / "model.rknn").stat().st_size > 10_000
    assert plain["drop"] > 0, plain  # the premise of the search below
    budget = plain["drop"] - 0.001  # tighter than plain int8 reaches: the hybrid search must act
    res = invoke("export", run, "--target", "rknn-int8", "--max-drop", budget, "--calib-size", 10)  # as people read it
    assert res.exit_code == 0 and "accuracy-aware: " in res.stdout, res.stdout + res.stderr[-2000:]
    searched = json.loads((run / "export" / "rknn-int8" / "export.json").read_text())
    aa = searched["accuracy_aware"]
    assert searched["pass"] and searched["drop"] <= budget + 1e-9 and aa["float_layers"]
    record = json.loads((run / "export" / "rknn-int8" / "export.json").read_text())["accuracy_aware"]
    assert record["ranking"] and "single_layer_error" in record["ranking"][0]  # the toolkit's own analysis
    # bench and predict on this host say where it runs, in one line
    res = invoke("bench", run, "--target", "rknn-int8", "--profile", "rockchip-rk3588")
    assert res.exit_code == 2 and "runs on a Rockchip NPU only" in res.stderr and len(res.stderr.splitlines()) == 1
    assert searched["rknn"]["platform"] == "rk3588"  # the default profile's chip (rknn-fp16: the test below)


@installed
@pytest.mark.slow
def test_a_conversion_that_does_not_compute_the_model_is_refused_in_one_line(kws_run, tmp_path):
    """The KWS front end's power spectrum overflows float16 on the NPU: the toolkit's build gives
    non-finite outputs, so neither rknn target is exported (no fp16 model at chance level)."""
    run = tmp_path / "kws"
    shutil.copytree(kws_run[0], run)
    for target in ("rknn-fp16", "rknn-int8"):
        res = invoke("export", run, "--target", target)
        assert res.exit_code == 4
        assert res.stderr.strip().splitlines()[-1] == (
            f"edgetune: error: {target}: the model rknn-toolkit2 builds does not compute the validated ONNX graph: "
            "non-finite outputs (a float16 overflow on the NPU) against fp32 on 8 real val inputs (float16 build, "
            "simulator) (hint: use a cpu-*, openvino-* or litert-* target for this model)")
        assert not (run / "export" / target).exists()


def test_a_detectors_graph_for_int8_joins_boxes_and_scores_in_one_range_and_scales_back(det_run, det_data, tmp_path):
    """int8 gives the joined output one scale: box pixels and 0-1 scores in one tensor left every
    score at 0 (simulated mAP 0.000). The graph the toolkit gets divides the box rows by the input
    size before they join; multiplied back, it computes the validated graph (ONNX Runtime here)."""
    import numpy as np
    import onnx

    from edgetune.export.backends.rknn import _normalised, _rescaled
    from edgetune.run import open_run
    from edgetune.runtime import open_session
    from edgetune.tasks import get_task

    fp32 = Path(invoke_json("export", shutil.copytree(det_run[0], tmp_path / "run"), "--target",
                            "cpu-fp32")["artifact"])
    run, manifest = open_run(tmp_path / "run")
    task = get_task(manifest.task)
    scale = np.asarray(task.output_scale(manifest.spec), dtype=np.float32)
    graph = _normalised(fp32, scale, tmp_path / "normalised.onnx")
    onnx.checker.check_model(str(graph))
    ref, got = open_session(fp32), open_session(graph)
    for x in task.export_inputs(manifest.spec, manifest.data, count=4):
        want, raw = ref.run(x)[0], got.run(x)[0]
        size = float(manifest.spec.preprocessing["size"])
        np.testing.assert_allclose(raw[:, :4], want[:, :4] / size, rtol=1e-5, atol=1e-5)  # boxes in input sizes
        np.testing.assert_allclose(raw[:, 4:], want[:, 4:], rtol=0, atol=1e-6)  # scores as they were
        np.testing.assert_allclose(_rescaled([raw], scale)[0], want, rtol=1e-5, atol=1e-3)


def test_a_detectors_box_decode_is_what_every_int8_build_keeps_in_float16():
    """The toolkit's own layer names (yolo11n after its graph optimiser): the decode from the DFL on,
    outside the box (cv2) and class (cv3) conv branches, with edgetune's output scale and the join."""
    from edgetune.export.backends.rknn import _box_decode

    graph = [["Conv", "/net/model.22/cv2/conv/Conv_output_0"], ["Concat", "/net/model.22/Concat_output_0"],
             ["Conv", "/net/model.23/cv2.0/cv2.0.2/Conv_output_0"], ["Reshape", "/net/model.23/Reshape_output_0"],
             ["Conv", "/net/model.23/cv3.0/cv3.0.2/Conv_output_0"], ["Concat", "/net/model.23/Concat_output_0"],
             ["Reshape", "/net/model.23/dfl/Reshape_output_0"], ["Conv", "/net/model.23/dfl/Softmax_output_0_sw"],
             ["Conv", "/net/model.23/cv3.1/cv3.1.2/Conv_output_0"], ["Sub", "/net/model.23/Sub_output_0-rs"],
             ["Mul", "edgetune_output_scale_0_out-rs"], ["Concat", "output0-rs"]]
    assert _box_decode(graph) == ["/net/model.23/Reshape_output_0", "/net/model.23/Concat_output_0",
                                  "/net/model.23/dfl/Reshape_output_0", "/net/model.23/dfl/Softmax_output_0_sw",
                                  "/net/model.23/Sub_output_0-rs", "edgetune_output_scale_0_out-rs", "output0-rs"]
    assert _box_decode([["Conv", "/model/conv_stem/Conv_output_0"], ["Gemm", "logits"]]) == []  # no Detect head


@pytest.mark.parametrize("target, profile, line", [
    ("rknn-int8", "raspberry-pi-5", "--profile raspberry-pi-5 cannot take rknn-int8: it names no NPU (hint: use a "
     "profile whose `npu.runtime` is rknn (`edgetune profiles`), or leave --profile out for the rk3588)"),
    ("cpu-int8", "rockchip-rk3566", "--profile is only used with --target auto, or with a target compiled for one "
     "chip (not cpu-int8) (hint: drop --profile, or use --target auto)"),
])
def test_a_profile_that_names_no_chip_for_the_target_is_one_line_before_any_work(tiny_run, target, profile, line):
    res = invoke("export", tiny_run, "--target", target, "--profile", profile)
    assert res.exit_code == 2 and res.stderr.strip() == f"edgetune: error: {line}"


@installed
def test_the_profile_chooses_the_rockchip_chip_compiled_for(tiny_run, tmp_path):
    run = shutil.copytree(tiny_run, tmp_path / "run")
    for profile, chip in (("rockchip-rk3576", "rk3576"),):  # rk3588 is the other test's default
        r = invoke_json("export", run, "--target", "rknn-fp16", "--profile", profile)
        meta = json.loads((run / "export" / "rknn-fp16" / "export.json").read_text())
        assert meta["rknn"]["platform"] == chip and abs(r["drop"]) <= 0.01
    assert get_profile("rockchip-rk3588").npu.platform == "rk3588"


@installed
def test_a_search_that_cannot_restore_the_rest_says_what_is_left_and_how_to_fix_it(tiny_run, tmp_path):
    """3 calibration samples: the input and activation scales are off, which float16 compute layers
    cannot repair; the gate names that, not "the rest is not quantisation"."""
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    res = invoke("export", run, "--target", "rknn-int8", "--calib-size", 3, "--max-drop", 0.01)
    assert res.exit_code == 5, res.stderr
    last = res.stderr.strip().splitlines()[-1]
    assert "compute layers back in float it still drops" in last
    assert "the rest is in tensors this runtime's search cannot restore (the input, other activations)" in last
    assert "(hint: calibrate on more samples (--calib-size), or use --max-drop above that drop" in last
