"""The audit behind `edgetune data check`: one pass over every file, then findings.

Errors (exit 3): a leak (the same or a near-same image or clip in two splits, which inflates
every metric edgetune reports and gates on), an unreadable file, a label file that does not parse.
Warnings: class imbalance, duplicates inside one split (and with different labels), tiny boxes,
clipped or silent audio, images too small for the near-duplicate search.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from edgetune.data.check.layout import Item, Layout, find_layout
from edgetune.data.check.phash import MAX_DISTANCE, MIN_SIDE, near_pairs, phash
from edgetune.progress import track
from edgetune.untrusted import read_bytes

IMBALANCE_WARN = 10.0  # largest / smallest class in train
TINY_BOX_PX = 4  # a box side below this at native resolution is mostly label noise
CLIPPED = 0.999  # |sample| at or above this is clipped…
CLIPPED_SHARE = 0.001  # …and a clip with more than 0.1 % such samples is reported
SILENT_PEAK = 1e-3


@dataclass(frozen=True)
class Finding:
    severity: Literal["error", "warning"]
    kind: str
    where: str
    detail: str
    files: tuple[str, ...] = ()  # the files to show (a leak's pair), for the HTML contact sheet


@dataclass
class FileFacts:
    sha256: str | None = None
    readable: bool = True
    why: str = ""
    size: tuple[int, int] | None = None  # image w, h
    phash: int | None = None
    seconds: float | None = None  # audio
    rate: int | None = None
    peak: float | None = None
    clipped: float | None = None


@dataclass
class CheckReport:
    root: str
    task: str
    classes: list[str]
    files: dict[str, int]
    per_class: dict[str, dict[str, int]]  # split → class → images/clips (boxes for detection)
    imbalance: float | None
    near_duplicate_rule: str
    findings: list[Finding]
    stats: dict[str, Any] = field(default_factory=dict)  # histogram inputs (sides, boxes per image, clip seconds…)
    seconds: float = 0.0

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "errors": len(self.errors), "warnings": len(self.findings) - len(self.errors)}


def file_facts(path: Path, audio: bool, *, decode_audio: bool = True) -> FileFacts:
    """Hash, decode and measure one file; an unreadable one is recorded, not raised.
    `decode_audio=False`: a clip is only hashed (audio leaks are exact-byte ones anyway)."""
    facts = FileFacts()
    try:
        raw = read_bytes(path, what="file")
    except Exception as exc:  # noqa: BLE001 - any failure to read is a finding
        return FileFacts(readable=False, why=_why(exc))
    facts.sha256 = hashlib.sha256(raw).hexdigest()
    if audio and not decode_audio:
        return facts
    try:
        if audio:
            from edgetune.data.audio import read_audio

            samples, rate = read_audio(path, raw=raw)
            facts.seconds, facts.rate = len(samples) / rate, rate
            facts.peak = float(np.abs(samples).max())
            facts.clipped = float((np.abs(samples) >= CLIPPED).mean())
        else:
            import io

            from PIL import Image

            from edgetune.preprocess import check_image_size

            with Image.open(io.BytesIO(raw)) as im:
                check_image_size(*im.size)  # the loaders' pixel bound, before decoding
                im.load()
                facts.size = im.size
                if min(im.size) >= MIN_SIDE:
                    facts.phash = phash(im)
    except Exception as exc:  # noqa: BLE001 - a decoder's any error means "unreadable"
        facts.readable = False
        facts.why = _why(exc)
    return facts


def _why(exc: Exception) -> str:
    text = getattr(exc, "message", None) or str(exc)
    return text.splitlines()[0] if text else type(exc).__name__


def leak_pairs(items: list[Item], facts: list[FileFacts]) -> tuple[list[tuple[int, int, str]], list[tuple[int, int]]]:
    """Pairs (a, b, how) in different splits that are the same file ('exact') or within the pHash
    rule ('near, d bits'), the held-out file first (the one to remove); and pairs inside one
    split that are byte-identical."""
    by_sha: dict[str, list[int]] = {}
    for i, f in enumerate(facts):
        if f.sha256:
            by_sha.setdefault(f.sha256, []).append(i)
    cross, within = [], []
    for idx in by_sha.values():  # each copy is paired with one anchor (a train file when there is one),
        anchor = next((i for i in idx if items[i].split == "train"), idx[0])  # not with every other copy
        for i in idx:
            if i != anchor:
                (cross.append((min(i, anchor), max(i, anchor), "exact")) if items[i].split != items[anchor].split
                 else within.append((anchor, i)))
    exact = {(a, b) for a, b, _ in cross}
    splits = sorted({i.split for i in items})
    for s_i, sa in enumerate(splits):
        for sb in splits[s_i + 1:]:
            ia = [i for i, it in enumerate(items) if it.split == sa and facts[i].phash is not None]
            ib = [i for i, it in enumerate(items) if it.split == sb and facts[i].phash is not None]
            ha = np.array([facts[i].phash for i in ia], dtype=np.uint64)
            hb = np.array([facts[i].phash for i in ib], dtype=np.uint64)
            for x, y, d in near_pairs(ha, hb, MAX_DISTANCE):
                a, b = sorted((ia[x], ib[y]))
                if (a, b) not in exact:
                    cross.append((a, b, f"near, {d} bits"))
    held_out_first = [(b, a, how) if items[a].split == "train" else (a, b, how) for a, b, how in cross]
    return held_out_first, within


def _rel(item: Item, root: Path) -> str:
    base = root.parent if root.is_file() else root
    return str(item.path.relative_to(base)) if item.path.is_relative_to(base) else str(item.path)


def audit(root: Path, *, quiet: bool = False) -> CheckReport:
    t0 = time.perf_counter()
    lay: Layout = find_layout(root)
    audio = lay.task == "kws"
    facts = [file_facts(it.path, audio) for it in track(lay.items, total=len(lay.items), desc="check", quiet=quiet)]
    rel = [_rel(it, lay.root) for it in lay.items]
    findings: list[Finding] = [Finding("error", "bad-label", where, why) for where, why in lay.problems]
    findings += [Finding("error", "unreadable", rel[i], f.why) for i, f in enumerate(facts) if not f.readable]
    cross, within = leak_pairs(lay.items, facts)
    for a, b, how in cross:
        sa, sb = lay.items[a].split, lay.items[b].split
        findings.append(Finding("error", "leak", f"{rel[a]} ({sa}) ≈ {rel[b]} ({sb})",
                                f"the same {'clip' if audio else 'image'} in two splits ({how})",
                                (str(lay.items[a].path), str(lay.items[b].path))))
    for a, b in within:
        la, lb = lay.items[a].label, lay.items[b].label
        findings.append(Finding("warning", "conflicting-labels" if la != lb else "duplicate",
                                f"{rel[a]} = {rel[b]}", f"byte-identical files labelled {la!r} and {lb!r}"
                                if la != lb else "byte-identical files in one split (counted twice)",
                                (str(lay.items[a].path), str(lay.items[b].path))))
    per_class: dict[str, Counter] = {}
    for it in lay.items:
        per_class.setdefault(it.split, Counter()).update([b[0] for b in it.boxes] if lay.task == "detect" else [it.label])
    train = per_class.get("train") or per_class.get("all") or Counter()
    counts = [train.get(c, 0) for c in lay.classes]
    imbalance = (max(counts) / max(min(counts), 1)) if counts else None
    if imbalance and imbalance >= IMBALANCE_WARN:
        lo, hi = min(lay.classes, key=lambda c: train.get(c, 0)), max(lay.classes, key=lambda c: train.get(c, 0))
        findings.append(Finding("warning", "imbalance", "train", f"{hi!r} has {train.get(hi, 0)}, {lo!r} has "
                                f"{train.get(lo, 0)} ({imbalance:.0f}×); weigh the classes or add examples"))
    for split, c in per_class.items():
        for cls in lay.classes:
            if split != "train" and c.get(cls, 0) == 0:
                findings.append(Finding("warning", "missing-class", split, f"no {cls!r} in {split}: its accuracy is unmeasured"))
    stats = _stats(lay, facts, rel, findings)
    small = sum(1 for f in facts if f.size and min(f.size) < MIN_SIDE)
    if small:
        findings.append(Finding("warning", "small-images", str(lay.root), f"{small} images are under {MIN_SIDE} px: only "
                                "exact duplicates are searched there (pHash cannot tell small images apart)"))
    rule = f"exact bytes; pHash within {MAX_DISTANCE} bits for images ≥ {MIN_SIDE} px"
    return CheckReport(str(lay.root), lay.task, lay.classes, dict(Counter(it.split for it in lay.items)),
                       {s: {k: c.get(k, 0) for k in lay.classes} for s, c in per_class.items()}, imbalance,
                       rule if not audio else "exact bytes", findings, stats, round(time.perf_counter() - t0, 2))


def _stats(lay: Layout, facts: list[FileFacts], rel: list[str], findings: list[Finding]) -> dict[str, Any]:
    if lay.task == "kws":
        for i, f in enumerate(facts):
            if f.clipped is not None and f.clipped > CLIPPED_SHARE:
                findings.append(Finding("warning", "clipped", rel[i], f"{f.clipped:.1%} of the samples are clipped"))
            if f.peak is not None and f.peak < SILENT_PEAK:
                findings.append(Finding("warning", "silent", rel[i], f"peak {f.peak:.1e}: the clip is (near) silent"))
        ok = [f for f in facts if f.seconds is not None]
        return {"clip_seconds": [round(f.seconds, 3) for f in ok], "sample_rates": dict(Counter(str(f.rate) for f in ok)),
                "peaks": [round(f.peak, 4) for f in ok]}
    sides = [min(f.size) for f in facts if f.size]
    out: dict[str, Any] = {"image_short_sides": sides}
    if lay.task == "detect":
        per_image, box_sides = [], []
        for i, (it, f) in enumerate(zip(lay.items, facts, strict=True)):
            per_image.append(len(it.boxes))
            if not f.size:
                continue
            w, h = f.size
            for cls, _cx, _cy, bw, bh in it.boxes:
                side = min(bw * w, bh * h)
                box_sides.append(round(side, 1))
                if side < TINY_BOX_PX:
                    findings.append(Finding("warning", "tiny-box", rel[i],
                                            f"a {cls!r} box {bw * w:.1f}×{bh * h:.1f} px: below {TINY_BOX_PX} px "
                                            "it is mostly label noise", (str(it.path),)))
        out |= {"boxes_per_image": per_image, "box_short_sides_px": box_sides,
                "images_without_boxes": sum(n == 0 for n in per_image)}
    return out
