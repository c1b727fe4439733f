"""Keyword data in the Speech Commands layout, checked before any training starts.

Accepted layouts (ROOT is `--data`):

    ROOT/train/<word>/*.wav  ROOT/val/<word>/*.wav  ROOT/_background_noise_/*.wav
    ROOT/<word>/*.wav        ROOT/_background_noise_/*.wav  [+ validation_list.txt, or --val-split]

Classes are the keyword folders, `_unknown_` (a `_unknown_/` folder, plus every word folder not
in `--keywords` when that list is given — how the real Speech Commands set is used) and
`_silence_` (1 s crops of the background noise: the first 80 % of each file for training, the
rest for validation, so silence is validated on noise it never trained on).

Two folders of long recordings are not words: `ROOT/stream/` (stream.wav + stream.json, keywords at
known times: what `bench` scores false accepts per hour on) and `ROOT/negatives/*.wav` (the
deployment's sound with people talking and no keyword: what `export` calibrates each keyword's
stream threshold on).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgetune.data.audio import AUDIO_EXTS, SAMPLE_RATE, fit_length, read_audio
from edgetune.data.split import assign
from edgetune.errors import DataError
from edgetune.untrusted import MAX_TEXT_BYTES, read_bytes, read_text

UNKNOWN, SILENCE, NOISE_DIR = "_unknown_", "_silence_", "_background_noise_"
STREAM_DIR, NEGATIVES_DIR = "stream", "negatives"
MIN_TRAIN_PER_CLASS = 5
MIN_VAL_PER_CLASS = 1
NOISE_TRAIN_FRACTION = 0.8


@dataclass
class KwsSplit:
    name: str
    files: list[Path]
    labels: np.ndarray


@dataclass
class KwsData:
    root: Path
    classes: list[str]  # keywords (sorted), then _unknown_ (when present), then _silence_
    keywords: list[str]
    train: KwsSplit
    val: KwsSplit
    noise_files: list[Path]
    layout: str
    notes: list[str] = field(default_factory=list)

    @property
    def silence(self) -> int:
        return self.classes.index(SILENCE)


def _wavs(folder: Path, root: Path) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    for p in files:
        if p.is_dir():
            raise DataError(f"{p.relative_to(root)} is a folder inside a word folder",
                            hint="one level of word folders: ROOT/<word>/clip.wav")
        if p.suffix.lower() not in AUDIO_EXTS:
            raise DataError(f"{p.relative_to(root)} is not a WAV file (extension {p.suffix or 'none'!r})",
                            hint="remove it or move it out of the word folders")
    return files


def _word_folders(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()
                  if p.is_dir() and not p.name.startswith(".") and p.name not in (NOISE_DIR, STREAM_DIR, NEGATIVES_DIR))


def scan_kws(root: Path, *, keywords: list[str] | None = None, val_split: float | None = None,
             seed: int = 0) -> KwsData:
    """Find words, clips and noise; check the layout and the counts (files are read later)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"data folder {root} does not exist" if not root.exists() else f"--data {root} is a file",
                        hint="pass a Speech Commands folder: ROOT/<word>/*.wav + ROOT/_background_noise_/")
    noise_dir = next((d for d in (root / NOISE_DIR, root / "train" / NOISE_DIR) if d.is_dir()), None)
    noise = _wavs(noise_dir, root) if noise_dir else []
    if (root / "train").is_dir():
        if not (root / "val").is_dir():
            raise DataError(f"{root} has train/ but no val/ folder", hint="add val/<word>/ clips or use the flat layout")
        words, val_words = _word_folders(root / "train"), _word_folders(root / "val")
        if words != val_words:
            diff = sorted(set(words) ^ set(val_words))
            raise DataError(f"word folders differ between train and val in {root} ({', '.join(diff)})",
                            hint="both splits need the same word folders")
        classes, keyword_list, mapping = _classes(words, keywords, root)
        train = _collect(root / "train", mapping, classes, root, "train")
        val = _collect(root / "val", mapping, classes, root, "val")
        layout = "train/val"
    else:
        words = _word_folders(root)
        if not words:
            raise DataError(f"{root} has no word folders", hint="expected ROOT/<word>/*.wav")
        classes, keyword_list, mapping = _classes(words, keywords, root)
        everything = _collect(root, mapping, classes, root, "all")
        listed = root / "validation_list.txt"
        if listed.is_file() and val_split is None:
            listing = read_text(listed, limit=MAX_TEXT_BYTES, what="validation list", error=DataError)
            val_names = {line.strip() for line in listing.splitlines() if line.strip()}
            in_val = np.array([str(p.relative_to(root)) in val_names for p in everything.files])
            layout = "validation_list.txt"
        elif val_split is not None:
            if not 0.0 < val_split < 1.0:
                raise DataError(f"--val-split must be between 0 and 1, got {val_split}")
            in_val = _split_mask(everything.labels, val_split, seed)
            layout = f"split:{val_split}"
        else:
            raise DataError(f"{root} has word folders but no train/ and val/ and no validation_list.txt",
                            hint="pass --val-split 0.2 to hold out a fraction for validation")
        train = KwsSplit("train", [f for f, v in zip(everything.files, in_val, strict=True) if not v], everything.labels[~in_val])
        val = KwsSplit("val", [f for f, v in zip(everything.files, in_val, strict=True) if v], everything.labels[in_val])
    notes = []
    if not noise:
        notes.append(f"no {NOISE_DIR}/ folder: _silence_ and noise augmentation use generated noise")
    for split, minimum in ((train, MIN_TRAIN_PER_CLASS), (val, MIN_VAL_PER_CLASS)):
        counts = np.bincount(split.labels, minlength=len(classes))
        for c, name in enumerate(classes):
            if name != SILENCE and counts[c] < minimum:
                raise DataError(f"class '{name}' has {counts[c]} {split.name} clip(s); at least {minimum} needed",
                                hint="add clips (50+ per keyword is a sensible floor; "
                                     "`edgetune data kws-synth` renders more with TTS voices)")
    return KwsData(root=root, classes=classes, keywords=keyword_list, train=train, val=val, noise_files=noise,
                   layout=layout, notes=notes)


