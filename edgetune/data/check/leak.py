"""The cheap part of `data check` that `finetune` runs on every start: files shared between the
training and validation splits (same bytes, or for images ≥ 64 px the same pHash within the
rule). A leak inflates the val metric every gate trusts, so it is always said, even under --quiet;
training still goes ahead (the user may mean it, e.g. a smoke test on train=val)."""

from __future__ import annotations

from pathlib import Path

from edgetune.data.check.audit import file_facts, leak_pairs
from edgetune.data.check.layout import Item

SHOWN = 3


def find_leaks(splits: dict[str, list[Path]], *, audio: bool) -> list[tuple[Path, Path, str]]:
    """(held-out file, train file, how) for every leaked pair."""
    items = [Item(split, p) for split, files in splits.items() for p in files]
    facts = [file_facts(p.path, audio, decode_audio=False) for p in items]  # the trainer decodes them anyway
    cross, _ = leak_pairs(items, facts)
    return [(items[a].path, items[b].path, how) for a, b, how in cross]


def leak_warning(splits: dict[str, list[Path]], root: Path, *, audio: bool) -> str | None:
    """One line for the training log when val shares files with train; None when clean."""
    leaks = find_leaks(splits, audio=audio)
    if not leaks:
        return None

    def rel(p: Path) -> str:
        return str(p.relative_to(root)) if p.is_relative_to(root) else str(p)

    shown = "; ".join(f"{rel(a)} ≈ {rel(b)} ({how})" for a, b, how in leaks[:SHOWN])
    more = f"; and {len(leaks) - SHOWN} more" if len(leaks) > SHOWN else ""
    return (f"warning: {len(leaks)} validation files duplicate training files ({shown}{more}): the val metric, and "
            f"every gate on it, is inflated; `edgetune data check {root}` lists them all")


def warn_if_leaked(splits: dict[str, list[Path]], root: Path, *, audio: bool = False) -> None:
    """`leak_warning` on stderr, whatever --quiet says."""
    from edgetune.progress import log

    line = leak_warning(splits, Path(root), audio=audio)
    if line:
        log(line)
