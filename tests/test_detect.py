"""The detect task: data checks, numpy NMS/mAP against ultralytics, the offline pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import invoke, invoke_fresh, invoke_json
from PIL import Image

from edgetune.preprocess import Letterbox
from edgetune.tasks.boxes import DetectionScorer, NmsConfig, box_iou, match_predictions, nms


# -- data checks: one clear line each, exit 3 ------------------------------------------------
def _dataset(root: Path, rows: str = "0 0.5 0.5 0.2 0.2\n", names: str = "[a, b]") -> Path:
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        Image.new("RGB", (40, 30), "gray").save(root / "images" / split / "x.jpg")
        (root / "labels" / split / "x.txt").write_text(rows)
    (root / "data.yaml").write_text(f"path: {root}\ntrain: images/train\nval: images/val\nnames: {names}\n")
    return root / "data.yaml"


def _finetune_error(data: Path, tmp_path: Path) -> str:
    res = invoke("finetune", "--model", "test_yolo_tiny", "--data", data, "--out", tmp_path / "run")
    assert res.exit_code == 3, res.stderr
    assert not (tmp_path / "run").exists(), "a rejected data set must not leave a run directory"
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    return lines[0]


@pytest.mark.parametrize("rows,split,expected", [
    ("0 0.5 0.5 0.2 0.2\n1 1.2 0.5 0.1 0.1\n", "train",
     "{label}:2: coordinates 1.2 0.5 0.1 0.1 are outside [0, 1] (hint: YOLO labels are normalised by image "
     "width/height; divide pixel values)"),
    ("2 0.5 0.5 0.2 0.2\n", "train",
     "{label}:1: class id 2 ≥ nc=2 (hint: class ids run 0..1; add the class to 'names' or fix the label)"),
    (None, "val",
     "{image} has no label file {label} (hint: write one row per box; an empty .txt marks an image with no "
     "objects)"),
], ids=["box-outside-image", "class-id-beyond-names", "missing-label-file"])
def test_bad_label(tmp_path, rows, split, expected):
    data = _dataset(tmp_path / "d", rows=rows or "0 0.5 0.5 0.2 0.2\n")
    label = tmp_path / "d" / "labels" / split / "x.txt"
    if rows is None:
        label.unlink()
    image = tmp_path / "d" / "images" / split / "x.jpg"
    assert _finetune_error(data, tmp_path) == "edgetune: error: " + expected.format(label=label, image=image)


def test_empty_split(tmp_path):
    data = _dataset(tmp_path / "d")
    (tmp_path / "d" / "images" / "val" / "x.jpg").unlink()
    assert _finetune_error(data, tmp_path) == (
        f"edgetune: error: {data}: the val split ({tmp_path / 'd' / 'images' / 'val'}) has no images "
        "(hint: put .jpg, .jpeg, .png… files there)")


def test_split_without_boxes_and_bad_rows(tmp_path):
    data = _dataset(tmp_path / "a", rows="")
    assert _finetune_error(data, tmp_path) == (
        f"edgetune: error: {data}: the train split has 1 images but no boxes (hint: label some objects; a "
        "detector cannot learn or be measured without boxes)")
    data = _dataset(tmp_path / "b", rows="0 0.5 0.5 0.2\n")
    assert "x.txt:1: 4 values; a box row is `class cx cy w h`" in _finetune_error(data, tmp_path)
    data = _dataset(tmp_path / "c", names="{0: a, 2: b}")
    assert "'names' keys must be 0..1, got [0, 2]" in _finetune_error(data, tmp_path)
    data = _dataset(tmp_path / "e")
    bad = tmp_path / "e" / "images" / "train" / "x.jpg"
    bad.write_bytes(b"truncated")
    assert _finetune_error(data, tmp_path) == (
        f"edgetune: error: {bad} is not a readable image (hint: re-export it as JPEG/PNG or remove it)")


def test_detector_card_needs_stride_multiple(det_data, tmp_path):
    res = invoke("finetune", "--model", "test_yolo_tiny", "--data", det_data, "--out", tmp_path / "r",
                 "--img-size", 100)
    assert res.exit_code == 2
    assert res.stderr.strip() == ("edgetune: error: --img-size 100 is not a multiple of 32 (the detector's largest "
                                  "stride) (hint: use 96 or 128)")


# -- numpy post-processing and metrics == ultralytics' ------------------------------------------
def test_map_matches_ultralytics():
    from ultralytics.utils.metrics import ap_per_class as u_ap
    from ultralytics.utils.metrics import box_iou as u_iou

    rng = np.random.default_rng(0)
    scorer = DetectionScorer()
    tps, confs, pcls, tcls = [], [], [], []
    for _ in range(30):
        n_gt, n_det = rng.integers(0, 6), rng.integers(0, 12)
        xy0 = rng.uniform(0, 150, (n_gt, 2))
        gt = np.concatenate([xy0, xy0 + rng.uniform(20, 60, (n_gt, 2))], 1)
        gt_cls = rng.integers(0, 3, n_gt)
        det = np.concatenate([gt[rng.integers(0, max(n_gt, 1), n_det)] + rng.normal(0, 2, (n_det, 4))
                              if n_gt else rng.uniform(0, 200, (n_det, 4)),
                              rng.uniform(0, 1, (n_det, 1)), rng.integers(0, 3, (n_det, 1))], 1).astype(np.float32)
        det[:, 2:4] = np.maximum(det[:, 2:4], det[:, 0:2] + 1)
        scorer.add(det, gt_cls, gt)
        iou = u_iou(torch.from_numpy(gt).float(), torch.from_numpy(det[:, :4])).numpy() if n_gt and n_det else None
        if n_det:
            ours_iou = box_iou(gt, det[:, :4]) if n_gt else None
            if iou is not None:
                np.testing.assert_allclose(ours_iou, iou, atol=1e-5)
            tps.append(match_predictions(det[:, 5].astype(int), gt_cls, ours_iou) if n_gt
                       else np.zeros((n_det, 10), bool))
            confs.append(det[:, 4])
            pcls.append(det[:, 5])
        tcls.append(gt_cls)
    ours = scorer.result()
    ref = u_ap(np.concatenate(tps), np.concatenate(confs), np.concatenate(pcls), np.concatenate(tcls))
    ap = ref[5]  # (nc, 10)
    assert ours["map50_95"] == pytest.approx(float(ap.mean()), abs=1e-9)
    assert ours["map50"] == pytest.approx(float(ap[:, 0].mean()), abs=1e-9)
    assert 0.05 < ours["map50_95"] < 0.95  # a non-trivial case


def test_match_predictions_matches_ultralytics():
    from ultralytics.models.yolo.detect import DetectionValidator

    rng = np.random.default_rng(1)
    v = DetectionValidator()
    for _ in range(20):
        iou = rng.uniform(0, 1, (5, 9)) * (rng.uniform(0, 1, (5, 9)) > 0.4)
        pc, tc = rng.integers(0, 2, 9), rng.integers(0, 2, 5)
        ref = v.match_predictions(torch.from_numpy(pc), torch.from_numpy(tc), torch.from_numpy(iou)).numpy()
        np.testing.assert_array_equal(match_predictions(pc, tc, iou), ref)


def test_nms_matches_ultralytics():
    from ultralytics.utils.nms import non_max_suppression

    rng = np.random.default_rng(2)
    xy = rng.uniform(20, 300, (2, 600))
    wh = rng.uniform(10, 80, (2, 600))
    scores = rng.uniform(0, 1, (4, 600)) ** 4
    pred = np.concatenate([xy, wh, scores]).astype(np.float32)
    for multi in (False, True):
        cfg = NmsConfig(conf=0.05, iou=0.6, max_det=300, multi_label=multi)
        ours = nms(pred, cfg)
        ref = non_max_suppression(torch.from_numpy(pred[None]), 0.05, 0.6, multi_label=multi, max_det=300)[0].numpy()
        assert len(ours) == len(ref) > 10
        key = lambda a: a[np.lexsort((a[:, 5], -a[:, 4]))]  # noqa: E731
        np.testing.assert_allclose(key(ours), key(ref), atol=1e-4)


def test_letterbox_geometry_matches_ultralytics():
    from ultralytics.data.augment import LetterBox

    rng = np.random.default_rng(3)
    for w, h in ((640, 480), (480, 640), (500, 500), (1280, 720), (33, 97)):
        img = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        ref = LetterBox((320, 320), auto=False, stride=32)(image=img[..., ::-1].copy())[..., ::-1]
        x, (r, left, top) = Letterbox(320).apply(Image.fromarray(img))
        ours = (x[0].transpose(1, 2, 0) * 255).round().astype(np.uint8)
        pad = (ref == 114).all(-1)
        assert ((ours == 114).all(-1) | ~pad)[pad].all(), f"{w}x{h}: padding differs"
        assert np.array_equal(pad, (ours == 114).all(-1) & pad)
        boxes = np.array([[left, top, left + w * r, top + h * r]], dtype=np.float64)
        np.testing.assert_allclose(Letterbox.unmap(boxes, (r, left, top), w, h), [[0, 0, w, h]], atol=1)


# -- the tiny pipeline: train (network refused) → export → predict → bench ------------------------
def test_finetune_offline_into_run_directory(det_run, tmp_path):
    out, result, attempts = det_run
    assert attempts == [], f"ultralytics tried the network: {attempts}"
    assert set(result) >= {"run", "task", "model", "metric_name", "metric", "best", "epochs", "seconds"}
    assert result["task"] == "detect" and result["metric_name"] == "map50_95" and result["epochs"] == 2
    assert 0.0 <= result["metric"] <= 1.0
    manifest = json.loads((out / "edgetune.json").read_text())
    assert manifest["status"] == "done" and len(manifest["history"]) == 2
    assert manifest["labels"] == ["person", "cat", "cup", "motorcycle", "rocket", "coin", "logo"]
    assert manifest["preprocessing"]["kind"] == "letterbox" and manifest["preprocessing"]["size"] == 64
    assert (out / "checkpoint.pt").is_file() and (out / "ultralytics" / "weights" / "last.pt").is_file()
    assert result["cwd_after"] == [], "files landed in the working directory"


def test_export_validates_and_predicts_without_torch(det_run, det_data, tmp_path):
    out, _, _ = det_run
    fp32 = invoke_json("export", out, "--target", "cpu-fp32")
    assert fp32["max_abs_diff"] <= 1e-3 and fp32["metric_name"] == "map50_95"
    assert set(fp32["metrics"]) >= {"map50_95", "map50"}
    int8 = invoke_json("export", out, "--target", "cpu-int8", "--calib-size", 8)
    meta = json.loads((out / "export" / "cpu-int8" / "export.json").read_text())
    kept = meta["quantization"]["task_kept_float"]["kept_float_convs"]
    # 3 scales x (box, class) final convs + the DFL conv stay float (ultralytics#22644)
    assert len(kept) == 7 and sum("/dfl/" in k for k in kept) == 1, kept
    assert meta["calibration"]["size"] == 8 and len(meta["calibration"]["hash"]) == 64
    assert int8["size_mb"] < fp32["size_mb"]

    img = next((det_data.parent / "images" / "val").glob("*.jpg"))
    pred = invoke_fresh("predict", out / "export" / "cpu-fp32", img, "--conf", "0.0", "--save", tmp_path / "pred")
    p = pred["predictions"][0]
    assert pred["task"] == "detect" and len(p["boxes"]) > 0
    w, h = Image.open(img).size
    for b in p["boxes"]:
        x0, y0, x1, y1 = b["xyxy"]
        assert 0 <= x0 <= x1 <= w and 0 <= y0 <= y1 <= h and 0 <= b["score"] <= 1
    assert Image.open(p["saved"]).size == (w, h)


def test_bench_reports_end_to_end_latency(det_run):
    out, _, _ = det_run
    if not (out / "export" / "cpu-fp32").is_dir():
        invoke_json("export", out, "--target", "cpu-fp32")
    r = invoke_json("bench", out, "--target", "cpu-fp32", "--profile", "x86-64-avx512", "--runs", 100)
    assert r["task"] == "detect" and r["metric_name"] == "map50_95"
    assert r["latency_e2e_ms"]["p50"] > 0 and r["latency_ms"]["p50"] > 0
    assert r["latency_ms"]["p50"] <= r["latency_ms"]["p90"] <= r["latency_ms"]["p99"]
    # The bench keeps the artefact's PR curve, and the run's report draws it (no confusion matrix).
    pr = r["curves"]["pr_curve"]
    assert len(pr["recall"]) == len(pr["precision"]) == 101 and pr["recall"][0] == 0 and pr["recall"][-1] == 1
    html = Path(invoke_json("report", out)["html"]).read_text()
    assert "alt='pr_curves'" in html and "alt='confusion'" not in html and "alt='pareto'" in html


def test_refuses_to_overwrite_a_run(det_run, det_data):
    out, _, _ = det_run
    res = invoke("finetune", "--model", "test_yolo_tiny", "--data", det_data, "--out", out)
    assert res.exit_code == 3
    assert "already holds a run (hint: pass --resume to continue it, or a new --out)" in res.stderr


def test_same_seed_same_weights(det_data, tmp_path):
    """Two runs with the same seed give bit-identical weights (CI gates must be repeatable),
    with edgetune's CPU settings (RAM image cache, one dataloader worker, channels_last)."""
    import hashlib

    digests = []
    for name in ("a", "b"):
        invoke_json("finetune", "--model", "test_yolo_tiny", "--data", det_data, "--out", tmp_path / name,
                    "--epochs", 2, "--batch", 8, "--img-size", 64, "--seed", 3)
        sd = torch.load(tmp_path / name / "ultralytics" / "weights" / "last.pt", weights_only=False)["model"]
        digests.append(hashlib.sha256(b"".join(v.float().numpy().tobytes() for v in sd.state_dict().values()))
                       .hexdigest())
    assert digests[0] == digests[1]


