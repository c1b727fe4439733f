"""`--max-drop`, interpreted once: the accuracy gate every export passes through.

The drop is the fp32 artefact's task metric minus the candidate's, in absolute metric units (a
fraction: 0.01 is one point of top-1 or mAP). Plain int8, the accuracy-aware search, `auto`'s
choice and the commit all ask this one object, so they cannot disagree, and export.json records
the budget that was applied (auto's default included).
"""

from __future__ import annotations

from dataclasses import dataclass

# Metrics are ratios of counts: equal values computed along different paths may differ in the last
# bits, and a drop of exactly --max-drop must pass.
TOLERANCE = 1e-12
AUTO_DEFAULT_MAX_DROP = 0.01  # `--target auto` without --max-drop: one point of the task metric


def check_max_drop(max_drop: float | None) -> None:
    """A usable --max-drop, checked before any work (negative budgets cannot be met)."""
    from edgetune.errors import UsageError

    if max_drop is not None and max_drop < 0:
        raise UsageError(f"--max-drop must be ≥ 0 (an absolute drop in the task metric), got {max_drop}")


@dataclass(frozen=True)
class Gate:
    reference: float  # the fp32 artefact's task metric
    max_drop: float | None = None  # None: the drop is recorded, nothing fails

    @classmethod
    def for_target(cls, reference: float, max_drop: float | None, *, auto: bool = False) -> Gate:
        """auto must rank candidates against some budget: without --max-drop it uses one point."""
        return cls(reference, AUTO_DEFAULT_MAX_DROP if auto and max_drop is None else max_drop)

    def drop(self, metric: float) -> float:
        return self.reference - float(metric)

    def within(self, drop: float) -> bool:
        return self.max_drop is None or drop <= self.max_drop + TOLERANCE

    def passes(self, metric: float) -> bool:
        return self.within(self.drop(metric))
