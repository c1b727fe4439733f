"""Streaming keyword detection, as a device runs it: slide a 1 s window over a long recording,
smooth the posteriors, fire on a threshold, then stay quiet for a refractory period.

A windowed classifier fires on partial words and on every window that overlaps a keyword, so
raw per-window argmaxes are not detections. What field teams judge a spotter by is the false
accepts per hour of non-keyword audio at a given miss rate; `score_stream` measures both
against a stream with known keyword times (`edgetune data kws-synth` writes one). Numpy only:
runs on a device with the light install.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from edgetune.data.speech_commands import SILENCE, UNKNOWN


@dataclass(frozen=True)
class StreamConfig:
    hop_s: float = 0.1  # window step
    smooth_s: float = 0.3  # causal moving average of the posteriors over this span
    # Smoothed keyword probability that fires: more probable than every other class together.
    # Trained with label smoothing 0.1, a confident window scores ~0.9; on voices unlike the
    # training voices true keywords often peak at 0.5-0.8 (benchmarks/RESULTS.md "kws-notes"), so 0.8
    # missed most of them. Tune per deployment with the bench's threshold sweep.
    threshold: float = 0.5
    refractory_s: float = 1.0  # no second detection within this time
    # Per-keyword thresholds that replace `threshold` for their keyword: what `calibrate` chose on
    # recordings of non-keyword speech (export writes them to export.json's postprocess).
    thresholds: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None, **override: float | None) -> StreamConfig:
        """The config an export recorded, with the command line's values on top. A `--threshold`
        given by hand is one threshold for every keyword: it replaces the calibrated ones."""
        base = {k: v for k, v in (d or {}).items() if k in cls.__dataclass_fields__}
        base.update({k: v for k, v in override.items() if v is not None})
        if override.get("threshold") is not None:
            base["thresholds"] = {}
        return cls(**base)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "thresholds": dict(self.thresholds)}

    def threshold_of(self, keyword: str) -> float:
        return float(self.thresholds.get(keyword, self.threshold))

    def check(self) -> None:
        from edgetune.errors import UsageError

        for name, value in (("--hop", self.hop_s), ("--threshold", self.threshold), ("--smooth", self.smooth_s),
                            ("--refractory", self.refractory_s)):
            if not math.isfinite(value):
                raise UsageError(f"{name} must be a finite number of seconds, got {value}")
        if not 0.01 <= self.hop_s <= 1.0:
            raise UsageError(f"--hop must be in [0.01, 1] seconds, got {self.hop_s}")
        if not 0.0 < self.threshold < 1.0:
            raise UsageError(f"--threshold must be in (0, 1), got {self.threshold}")
        ok = isinstance(self.thresholds, Mapping) and all(
            isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool) and 0.0 < v < 1.0
            for k, v in self.thresholds.items())
        if not ok:  # only export writes them: a hand-edited export.json
            from edgetune.errors import RunDirError

            raise RunDirError(f"export.json: field 'postprocess.thresholds' must map keywords to numbers in (0, 1), "
                              f"got {self.thresholds!r}", hint="re-run `edgetune export`, or pass --threshold T")
        if self.smooth_s < 0 or self.refractory_s < 0:
            raise UsageError("--smooth and --refractory must be ≥ 0 seconds")


def posteriors(session: Any, blocks: Iterable[np.ndarray], *, window: int, hop: int,
               sr: int) -> tuple[np.ndarray, np.ndarray, float, int]:
    """Softmax of every window (batch 1, as on a device) over audio arriving in blocks, so memory
    stays one block plus one window whatever the recording's length. Returns window end times (s),
    the (windows, classes) probabilities, the seconds spent (for the real-time factor) and the
    number of samples. Audio shorter than one window is zero-padded to one."""
    buf, offset, start, total = np.zeros(0, np.float32), 0, 0, 0  # buf[0] is sample `offset`
    starts: list[int] = []
    probs: list[np.ndarray] = []
    seconds = 0.0

    def run(x: np.ndarray) -> None:
        nonlocal seconds
        t0 = time.perf_counter()
        z = session.run(x[None])[0][0].astype(np.float64)
        seconds += time.perf_counter() - t0
        e = np.exp(z - z.max())
        probs.append(e / e.sum())

    for block in blocks:
        buf = np.concatenate([buf, block])
        total += len(block)
        while start + window <= offset + len(buf):
            run(buf[start - offset: start - offset + window])
            starts.append(start)
            start += hop
        consumed = min(start - offset, len(buf))
        buf, offset = buf[consumed:], offset + consumed
    if not starts:
        run(np.pad(buf, (0, window - len(buf))))
        starts.append(0)
    times = (np.array(starts) + window) / sr
    return times, np.array(probs), seconds, total


def smooth(probs: np.ndarray, span: int) -> np.ndarray:
    """Causal moving average over the last `span` windows (a device only has the past)."""
    if span <= 1:
        return probs
    c = np.cumsum(np.vstack([np.zeros((1, probs.shape[1])), probs]), axis=0)
    idx = np.arange(1, len(probs) + 1)
    lo = np.maximum(0, idx - span)
    return (c[idx] - c[lo]) / (idx - lo)[:, None]


def keyword_columns(labels: list[str]) -> list[int]:
    return [i for i, name in enumerate(labels) if name not in (UNKNOWN, SILENCE)]


def best_keyword(smoothed: np.ndarray, cols: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Per window: the index (into `cols`) of the most probable keyword, and its probability."""
    kw = smoothed[:, cols]
    best = kw.argmax(1)
    return best, kw[np.arange(len(kw)), best]


