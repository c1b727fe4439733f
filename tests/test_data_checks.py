"""Bad ImageFolders: each gives its exact one-line message and exit code 3 before training."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import invoke
from PIL import Image


def _img(path: Path, value: int = 128) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8, 3), value, dtype=np.uint8)).save(path)


def _good(root: Path, classes=("a", "b"), n_train=3, n_val=2) -> Path:
    for split, n in (("train", n_train), ("val", n_val)):
        for c in classes:
            for i in range(n):
                _img(root / split / c / f"{i}.png", 40 * i)
    return root


def _case_corrupt(root):
    _good(root)
    (root / "train" / "a" / "1.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    return f"cannot read image {root}/train/a/1.png: "


def _case_not_image(root):
    _good(root)
    (root / "train" / "b" / "notes.txt").write_text("hello")
    return "train/b/notes.txt is not an image (extension '.txt') (hint: remove it or move it out of the class folders"


def _case_empty_class(root):
    _good(root)
    (root / "train" / "c").mkdir()
    (root / "val" / "c").mkdir()
    return f"class 'c' in train/ has no images ({root}/train/c) (hint: add images or remove the empty class folder)"


def _case_mismatch(root):
    _good(root)
    shutil.rmtree(root / "val" / "b")
    _img(root / "val" / "z" / "0.png")
    return f"classes differ between train and val in {root} (only in train: b; only in val: z) (hint: both splits need the same class folders)"


def _case_single_class(root):
    _good(root, classes=("a",))
    return f"{root}/train has 1 class folder(s); classification needs at least 2"


def _case_no_val(root):
    _good(root)
    shutil.rmtree(root / "val")
    return f"{root} has train/ but no val/ folder (hint: add val/<class>/ images, or pass --data ROOT/train --val-split 0.2)"


def _case_too_few(root):
    _good(root, n_train=1)
    return "class 'a' has 1 train image(s); at least 2 needed (hint: add images (10+ per class is a sensible floor))"


def _case_missing(root):
    return f"data folder {root} does not exist (hint: pass --data DIR with train/ and val/)"


def _case_flat_without_split(root):
    for c in ("a", "b"):
        _img(root / c / "0.png")
    return f"{root} has class folders but no train/ and val/ (hint: pass --val-split 0.2 to hold out a fraction for validation)"


CASES = {name[len("_case_"):]: fn for name, fn in globals().items() if name.startswith("_case_")}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_imagefolder(tmp_path, case):
    root = tmp_path / "data"
    expected = CASES[case](root)
    res = invoke("finetune", "--model", "test_tinynet", "--data", root, "--out", tmp_path / "run", "--quiet")
    assert res.exit_code == 3, res.stderr
    line = res.stderr.strip()
    assert "\n" not in line and "Traceback" not in line
    assert line.startswith("edgetune: error: " + expected) or expected in line, line
    assert not (tmp_path / "run" / "edgetune.json").exists()


def test_val_split_on_flat_folder_trains(tmp_path):
    root = tmp_path / "flat"
    for c in ("a", "b"):
        for i in range(5):
            _img(root / c / f"{i}.png", 30 * i + (100 if c == "b" else 0))
    res = invoke("finetune", "--model", "test_tinynet", "--data", root, "--val-split", "0.4", "--out",
                 tmp_path / "run", "--epochs", 1, "--quiet", "--json")
    assert res.exit_code == 0, res.stderr
    import json

    m = json.loads((tmp_path / "run" / "edgetune.json").read_text())
    assert m["data"]["layout"] == "split:0.4" and m["data"]["val_per_class"] == [2, 2]


@pytest.mark.parametrize("args, code, message", [
    (["--epochs", "0"], 2, "--epochs must be ≥ 1, got 0"),
    (["--freeze", "head"], 2, "--freeze must be none, backbone or a number of stages, got 'head'"),
    (["--model", "mobilenetv3"], 2, "unknown model 'mobilenetv3'; did you mean"),
])
def test_bad_options(tmp_path, fm_data, args, code, message):
    base = {"--model": "test_tinynet", "--data": str(fm_data), "--out": str(tmp_path / "r")}
    for k, v in zip(args[::2], args[1::2], strict=True):
        base[k] = v
    res = invoke("finetune", *[x for kv in base.items() for x in kv], "--quiet")
    assert res.exit_code == code and message in res.stderr, res.stderr
