"""`finetune --cache auto|ram|disk|none`: where decoded training images live, and that training
does not depend on it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import invoke

from edgetune.data import decoded


def test_auto_takes_ram_when_the_decoded_set_fits_half_the_available_memory_else_disk_else_none():
    fits = decoded.choose("auto", 1000, 3 * 146 * 146, available=2 * 10**9)
    assert fits.mode == "ram" and fits.note == "decoded set 0.06 GB fits in RAM (budget 1.00 GB)"
    big = decoded.choose("auto", 50_000, 3 * 146 * 146, available=4 * 10**9, free_disk=100 * 10**9)
    assert big.mode == "disk"
    assert big.note == "decoded set 3.20 GB exceeds the RAM budget 2.00 GB: streamed from disk"
    full = decoded.choose("auto", 50_000, 3 * 146 * 146, available=4 * 10**9, free_disk=3 * 10**9)
    assert full.mode == "none"
    assert full.note == ("decoded set 3.20 GB fits neither the RAM budget 2.00 GB nor the free disk (3.00 GB): "
                         "decoded again at every draw")
    assert decoded.choose("none", 10, 3).to_dict() == {"mode": "none", "note": "--cache none", "gb": 0.0}


@pytest.mark.parametrize("key", [3, slice(2, 7), slice(None, None, 2), np.array([9, 0, 4]),
                                 (slice(1, 5), slice(2, 6), slice(2, 6)), (np.array([8, 1]), slice(None), 0)])
def test_disk_and_lazy_rows_index_like_the_array(tmp_path, key):
    rng = np.random.default_rng(0)
    rows = rng.integers(0, 255, (10, 8, 8, 3), dtype=np.uint8)
    choice = decoded.CacheChoice("disk", "test", rows.nbytes)
    with decoded.storage(choice, tmp_path) as allocate:
        disk = allocate("t", 10, (8, 8, 3), None)
        for i, r in enumerate(rows):
            disk[i] = r
        lazy = decoded.LazyRows(lambda i: rows[i], 10, (8, 8, 3))
        assert len(disk) == len(lazy) == 10 and disk.shape == rows.shape
        np.testing.assert_array_equal(disk[key], rows[key])
        np.testing.assert_array_equal(lazy[key], rows[key])
        folder = next(tmp_path.iterdir())
        assert oct(folder.stat().st_mode & 0o777) == "0o700"
    assert list(tmp_path.iterdir()) == []  # removed when training ends


def test_training_is_the_same_whatever_holds_the_decoded_images(fm_data, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGETUNE_CACHE", str(tmp_path / "cache"))
    histories = {}
    for mode in ("ram", "disk", "none"):
        out = tmp_path / mode
        res = invoke("finetune", "--model", "test_tinynet", "--data", fm_data, "--out", out, "--epochs", 2,
                     "--lr", 3e-3, "--cache", mode)
        assert res.exit_code == 0, res.stderr
        assert f"decoded images: {mode} (--cache {mode})" in res.stderr
        manifest = json.loads((out / "edgetune.json").read_text())
        assert manifest["cache"]["mode"] == mode
        histories[mode] = [(h["loss"], h["top1"]) for h in manifest["history"]]
    assert histories["disk"] == histories["ram"] == histories["none"]
    assert list((tmp_path / "cache" / "decoded").iterdir()) == []  # the disk rows went with the run


def test_kws_refuses_a_cache_mode_in_one_line(kws_data, tmp_path):
    res = invoke("finetune", "--model", "speech_embedding_kws", "--data", kws_data, "--out", tmp_path / "k",
                 "--cache", "disk")
    assert res.exit_code == 2
    assert res.stderr.strip() == ("edgetune: error: --cache disk: kws keeps its clips in RAM (1 s of 16 kHz audio is "
                                  "64 kB a clip) (hint: drop --cache)")