def detect(times: np.ndarray, smoothed: np.ndarray, labels: list[str], cfg: StreamConfig,
           window_s: float) -> list[dict[str, Any]]:
    """Fire when the best keyword's smoothed probability reaches its threshold, at most once per
    refractory period. `time_s` is the centre of the firing window (about where the word is)."""
    cols = keyword_columns(labels)
    best, score = best_keyword(smoothed, cols)
    limit = np.array([cfg.threshold_of(labels[c]) for c in cols])[best]
    out: list[dict[str, Any]] = []
    last = -np.inf
    for i in np.flatnonzero(score >= limit):
        if times[i] - last < cfg.refractory_s:
            continue
        last = times[i]
        out.append({"label": labels[cols[best[i]]], "time_s": round(float(times[i] - window_s / 2), 3),
                    "score": round(float(score[i]), 4)})
    return out


# A detection counts for a keyword event when it falls within the event ± this (the word's centre
# may sit anywhere in a 1 s window); elsewhere it is a false accept.
TOLERANCE_S = 0.75


def match(detections: list[dict[str, Any]], events: list[dict[str, Any]],
          tolerance_s: float = TOLERANCE_S) -> dict[str, int]:
    """Hits (right label, within the event ± tolerance, each event once), misses, false accepts
    (everything else, wrong labels included)."""
    used = [False] * len(events)
    false_accepts = 0
    for d in detections:
        for j, e in enumerate(events):
            if not used[j] and d["label"] == e["label"] and e["start_s"] - tolerance_s <= d["time_s"] <= e["end_s"] + tolerance_s:
                used[j] = True
                break
        else:
            false_accepts += 1
    hits = sum(used)
    return {"hits": hits, "misses": len(events) - hits, "false_accepts": false_accepts}


def smoothed_posteriors(session: Any, blocks: Iterable[np.ndarray], cfg: StreamConfig, *, sr: int,
                        window: int) -> tuple[np.ndarray, np.ndarray, float, int]:
    """`posteriors` at the config's hop, smoothed over its span: (times, smoothed, seconds, samples)."""
    times, probs, seconds, n = posteriors(session, blocks, window=window, hop=max(1, int(cfg.hop_s * sr)), sr=sr)
    return times, smooth(probs, max(1, round(cfg.smooth_s / cfg.hop_s))), seconds, n


def score_stream(session: Any, blocks: Iterable[np.ndarray], events: list[dict[str, Any]], labels: list[str],
                 cfg: StreamConfig, *, sr: int, window: int, target_recall: float = 0.9) -> dict[str, Any]:
    """False accepts per hour and miss rate at the configured thresholds (per keyword where the
    export calibrated them), the false-accept rate at `target_recall` (one threshold for every
    keyword, swept), and the real-time factor."""
    times, sm, seconds, n = smoothed_posteriors(session, blocks, cfg, sr=sr, window=window)
    hours = n / sr / 3600
    window_s = window / sr

    def at(c: StreamConfig) -> dict[str, Any]:
        m = match(detect(times, sm, labels, c, window_s), events)
        return {"threshold": round(c.threshold, 4), "fa_per_hour": round(m["false_accepts"] / hours, 2),
                "miss_rate": round(m["misses"] / max(1, len(events)), 4),
                "recall": round(m["hits"] / max(1, len(events)), 4), **m}

    sweep = [at(replace(cfg, threshold=float(t), thresholds={})) for t in np.round(np.arange(0.05, 1.0, 0.025), 3)]
    meeting = [s for s in sweep if s["recall"] >= target_recall]
    return {"audio_s": round(n / sr, 1), "events": len(events), "windows": len(times),
            "real_time_factor": round(seconds / (n / sr), 5), "config": cfg.to_dict(),
            "at_threshold": at(cfg),
            f"at_recall_{target_recall:g}": max(meeting, key=lambda s: s["threshold"]) if meeting else None}


