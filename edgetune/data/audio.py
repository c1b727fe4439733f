"""WAV reading and checking for keyword spotting (soundfile only: torchaudio's loader needs FFmpeg).

Policy, the same for every command:
- mono only: a stereo file is an error naming the file (a silent or swapped channel would be
  averaged in unnoticed); downmix it first.
- 16 kHz: training data at another rate is resampled with torchaudio and the count is reported;
  `predict`/`bench` on a device (light install, no torchaudio) refuse another rate with the fix.
- empty, unreadable or non-WAV files are errors naming the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgetune.errors import DataError

SAMPLE_RATE = 16000
AUDIO_EXTS = frozenset({".wav", ".flac"})


def read_audio(source: Path | str | bytes, *, rel: Path | None = None,
               raw: bytes | None = None) -> tuple[np.ndarray, int]:
    """Mono float32 samples in [-1, 1] and the sample rate of a file (or its bytes), or one
    DataError line. `raw`: the file's bytes when the caller already read them (no second read)."""
    import io

    import soundfile as sf

    if isinstance(source, bytes):
        path, where, handle = Path("input.wav"), "input", io.BytesIO(source)
    else:
        path = Path(source)
        where = path.relative_to(rel) if rel is not None and path.is_relative_to(rel) else path
        handle = io.BytesIO(raw) if raw is not None else str(path)
    try:
        audio, sr = sf.read(handle, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        why = str(exc).split(":")[-1].strip() or "unreadable"
        raise DataError(f"cannot read audio {where}: {why}",
                        hint="keyword clips must be WAV (or FLAC) files; remove or re-encode it") from None
    if audio.shape[1] != 1:
        raise DataError(f"audio {where} has {audio.shape[1]} channels; keyword clips must be mono",
                        hint=f"downmix it, e.g. `sox {path.name} -c 1 mono.wav`")
    if audio.shape[0] == 0:
        raise DataError(f"audio {where} is empty (0 samples)", hint="remove it or record it again")
    return audio[:, 0], int(sr)


def require_rate(audio_sr: int, path: Path | str) -> None:
    """Devices do not resample: say exactly how to fix a file at another rate."""
    if audio_sr != SAMPLE_RATE:
        raise DataError(f"audio {path} is {audio_sr} Hz; the model takes {SAMPLE_RATE} Hz",
                        hint=f"resample it, e.g. `sox {Path(path).name} -r {SAMPLE_RATE} out.wav`")


def fit_length(audio: np.ndarray, samples: int) -> np.ndarray:
    """Zero-pad a short clip at both ends; cut a long one to its loudest `samples` window (where
    the word is)."""
    n = len(audio)
    if n == samples:
        return audio
    if n < samples:
        left = (samples - n) // 2
        return np.pad(audio, (left, samples - n - left))
    energy = np.concatenate([[0.0], np.cumsum(audio.astype(np.float64) ** 2)])
    start = int(np.argmax(energy[samples:] - energy[:-samples]))
    return audio[start: start + samples]


def write_wav(path: Path, audio: np.ndarray, sr: int = SAMPLE_RATE) -> None:
    """16-bit PCM mono (the Speech Commands format)."""
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.clip(audio, -1.0, 1.0), sr, subtype="PCM_16")
