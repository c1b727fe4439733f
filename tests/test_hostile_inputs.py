"""Hostile run folders, caches, profiles, devices and files (issue: security round two).

Each class of defect has a test with variants: pickles pinned only by what travels with them,
names from files and devices that became paths, small inputs that took gigabytes, artefacts run
without being checked, lost work and exit 0 on failure, and tracebacks on hand-edited files.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import evil_pt, invoke, invoke_json
from PIL import Image

from edgetune.errors import RunDirError, UntrustedFileError

ET = [sys.executable, "-m", "edgetune.cli.main"]


def _one_line(res, code: int) -> str:
    assert res.exit_code == code, res.stderr[-2000:]
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgetune: error: "), res.stderr[-2000:]
    return lines[0].removeprefix("edgetune: error: ")


def _copy_run(run: Path, dest: Path, *ignore: str) -> Path:
    return Path(shutil.copytree(run, dest, ignore=shutil.ignore_patterns(*ignore) if ignore else None))


# -- 1. a pin that travels with the file is no pin ----------------------------------------------

@pytest.mark.parametrize("manifest_pin", ["deleted", "replaced by the payload's own sha256"])
def test_detect_checkpoint_with_code_never_runs_whatever_the_manifest_says(det_run, tmp_path, manifest_pin):
    from edgetune.fsutil import sha256_file

    out, _, _ = det_run
    run = _copy_run(out, tmp_path / "run", "export", "bench", "ultralytics")
    marker = tmp_path / "pwned"
    evil = evil_pt(run / "checkpoint.pt", marker)
    manifest = json.loads((run / "edgetune.json").read_text())
    if manifest_pin == "deleted":
        del manifest["checkpoint_sha256"]
    else:
        manifest["checkpoint_sha256"] = sha256_file(evil)
    (run / "edgetune.json").write_text(json.dumps(manifest))
    msg = _one_line(invoke("export", run, "--target", "cpu-fp32"), 3)
    assert msg.startswith(f"cannot load detector checkpoint {evil}: references types outside the supported "
                          "Ultralytics checkpoint format (hint: only ultralytics model checkpoints load")
    assert not marker.exists() and not (run / "export" / "cpu-fp32").exists()


def test_detect_resume_of_a_copied_run_never_unpickles_code(det_run, tmp_path):
    out, _, _ = det_run
    run = _copy_run(out, tmp_path / "run", "export", "bench")
    manifest = json.loads((run / "edgetune.json").read_text())
    (run / "edgetune.json").write_text(json.dumps({**manifest, "status": "running"}))
    marker = tmp_path / "pwned"
    last = evil_pt(run / "ultralytics" / "weights" / "last.pt", marker)
    data = manifest["data"]["yaml"]
    msg = _one_line(invoke("finetune", "--model", "test_yolo_tiny", "--data", data, "--out", run, "--resume", "--quiet"), 3)
    assert msg.startswith(f"cannot resume from {last}: references types outside the supported Ultralytics "
                          "checkpoint format (hint: ")
    assert not marker.exists()


def test_unpinned_pickle_in_the_weight_cache_is_refused(det_data, tmp_path, monkeypatch):
    """yolo11n's card pins yolo11n-seg.pt; a yolo11n.pt that merely sits in the cache is not
    trusted as 'cache' (edgetune did not download it)."""
    cache, marker = tmp_path / "cache", tmp_path / "pwned"
    monkeypatch.setenv("EDGETUNE_CACHE", str(cache))
    monkeypatch.setenv("EDGETUNE_STATE", str(tmp_path / "state"))
    monkeypatch.delenv("EDGETUNE_TRUSTED_SHA256", raising=False)
    planted = evil_pt(cache / "weights" / "yolo11n" / "yolo11n.pt", marker)
    msg = _one_line(invoke("finetune", "--model", "yolo11n", "--data", det_data, "--out", tmp_path / "r",
                           "--epochs", 1), 3)
    assert msg.startswith(f"{planted} (from the cache) is a pickled checkpoint (sha256 ")
    assert f"(or add it to {tmp_path / 'state' / 'trusted-sha256'})" in msg
    assert not marker.exists() and not (tmp_path / "r").exists()


def test_trust_list_pins_come_from_the_user_not_the_file(tmp_path, monkeypatch):
    from edgetune.assets import ResolvedWeights, remember_trusted, require_trusted_pickle
    from edgetune.zoo import get_card

    card = get_card("yolo11n")
    monkeypatch.setenv("EDGETUNE_STATE", str(tmp_path / "state"))
    monkeypatch.delenv("EDGETUNE_TRUSTED_SHA256", raising=False)
    w = ResolvedWeights(path=tmp_path / "yolo11n.pt", source="cache", sha256="ab" * 32)
    with pytest.raises(UntrustedFileError):
        require_trusted_pickle(card, w)
    monkeypatch.setenv("EDGETUNE_TRUSTED_SHA256", "cd" * 32 + ", " + "ab" * 32)
    require_trusted_pickle(card, w)  # the user's own list
    monkeypatch.delenv("EDGETUNE_TRUSTED_SHA256")
    remember_trusted(w, "downloaded by edgetune from the card's official source")
    require_trusted_pickle(card, w)  # the trust-list file in the user's state folder
    require_trusted_pickle(card, ResolvedWeights(path=tmp_path / "x.pt", source="explicit", sha256=card.weights.sha256))


# -- 2. names from files and devices never become paths outside their folder --------------------

@pytest.mark.parametrize("name", ["../export", "/tmp/elsewhere", "a/b", "..", ".hidden"])
def test_profile_name_that_is_a_path_is_refused(tiny_run, tiny_exports, tmp_path, name):
    prof = tmp_path / "p.yaml"
    prof.write_text(Path("profiles/x86-64-avx512.yaml").read_text().replace("name: x86-64-avx512", f"name: '{name}'"))
    before = (tiny_run / "export" / "cpu-fp32" / "export.json").read_bytes()
    msg = _one_line(invoke("profiles", "check", prof), 3)
    assert msg.startswith(f"{prof}: field 'name' must be a plain name: letters, digits, '.', '_' and '-'")
    msg = _one_line(invoke("bench", tiny_run, "--target", "cpu-fp32", "--profile", prof), 3)
    assert "field 'name' must be a plain name" in msg
    assert (tiny_run / "export" / "cpu-fp32" / "export.json").read_bytes() == before


def test_run_paths_stay_inside_the_run(tmp_path):
    from edgetune.run import RunDir

    run = RunDir(tmp_path / "run")
    (run.path / "bench").mkdir(parents=True)
    assert run.bench_path("raspberry-pi-5", "cpu-int8") == run.path / "bench" / "raspberry-pi-5" / "cpu-int8.json"
    for profile, target in (("../x", "cpu-int8"), ("p", "../../edgetune"), ("/abs", "t"), ("p", "")):
        with pytest.raises(RunDirError, match="is not a valid name"):
            run.bench_path(profile, target)
    outside = tmp_path / "outside"
    outside.mkdir()
    (run.path / "bench" / "linked").symlink_to(outside)  # a hostile run folder's symlink
    with pytest.raises(RunDirError, match="leads outside"):
        run.bench_path("linked", "cpu-int8")


@pytest.fixture()
def fake_device(tmp_path):
    """A `--remote-edgetune` that answers with a crafted JSON line (what a hostile device can do)."""
    def make(answer: str) -> str:
        script = tmp_path / "device.sh"
        script.write_text(f"#!/bin/sh\ncat <<'EOF'\n{answer}\nEOF\n")
        script.chmod(0o755)
        return str(script)
    return make


@pytest.mark.parametrize("profile", ["../../victim", "/abs/victim", "raspberry-pi-4"])
def test_device_cannot_choose_where_its_answer_is_written(tiny_run, tiny_exports, tmp_path, fake_device, sshd,
                                                          profile):
    r = json.loads((tiny_run / "bench" / "raspberry-pi-5" / "cpu-int8.json").read_text()) \
        if (tiny_run / "bench" / "raspberry-pi-5" / "cpu-int8.json").is_file() else None
    answer = json.dumps({"profile": profile, "target": "cpu-int8", "metric": 1.0, "violations": []})
    res = invoke("bench", tiny_run, "--target", "cpu-int8", "--profile", "raspberry-pi-5", "--remote",
                 "root@127.0.0.1", "--remote-edgetune", fake_device(answer), *sshd, "--quiet")
    msg = _one_line(res, 9)
    assert msg.startswith(f"root@127.0.0.1 answered for profile '{profile}', target 'cpu-int8'; asked for "
                          "raspberry-pi-5, cpu-int8")
    assert not (tiny_run / "bench" / "raspberry-pi-4").exists() and not (tmp_path / "victim").exists()
    kept = tiny_run / "bench" / "raspberry-pi-5" / "cpu-int8.json"
    assert (json.loads(kept.read_text()) if kept.is_file() else None) == r  # nothing written


def test_device_answer_is_bounded_and_checked(tiny_run, tiny_exports, tmp_path, fake_device, sshd, monkeypatch):
    import edgetune.remote

    monkeypatch.setattr(edgetune.remote, "MAX_REPLY_BYTES", 1 << 16)
    malformed = json.dumps({"profile": "raspberry-pi-5", "target": "cpu-int8", "metric": "high"})
    base = ["bench", tiny_run, "--target", "cpu-int8", "--profile", "raspberry-pi-5", "--remote",
            "root@127.0.0.1", *sshd, "--quiet", "--remote-edgetune"]
    msg = _one_line(invoke(*base, fake_device(malformed)), 9)
    assert msg == "root@127.0.0.1's bench result: field 'metric' must be an integer or a number, got 'high' (hint: install " \
                  "the same edgetune version on the device; nothing was written)"
    flood = tmp_path / "flood.sh"
    flood.write_text("#!/bin/sh\nhead -c 10000000 /dev/zero\n")
    flood.chmod(0o755)
    msg = _one_line(invoke(*base, str(flood)), 9)
    assert msg.startswith("root@127.0.0.1 sent more than 65,536 bytes on stdout; stopped reading")


@pytest.mark.parametrize("field, value, expected", [
    ("target", "../../x", "field 'target' must be a known target, got '../../x'"),
    ("artifact", "/etc/passwd", "field 'artifact' must be a path ending in model.onnx, got '/etc/passwd'"),
    ("labels", [], "field 'labels' must be a non-empty list of strings"),
    ("drop", None, "field 'drop' is missing"),
])
def test_hand_edited_export_json_is_one_line(tiny_run, tiny_exports, tmp_path, field, value, expected):
    folder = _copy_run(tiny_run / "export" / "cpu-fp32", tmp_path / "cpu-fp32")
    meta = json.loads((folder / "export.json").read_text())
    meta[field] = value
    (folder / "export.json").write_text(json.dumps(meta))
    img = next((Path(json.loads((tiny_run / "edgetune.json").read_text())["data"]["root"]) / "val").rglob("*.png"))
    msg = _one_line(invoke("predict", folder, img), 3)
    assert msg.startswith(f"{folder / 'export.json'}: {expected}")


# -- 3. small inputs, bounded memory ------------------------------------------------------------

def _png_header(width: int, height: int) -> bytes:
    """A ~70-byte PNG that declares width x height (8-bit grey) — what a decompression bomb is."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("size, limit", [
    ((1, 60000), "an aspect ratio over 50:1"),
    ((60000, 1), "an aspect ratio over 50:1"),
    ((20000, 20000), "over edgetune's limit of 89.5 megapixels"),
    ((10000, 9000), "over edgetune's limit of 89.5 megapixels"),
])
def test_image_bombs_are_one_line_in_predict_and_finetune(tiny_run, tiny_exports, fm_data, tmp_path, size, limit):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_header(*size))
    assert bomb.stat().st_size < 200
    msg = _one_line(invoke("predict", tiny_run / "export" / "cpu-fp32", bomb), 3)
    assert msg.startswith(f"{bomb}: image is ") and limit in msg
    data = shutil.copytree(fm_data, tmp_path / "data")
    shutil.copy(bomb, data / "train" / "bag" / "bomb.png")
    msg = _one_line(invoke("finetune", "--model", "test_tinynet", "--data", data, "--out", tmp_path / "r",
                           "--epochs", 1, "--quiet"), 3)
    assert msg.startswith(f"cannot read image {data / 'train' / 'bag' / 'bomb.png'}: image is ") and limit in msg


