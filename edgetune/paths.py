"""Where edgetune keeps its files: the cache, and the shipped cards/profiles folders."""

from __future__ import annotations

import os
import sys
from pathlib import Path

_REPO_ROOT = Path(__file__).resolve().parents[1]


def cache_dir() -> Path:
    """The asset cache: $EDGETUNE_CACHE, else $XDG_CACHE_HOME/edgetune, else ~/.cache/edgetune."""
    env = os.environ.get("EDGETUNE_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "edgetune"


def shipped_dir(name: str) -> Path:
    """`models/` or `profiles/`: $EDGETUNE_HOME/<name> if set; else the folder beside the package
    (a source checkout or editable install); else `<prefix>/share/edgetune/<name>`, where a wheel
    installs them (pyproject's data-files) — the light install on a device."""
    home = os.environ.get("EDGETUNE_HOME")
    if home:
        return Path(home) / name
    beside = _REPO_ROOT / name
    if beside.is_dir():
        return beside
    return Path(sys.prefix) / "share" / "edgetune" / name
