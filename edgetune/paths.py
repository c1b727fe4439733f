"""Where edgetune keeps its files: the cache, and the shipped cards/profiles folders."""

from __future__ import annotations

import os
import sys
from pathlib import Path

_REPO_ROOT = Path(__file__).resolve().parents[1]


def cache_path() -> tuple[Path, str]:
    """Where the cache is meant to be, and how to name that setting to a user (not checked)."""
    env = os.environ.get("EDGETUNE_CACHE")
    if env:
        return Path(env).expanduser(), f"EDGETUNE_CACHE={env}"
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "edgetune", f"the cache folder {base / 'edgetune'}"


def cache_dir() -> Path:
    """The asset cache: $EDGETUNE_CACHE, else $XDG_CACHE_HOME/edgetune, else ~/.cache/edgetune;
    one line naming the variable when it is not a folder (it broke bench's estimate with a bare
    'Not a directory')."""
    path, name = cache_path()
    if path.exists() and not path.is_dir():
        from edgetune.errors import OutputError

        raise OutputError(f"{name} is not a folder", hint="point EDGETUNE_CACHE at a folder edgetune may write to "
                                                          "(unset, it is ~/.cache/edgetune)")
    return path


def state_dir() -> Path:
    """The user's own edgetune state, outside every run folder and the cache: $EDGETUNE_STATE,
    else $XDG_STATE_HOME/edgetune, else ~/.local/state/edgetune. It holds the trust list."""
    env = os.environ.get("EDGETUNE_STATE")
    if env:
        return Path(env).expanduser()
    return Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "edgetune"


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