def test_detect_image_bomb_names_the_limit(det_run, tmp_path):
    out, _, _ = det_run
    if not (out / "export" / "cpu-fp32" / "export.json").is_file():
        invoke_json("export", out, "--target", "cpu-fp32")
    strip = tmp_path / "strip.png"
    Image.new("RGB", (1, 60000), (90, 90, 90)).save(strip)  # valid, decodable, and absurd
    msg = _one_line(invoke("predict", out / "export" / "cpu-fp32", strip), 3)
    assert msg == f"{strip}: image is 1x60000 pixels, an aspect ratio over 50:1 (crop or pad it first)"


@pytest.mark.parametrize("body, expected", [
    ("a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]\n" for i in range(8)),
     "expands to more than 100,000 values (YAML aliases)"),
    ("a: " + "[" * 5000 + "]" * 5000, "is nested more than 64 levels deep"),
    ("a: &a [1, *a]", "has a recursive YAML alias"),
])
def test_yaml_bombs_are_one_line_and_fast(tmp_path, body, expected):
    prof = tmp_path / "p.yaml"
    prof.write_text(body)
    t0 = time.perf_counter()
    msg = _one_line(invoke("profiles", "check", prof), 3)
    assert time.perf_counter() - t0 < 10  # was 24 s and 1.5 GB before a crash
    assert msg.startswith(f"profile {prof} ") and expected in msg


