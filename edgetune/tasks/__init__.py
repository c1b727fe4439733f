"""Tasks: what differs between classify/detect/kws. The rest of the code never branches on a
task name; it asks the TASKS registry for the Task of a run and calls its methods
(`edgetune.tasks.base.Task`). Task names live in the leaf module `edgetune.tasks.names`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgetune.registry import Registry
from edgetune.tasks.names import TASK_NAMES

if TYPE_CHECKING:
    from edgetune.tasks.base import Task

# Non-scalar results of `Task.evaluate` that reports plot; export.json and bench JSON keep them.
# confusion: [true][predicted] counts (classify, kws); pr_curve: {"recall", "precision"} (detect).
CURVES = ("confusion", "pr_curve")

TASKS: Registry[Task] = Registry("task")


def _load() -> None:
    import importlib

    for name in TASK_NAMES:  # edgetune/tasks/<name>.py defines TASK, an instance of its Task class
        TASKS.register(name, importlib.import_module(f"edgetune.tasks.{name}").TASK)


TASKS.set_loader(_load)


def get_task(name: str) -> Task:
    return TASKS.get(name)
