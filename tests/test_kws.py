"""Keyword spotting: the torch front end is the pretrained original, a small model really learns
keywords from TTS clips, the raw-audio ONNX graph matches PyTorch, streaming finds a keyword at a
known time, and bad audio gets one clear line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import WORDS, invoke, invoke_fresh, invoke_json

from edgetune.data.audio import SAMPLE_RATE, read_audio
from edgetune.errors import DataError
from edgetune.train.speech_models import LogMel, SpeechEmbedding
from edgetune.zoo import get_card


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> np.ndarray:
    """2.5 s of real synthesised speech (espeak-ng through espeakng-loader), 16 kHz."""
    from edgetune.data.kws_synth import _Renderer
    from edgetune.data.tts import Espeak, Voice

    renderer = _Renderer({"espeak-ng": Espeak()})
    words = [renderer.render(w, Voice("espeak-ng", "en-us+f3")) for w in ("turn", "on", "the", "kitchen", "lights")]
    audio = np.concatenate([np.concatenate([w, np.zeros(1600, np.float32)]) for w in words])
    return np.pad(audio, (0, max(0, 40000 - len(audio))))[:40000] * 0.8


def test_logmel_equals_openwakeword_melspectrogram(frontend_files, speech):
    import onnxruntime as ort

    _, mel_onnx = frontend_files
    ref = ort.InferenceSession(str(mel_onnx)).run(None, {"input": speech[None] * 32768})[0]
    ref = np.squeeze(ref) / 10 + 2  # openWakeWord's own scaling of the ONNX output
    with torch.no_grad():
        got = LogMel()(torch.from_numpy(speech[None]))[0].numpy()
    assert got.shape == ref.shape == (LogMel.frames(len(speech)), 32)
    assert np.abs(got - ref).max() < 1e-4


def test_speech_embedding_equals_onnx_original(frontend_files, speech):
    import onnxruntime as ort

    emb_onnx, mel_onnx = frontend_files
    mel = np.squeeze(ort.InferenceSession(str(mel_onnx)).run(None, {"input": speech[None] * 32768})[0]) / 10 + 2
    windows = np.stack([mel[i: i + 76] for i in range(0, len(mel) - 75, 8)])[..., None].astype(np.float32)
    ref = ort.InferenceSession(str(emb_onnx)).run(None, {"input_1": windows})[0].reshape(len(windows), 96)
    model = SpeechEmbedding()
    model.load_onnx(emb_onnx)
    with torch.no_grad():
        got = model(torch.from_numpy(mel[None].astype(np.float32)))[0].T.numpy()
    assert got.shape == ref.shape and len(ref) >= 10
    assert np.abs(got - ref).max() < 1e-4
    assert all(p.requires_grad for p in model.parameters())  # an ordinary trainable module


def test_kws_synth_layout_and_held_out_voices(kws_data):
    prov = json.loads((kws_data / "provenance.json").read_text())
    assert sorted(p.name for p in (kws_data / "train").iterdir()) == ["_unknown_", "no", "stop", "yes"]
    assert len(list((kws_data / "train" / "yes").glob("*.wav"))) == 40
    assert prov["val_voices_unseen"] is True
    from edgetune.data.tts import Voice

    assert all(Voice.from_id(c["voice"]).id == c["voice"] for c in prov["clips"])  # a row names its voice exactly
    train_voices = {Voice.from_id(c["voice"]).name for c in prov["clips"] if c["file"].startswith("train/")}
    val_voices = {Voice.from_id(c["voice"]).name for c in prov["clips"] if c["file"].startswith("val/")}
    assert train_voices.isdisjoint(val_voices)
    audio, sr = read_audio(kws_data / "val" / "yes" / "0000.wav")
    assert sr == SAMPLE_RATE and len(audio) == SAMPLE_RATE and 0.05 < np.abs(audio).max() <= 1.0
    events = json.loads((kws_data / "stream" / "stream.json").read_text())["events"]
    assert events and all(e["label"] in WORDS.split(",") for e in events)


def test_pretrained_head_learns_keywords_of_unseen_voices(kws_run):
    """4 classes + silence (chance 0.2); held-out espeak-ng voices."""
    _, result = kws_run
    assert result["metric"] >= 0.85, result
    assert result["freeze"] == "backbone"


def test_dscnn_trains_from_scratch(kws_data, tmp_path):
    result = invoke_json("finetune", "--model", "dscnn_s", "--data", kws_data, "--out", tmp_path / "ds",
                         "--epochs", 20, "--batch", 32, "--patience", 30, "--seed", 0, "--quiet")
    assert result["metric"] > 0.6  # chance is 0.2; 20 epochs reached 0.79 and 0.86 (seeds 0, 1) on held-out voices


def test_export_takes_raw_audio_and_matches_pytorch(kws_run, kws_fp32, kws_int8, tmp_path):
    import onnx

    run, result = kws_run
    fp32 = kws_fp32
    assert fp32["max_abs_diff"] < 1e-3 and fp32["metric"] == pytest.approx(result["metric"], abs=0.02)
    graph = onnx.load(fp32["artifact"]).graph
    dims = [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, SAMPLE_RATE]  # raw audio in, front end inside
    assert any(n.op_type in ("STFT", "DFT") for n in graph.node)
    # the plain quantiser's structure and accuracy (the budget's search is tested in test_accuracy_aware.py)
    int8 = kws_int8
    meta = json.loads((run / "export" / "cpu-int8" / "export.json").read_text())
    assert meta["quantization"]["task_kept_float"]["front_end_nodes"] > 3
    # behind the float front end, the first conv int8 would see (fed by log-mels) stays float too
    first = meta["quantization"]["kept_float"][0]
    assert next(n for n in onnx.load(fp32["artifact"]).graph.node if n.op_type == "Conv").name == first
    # 70 val clips: one clip is 1.4 pt. A broken quantisation collapses towards chance (0.2).
    assert int8["drop"] <= 0.1 and int8["metric"] >= 0.8, int8
    # predict on a device: no torch
    clip = sorted((Path(json.loads((run / "edgetune.json").read_text())["data"]["root"]) / "val" / "stop").glob("*.wav"))[0]
    out = invoke_fresh("predict", run / "export" / "cpu-int8", clip)
    assert out["predictions"][0]["top"][0]["label"] == "stop"


def test_stream_finds_keyword_at_known_time(kws_run, kws_fp32, tmp_path):
    run, _ = kws_run
    root = Path(json.loads((run / "edgetune.json").read_text())["data"]["root"])
    word, _ = read_audio(sorted((root / "val" / "yes").glob("*.wav"))[1])
    rng = np.random.default_rng(0)
    stream = (rng.standard_normal(8 * SAMPLE_RATE) * 0.003).astype(np.float32)
    stream[4 * SAMPLE_RATE: 5 * SAMPLE_RATE] += word  # the clip's 1 s starts at 4.0 s
    wav = tmp_path / "long.wav"
    sf.write(wav, stream, SAMPLE_RATE, subtype="PCM_16")
    out = invoke_fresh("predict", run / "export" / "cpu-fp32", wav, "--stream", "--threshold", 0.6)
    dets = out["detections"]
    assert [d["label"] for d in dets] == ["yes"], dets
    assert 3.9 <= dets[0]["time_s"] <= 5.1 and 0.6 <= dets[0]["score"] <= 1.0


def test_export_calibrates_stream_thresholds_on_the_negatives(kws_run, kws_int8):
    """kws-synth writes negatives/speech.wav (phrases, no keyword); export chooses each keyword's
    threshold on the artefact's own posteriors there, so that artefact, streamed over the same
    audio, fires no keyword that calibration did not report as over budget."""
    run, _ = kws_run
    tuned = kws_int8["postprocess_tuned"]
    meta = json.loads((run / "export" / "cpu-int8" / "export.json").read_text())
    thresholds = meta["postprocess"]["thresholds"]
    assert sorted(thresholds) == sorted(WORDS.split(",")) and thresholds == tuned["thresholds"]
    assert all(0.5 <= t <= 0.95 for t in thresholds.values()) and tuned["recordings"] == ["negatives/speech.wav"]
    assert 25 < tuned["negative_s"] <= 30 and tuned["allowed_per_keyword"] == 0
    root = Path(json.loads((run / "edgetune.json").read_text())["data"]["root"])
    fired = invoke_fresh("predict", run / "export" / "cpu-int8", root / "negatives" / "speech.wav", "--stream")
    assert fired["predictions"][0]["stream_config"]["thresholds"] == thresholds
    assert [d for d in fired["detections"] if d["label"] not in tuned["over_budget"]] == []
    bench = invoke_json("bench", run, "--target", "cpu-int8", "--profile", "x86-64-avx512", "--runs", 100)
    assert bench["stream"]["config"]["thresholds"] == thresholds
    assert invoke("report", run).exit_code == 0  # the report's provenance names them
    pairs = ", ".join(f"{k} {v}" for k, v in thresholds.items())
    assert f"cpu-int8: artefact sha256 {meta['sha256']}" in (run / "report.md").read_text()
    assert f"stream thresholds calibrated on DATA/negatives: {pairs}" in (run / "report.md").read_text()


def test_bench_reports_false_accepts_per_hour(kws_run, kws_fp32):
    run, _ = kws_run
    b = invoke_json("bench", run, "--target", "cpu-fp32", "--profile", "x86-64-avx512", "--runs", 100)
    s = b["stream"]
    assert s["audio_s"] == 30.0 and s["events"] >= 1 and s["real_time_factor"] > 0
    at = s["at_threshold"]
    assert at["hits"] + at["misses"] == s["events"] and at["fa_per_hour"] == pytest.approx(at["false_accepts"] / (30 / 3600))
    assert b["latency_e2e_ms"]["p50"] > 0  # WAV bytes → window → inference → softmax


# ---- bad audio: one line each ------------------------------------------------------------------

def _tiny_set(root: Path, per_word: int = 6) -> None:
    rng = np.random.default_rng(0)
    for split, n in (("train", per_word), ("val", 2)):
        for word in ("yes", "no"):
            for i in range(n):
                (root / split / word).mkdir(parents=True, exist_ok=True)
                sf.write(root / split / word / f"{i}.wav", rng.standard_normal(SAMPLE_RATE).astype(np.float32) * 0.1,
                         SAMPLE_RATE, subtype="PCM_16")


@pytest.mark.parametrize("case, expected", [
    ("stereo", "audio train/yes/0.wav has 2 channels; keyword clips must be mono "
               "(hint: downmix it, e.g. `sox 0.wav -c 1 mono.wav`)"),
    ("empty", "audio train/yes/0.wav is empty (0 samples) (hint: remove it or record it again)"),
    ("corrupt", "cannot read audio train/yes/0.wav: Format not recognised. "
                "(hint: keyword clips must be WAV (or FLAC) files; remove or re-encode it)"),
    ("not_wav", "train/yes/notes.txt is not a WAV file (extension '.txt') "
                "(hint: remove it or move it out of the word folders)"),
    ("too_few", "class 'no' has 3 train clip(s); at least 5 needed (hint: add clips (50+ per keyword is a "
                "sensible floor; `edgetune data kws-synth` renders more with TTS voices))"),
])
def test_bad_audio_one_line(tmp_path, case, expected):
    root = tmp_path / "d"
    _tiny_set(root)
    clip = root / "train" / "yes" / "0.wav"
    if case == "stereo":
        sf.write(clip, np.zeros((SAMPLE_RATE, 2), np.float32), SAMPLE_RATE)
    elif case == "empty":
        sf.write(clip, np.zeros(0, np.float32), SAMPLE_RATE)
    elif case == "corrupt":
        clip.write_bytes(b"RIFF not really a wave file")
    elif case == "not_wav":
        (root / "train" / "yes" / "notes.txt").write_text("hello")
    elif case == "too_few":
        for p in sorted((root / "train" / "no").glob("*.wav"))[3:]:
            p.unlink()
    res = invoke("finetune", "--model", "dscnn_s", "--data", root, "--out", tmp_path / "run", "--epochs", 1)
    assert res.exit_code == 3, res.stderr
    assert res.stderr.strip().splitlines() == [f"edgetune: error: {expected}"]
    assert not (tmp_path / "run").exists()


def test_other_sample_rate_is_resampled_for_training_and_refused_on_device(tmp_path, kws_run, kws_fp32):
    root = tmp_path / "d"
    _tiny_set(root)
    sf.write(root / "train" / "yes" / "0.wav", np.zeros(8000, np.float32) + 0.01, 8000)
    res = invoke("finetune", "--model", "dscnn_s", "--data", root, "--out", tmp_path / "run", "--epochs", 1)
    assert res.exit_code == 0, res.stderr
    assert "resampled 1 clip(s) to 16000 Hz with torchaudio" in res.stderr
    run, _ = kws_run
    res = invoke("predict", run / "export" / "cpu-fp32", root / "train" / "yes" / "0.wav")
    assert res.exit_code == 3
    assert res.stderr.strip() == (f"edgetune: error: audio {root / 'train' / 'yes' / '0.wav'} is 8000 Hz; the model takes 16000 Hz "
                                  "(hint: resample it, e.g. `sox 0.wav -r 16000 out.wav`)")


def test_missing_tts_engine_says_how_to_install(monkeypatch):
    from edgetune.data import tts

    class Broken:
        def __init__(self):
            raise OSError("flite not found")

    monkeypatch.setitem(tts.ENGINES, "flite", Broken)
    found, missing = tts.available_engines(["flite"])
    assert not found and missing["flite"] == "OSError: flite not found; install: apt-get install flite"


_SAY = """
import hashlib, sys
from edgetune.data import tts
engine = tts.Espeak()
engine.reseed(int(sys.argv[1]))
for word in ("yes", "no"):
    print(hashlib.sha256(engine.say(word, tts.Voice("espeak-ng", "en-gb-x-rp+victor")).tobytes()).hexdigest())