def test_deep_json_and_huge_json_are_one_line(tiny_run, tiny_exports, tmp_path, monkeypatch):
    folder = _copy_run(tiny_run / "export" / "cpu-fp32", tmp_path / "cpu-fp32")
    (folder / "export.json").write_text("[" * 100000 + "]" * 100000)
    img = tmp_path / "x.png"
    Image.new("RGB", (32, 32)).save(img)
    msg = _one_line(invoke("predict", folder, img), 3)
    assert msg.startswith(f"export metadata {folder / 'export.json'} is nested deeper than edgetune reads")
    import edgetune.untrusted

    monkeypatch.setattr(edgetune.untrusted, "MAX_JSON_BYTES", 1000)
    monkeypatch.setattr("edgetune.run.MAX_JSON_BYTES", 1000)
    msg = _one_line(invoke("predict", folder, img), 3)
    assert msg.startswith(f"export metadata {folder / 'export.json'} is 200,000 bytes; edgetune reads at most 1,000")


def test_long_recordings_stream_in_blocks_with_the_same_detections(monkeypatch):
    """predict --stream reads a recording block by block: the posteriors are exactly those of the
    whole array, whatever the block size (so a 2 GB WAV needs one block of RAM, not 2 GB)."""
    from edgetune.tasks.kws_stream import posteriors

    class Energy:  # a stand-in runtime: logits from the window's energy in 4 quarters
        def run(self, x):
            q = x.reshape(1, 4, -1)
            return [np.log1p((q ** 2).sum(-1))]

    rng = np.random.default_rng(0)
    audio = rng.standard_normal(50_000).astype(np.float32)
    whole = posteriors(Energy(), [audio], window=16000, hop=1600, sr=16000)
    for block in (1, 999, 1600, 16000, 17000):
        parts = [audio[i:i + block] for i in range(0, len(audio), block)]
        got = posteriors(Energy(), parts, window=16000, hop=1600, sr=16000)
        assert np.array_equal(got[0], whole[0]) and np.allclose(got[1], whole[1]) and got[3] == len(audio)
    short = posteriors(Energy(), [audio[:5000]], window=16000, hop=1600, sr=16000)
    assert len(short[0]) == 1 and short[3] == 5000  # shorter than a window: padded to one


