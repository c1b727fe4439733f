"""Fuzzing the parsers that read user files (hypothesis): whatever the bytes, each one returns a
valid result or raises its typed EdgetuneError — never a KeyError, TypeError or traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import invoke
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgetune.errors import DataError, EdgetuneError, ProfileError

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                    st.text(max_size=12))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                      max_leaves=12)
tokens = st.one_of(st.sampled_from(["0", "1", "2", "0.5", "1e9", "-0.1", "nan", "inf", "-inf", "1.0", "x", "", "0x1"]),
                   st.floats(allow_nan=True).map(str), st.integers(-5, 5).map(str))
label_text = st.lists(st.lists(tokens, max_size=9).map(" ".join), max_size=6).map("\n".join)


@FUZZ
@given(text=label_text, nc=st.integers(1, 5))
def test_label_file_parser(tmp_path_factory, text, nc):
    from edgetune.data.yolo import parse_label_file

    path = tmp_path_factory.mktemp("lbl") / "a.txt"
    path.write_text(text)
    try:
        rows = parse_label_file(path, nc)
    except DataError as exc:
        assert str(path) in exc.message
        return
    assert rows.shape[1] == 5 and ((rows[:, 0] >= 0) & (rows[:, 0] < nc)).all()
    assert ((rows[:, 1:] >= 0) & (rows[:, 1:] <= 1)).all()


BASE_PROFILE = yaml.safe_load(Path("profiles/raspberry-pi-5.yaml").read_text())


def _mutate(doc, path: list, value):
    """doc with the value at `path` (a list of keys/indices, clipped to what exists) replaced."""
    if not path or not isinstance(doc, (dict, list)) or not doc:
        return value
    key = path[0]
    if isinstance(doc, dict):
        keys = sorted(doc, key=str)
        k = keys[key % len(keys)] if isinstance(key, int) else key
        return {**doc, k: _mutate(doc.get(k), path[1:], value)}
    i = key % len(doc) if isinstance(key, int) else 0
    return [*doc[:i], _mutate(doc[i], path[1:], value), *doc[i + 1:]]


@FUZZ
@given(path=st.lists(st.integers(0, 30), min_size=1, max_size=4), value=values)
def test_profile_parser(tmp_path_factory, path, value):
    from edgetune.profiles import load_profile

    doc = _mutate(BASE_PROFILE, path, value)
    f = tmp_path_factory.mktemp("prof") / "p.yaml"
    f.write_text(yaml.safe_dump(doc))
    try:
        load_profile(f)
    except ProfileError as exc:
        assert str(f) in exc.message


@FUZZ
@given(raw=st.binary(max_size=200))
def test_profile_parser_raw_bytes(tmp_path_factory, raw):
    from edgetune.profiles import load_profile

    f = tmp_path_factory.mktemp("prof") / "p.yaml"
    f.write_bytes(raw)
    try:
        load_profile(f)
    except ProfileError:
        pass


@FUZZ
@given(spec=st.dictionaries(st.sampled_from(["path", "train", "val", "names", "nc", "test"]), values, max_size=5))
def test_data_yaml_parser(tmp_path_factory, spec):
    from edgetune.data.yolo import load_yolo_dataset

    root = tmp_path_factory.mktemp("dy")
    (root / "images" / "train").mkdir(parents=True)
    f = root / "data.yaml"
    f.write_text(yaml.safe_dump(spec))
    try:
        load_yolo_dataset(f)
    except DataError:
        pass


MANIFEST_KEYS = ["task", "model", "labels", "preprocessing", "data", "metric_name", "best", "seed", "card",
                 "weights", "versions", "status"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(manifest=st.dictionaries(st.sampled_from(MANIFEST_KEYS), values, max_size=8),
       command=st.sampled_from(["report", "export"]))
def test_manifest_reader_via_the_cli(tmp_path_factory, manifest, command):
    """A hand-edited or corrupted edgetune.json: every command that reads it exits with a typed
    error code (never 1, the internal-error code) and one line."""
    run = tmp_path_factory.mktemp("run")
    (run / "edgetune.json").write_text(json.dumps(manifest))
    (run / "checkpoint.pt").write_bytes(b"")
    args = ["report", run] if command == "report" else ["export", run, "--target", "cpu-fp32"]
    res = invoke(*args)
    assert res.exit_code != 1, res.stderr
    if res.exit_code:
        assert len(res.stderr.strip().splitlines()) == 1, res.stderr


def test_typed_errors_are_edgetune_errors():
    assert issubclass(DataError, EdgetuneError) and issubclass(ProfileError, EdgetuneError)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.lists(st.integers(0, 40), min_size=1, max_size=3), value=values)
def test_mutated_real_manifest_via_report(tmp_path_factory, tiny_run, tiny_exports, path, value):
    """One field of a real run's manifest replaced by anything: `report` works or exits typed."""
    import shutil

    run = tmp_path_factory.mktemp("mut") / "run"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("*.pt", "*.onnx", "*.png", "*.html"))
    manifest = json.loads((run / "edgetune.json").read_text())
    (run / "edgetune.json").write_text(json.dumps(_mutate(manifest, path, value), default=str))
    res = invoke("report", run)
    assert res.exit_code in (0, 3), res.stderr
    if res.exit_code:
        assert len(res.stderr.strip().splitlines()) == 1, res.stderr


