"""Seeded, stratified train/val(/test) assignment, optionally grouped.

Without groups, each stratum (class) is shuffled and cut: every stratum with at least two items
keeps one on the training side and gives at least one to each held-out split, the rule the
ImageFolder and Speech Commands loaders have always used (they call this). With groups (frames of
one video, clips of one speaker), whole groups are placed greedily, largest first, each where it
brings the per-class counts closest to the targets, so no group ever straddles two splits.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from edgetune.errors import UsageError

TRAIN = "train"


def check_fractions(fractions: dict[str, float]) -> None:
    if any(not 0.0 <= f < 1.0 for f in fractions.values()) or sum(fractions.values()) >= 1.0:
        raise UsageError(f"split fractions {fractions} must each be in [0, 1) and sum to less than 1",
                         hint="e.g. --val 0.2 --test 0.1")


def assign(strata: Sequence[object], fractions: dict[str, float], seed: int,
           groups: Sequence[str] | None = None) -> list[str]:
    """The split name ('train' or a key of `fractions`) of every item, in item order."""
    check_fractions(fractions)
    held = [s for s, f in fractions.items() if f > 0]
    if groups is not None:
        return _grouped(strata, groups, {s: fractions[s] for s in held}, seed)
    out = [TRAIN] * len(strata)
    keys = np.array([str(s) for s in strata]) if len(strata) else np.array([], dtype=str)
    rng = np.random.default_rng(seed)
    for key in _ordered_unique(strata):
        idx = rng.permutation(np.flatnonzero(keys == str(key)))
        start = 0
        for name in held:
            room = max(len(idx) - start - 1, 0)  # leave at least one for training
            n = min(max(1, round(len(idx) * fractions[name])), room)
            for i in idx[start:start + n]:
                out[i] = name
            start += n
    return out


def _ordered_unique(strata: Sequence[object]) -> list[object]:
    try:
        return sorted(set(strata))
    except TypeError:
        return sorted(set(strata), key=str)


def _grouped(strata: Sequence[object], groups: Sequence[str], fractions: dict[str, float], seed: int) -> list[str]:
    names = [TRAIN, *fractions]
    classes = {c: k for k, c in enumerate(_ordered_unique(strata))}
    members: dict[str, list[int]] = {}
    for i, g in enumerate(groups):
        members.setdefault(g, []).append(i)
    keys = list(members)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(keys))
    order = sorted(order, key=lambda k: -len(members[keys[k]]))  # stable: shuffled ties, big groups first
    total = np.zeros(len(classes))
    for s in strata:
        total[classes[s]] += 1
    share = np.array([1.0 - sum(fractions.values()), *fractions.values()])
    target = share[:, None] * total[None, :]
    have = np.zeros_like(target)
    out = [TRAIN] * len(strata)
    for k in order:
        idx = members[keys[k]]
        vec = np.zeros(len(classes))
        for i in idx:
            vec[classes[strata[i]]] += 1
        # squared distance to the targets (relative to each) after placing the group in split s,
        # per class and, weighted as much as all classes together, per split size (when groups
        # hold one class each, only the sizes can be balanced)
        place = np.eye(len(names))[:, :, None] * vec[None, None, :]  # [s] = the group put in split s
        after = target - have - place
        cost = ((np.square(after) / np.maximum(target, 1)).sum(axis=(1, 2))
                + len(classes) * (np.square(after.sum(axis=2)) / np.maximum(target.sum(axis=1), 1)).sum(axis=1))
        s = int(np.argmin(cost))
        have[s] += vec
        for i in idx:
            out[i] = names[s]
    return out


def group_keys(names: Sequence[str], pattern: str | None) -> tuple[list[str] | None, int]:
    """Group key of each file name: `pattern`'s first capture group (or whole match). Names it
    does not match form groups of their own; their count is returned, and a pattern that matches
    no name at all (a typo: nothing would be grouped) is a usage error."""
    if pattern is None:
        return None, 0
    try:
        rx = re.compile(pattern)
    except re.error as exc:
        raise UsageError(f"--group-by {pattern!r} is not a regular expression ({exc})",
                         hint=r"e.g. --group-by '^([^_]+)_' (the speaker in Speech Commands names)") from None
    keys, unmatched = [], 0
    for n in names:
        m = rx.search(n)
        if m is None:
            unmatched += 1
            keys.append(f"\0{n}")
        else:
            keys.append(m.group(1) if rx.groups else m.group(0))
    if names and unmatched == len(names):
        raise UsageError(f"--group-by {pattern!r} matches none of the {len(names)} file names",
                         hint=f"e.g. a name here is {names[0]!r}")
    return keys, unmatched
