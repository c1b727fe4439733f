"""Real spoken words as KWS negatives (edgetune.data.real_words, `kws-synth --real-negatives`,
`data kws-negatives`): the pinned set and its halves, the recording written, and where it goes."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from conftest import invoke

import edgetune.data.debian as debian
from edgetune.data import real_words
from edgetune.data.audio import SAMPLE_RATE, read_audio, write_wav
from edgetune.errors import AssetError


@pytest.fixture()
def fake_set(tmp_path, monkeypatch):
    """A ktuberling-like folder: two reporting and two tuning languages, 8-44.1 kHz, a stereo file,
    and sr@latin repeating sr's bytes; served in place of Debian's package."""
    root = tmp_path / "sounds"
    rng = np.random.default_rng(0)
    for rel, sr, seconds in (("en/ball.wav", 44100, 0.6), ("da/bold.wav", 22050, 0.5), ("ca/pilota.wav", 8000, 0.7),
                             ("de/ball.wav", 44100, 0.4), ("sr/lopta.wav", 22050, 0.5)):
        audio = rng.standard_normal(int(sr * seconds)).astype(np.float32) * 0.2
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        import soundfile as sf
        sf.write(root / rel, np.stack([audio, audio], 1) if rel.startswith("de") else audio, sr)
    (root / "sr@latin").mkdir()
    (root / "sr@latin" / "lopta.wav").write_bytes((root / "sr" / "lopta.wav").read_bytes())
    (root / "en.soundtheme").write_text("<language code='en'/>")
    monkeypatch.setattr(debian, "debian_files", lambda package, folder, names, **kw: root)
    lines = [f"{p.parent.name}/{p.name} {hashlib.sha256(p.read_bytes()).hexdigest()}"
             for p in sorted(root.glob("*/*.wav")) if p.parent.name != "sr@latin"]
    return root, hashlib.sha256("\n".join(lines).encode()).hexdigest()


def test_a_set_that_is_not_the_pinned_one_is_refused(fake_set, monkeypatch):
    root, _ = fake_set
    with pytest.raises(AssetError, match=rf"^{root} does not hold the recordings edgetune pins "
                                         r"\(ktuberling-data 4:22.12.3-1\)$") as err:
        real_words.recordings()
    assert err.value.hint == ("it is the installed package: install ktuberling-data=4:22.12.3-1, or leave real words "
                              "out (`kws-synth --no-real-negatives`)")
    monkeypatch.setenv("EDGETUNE_CACHE", str(root.parent))  # the same folder, as edgetune's cache
    with pytest.raises(AssetError) as err:
        real_words.recordings()
    assert err.value.hint == f"delete {root} (edgetune's cache); the next use fetches it again"


def test_halves_split_by_language_and_drop_repeated_recordings(fake_set, monkeypatch):
    root, digest = fake_set
    monkeypatch.setattr(real_words, "SET_SHA256", digest)
    assert {k: [p.name for p in v] for k, v in real_words.recordings().items()} == {
        "ca": ["pilota.wav"], "da": ["bold.wav"], "de": ["ball.wav"], "en": ["ball.wav"], "sr": ["lopta.wav"]}
    assert [f"{p.parent.name}/{p.name}" for p in real_words.half("reporting")] == ["da/bold.wav", "en/ball.wav"]
    assert [f"{p.parent.name}/{p.name}" for p in real_words.half("tuning")] == ["ca/pilota.wav", "de/ball.wav",
                                                                                 "sr/lopta.wav"]


def test_recording_holds_every_word_once_at_16k_with_no_keyword_events(fake_set, monkeypatch, tmp_path):
    root, digest = fake_set
    monkeypatch.setattr(real_words, "SET_SHA256", digest)
    meta = real_words.write_recording(tmp_path / "neg" / "w.wav", "tuning", gap_s=0.5)
    audio, sr = read_audio(tmp_path / "neg" / "w.wav")
    # 0.7 + 0.4 + 0.5 s of words, four 0.5 s gaps; every word levelled to peak 0.5
    assert sr == SAMPLE_RATE and len(audio) == pytest.approx((1.6 + 2.0) * SAMPLE_RATE, abs=3)
    assert 0.49 < np.abs(audio).max() < 0.51
    written = json.loads((tmp_path / "neg" / "w.json").read_text())
    assert written == meta and meta["events"] == [] and meta["words"] == 3 and meta["languages"] == ["ca", "de", "sr"]
    assert meta["non_keyword_speech_s"] == pytest.approx(1.6, abs=0.01)
    assert sorted(p.name for p in (tmp_path / "neg").iterdir()) == ["w.json", "w.wav"]  # no partial file left


def _words(tmp_path, n: int = 2) -> list:
    paths = []
    for i in range(n):
        write_wav(tmp_path / f"word{i}.wav", np.full(SAMPLE_RATE // 2, 0.1, np.float32))
        paths.append(tmp_path / f"word{i}.wav")
    return paths


def test_kws_synth_writes_real_words_to_the_negatives_by_default(tmp_path, monkeypatch):
    monkeypatch.setattr(real_words, "half", lambda which: _words(tmp_path) if which == "tuning" else [])
    args = ("--words", "yes,no", "--engines", "espeak-ng", "--per-word", 5, "--val-per-word", 1,
            "--stream-minutes", 0.05)
    res = invoke("data", "kws-synth", "--out", tmp_path / "default", *args)
    assert res.exit_code == 0, res.stderr
    neg = tmp_path / "default" / "negatives"
    assert sorted(p.name for p in neg.iterdir()) == ["real-words.json", "real-words.wav", "speech.wav"]
    assert json.loads((neg / "real-words.json").read_text())["words"] == 2
    provenance = json.loads((tmp_path / "default" / "provenance.json").read_text())
    assert provenance["licences"]["negatives/real-words.wav"] == real_words.SOURCE
    assert provenance["negatives"]["real_words"]["half"] == "tuning"
    res = invoke("data", "kws-synth", "--out", tmp_path / "off", *args, "--no-real-negatives")
    assert res.exit_code == 0, res.stderr
    assert sorted(p.name for p in (tmp_path / "off" / "negatives").iterdir()) == ["speech.wav"]


def test_kws_negatives_adds_real_words_to_a_data_set(tmp_path, monkeypatch):
    monkeypatch.setattr(real_words, "half", lambda which: _words(tmp_path, 3))
    (tmp_path / "data" / "train").mkdir(parents=True)
    res = invoke("data", "kws-negatives", tmp_path / "data")
    assert res.exit_code == 0, res.stderr
    wav = tmp_path / "data" / "negatives" / "real-words.wav"
    assert res.stdout.strip() == f"wrote 0.1 min of real spoken words (3 words; languages: {tmp_path.name}) to {wav}; " \
                                 "export calibrates stream thresholds on it"
    assert read_audio(wav)[0].size == pytest.approx(SAMPLE_RATE * (1.5 + 2.0), abs=3)
    res = invoke("data", "kws-negatives", tmp_path / "missing")
    assert res.exit_code != 0 and res.stderr.strip() == (
        f"edgetune: error: {tmp_path / 'missing'} is not a folder (hint: pass the KWS data set's root (the folder holding train/))")


@pytest.mark.slow
def test_real_words_are_the_pinned_ktuberling_recordings():
    """Debian's package (apt-get download): the pin holds, and the halves are the ones kws_realneg reports."""
    tuning, reporting = real_words.half("tuning"), real_words.half("reporting")
    assert (len(tuning), len(reporting)) == (1102, 726)
    langs = lambda paths: {p.parent.name for p in paths}  # noqa: E731
    assert langs(reporting) == set(real_words.REPORTING) and not langs(tuning) & langs(reporting)
    audio = real_words.load_word(next(p for p in tuning if p.suffix == ".ogg"))
    assert 0.2 * SAMPLE_RATE < len(audio) < 3 * SAMPLE_RATE and abs(float(np.abs(audio).max()) - 0.5) < 1e-6