def test_ultralytics_log_goes_to_the_run_folder(det_run, det_data, tmp_path):
    """ultralytics' argument line and model table are kept in RUN/ultralytics/train.log, not printed
    into the terminal; the epoch progress still is, and --verbose shows everything."""
    out, _, _ = det_run
    log = (out / "ultralytics" / "train.log").read_text()
    assert "engine/trainer: " in log and "params  module" in log and "\x1b[" not in log
    args = ("finetune", "--model", "test_yolo_tiny", "--data", det_data, "--epochs", 1, "--batch", 8, "--img-size", 64)
    plain = invoke(*args, "--out", tmp_path / "plain")
    verbose = invoke(*args, "--out", tmp_path / "verbose", "--verbose")
    assert plain.exit_code == 0 and verbose.exit_code == 0, plain.stderr + verbose.stderr
    assert "Epoch" in plain.stderr and "mAP50-95" in plain.stderr  # progress and val table stay
    assert "engine/trainer: " not in plain.stderr and "params  module" not in plain.stderr, plain.stderr
    assert "engine/trainer: " in verbose.stderr and "params  module" in verbose.stderr


def test_detection_keeps_ultralytics_patience_unless_told(tmp_path, monkeypatch):
    """A new detection head's mAP sits near 0 for the first epochs of a small set: the classify
    default (5) stopped real runs there, so detect defaults to ultralytics' own 100."""
    from edgetune import training
    from edgetune.tasks import get_task

    seen = {}
    monkeypatch.setattr(type(get_task("detect")), "finetune", lambda self, cfg, quiet=False: seen.setdefault("d", cfg.patience))
    monkeypatch.setattr(type(get_task("classify")), "finetune", lambda self, cfg, quiet=False: seen.setdefault("c", cfg.patience))
    (tmp_path / "data").mkdir()
    training.finetune("yolo11n", tmp_path / "data", tmp_path / "a")
    training.finetune("efficientnet_lite0", tmp_path / "data", tmp_path / "b")
    assert seen == {"d": 100, "c": 5}
    seen.clear()
    training.finetune("yolo11n", tmp_path / "data", tmp_path / "c", patience=7)
    assert seen == {"d": 7}
    from edgetune.train.config import TrainConfig  # the default is resolved there, for library callers too

    assert TrainConfig(task="detect", model="yolo11n", data=tmp_path, out=tmp_path / "d").patience == 100


def test_input_size_given_resumed_or_from_the_images(tmp_path):
    from types import SimpleNamespace as NS

    from PIL import Image

    from edgetune.errors import RunDirError
    from edgetune.train.img_size import choose_detect_size, resolve_input_size

    img = tmp_path / "a.jpg"
    Image.new("RGB", (300, 200)).save(img)
    choose = lambda: choose_detect_size(640, [img])  # noqa: E731
    manifest = tmp_path / "edgetune.json"
    run = lambda size: NS(manifest_path=manifest, read_manifest=lambda: NS(spec=NS(preprocessing={"size": size})))  # noqa: E731
    assert resolve_input_size(416, None, choose)["chosen"] == 416
    assert resolve_input_size(None, None, choose)["chosen"] == 320  # 300 px longer side → 320
    assert resolve_input_size(None, run(640), choose)["chosen"] == 320  # no manifest written yet: chosen
    manifest.write_text("{}")
    assert resolve_input_size(None, run(640), choose) == {"chosen": 640, "given": True}  # resumed: the run's
    with pytest.raises(RunDirError, match=r"field 'preprocessing.size' must be an integer in \[16, 1024\], got 'x'"):
        resolve_input_size(None, run("x"), choose)