def test_a_clip_too_long_to_read_whole_is_one_line(tmp_path, monkeypatch):
    import edgetune.data.audio as audio
    from edgetune.errors import DataError

    wav = tmp_path / "long.wav"
    sf.write(wav, np.zeros(48000, np.float32), 16000, subtype="PCM_16")
    monkeypatch.setattr(audio, "MAX_READ_FRAMES", 16000)
    with pytest.raises(DataError) as e:
        audio.read_audio(wav)
    assert e.value.one_line().startswith(f"audio {wav} is 0 min long; a clip is read whole, up to ")
    assert "use `predict --stream` for long recordings" in e.value.one_line()
    monkeypatch.setattr(audio, "STREAM_BLOCK_FRAMES", 1000)
    sr, blocks = audio.stream_audio(wav)
    assert sr == 16000 and len(blocks) == 48 and [len(b) for b in blocks] == [1000] * 48


# -- 4. an artefact is checked before it runs --------------------------------------------------

def test_swapped_or_damaged_artefact_is_named_before_it_runs(tiny_run, tiny_exports, det_run, tmp_path):
    img = tmp_path / "x.png"
    Image.new("RGB", (40, 40), (100, 50, 20)).save(img)
    folder = _copy_run(tiny_run / "export" / "cpu-fp32", tmp_path / "swapped")
    out, _, _ = det_run
    if not (out / "export" / "cpu-fp32" / "export.json").is_file():
        invoke_json("export", out, "--target", "cpu-fp32")
    shutil.copy(out / "export" / "cpu-fp32" / "model.onnx", folder / "model.onnx")  # another model
    msg = _one_line(invoke("predict", folder, img), 3)
    assert msg.startswith(f"{folder / 'model.onnx'} is not the file `edgetune export` wrote (its sha256 differs")
    # ... and with export.json's hash edited to match, the shapes still give it away
    from edgetune.fsutil import sha256_file

    meta = json.loads((folder / "export.json").read_text())
    meta["files"]["model.onnx"] = meta["sha256"] = sha256_file(folder / "model.onnx")
    (folder / "export.json").write_text(json.dumps(meta))
    msg = _one_line(invoke("predict", folder, img), 3)
    assert msg.startswith(f"{folder / 'model.onnx'} has input shape 1x3x64x64, but export.json describes a "
                          f"classify model with ?x3x")
    msg = _one_line(invoke("bench", folder, "--profile", "x86-64-avx512"), 3)
    assert "has input shape 1x3x64x64, but export.json describes" in msg