def test_export_without_negatives_says_how_to_add_them(tmp_path, capsys):
    """A user's own KWS data with no negatives/: export keeps one threshold and says what calibrates it."""
    from edgetune.contract import DataRef
    from edgetune.tasks.kws import TASK

    assert TASK.tune_postprocess(tmp_path / "model.onnx", None, DataRef(root=str(tmp_path)), quiet=False) is None
    assert capsys.readouterr().err.strip() == (
        f"stream thresholds: not calibrated, {tmp_path / 'negatives'} holds no .wav; every keyword keeps the card's "
        f"one threshold. `edgetune data kws-negatives {tmp_path}` adds 28 min of real spoken words to calibrate on")


def test_a_host_without_apt_is_told_how_to_do_without(tmp_path, monkeypatch):
    """No apt-get (not Debian/Ubuntu) and nothing cached: one line naming what to copy, or how to skip."""
    monkeypatch.setenv("EDGETUNE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(debian.shutil, "which", lambda _name: None)
    with pytest.raises(AssetError) as err:
        real_words.recordings()
    assert err.value.one_line() == (
        "fetching Debian's ktuberling-data needs apt-get and dpkg-deb (Debian/Ubuntu) (hint: copy "
        f"/usr/share/ktuberling/sounds from Debian's ktuberling-data to {tmp_path / 'cache' / 'data' / 'ktuberling-data'}, "
        "or leave real words out (`kws-synth --no-real-negatives`))")