@pytest.mark.parametrize("entry", [True, [None], 3, {"a": 1}])
def test_data_yaml_split_that_is_not_a_path_is_one_line(tmp_path, entry):
    """Found by the fuzzer above: these raised TypeError (a traceback) instead of a DataError."""
    from edgetune.data.yolo import load_yolo_dataset

    (tmp_path / "data.yaml").write_text(yaml.safe_dump({"train": entry, "val": "images/val", "names": ["a"]}))
    with pytest.raises(DataError, match=r"'train' must be a path or a list of paths, got "):
        load_yolo_dataset(tmp_path / "data.yaml")


COCO_BASE = {"images": [{"id": 1, "file_name": "a.jpg", "width": 8, "height": 8}],
             "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 4, 4]}],
             "categories": [{"id": 1, "name": "car"}]}
LS_BASE = [{"id": 1, "data": {"image": "/data/upload/1/a.jpg"}, "annotations": [{"result": [
    {"type": "rectanglelabels", "original_width": 8, "original_height": 8,
     "value": {"x": 10, "y": 10, "width": 50, "height": 50, "rectanglelabels": ["car"]}}]}]}]


@FUZZ
@given(fmt=st.sampled_from(["coco", "labelstudio", "csv"]), path=st.lists(st.integers(0, 30), min_size=1, max_size=5),
       value=values)
def test_annotation_readers(tmp_path_factory, fmt, path, value):
    """A mutated COCO / Label Studio export, or a table of junk: a LabelSet or one DataError."""
    from PIL import Image

    from edgetune.data.labels.formats import FORMATS

    folder = tmp_path_factory.mktemp("ann")
    Image.new("RGB", (8, 8)).save(folder / "a.jpg")
    if fmt == "csv":
        src = folder / "t.csv"
        src.write_text("file,label\n" + ",".join(str(v) for v in (value if isinstance(value, list) else [value])))
    else:
        src = folder / "export.json"
        src.write_text(json.dumps(_mutate(COCO_BASE if fmt == "coco" else LS_BASE, path, value)))
    try:
        ls = FORMATS.get(fmt).read(src)
    except DataError as exc:
        assert exc.message and "\n" not in exc.message
        return
    for img in ls.images:
        assert all(0 <= b.x0 < b.x1 <= img.width and 0 <= b.y0 < b.y1 <= img.height for b in img.boxes)


@FUZZ
@given(tags=st.lists(st.sampled_from(["<box", " label='car'", " xtl='1'", " ytl='x'", " xbr='5'", " ybr='9'",
                                      " rotation='0'", " rotation='nan'", "/>", "<image name='a.jpg'", " width='8'",
                                      " height='0'", ">", "</image>", "<polygon/>", "&amp;", "<", "'"]), max_size=25))
def test_cvat_reader(tmp_path_factory, tags):
    from PIL import Image

    from edgetune.data.labels import cvat

    folder = tmp_path_factory.mktemp("cvat")
    Image.new("RGB", (8, 8)).save(folder / "a.jpg")
    (folder / "annotations.xml").write_text("<annotations>" + "".join(tags) + "</annotations>")
    try:
        cvat.read(folder)
    except DataError as exc:
        assert exc.message and "\n" not in exc.message
