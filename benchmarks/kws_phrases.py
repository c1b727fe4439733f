"""Does connected speech in the training set help a keyword spotter trained on TTS hear real people?
An A/B on the demo's KWS data and recipe (`make demo`: 60 clips a keyword from espeak-ng + piper,
`--freeze backbone --epochs 20`), issue 17's "negative speech" item:

- base: the demo's data as `edgetune data kws-synth` writes it (isolated words; `_unknown_` is
  single non-keywords);
- +negatives: plus 1 s windows of rendered non-keyword *phrases* (2-4 common words) in `_unknown_`,
  the connected speech a device hears between commands;
- +negatives+context: also each keyword said at the end of a short phrase ("please go"), cut to the
  last second, so the keyword is learnt with coarticulation from a preceding word.

The phrase vocabulary leaves out the keywords and every word of the real-voice stream
(edgetune.data.real_speech), so nothing is tuned to the stream it is scored on. Phrases use the
demo's *training* voices only (read from its provenance), so validation voices stay unseen.
cpu-int8 exports are scored on the held-out-voice val split, the demo's synthetic stream and the
real-voice stream at the default threshold. Writes RESULTS.md "kws-phrases".

    python benchmarks/kws_phrases.py            # needs runs/demo/kws-data (make demo)
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from _kws_ab import DEMO_DATA as DATA
from _kws_ab import run_arms, write_ab

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work" / "kws-phrases"
SEEDS = (0, 1)
ARMS = ("base", "+negatives", "+negatives+context")
NEGATIVES = 300  # phrase clips added to train/_unknown_
CONTEXT = 20  # phrase clips added to each keyword's folder
VOCAB = ("the", "a", "to", "and", "it", "is", "this", "that", "what", "when", "where", "there", "here", "now",
         "please", "turn", "open", "close", "light", "door", "kitchen", "lamp", "morning", "evening", "today",
         "tomorrow", "weather", "coffee", "time", "music", "play", "later", "maybe", "really", "good", "very",
         "little", "much", "more", "some", "people", "house", "garden", "car", "phone", "call", "home", "work",
         "happy", "slowly", "quickly", "again", "thanks", "hello", "okay", "then", "would", "could", "should",
         "about", "think", "know", "want", "need", "like", "just", "well", "first", "last", "next")


def _stream_words() -> set[str]:
    from edgetune.data.real_speech import CLIPS

    return {w for c in CLIPS for w in c.text.lower().split()}


def _train_voices() -> list:
    """The demo's training voices (engine, name, speed, pitch) from its provenance."""
    from edgetune.data.tts import Voice

    clips = json.loads((DATA / "provenance.json").read_text())["clips"]
    return [Voice.from_id(v) for v in sorted({c["voice"] for c in clips if c["file"].startswith("train/")})]


def _window(audio: np.ndarray, rng: np.random.Generator, *, last: bool) -> np.ndarray:
    """A 1 s clip of `audio`: its last second (`last`) or a random one, at a random peak level."""
    from edgetune.data.audio import SAMPLE_RATE
    from edgetune.data.kws_synth import place

    if len(audio) > SAMPLE_RATE:
        start = len(audio) - SAMPLE_RATE if last else int(rng.integers(0, len(audio) - SAMPLE_RATE + 1))
        audio = audio[start: start + SAMPLE_RATE]
    return place(audio, rng)


def make_data(arm: str) -> Path:
    from edgetune.data.audio import write_wav
    from edgetune.data.kws_synth import _Renderer
    from edgetune.data.tts import available_engines

    if arm == "base":
        return DATA
    out = WORK / "data" / arm
    if (out / "done").is_file():
        return out
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(DATA, out)
    vocab = [w for w in VOCAB if w not in _stream_words()]
    keywords = sorted(d.name for d in (DATA / "train").iterdir() if d.is_dir() and not d.name.startswith("_"))
    assert not set(vocab) & set(keywords)
    voices = _train_voices()
    engines, _ = available_engines(sorted({v.engine for v in voices}))
    renderer = _Renderer(engines)
    rng = np.random.default_rng(17)
    for i in range(NEGATIVES):
        text = " ".join(rng.choice(vocab, size=int(rng.integers(2, 5))))
        audio = renderer.render(text, voices[int(rng.integers(len(voices)))])
        write_wav(out / "train" / "_unknown_" / f"phrase_{i:04d}.wav", _window(audio, rng, last=False))
    if arm.endswith("+context"):
        for kw in keywords:
            for i in range(CONTEXT):
                text = " ".join([*rng.choice(vocab, size=int(rng.integers(1, 3))), kw])
                audio = renderer.render(text, voices[int(rng.integers(len(voices)))])
                write_wav(out / "train" / kw / f"context_{i:04d}.wav", _window(audio, rng, last=True))
    (out / "done").write_text("")
    return out


def main() -> None:
    rows = run_arms({arm: make_data(arm) for arm in ARMS}, SEEDS,
                    lambda arm, seed: WORK / "runs" / f"{arm.strip('+').replace('+', '_')}_s{seed}", calibrated=False)
    write_ab("kws-phrases", "connected speech in the KWS training set, A/B (issue 17)",
             "`python benchmarks/kws_phrases.py` — the demo's KWS data and recipe (60 TTS clips a keyword, head on "
             f"cached embeddings, 20 epochs), seeds {', '.join(map(str, SEEDS))}; +negatives adds {NEGATIVES} 1-s "
             f"windows of rendered non-keyword phrases to `_unknown_`, +context also {CONTEXT} clips a keyword said "
             "after 1-2 other words (training voices only; no word of the real stream in the phrases). cpu-int8 "
             "exports at the default stream threshold 0.5. Means over seeds (per-seed values in brackets).",
             "training data", rows)


if __name__ == "__main__":
    main()
