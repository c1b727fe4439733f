"""`edgetune data check` (issue 18): a planted leak found pair by pair, unreadable files and bad
labels as errors (exit 3, named), warnings for imbalance, conflicting labels, tiny boxes and
clipped or silent audio, the HTML page, and finetune's warning about a leak."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import invoke, invoke_json
from PIL import Image
from test_data_import import label_set, write_split_export

from edgetune.data.audio import write_wav


@pytest.fixture(scope="module")
def det_set(tmp_path_factory) -> Path:
    """A YOLO set of 24 real 96 px photo tiles, 18 train / 6 val, imported from a COCO export."""
    base = tmp_path_factory.mktemp("check")
    ls = label_set(base / "src", n=24)
    write_split_export(ls, "coco", base / "coco")
    invoke_json("data", "import", base / "coco", "--from", "coco", "--out", base / "yolo")
    return base / "yolo"


def copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_clean_set_passes_with_its_counts(det_set):
    r = invoke_json("data", "check", det_set)
    assert r["task"] == "detect" and r["files"] == {"train": 18, "val": 6} and r["errors"] == 0
    assert r["near_duplicate_rule"] == "exact bytes; pHash within 8 bits for images ≥ 64 px"
    assert sum(r["stats"]["boxes_per_image"]) == sum(sum(v.values()) for v in r["per_class"].values())


def test_planted_leak_resized_and_reencoded_is_found_pair_by_pair(det_set, tmp_path):
    root = copy(det_set, tmp_path / "leaky")
    planted = {}
    for p in sorted((root / "images/val").glob("*.jpg"))[:5]:
        im = Image.open(p)
        im.resize((72, 72)).save(root / "images/train" / f"copy_{p.stem}.jpg", quality=75)
        shutil.copy(root / "labels/val" / f"{p.stem}.txt", root / "labels/train" / f"copy_{p.stem}.txt")
        planted[f"images/val/{p.name}"] = f"images/train/copy_{p.stem}.jpg"
    res = invoke("data", "check", root, "--json", "--html", tmp_path / "check.html")
    assert res.exit_code == 3 and res.stderr.strip() == (
        f"edgetune: error: data check: 5 leaked pairs across splits in {root} (hint: a leak: remove one file of each "
        "pair (or re-split with `edgetune data split --group-by`); unreadable files and bad labels: fix or delete them)")
    r = json.loads(res.stdout)
    leaks = [f for f in r["findings"] if f["kind"] == "leak"]
    found = {f["where"].split(" (val) ≈ ")[0]: f["where"].split(" ≈ ")[1].removesuffix(" (train)") for f in leaks}
    assert found == planted  # every pair, no other
    page = (tmp_path / "check.html").read_text()
    assert "Worst offenders" in page and page.count("data:image/png;base64") >= 2


def test_unreadable_file_and_bad_label_are_errors_naming_them(det_set, tmp_path):
    root = copy(det_set, tmp_path / "bad")
    victim = sorted((root / "images/train").glob("*.jpg"))[0]
    victim.write_bytes(victim.read_bytes()[:200])  # truncated
    label = sorted((root / "labels/val").glob("*.txt"))[0]
    label.write_text("0 0.5 0.5 0.2\n")
    res = invoke("data", "check", root, "--json")
    assert res.exit_code == 3 and "1 bad label files, 1 unreadable files" in res.stderr
    r = json.loads(res.stdout)
    kinds = {f["kind"]: f for f in r["findings"] if f["severity"] == "error"}
    assert kinds["unreadable"]["where"] == f"images/train/{victim.name}"
    assert kinds["bad-label"]["where"] == str(label)
    assert kinds["bad-label"]["detail"] == f"{label}:1: 4 values; a box row is `class cx cy w h`"


def test_small_images_get_exact_checks_and_label_conflicts(fm_data, tmp_path):
    root = copy(fm_data, tmp_path / "fm")
    cls = sorted((root / "train").iterdir())
    src = sorted(cls[0].iterdir())[0]
    shutil.copy(src, root / "val" / cls[0].name / "dup.png")  # a leak (exact)
    shutil.copy(src, cls[1] / "dup.png")  # the same image under another label
    res = invoke("data", "check", root, "--json")
    assert res.exit_code == 3
    r = json.loads(res.stdout)
    kinds = [f["kind"] for f in r["findings"]]
    assert kinds.count("leak") == 1 and "conflicting-labels" in kinds and "small-images" in kinds


def test_imbalance_and_tiny_boxes_are_warnings(det_set, tmp_path, fm_data):
    root = copy(fm_data, tmp_path / "fm")
    rare = sorted((root / "train").iterdir())[0]
    for p in sorted(rare.iterdir())[2:]:
        p.unlink()
    r = invoke_json("data", "check", root)
    assert r["errors"] == 0 and r["imbalance"] == 20.0
    assert [f["detail"] for f in r["findings"] if f["kind"] == "imbalance"] == [
        f"'{sorted((root / 'train').iterdir())[1].name}' has 40, '{rare.name}' has 2 (20×); weigh the classes or add examples"]
    det = copy(det_set, tmp_path / "det")
    lbl = sorted((det / "labels/train").glob("*.txt"))[0]
    lbl.write_text(lbl.read_text() + "0 0.5 0.5 0.02 0.5\n")  # 1.9 px wide at 96 px
    r = invoke_json("data", "check", det)
    tiny = [f for f in r["findings"] if f["kind"] == "tiny-box"]
    assert len(tiny) == 1 and tiny[0]["where"] == f"images/train/{lbl.stem}.jpg"


def test_kws_clip_statistics_clipping_silence_and_leak(tmp_path):
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for word in ("yes", "no"):
            (tmp_path / split / word).mkdir(parents=True)
            for i in range(6):
                write_wav(tmp_path / split / word / f"{i}.wav", (rng.standard_normal(16000) * 0.1).astype(np.float32))
    write_wav(tmp_path / "train/yes/loud.wav", np.clip(rng.standard_normal(16000), -1, 1).astype(np.float32))
    write_wav(tmp_path / "train/no/quiet.wav", np.zeros(16000, np.float32))
    shutil.copy(tmp_path / "train/yes/0.wav", tmp_path / "val/yes/copy.wav")
    res = invoke("data", "check", tmp_path, "--json")
    r = json.loads(res.stdout)
    assert res.exit_code == 3 and r["task"] == "kws" and r["near_duplicate_rule"] == "exact bytes"
    by_kind = {f["kind"]: f["where"] for f in r["findings"]}
    assert by_kind["clipped"] == "train/yes/loud.wav" and by_kind["silent"] == "train/no/quiet.wav"
    assert by_kind["leak"] == "val/yes/copy.wav (val) ≈ train/yes/0.wav (train)"
    assert r["stats"]["sample_rates"] == {"16000": 27}


def test_finetune_warns_about_a_leak(fm_data, tmp_path):
    from edgetune.data.check.leak import leak_warning

    root = copy(fm_data, tmp_path / "fm")
    cls = sorted((root / "train").iterdir())[0]
    for p in sorted(cls.iterdir())[:4]:
        shutil.copy(p, root / "val" / cls.name / f"leak_{p.name}")
    files = {s: sorted((root / s).rglob("*.png")) for s in ("train", "val")}
    line = leak_warning(files, root, audio=False)
    assert line.startswith("warning: 4 validation files duplicate training files (val/")
    assert line.endswith(f"; and 1 more): the val metric, and every gate on it, is inflated; "
                         f"`edgetune data check {root}` lists them all")
    assert leak_warning({s: sorted((fm_data / s).rglob("*.png")) for s in ("train", "val")}, fm_data,
                        audio=False) is None
    res = invoke("finetune", "--model", "test_tinynet", "--data", root, "--out", tmp_path / "run", "--epochs", 1,
                 "--quiet")
    assert res.exit_code == 0 and "warning: 4 validation files duplicate training files" in res.stderr


def test_check_on_a_broken_data_yaml_is_one_line(tmp_path):
    (tmp_path / "data.yaml").write_text("train: [images/train\nval: :\n")
    res = invoke("data", "check", tmp_path)
    assert res.exit_code == 3 and res.stderr.startswith(f"edgetune: error: {tmp_path / 'data.yaml'} is not valid YAML")
    assert len(res.stderr.strip().splitlines()) == 1
