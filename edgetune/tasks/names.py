"""The task names and their metrics: a leaf module (imports nothing), so the model cards, device
profiles, the run contract and the CLI all name tasks from one list without importing a task."""

from __future__ import annotations

TASK_NAMES: tuple[str, ...] = ("classify", "detect", "kws")

# Key of each task's metric in every JSON edgetune writes (a fraction in [0, 1], higher is better).
METRIC_NAMES: dict[str, str] = {"classify": "top1", "detect": "map50_95", "kws": "top1"}
