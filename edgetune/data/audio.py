"""WAV reading and checking for keyword spotting (soundfile only: torchaudio's loader needs FFmpeg).

Policy, the same for every command:
- mono only: a stereo file is an error naming the file (a silent or swapped channel would be
  averaged in unnoticed); downmix it first.
- 16 kHz: training data at another rate is resampled with torchaudio and the count is reported;
  `predict`/`bench` on a device (light install, no torchaudio) refuse another rate with the fix.
- empty, unreadable or non-WAV files are errors naming the file.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from edgetune.errors import DataError

SAMPLE_RATE = 16000
AUDIO_EXTS = frozenset({".wav", ".flac"})


# Whole-file reads (keyword clips, noise files) hold the file as float32: bounded at 2**25 frames
# (35 min at 16 kHz, 128 MB). Longer recordings are streamed in blocks (`stream_audio`), which is
# what `predict --stream` and bench's stream measurement do, so a 2 GB WAV needs no 2 GB of RAM.
MAX_READ_FRAMES = 1 << 25
STREAM_BLOCK_FRAMES = 1 << 18  # 16 s at 16 kHz per block


def _where(source: Path | str | bytes, rel: Path | None) -> tuple[Path, Any]:
    if isinstance(source, bytes):
        return Path("input.wav"), "input"
    path = Path(source)
    return path, path.relative_to(rel) if rel is not None and path.is_relative_to(rel) else path


def _open(handle: Any, where: Any) -> Any:
    import soundfile as sf

    try:
        f = sf.SoundFile(handle)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        why = str(exc).split(":")[-1].strip() or "unreadable"
        raise DataError(f"cannot read audio {where}: {why}",
                        hint="keyword clips must be WAV (or FLAC) files; remove or re-encode it") from None
    return f


def _require_mono(channels: int, path: Path, where: Any) -> None:
    """A stereo file is refused: a silent or swapped channel would be averaged in unnoticed."""
    if channels != 1:
        raise DataError(f"audio {where} has {channels} channels; keyword clips must be mono",
                        hint=f"downmix it, e.g. `sox {path.name} -c 1 mono.wav`")


def _finite(audio: np.ndarray, path: Path, where: Any) -> np.ndarray:
    """The mono samples, or one line when any is NaN/inf (a float WAV's would score as silence)."""
    if not np.isfinite(audio).all():
        raise DataError(f"audio {where} has NaN or infinite samples",
                        hint=f"re-encode it as 16-bit PCM, e.g. `sox {path.name} -b 16 clean.wav`")
    return audio[:, 0]


def read_audio(source: Path | str | bytes, *, rel: Path | None = None,
               raw: bytes | None = None) -> tuple[np.ndarray, int]:
    """Mono float32 samples in [-1, 1] and the sample rate of a file (or its bytes), or one
    DataError line. `raw`: the file's bytes when the caller already read them (no second read)."""
    import io

    path, where = _where(source, rel)
    handle = io.BytesIO(source) if isinstance(source, bytes) else io.BytesIO(raw) if raw is not None else str(path)
    with _open(handle, where) as f:
        if f.frames > MAX_READ_FRAMES:
            raise DataError(f"audio {where} is {f.frames / f.samplerate / 60:.0f} min long; a clip is read whole, up "
                            f"to {MAX_READ_FRAMES / SAMPLE_RATE / 60:.0f} min at 16 kHz",
                            hint="cut it into clips, or use `predict --stream` for long recordings")
        _require_mono(f.channels, path, where)
        audio, rate = f.read(dtype="float32", always_2d=True), f.samplerate
    if audio.shape[0] == 0:
        raise DataError(f"audio {where} is empty (0 samples)", hint="remove it or record it again")
    return _finite(audio, path, where), int(rate)


class AudioBlocks:
    """A recording's mono float32 blocks of STREAM_BLOCK_FRAMES, read one at a time (memory stays
    one block; iterable once); len() is how many there are, for a progress bar."""

    def __init__(self, f: Any, path: Path) -> None:
        self._f, self._path = f, path
        self._blocks = -(-int(f.frames) // STREAM_BLOCK_FRAMES)

    def __len__(self) -> int:
        return self._blocks

    def __iter__(self) -> Iterator[np.ndarray]:
        with self._f:
            while True:
                block = self._f.read(STREAM_BLOCK_FRAMES, dtype="float32", always_2d=True)
                if not len(block):
                    return
                yield _finite(block, self._path, self._path)


def stream_audio(path: Path) -> tuple[int, AudioBlocks]:
    """The sample rate and the mono float32 blocks of a recording of any length, with the same
    checks as `read_audio`, block by block."""
    path = Path(path)
    f = _open(str(path), path)
    try:
        _require_mono(f.channels, path, path)
        if f.frames == 0:
            raise DataError(f"audio {path} is empty (0 samples)", hint="remove it or record it again")
    except DataError:
        f.close()
        raise
    return int(f.samplerate), AudioBlocks(f, path)


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