def test_truncated_openvino_weights_are_one_line(tiny_run, tmp_path):
    run = _copy_run(tiny_run, tmp_path / "run", "export", "bench")
    invoke_json("export", run, "--target", "openvino-fp32")
    folder = run / "export" / "openvino-fp32"
    data = (folder / "model.bin").read_bytes()
    (folder / "model.bin").write_bytes(data[: len(data) // 3])
    img = tmp_path / "x.png"
    Image.new("RGB", (40, 40)).save(img)
    msg = _one_line(invoke("predict", folder, img), 3)
    assert msg.startswith(f"{folder / 'model.bin'} is not the file `edgetune export` wrote")
    (folder / "model.bin").unlink()
    assert _one_line(invoke("predict", folder, img), 3).startswith(f"{folder / 'model.bin'} is missing")


# -- 5-9. work is never lost, exit 0 means success ---------------------------------------------

def _namespaced(script: str) -> subprocess.CompletedProcess:
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode:
        pytest.skip("needs `unshare -m` (root) for a real full file system")
    return subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, timeout=600)


def test_predict_save_on_a_full_disk_keeps_the_earlier_file(det_run, det_data, tmp_path):
    out, _, _ = det_run
    if not (out / "export" / "cpu-fp32" / "export.json").is_file():
        invoke_json("export", out, "--target", "cpu-fp32")
    img = next((det_data.parent / "images" / "val").glob("*.jpg"))
    mnt = tmp_path / "small"
    mnt.mkdir()
    et = " ".join(ET)
    script = (f"mount -t tmpfs -o size=1m tmpfs {mnt} && mkdir {mnt}/pred && "
              f"printf 'earlier' > {mnt}/pred/{img.stem}_pred.jpg && "
              f"head -c $(( $(df --output=avail -B1 {mnt} | tail -1) - 2000 )) /dev/zero > {mnt}/filler; "
              f"{et} predict {out / 'export' / 'cpu-fp32'} {img} --save {mnt}/pred; echo EXIT=$?; "
              f"cat {mnt}/pred/{img.stem}_pred.jpg; echo; ls -a {mnt}/pred")
    r = _namespaced(script)
    assert "EXIT=8" in r.stdout, r.stdout + r.stderr[-1500:]
    assert "saved" not in r.stdout.split("EXIT=8")[0]
    after = r.stdout.split("EXIT=8", 1)[1].split()
    assert after == ["earlier", ".", "..", f"{img.stem}_pred.jpg"], after  # the old file, no temp file
    errors = [x for x in r.stderr.splitlines() if x.startswith("edgetune: error:")]
    assert len(errors) == 1 and "No space left on device" in errors[0]


def test_failed_gate_never_replaces_a_passing_export(tiny_run, tiny_exports, tmp_path, monkeypatch):
    from edgetune.export import pipeline

    run = _copy_run(tiny_run, tmp_path / "run")
    good = (run / "export" / "cpu-int8" / "export.json").read_bytes()
    assert json.loads(good)["pass"] is True
    real = pipeline.Context.metrics_fp32

    def optimistic(self):  # a reference 0.5 above what any artefact reaches: every int8 build fails
        m = dict(real.fget(self))
        m["top1"] = float(m["top1"]) + 0.5
        return m

    monkeypatch.setattr(pipeline.Context, "metrics_fp32", property(optimistic))
    res = invoke("export", run, "--target", "cpu-int8", "--max-drop", "0.01", "--no-search", "--calib-size", 20,
                 "--quiet")
    msg = _one_line(res, 5)
    failed = run / "export-failed" / "cpu-int8"
    assert msg.endswith(f"the artefact is kept for inspection in {failed} (pass=false), and export/cpu-int8/ is left as "
                        "it was)")
    assert (run / "export" / "cpu-int8" / "export.json").read_bytes() == good
    assert json.loads((run / "export-failed" / "cpu-int8" / "export.json").read_text())["pass"] is False


def test_re_export_keeps_what_a_user_put_in_the_export_folder(tiny_run, tiny_exports, tmp_path):
    run = _copy_run(tiny_run, tmp_path / "run")
    folder = run / "export" / "cpu-fp32"
    (folder / "NOTES.md").write_text("field notes")
    nested = folder / "nested-run"
    nested.mkdir()
    (nested / "edgetune.json").write_text("{}")
    old = (folder / "export.json").read_bytes()
    r = invoke_json("export", run, "--target", "cpu-fp32")
    assert r["pass"] and (folder / "NOTES.md").read_text() == "field notes"
    assert (nested / "edgetune.json").read_text() == "{}"
    assert sorted(p.name for p in folder.iterdir()) == ["NOTES.md", "export.json", "model.onnx", "nested-run"]
    assert (folder / "export.json").read_bytes() != old  # the artefact itself was replaced
    assert (folder.stat().st_mode & 0o777) == 0o777 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.parametrize("layout", ["same", "out inside data", "data inside out", "inside an export folder",
                                    "inside a run"])
def test_out_overlapping_data_or_a_run_is_refused_up_front(fm_data, tiny_run, tiny_exports, tmp_path, layout):
    data = shutil.copytree(fm_data, tmp_path / "data")
    out = {"same": data, "out inside data": data / "runs" / "r", "data inside out": tmp_path,
           "inside an export folder": tiny_run / "export" / "cpu-fp32" / "r",
           "inside a run": tiny_run / "nested"}[layout]
    msg = _one_line(invoke("finetune", "--model", "test_tinynet", "--data", data, "--out", out, "--epochs", 1), 2)
    expected = {"same": f"--out {out} is the data folder {data}",
                "out inside data": f"--out {out} is inside the data folder {data}",
                "data inside out": f"--out {out} contains the data folder {data}",
                "inside an export folder": f"--out {out} is inside the export folder {tiny_run / 'export' / 'cpu-fp32'}",
                "inside a run": f"--out {out} is inside the run directory {tiny_run}"}[layout]
    assert msg.startswith(expected)
    assert not (data / "runs").exists() and not (tiny_run / "nested").exists()


def test_bench_keeps_its_measurement_when_the_estimate_fails(tiny_run, tiny_exports, tmp_path, monkeypatch):
    not_a_folder = tmp_path / "cache-file"
    not_a_folder.write_text("")
    monkeypatch.setenv("EDGETUNE_CACHE", str(not_a_folder))
    folder = _copy_run(tiny_run / "export" / "cpu-int8", tmp_path / "cpu-int8")  # a bare export folder
    res = invoke("bench", folder, "--profile", "raspberry-pi-5", "--runs", 100, "--json")
    assert res.exit_code == 0, res.stderr[-1500:]
    r = json.loads(res.stdout)
    assert r["latency_ms"]["p50"] > 0 and r["estimate"]["available"] is False
    assert r["estimate"]["reason"].startswith(f"EDGETUNE_CACHE={not_a_folder} is not a folder (hint: point "
                                              "EDGETUNE_CACHE at a folder")
    kept = json.loads((folder / "bench" / "raspberry-pi-5.json").read_text())
    assert kept["latency_ms"] == r["latency_ms"]


def test_sigterm_is_handled_like_ctrl_c_and_leaves_no_temp_folder(tiny_run, tiny_exports, tmp_path):
    run = _copy_run(tiny_run, tmp_path / "run", "export", "bench")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp)}
    proc = subprocess.Popen([*ET, "export", run, "--target", "cpu-int8"], stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 60
    while not list(tmp.glob(f"edgetune-export-{proc.pid}-*")) and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-1500:]
    assert err.strip().splitlines()[-1] == "edgetune: error: terminated (SIGTERM)"
    assert list(tmp.iterdir()) == []
    assert not (run / "export" / "cpu-int8").exists()


