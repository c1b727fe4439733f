"""LiteRT targets (a backend plug-in): litert-torch converts the run's model, the float artefact is
validated against PyTorch like every float target, full-integer int8 is calibrated on the export's
one calibration set and gated by --max-drop, and the artefact runs on the `ai-edge-litert`
interpreter alone (no torch, no TensorFlow); a missing runtime or converter is one line."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import _BLOCK, invoke, invoke_fresh, invoke_json


def test_litert_classifier_fp32_matches_pytorch_and_int8_io_runs_without_torch(tiny_run, tiny_exports, fm_data):
    fp32 = invoke_json("export", tiny_run, "--target", "litert-fp32")
    n = fp32["metrics"]["n"]
    assert fp32["max_abs_diff"] <= 1e-3 and abs(fp32["drop"]) <= 1.5 / n  # at most one tie flips
    int8 = invoke_json("export", tiny_run, "--target", "litert-int8", "--int8-io", "--max-drop", "0.05",
                       "--calib-size", "100")
    assert int8["pass"] and int8["drop"] <= 0.05 and int8["size_mb"] < fp32["size_mb"] / 2.5
    meta = json.loads((tiny_run / "export" / "litert-int8" / "export.json").read_text())
    assert meta["runtime"] == "litert" and meta["quantization"]["io"] == "int8"
    ort = json.loads((tiny_run / "export" / "cpu-int8" / "export.json").read_text())
    assert meta["calibration"]["hash"] == ort["calibration"]["hash"]  # the one calibration set of every int8
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(tiny_run / "export" / "litert-int8" / "model.tflite"))
    assert it.get_input_details()[0]["dtype"] == np.int8 and it.get_output_details()[0]["dtype"] == np.int8
    img = sorted((fm_data / "val" / "sneaker").glob("*.png"))[0]
    got = invoke_fresh("predict", tiny_run / "export" / "litert-fp32", img, "--top-k", 3)  # no torch on a device
    want = invoke_json("predict", tiny_run / "export" / "cpu-fp32", img, "--top-k", 3)
    assert [t["label"] for t in got["predictions"][0]["top"]] == [t["label"] for t in want["predictions"][0]["top"]]
    assert [t["score"] for t in got["predictions"][0]["top"]] == pytest.approx(
        [t["score"] for t in want["predictions"][0]["top"]], abs=1e-4)
    q = invoke_fresh("predict", tiny_run / "export" / "litert-int8", img, "--top-k", 1)  # int8 I/O, float scores
    assert 0 < q["predictions"][0]["top"][0]["score"] <= 1


@pytest.mark.slow
def test_litert_kws_int8_keeps_the_front_end_float_and_holds_accuracy(kws_run):
    """LiteRT has no complex type: the log-mel front end goes through as a real DFT (a strided
    conv), and stays float under int8 with the first conv that reads its dB features."""
    run = kws_run[0]
    r = invoke_json("export", run, "--target", "litert-int8", "--max-drop", "0.02")
    assert r["pass"] and r["drop"] <= 0.02
    meta = json.loads((run / "export" / "litert-int8" / "export.json").read_text())
    assert meta["quantization"]["kept_float_ops"] >= 20 and meta["quantization"]["io"] == "float32"


def test_portable_front_end_computes_the_stft_features():
    import torch

    from edgetune.train.speech_models import LogMel

    torch.manual_seed(0)
    audio = torch.randn(3, 16000).clamp(-1, 1) * torch.linspace(0.01, 1, 3)[:, None]  # three loudness levels
    m = LogMel()
    fft = m(audio)
    m.portable_ops = True
    assert torch.allclose(m(audio), fft, atol=1e-4) and m.state_dict().keys() == {"window", "fb"}


@pytest.mark.slow
def test_litert_detector_decodes_like_onnx_runtime(det_run, det_data):
    run = det_run[0]
    onnx = invoke_json("export", run, "--target", "cpu-fp32")
    lite = invoke_json("export", run, "--target", "litert-fp32")
    assert lite["max_abs_diff"] <= 1e-3 and lite["metric"] == pytest.approx(onnx["metric"], abs=2e-3)
    img = sorted((det_data.parent / "images" / "val").glob("*.jpg"))[0]
    got = invoke_json("predict", run / "export" / "litert-fp32", img, "--conf", "0.001")["predictions"][0]["boxes"][:5]
    want = invoke_json("predict", run / "export" / "cpu-fp32", img, "--conf", "0.001")["predictions"][0]["boxes"][:5]
    assert want and [b["label"] for b in got] == [b["label"] for b in want]
    for g, w in zip(got, want, strict=True):
        assert g["xyxy"] == pytest.approx(w["xyxy"], abs=0.5) and g["score"] == pytest.approx(w["score"], abs=2e-3)


@pytest.mark.parametrize("blocked, command, pip", [
    ("ai_edge_litert", "predict", "pip install 'edgetune[litert]'"),
    ("litert_torch", "export", "pip install 'edgetune[litert-export]'"),
])
def test_missing_litert_package_is_exit_7_with_the_pip_line(tiny_run, fm_data, blocked, command, pip):
    if command == "predict":
        invoke_json("export", tiny_run, "--target", "litert-fp32")
        args = ["predict", str(tiny_run / "export" / "litert-fp32"), str(sorted((fm_data / "val" / "bag").glob("*.png"))[0])]
    else:
        args = ["export", str(tiny_run), "--target", "litert-fp32"]
    code = _BLOCK.format(names={blocked}) + "from edgetune.cli.main import main; main()"
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    assert proc.returncode == 7, proc.stderr[-1500:]
    assert proc.stderr.strip().splitlines()[-1].endswith(f"is not installed (hint: {pip})")


def test_bench_remote_runs_a_litert_artefact_there(tiny_run, sshd):
    invoke_json("export", tiny_run, "--target", "litert-fp32")
    res = invoke("bench", tiny_run, "--target", "litert-fp32", "--profile", "raspberry-pi-5", "--remote",
                 "root@127.0.0.1", "--remote-edgetune", f"{sys.executable} -m edgetune.cli.main", *sshd, "--json")
    assert res.exit_code == 0, res.stderr[-1500:]
    r = json.loads(res.stdout)
    assert r["target"] == "litert-fp32" and r["runtime"] == "litert" and r["latency_ms"]["p50"] > 0


def test_a_graph_litert_cannot_convert_is_one_line_naming_the_target(tmp_path):
    """No complex type in LiteRT: a raw torch.stft (no real-DFT switch) is refused in one line, exit 4,
    and no artefact is left behind."""
    import torch

    from edgetune.errors import UnsupportedOpError
    from edgetune.export.backends.litert import convert

    class Spectrum(torch.nn.Module):
        def forward(self, audio: torch.Tensor) -> torch.Tensor:
            spec = torch.stft(audio, 64, 32, 64, torch.hann_window(64), center=False, return_complex=True)
            return torch.view_as_real(spec).pow(2).sum(-1).transpose(1, 2)

    out = tmp_path / "model.tflite"
    with pytest.raises(UnsupportedOpError) as err:
        convert(Spectrum(), np.zeros((1, 640), np.float32), out, tmp_path / "converter.log", target="litert-fp32")
    assert err.value.exit_code == 4 and "\n" not in err.value.message
    assert err.value.message.startswith("litert-fp32: litert-torch cannot convert this model: ")
    assert "complex" in err.value.message and not out.exists()
