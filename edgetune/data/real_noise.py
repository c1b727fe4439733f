"""Real recorded background for keyword-spotting augmentation: meeting-room audio that arrives
through a package index.

Generated noise (white/pink/brown) and TTS babble are all kws-synth can make; a real room adds
what they lack: far-field talk over each other, reverberant room tone, chairs, paper, a microphone's
own noise. No package ships an environmental-noise corpus; what ships is pyannote.audio 4.0.7's
source archive on PyPI (MIT), whose diarization test fixtures are 30 s far-field recordings of
meetings. The archive does not name their source; their RTTM speaker labels (MEE068, MEO069, …)
are AMI Meeting Corpus speaker IDs, so they appear to be AMI excerpts (AMI: CC BY 4.0). 13
excerpts, 6.5 minutes: mostly distant conversation, i.e. real babble and room tone, which is the
background a command word is said over in an office or a kitchen.

The fixtures' speech is unlabelled at the word level, so they may hold a keyword said in passing.
As background mixed 5–25 dB below a clip, or cut for the _silence_ class, that is what a deployed
spotter must also ignore; it is why they are never used to score false accepts.
"""

from __future__ import annotations

import numpy as np

from edgetune.data.audio import read_audio, require_rate

PYANNOTE = "pyannote.audio==4.0.7"
SOURCE = f"{PYANNOTE} sdist test fixtures (MIT; by their speaker IDs, AMI Meeting Corpus excerpts, CC BY 4.0)"
_DATA = "pyannote_audio-4.0.7/tests/data/"
EXCERPTS = {
    "dev00.wav": "187386cda67317574da5b30068a8b853e52cc6df0d13abfec381912dfa9e7461",
    "dev01.wav": "13834217e1bd46a581af1b8040018bfba1e65ce1e0b9ee46cdcefa9334b9ddea",
    "trn01.wav": "b5e8d91105604d25cb05cc3840d015d88bd6689a2acba35506dd0d7dcb00668a",
    "trn02.wav": "2e4ce968332e68cac5ed74cd00f96b63ed6c034667583be34a32a7c2aa260803",
    "trn03.wav": "d12d132a6d4788f85efaa8e18563e575746e6a6fcc928e919c7c0e6a3e0238b2",
    "trn04.wav": "afa4bd13ee05be34953beb594d0d755ba83284c5a742ae27e388952d41c4d0f1",
    "trn05.wav": "ec694aa5c9eea7453263eaf90d38ed921c1b6f8cc4f52897d9a4457a504d668d",
    "trn06.wav": "e70cbed4f13c7971fdf9d424b079d87a25ed1ce3928da0bccd18f143eb4ac359",
    "trn07.wav": "77628cd91dcc27c61f9b709e670f003cb860d597fda56e7ccb0ccbbc42d5a26f",
    "trn08.wav": "a7d3397e82cb1025307f08b0fe8459a9d43fe61f3d9ce674f17819c7450bfac5",
    "trn09.wav": "8e18bc410e6d54a166bbba2ff0b46a222626706788fa222add4f97bca842f822",
    "tst00.wav": "0af781fb566501f7950479fd8bd92329276782c7ac930a03497d553b21c33397",
    "tst01.wav": "a40925742870d05363eb781bd2cf1501fc37883cf003389175a39b24a5b2c7c9",
}
TARGET_RMS_DB = -30.0  # each excerpt levelled to this, so a loud meeting does not drown a quiet one


def meeting_room() -> np.ndarray:
    """The excerpts end to end at 16 kHz mono float32, each levelled to TARGET_RMS_DB: one
    background file for `_background_noise_/` (fetched once with `pip download`, pinned by sha256)."""
    from edgetune.assets import carrier_files

    files = carrier_files(PYANNOTE, {_DATA + name: sha for name, sha in EXCERPTS.items()}, sdist=True)
    pieces = []
    for name in EXCERPTS:
        audio, sr = read_audio(files[_DATA + name])
        require_rate(sr, files[_DATA + name])  # pinned 16 kHz files: a mismatch means a different archive
        pieces.append(level(audio))
    return np.concatenate(pieces)


def level(audio: np.ndarray, rms_db: float = TARGET_RMS_DB) -> np.ndarray:
    """`audio` scaled to an RMS of `rms_db` dBFS (clipped to [-1, 1]); digital silence stays silent."""
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
    if rms == 0.0:
        return audio.astype(np.float32)
    return np.clip(audio * (10 ** (rms_db / 20) / rms), -1, 1).astype(np.float32)