def _classes(words: list[str], keywords: list[str] | None, root: Path) -> tuple[list[str], list[str], dict[str, str]]:
    """Word folder → class name: keywords keep their name, everything else becomes _unknown_."""
    if keywords:
        missing = [k for k in keywords if k not in words]
        if missing:
            raise DataError(f"--keywords {', '.join(missing)} have no folder in {root}",
                            hint="folders found: " + ", ".join(words))
        kws = sorted(keywords)
    else:
        kws = [w for w in words if w not in (UNKNOWN, SILENCE)]
    mapping = {w: (w if w in kws else UNKNOWN) for w in words if w != SILENCE}
    if not kws:
        raise DataError(f"{root} has no keyword folders (only {', '.join(words)})", hint="one folder per keyword")
    has_unknown = UNKNOWN in mapping.values()
    classes = kws + ([UNKNOWN] if has_unknown else []) + [SILENCE]
    if len(kws) < 1 or len(classes) < 2:
        raise DataError(f"{root} gives {len(classes)} class(es); keyword spotting needs at least 2")
    return classes, kws, mapping


def _collect(folder: Path, mapping: dict[str, str], classes: list[str], root: Path, name: str) -> KwsSplit:
    files: list[Path] = []
    labels: list[int] = []
    for word, cls in mapping.items():
        clips = _wavs(folder / word, root)
        if not clips and cls != UNKNOWN:
            raise DataError(f"keyword folder {(folder / word).relative_to(root)} has no clips",
                            hint="add WAV clips or remove the empty folder")
        files += clips
        labels += [classes.index(cls)] * len(clips)
    return KwsSplit(name, files, np.array(labels, dtype=np.int64))