"""


def test_espeak_ng_breathy_voices_say_words_the_same_way_for_a_seed():
    """Breathy variants draw noise from espeak-ng's clock-seeded generator: unseeded, `make demo`'s
    data (and the recall on its stream) changed from run to run. Each run is a fresh process."""
    said = [subprocess.run([sys.executable, "-c", _SAY, str(seed)], capture_output=True, text=True, check=True).stdout
            for seed in (4, 4, 5)]
    assert said[0] == said[1] and len(said[0].split()) == 2
    assert said[1] != said[2]  # the seed matters: the noise is still there


def test_piper_says_a_word_the_same_way_for_a_seed():
    """VITS samples its noise inside the ONNX graph (ONNX Runtime's generators)."""
    from edgetune.data import tts

    found, missing = tts.available_engines(["piper"])
    if not found:
        pytest.skip(missing["piper"])
    clips = []
    for seed in (4, 4, 5):
        found["piper"].reseed(seed)
        clips.append(found["piper"].say("yes", tts.Voice("piper", "en_US-joe-medium")))
    assert np.array_equal(clips[0], clips[1]) and not np.array_equal(clips[1], clips[2])


def test_festival_voices_say_keywords_and_are_asked_for_by_name():
    from edgetune.data import tts
    from edgetune.data.kws_synth import _Renderer

    assert "festival" not in tts.DEFAULT_ENGINES  # it did not help (RESULTS.md "kws-voices")
    found, missing = tts.available_engines(["festival"])
    if not found:
        pytest.skip(f"festival is not installed here: {missing['festival']}")
    engine = found["festival"]
    assert engine.voices() == ["kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts"]
    renderer = _Renderer(found)
    for name in engine.voices():  # 16 kHz after the renderer (the HTS voice speaks at 32 kHz)
        slow, fast = (renderer.render("stop", tts.Voice("festival", name, speed)) for speed in (0.8, 1.25))
        assert 0.2 * SAMPLE_RATE < len(fast) <= len(slow) < 1.0 * SAMPLE_RATE, (name, len(fast), len(slow))
        assert (len(fast) == len(slow)) == name.endswith("_hts")  # the HTS voice keeps its own timing
        assert np.abs(slow).max() > 0.05
    with pytest.raises(ValueError, match="festival has no voice 'nobody'"):
        engine.say("stop", tts.Voice("festival", "nobody"))


def test_keywords_option_maps_other_words_to_unknown(tmp_path):
    from edgetune.data.speech_commands import scan_kws

    root = tmp_path / "sc"
    _tiny_set(root)
    data = scan_kws(root, keywords=["yes"])
    assert data.classes == ["yes", "_unknown_", "_silence_"] and data.keywords == ["yes"]
    with pytest.raises(DataError) as e:
        scan_kws(root, keywords=["maybe"])
    assert e.value.message == f"--keywords maybe have no folder in {root}"
    assert e.value.hint == "folders found: no, yes"


def test_models_lists_kws_cards():
    rows = {r["name"]: r for r in invoke_json("models", "--task", "kws")}
    assert set(rows) == {"speech_embedding_kws", "dscnn_s", "mobilenetv2_kws"}
    assert rows["speech_embedding_kws"]["input"] == "1s@16kHz" and rows["speech_embedding_kws"]["pretrained"]
    # the --freeze a fine-tune gets without one: the card's for pretrained weights, none from scratch
    assert rows["speech_embedding_kws"]["default_freeze"] == "backbone" and rows["dscnn_s"]["default_freeze"] == "none"
    assert rows["mobilenetv2_kws"]["pretrained"] and rows["mobilenetv2_kws"]["default_freeze"] == "none"


@pytest.mark.parametrize("name", ["speech_embedding_kws", "dscnn_s", "mobilenetv2_kws"])
def test_kws_card_matches_architecture(name):
    from edgetune.train.kws import build_model
    from edgetune.train.speech_models import count_params

    card = get_card(name)
    model = build_model(card, card.num_classes, None)
    assert count_params(model) == card.num_params
    names = {n for n, _ in model.named_modules()}
    assert all(stage in names for (stage,) in card.stages)
    with torch.no_grad():
        assert model.eval()(torch.zeros(2, card.input.samples)).shape == (2, card.num_classes)


def test_kws_resume_and_same_seed(kws_data, tmp_path):
    args = ["finetune", "--model", "dscnn_s", "--data", kws_data, "--seed", 3, "--batch", 32, "--quiet"]
    first = invoke_json(*args, "--out", tmp_path / "a", "--epochs", 2)
    resumed = invoke_json(*args, "--out", tmp_path / "a", "--epochs", 3, "--resume")
    history = json.loads((tmp_path / "a" / "edgetune.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3] and resumed["epochs"] == 3
    again = invoke_json(*args, "--out", tmp_path / "b", "--epochs", 2)
    assert again["metric"] == first["metric"]
    a = json.loads((tmp_path / "b" / "edgetune.json").read_text())["history"]
    assert [h["top1"] for h in a] == [h["top1"] for h in history[:2]]


def test_room_impulse_responses_reverberate_and_keep_energy():
    import torch

    from edgetune.train.kws import Augment, room_impulse_responses

    g = torch.Generator().manual_seed(0)
    rirs = room_impulse_responses(torch.tensor([0.2, 0.6]), g)
    assert rirs.shape == (2, int(0.6 * 16000) + 1) and (rirs[:, 0] == 1).all()
    late = lambda r: float(r[int(0.15 * 16000):].pow(2).sum() / r[1:].pow(2).sum())  # noqa: E731
    assert late(rirs[0]) < 1e-3 and 0.01 < late(rirs[1]) < 0.1  # the tail after 150 ms: exp(-13.8 t / RT60)
    aug = Augment([np.random.default_rng(0).normal(0, 0.1, 48000).astype(np.float32)], g)
    x = torch.from_numpy(np.random.default_rng(1).normal(0, 0.1, (3, 16000)).astype(np.float32))
    y = aug.reverberate(x, torch.tensor([True, False, True]))
    assert torch.equal(y[1], x[1]) and not torch.allclose(y[0], x[0])
    assert torch.allclose(y.pow(2).mean(1), x.pow(2).mean(1), rtol=1e-4)  # loudness kept


def test_speed_perturbation_moves_pitch_and_length_together_about_the_centre(monkeypatch):
    """A 440 Hz tone of 0.25 s in the middle of a clip, played at factor f: (440·f) Hz for 0.25/f s,
    still centred; rows not drawn are untouched."""
    import torch

    import edgetune.train.kws as kws

    monkeypatch.setattr(kws, "SPEED_RANGE", (1.1, 1.1))
    t = torch.arange(16000) / 16000
    x = torch.zeros(2, 16000)
    x[:, 6000:10000] = torch.sin(2 * np.pi * 440 * t[6000:10000])
    aug = kws.Augment([np.zeros(48000, np.float32)], torch.Generator().manual_seed(0))
    y = aug.perturb_speed(x, torch.tensor([True, False]))
    assert y.shape == x.shape and torch.equal(y[1], x[1])
    assert int(torch.fft.rfft(y[0]).abs().argmax()) == pytest.approx(484, abs=2)  # 1 Hz bins over 1 s
    sounding = torch.nonzero(y[0].abs() > 1e-6).squeeze(1)
    assert int(sounding[0]) == pytest.approx(8000 - 4000 / 1.1 / 2, abs=3) and len(sounding) == pytest.approx(3636, abs=6)
    monkeypatch.setattr(kws, "SPEED_RANGE", (0.9, 0.9))  # slower: longer, lower, still inside the clip
    y = aug.perturb_speed(x, torch.tensor([True, True]))
    assert int(torch.fft.rfft(y[0]).abs().argmax()) == pytest.approx(396, abs=2)
