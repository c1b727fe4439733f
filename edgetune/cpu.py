"""How many cores this process may use: its CPU affinity (taskset, a container's cpuset, a CI
runner's share), not the machine's core count. Threads beyond that only queue behind each other."""

from __future__ import annotations

import os


def usable_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1
