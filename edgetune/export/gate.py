"""`--max-drop`, interpreted once: the accuracy gate every export passes through.

The drop is the fp32 artefact's task metric minus the candidate's, in absolute metric units (a
fraction: 0.01 is one point of top-1 or mAP). Plain int8, the accuracy-aware search, `auto`'s
choice and the commit all ask this one object, so they cannot disagree, and export.json records
the budget that was applied and where it came from.

An int8 target is never exported with an unbounded loss by accident: without --max-drop it gets
DEFAULT_MAX_DROP, and the accuracy-aware search restores layers to float until it holds.
`--max-drop none` opts out (the drop is recorded, nothing fails). Float targets are validated
against PyTorch instead; fp16 ones have no layers to restore (their drop is recorded, and gated
only when --max-drop is given).
"""

from __future__ import annotations

from dataclasses import dataclass

# Metrics are ratios of counts: equal values computed along different paths may differ in the last
# bits, and a drop of exactly --max-drop must pass.
TOLERANCE = 1e-12
DEFAULT_MAX_DROP = 0.01  # int8 targets and `--target auto` without --max-drop: one point of the metric
NO_BUDGET = "none"  # `--max-drop none`: record the drop, gate nothing

MaxDrop = float | str | None  # a budget, NO_BUDGET, or None (not given: the default applies)

# Where a gate's budget came from (export.json's max_drop_source)
GIVEN, DEFAULT, OPTED_OUT, UNSET = "--max-drop", "default", "--max-drop none", "unset"


def check_max_drop(max_drop: MaxDrop) -> None:
    """A usable --max-drop, checked before any work (negative budgets cannot be met)."""
    from edgetune.errors import UsageError

    if max_drop == NO_BUDGET or max_drop is None:
        return
    if isinstance(max_drop, str):
        raise UsageError(f"--max-drop must be a number or '{NO_BUDGET}', got {max_drop!r}")
    if max_drop < 0:
        raise UsageError(f"--max-drop must be ≥ 0 (an absolute drop in the task metric), got {max_drop}")


@dataclass(frozen=True)
class Gate:
    reference: float  # the fp32 artefact's task metric
    max_drop: float | None = None  # None: the drop is recorded, nothing fails
    source: str = GIVEN  # GIVEN | DEFAULT | OPTED_OUT | UNSET

    @classmethod
    def for_target(cls, reference: float, max_drop: MaxDrop, *, int8: bool, auto: bool = False) -> Gate:
        """The budget for one target. auto must rank candidates against some budget, and an int8
        target must not lose accuracy silently: without --max-drop both get DEFAULT_MAX_DROP."""
        if max_drop == NO_BUDGET:
            return cls(reference, None, OPTED_OUT)
        if max_drop is not None:
            return cls(reference, float(max_drop), GIVEN)
        if int8 or auto:
            return cls(reference, DEFAULT_MAX_DROP, DEFAULT)
        return cls(reference, None, UNSET)

    def describe(self) -> str:
        """The budget as a user would name it in a message."""
        if self.source == DEFAULT:
            return f"the default budget {self.max_drop} (--max-drop N sets another, --max-drop none records only)"
        return f"--max-drop {self.max_drop}"

    def drop(self, metric: float) -> float:
        return self.reference - float(metric)

    def within(self, drop: float) -> bool:
        return self.max_drop is None or drop <= self.max_drop + TOLERANCE

    def passes(self, metric: float) -> bool:
        return self.within(self.drop(metric))