@pytest.mark.parametrize("sig, exit_code, line", [("SIGTERM", 143, "terminated (SIGTERM)"), ("SIGINT", 130, "interrupted")])
def test_a_signal_that_lands_in_a_finaliser_still_ends_the_command(sig, exit_code, line):
    """Found by test_sigterm_…: a SIGTERM handled inside the import system's weakref callback was
    ignored by Python and the export finished with exit 0. Here a finaliser takes the signal."""
    code = ("import signal, sys, time\n"
            "from edgetune.cli.common import handle_errors\n"
            "class Finaliser:\n"
            f"    def __del__(self): signal.raise_signal(signal.{sig})\n"
            "@handle_errors()\n"
            "def command(as_json=False):\n"
            "    Finaliser()  # dropped at once: its __del__ takes the signal, where Python ignores exceptions\n"
            "    end = time.monotonic() + 10\n"
            "    while time.monotonic() < end: time.sleep(0.01)\n"
            "    print('finished')\n"
            "command()\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == exit_code and "finished" not in proc.stdout, (proc.stdout, proc.stderr[-1500:])
    assert proc.stderr.strip().splitlines()[-1] == f"edgetune: error: {line}"
    assert "Exception ignored" not in proc.stderr


def test_an_interruption_sent_again_never_reaches_past_the_command():
    """The re-sent signal above is for the command: one that ends first (here at once) leaves its
    in-process caller alone, and the interpreter's exit does not wait for it."""
    code = ("import signal, time\n"
            "from edgetune.cli.common import handle_errors\n"
            "class Finaliser:\n"
            "    def __del__(self): signal.raise_signal(signal.SIGINT)\n"
            "@handle_errors()\n"
            "def command(as_json=False):\n"
            "    Finaliser()\n"
            "    return 'done'\n"
            "print(command())\n"
            "time.sleep(0.5)  # the caller's own code, after the command\n"
            "print('caller went on', flush=True)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.split() == ["done", "caller", "went", "on"], (proc.stdout, proc.stderr)


def test_sigterm_during_an_import_waits_for_the_import(tmp_path):
    """Found by test_sigterm_…: raised in the middle of torch's import, SIGTERM went through a native
    callback and aborted the process (exit -6, a C++ stack). It now waits until the import is done."""
    (tmp_path / "slow_native_import.py").write_text(
        "import os, signal, time\nos.kill(os.getpid(), signal.SIGTERM)\ntime.sleep(0.5)\nDONE = True\n")
    code = ("import sys, time\n"
            f"sys.path.insert(0, {str(tmp_path)!r})\n"
            "from edgetune.cli.common import handle_errors\n"
            "@handle_errors()\n"
            "def command(as_json=False):\n"
            "    import slow_native_import\n"
            "    print('import finished', slow_native_import.DONE, flush=True)\n"
            "    time.sleep(10)\n"
            "command()\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 143 and proc.stdout.strip() == "import finished True", (proc.stdout, proc.stderr[-1500:])
    assert proc.stderr.strip().splitlines()[-1] == "edgetune: error: terminated (SIGTERM)"


def test_temp_folders_of_killed_processes_are_swept(tmp_path, monkeypatch):
    from edgetune import fsutil

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(fsutil.tempfile, "tempdir", None)
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / f"edgetune-export-{dead.pid}-abc"
    live = tmp_path / f"edgetune-export-{os.getpid()}-def"
    fresh = tmp_path / f"edgetune-export-{dead.pid}-new"
    for d in (stale, live, fresh):
        d.mkdir()
    old = time.time() - 2 * fsutil.STALE_WORK_DIR_S
    os.utime(stale, (old, old))
    os.utime(live, (old, old))
    assert fsutil.sweep_stale_work_dirs() == [stale]
    assert live.exists() and fresh.exists()  # a live owner, and one too young to judge


# -- 11. convert correctly or refuse ------------------------------------------------------------

def test_16_bit_images_are_scaled_not_squashed(tmp_path):
    from edgetune.preprocess import ImagePreprocess, open_rgb

    ramp = (np.arange(64 * 64).reshape(64, 64) * 16).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "g16.png")
    Image.fromarray((ramp >> 8).astype(np.uint8)).save(tmp_path / "g8.png")
    a, b = np.asarray(open_rgb(tmp_path / "g16.png")), np.asarray(open_rgb(tmp_path / "g8.png"))
    assert np.array_equal(a, b) and len(np.unique(a)) > 200  # Pillow's convert('RGB') gave 2 values
    pre = ImagePreprocess(size=32, resize=40)
    assert np.array_equal(pre(tmp_path / "g16.png"), pre(tmp_path / "g8.png"))
    Image.fromarray(ramp.astype(np.float32)).save(tmp_path / "f.tif")
    with pytest.raises(ValueError, match="32-bit floating-point pixels"):
        open_rgb(tmp_path / "f.tif")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_wav_with_nan_samples_is_refused(kws_run, kws_fp32, tmp_path, bad):
    run, _ = kws_run
    audio = np.zeros(16000, np.float32)
    audio[100:200] = bad
    wav = tmp_path / "nan.wav"
    sf.write(wav, audio, 16000, subtype="FLOAT")
    msg = _one_line(invoke("predict", run / "export" / "cpu-fp32", wav), 3)
    assert msg == f"audio {wav} has NaN or infinite samples (hint: re-encode it as 16-bit PCM, e.g. " \
                  "`sox nan.wav -b 16 clean.wav`)"
    msg = _one_line(invoke("predict", run / "export" / "cpu-fp32", wav, "--stream"), 3)
    assert msg.startswith(f"audio {wav} has NaN or infinite samples")


# -- tracebacks and misleading lines ----------------------------------------------------------

def test_report_survives_mathtext_in_class_names(tiny_run, tiny_exports, tmp_path):
    run = _copy_run(tiny_run, tmp_path / "run")
    manifest = json.loads((run / "edgetune.json").read_text())
    manifest["labels"] = ["$\\frac$", "x$^$y", "$_$"] + manifest["labels"][3:]
    (run / "edgetune.json").write_text(json.dumps(manifest))
    res = invoke("report", run)
    assert res.exit_code == 0, res.stderr[-1500:]
    assert (run / "report-confusion.png").stat().st_size > 1000


@pytest.mark.parametrize("damage", ["truncated bench JSON", "bench JSON without latency", "export.json without drop"])
def test_report_on_hand_edited_files_is_one_line(tiny_run, tiny_exports, tmp_path, damage):
    run = _copy_run(tiny_run, tmp_path / "run")
    bench = run / "bench" / "x86-64-avx512" / "cpu-fp32.json"
    if damage == "export.json without drop":
        meta = json.loads((run / "export" / "cpu-fp32" / "export.json").read_text())
        del meta["drop"]
        (run / "export" / "cpu-fp32" / "export.json").write_text(json.dumps(meta))
        expected = f"{run / 'export' / 'cpu-fp32' / 'export.json'}: field 'drop' is missing"
    else:
        bench.parent.mkdir(parents=True, exist_ok=True)
        good = {"profile": "x86-64-avx512", "target": "cpu-fp32", "metric": 0.5, "latency_ms": {"p50": 1, "p99": 2},
                "throughput_per_s": 9.0, "peak_rss_mb": 50.0, "pass": True, "violations": []}
        if damage == "truncated bench JSON":
            bench.write_text(json.dumps(good)[:40])
            expected = f"bench result {bench} is not valid JSON"
        else:
            del good["latency_ms"]
            bench.write_text(json.dumps(good))
            expected = f"{bench}: field 'latency_ms' is missing"
    assert _one_line(invoke("report", run), 3).startswith(expected)


@pytest.mark.parametrize("option, value", [("--smooth", "inf"), ("--hop", "nan"), ("--threshold", "-inf"),
                                           ("--refractory", "1e999")])
def test_non_finite_options_are_usage_errors(kws_run, kws_fp32, tmp_path, option, value):
    run, _ = kws_run
    wav = tmp_path / "a.wav"
    sf.write(wav, np.zeros(16000, np.float32), 16000)
    res = invoke("predict", run / "export" / "cpu-fp32", wav, "--stream", option, value)
    assert res.exit_code == 2 and f"Invalid value for '{option}': '{value}' is not a finite number" in res.stderr
    assert "Traceback" not in res.stderr


def test_non_finite_max_drop_is_a_usage_error(tiny_run):
    res = invoke("export", tiny_run, "--target", "cpu-int8", "--max-drop", "nan")
    assert res.exit_code == 2 and "Invalid value for '--max-drop': 'nan' is not a finite number" in res.stderr


def test_predict_on_a_folder_says_it_is_a_folder(tiny_run, tiny_exports, tmp_path):
    msg = _one_line(invoke("predict", tiny_run / "export" / "cpu-fp32", tmp_path), 3)
    assert msg == f"{tmp_path} is a folder; predict takes files (hint: pass the files, e.g. {tmp_path}/*)"


def test_media_read_whole_is_bounded(tmp_path, fm_data, monkeypatch):
    """Images and clips that are read whole are refused past their byte limit before they are
    read (the decoders bound what the contents expand to; this bounds the bytes)."""
    data = shutil.copytree(fm_data, tmp_path / "data")
    big = data / "train" / "bag" / "big.png"
    big.write_bytes(_png_header(8, 8) + b"\0" * 5000)
    monkeypatch.setattr("edgetune.untrusted.MAX_MEDIA_BYTES", 4096)
    msg = _one_line(invoke("finetune", "--model", "test_tinynet", "--data", data, "--out", tmp_path / "r",
                           "--epochs", 1, "--quiet"), 3)
    assert msg == f"image {big} is {big.stat().st_size:,} bytes; edgetune reads at most 4,096 (hint: is this the right file?)"


def test_generated_data_sets_get_the_umask_modes(det_data):
    """objects-on-photos builds its folder under a temp name (mkdtemp: 0700) and swaps it in."""
    assert (det_data.parent.stat().st_mode & 0o777) == 0o777 & ~_umask()