# Per-keyword calibration: the false-accept budget spread evenly over the keywords, and the highest
# threshold it may set (label smoothing 0.1 puts a confident window at ~0.9: above 0.95 a keyword
# would be deaf, so it is left there and reported as over budget instead).
FA_BUDGET_PER_HOUR = 2.0
CEILING = 0.95
_STEP = 0.01


@dataclass(frozen=True)
class Calibration:
    """What `calibrate` chose, for export.json: the thresholds, and per keyword the false accepts
    the negatives still give at its threshold (above `allowed`: over budget even at the ceiling)."""

    thresholds: dict[str, float]
    false_accepts: dict[str, int]
    allowed: int
    negative_s: float

    @property
    def over_budget(self) -> list[str]:
        return [k for k, n in self.false_accepts.items() if n > self.allowed]

    def to_dict(self) -> dict[str, Any]:
        return {"thresholds": self.thresholds, "false_accepts": self.false_accepts, "allowed_per_keyword": self.allowed,
                "negative_s": round(self.negative_s, 1), "fa_budget_per_hour": FA_BUDGET_PER_HOUR,
                "over_budget": self.over_budget}


def negative_windows(times: np.ndarray, events: list[dict[str, Any]], window_s: float,
                     tolerance_s: float = TOLERANCE_S) -> np.ndarray:
    """Windows whose centre is farther than `match`'s tolerance from every keyword event: what a
    detection there would count as, a false accept."""
    centre = times - window_s / 2
    near = np.zeros(len(times), bool)
    for e in events:
        near |= (centre >= e["start_s"] - tolerance_s) & (centre <= e["end_s"] + tolerance_s)
    return ~near


def calibrate(recordings: Iterable[tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]], labels: list[str],
              cfg: StreamConfig, window_s: float) -> Calibration:
    """Per keyword, the lowest threshold (not below cfg's, on a 0.01 grid, at most CEILING) at which
    it fires on the recordings' non-keyword audio no more than its share of FA_BUDGET_PER_HOUR.

    `recordings`: (times, smoothed posteriors, keyword events) of each calibration recording.
    Only the false-accept side is calibrated: non-keyword speech from the deployment is easy to
    record, while real keyword utterances are what a user lacks (and voices unlike the training
    voices score lower, so a recall target met on generated voices would set thresholds that miss
    people). Each keyword is counted alone, as if the others never fired."""
    cols = keyword_columns(labels)
    grid = np.round(np.arange(cfg.threshold, CEILING + _STEP / 2, _STEP), 4)
    counts = np.zeros((len(cols), len(grid)), dtype=np.int64)
    seconds = 0.0
    for times, sm, events in recordings:
        neg = negative_windows(times, events, window_s)
        seconds += float(neg.sum()) * cfg.hop_s  # a window stands for one hop of audio
        best, score = best_keyword(sm, cols)
        for j in range(len(cols)):
            own = neg & (best == j)
            for g, t in enumerate(grid):
                counts[j, g] += _fires(times[own & (score >= t)], cfg.refractory_s)
    allowed = math.floor(FA_BUDGET_PER_HOUR * seconds / 3600 / max(1, len(cols)) + 1e-9)
    thresholds, false_accepts = {}, {}
    for j, c in enumerate(cols):
        ok = np.flatnonzero(counts[j] <= allowed)
        g = int(ok[0]) if len(ok) else len(grid) - 1
        thresholds[labels[c]], false_accepts[labels[c]] = float(grid[g]), int(counts[j, g])
    return Calibration(thresholds, false_accepts, allowed, seconds)


def _fires(times: np.ndarray, refractory_s: float) -> int:
    """Detections among sorted firing times once each silences the next `refractory_s` seconds."""
    n, last = 0, -np.inf
    for t in times:
        if t - last >= refractory_s:
            n, last = n + 1, t
    return n