def _split_mask(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    return np.array(assign(labels.tolist(), {"val": fraction}, seed)) == "val"


def load_clips(files: list[Path], root: Path, samples: int = SAMPLE_RATE, digest: hashlib._Hash | None = None,
               progress: Callable[[int], None] | None = None) -> tuple[np.ndarray, int]:
    """Every clip as float32 (N, samples): checked, resampled to 16 kHz when needed, padded or
    cut to length. Returns the array and how many files were resampled."""
    out = np.empty((len(files), samples), dtype=np.float32)
    resampled = 0
    for i, path in enumerate(files):
        raw = read_bytes(path, what="audio")  # read once: hashed and decoded
        if digest is not None:
            digest.update(str(path.relative_to(root)).encode())
            digest.update(hashlib.sha256(raw).digest())
        audio, sr = read_audio(path, rel=root, raw=raw)
        if sr != SAMPLE_RATE:
            audio = resample(audio, sr)
            resampled += 1
        out[i] = fit_length(audio, samples)
        if progress:
            progress(1)
    return out, resampled


def load_noise(files: list[Path], root: Path) -> list[np.ndarray]:
    """Background noise files at 16 kHz (each at least 1 s; shorter ones are an error)."""
    out = []
    for path in files:
        audio, sr = read_audio(path, rel=root)
        if sr != SAMPLE_RATE:
            audio = resample(audio, sr)
        if len(audio) < 2 * SAMPLE_RATE:
            raise DataError(f"background noise {path.relative_to(root)} is {len(audio) / SAMPLE_RATE:.2f} s; "
                            f"noise files must be at least 2 s", hint="use longer recordings of the environment")
        out.append(audio)
    return out


def resample(audio: np.ndarray, sr: int) -> np.ndarray:
    import torch
    import torchaudio

    return torchaudio.functional.resample(torch.from_numpy(audio), sr, SAMPLE_RATE).numpy()


def generated_noise(seed: int, seconds: int = 60) -> list[np.ndarray]:
    """White, pink and brown noise when the data set ships none."""
    rng = np.random.default_rng(seed)
    n = seconds * SAMPLE_RATE
    white = rng.standard_normal(n)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.maximum(np.fft.rfftfreq(n, 1 / SAMPLE_RATE), 20.0)
    pink = np.fft.irfft(spectrum / np.sqrt(f), n)
    brown = np.fft.irfft(spectrum / f, n)
    return [(x / np.abs(x).max() * 0.3).astype(np.float32) for x in (white, pink, brown)]


def noise_part(noise: np.ndarray, split: str) -> np.ndarray:
    cut = int(len(noise) * NOISE_TRAIN_FRACTION)
    return noise[:cut] if split == "train" else noise[cut:]


def silence_clips(noises: list[np.ndarray], count: int, seed: int, split: str,
                  samples: int = SAMPLE_RATE) -> np.ndarray:
    """`count` silence clips: random 1 s crops of the split's part of the noise, at a random
    level from near-digital silence to loud room noise."""
    rng = np.random.default_rng(seed)
    out = np.zeros((count, samples), dtype=np.float32)
    for i in range(count):
        part = noise_part(noises[rng.integers(len(noises))], split)
        if len(part) < samples:
            part = np.resize(part, samples)
        start = rng.integers(0, len(part) - samples + 1)
        crop = part[start: start + samples]
        peak = float(np.abs(crop).max()) or 1.0
        out[i] = crop / peak * float(10 ** rng.uniform(-3.5, -0.5))
    return out


def validation_set(data: KwsData, noises: list[np.ndarray], clips: np.ndarray,
                   seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Validation clips + deterministic silence clips (as many as the median keyword class), cut
    from the validation part of the noise: what training evaluates and export re-measures."""
    counts = np.bincount(data.val.labels, minlength=len(data.classes))
    n_sil = int(np.median([counts[c] for c, name in enumerate(data.classes) if name in data.keywords]))
    sil = silence_clips(noises, n_sil, seed + 1, "val")
    return (np.concatenate([clips, sil]),
            np.concatenate([data.val.labels, np.full(n_sil, data.silence, dtype=np.int64)]))
