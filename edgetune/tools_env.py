"""Tool environments: converters whose pins conflict with edgetune's, each in a virtual
environment of its own under the cache, created from the package index on request
(`edgetune tools install NAME`) and called as a subprocess with a small typed protocol.

Rockchip's rknn-toolkit2 pins torch ≤ 2.4, onnx ≤ 1.18 and numpy ≤ 1.26.4 (edgetune pins newer),
and imports torch at start-up: its environment holds torch 2.4.0 from PyPI (with the CUDA libraries
PyPI's torch wheel depends on; about 5.5 GB, 2 min here). 2.3.2, not the newest 2.5.0: 2.5.0's
graph optimiser crashes on yolo11n (IndexError in rules.conv._p_seperate_conv_rs_split, on
edgetune's graph and on ultralytics' own ONNX export alike), and ultralytics pins <2.5 too.
Nothing in it reaches the network at run time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from edgetune.errors import AssetError, UnknownNameError
from edgetune.progress import log


@dataclass(frozen=True)
class ToolSpec:
    name: str
    title: str
    requirements: tuple[str, ...]  # pip requirement lines, pinned
    check: str  # Python that must run in the environment once installed
    size: str  # for the user, before they start a multi-GB install


TOOLS = {
    "rknn": ToolSpec("rknn", "Rockchip rknn-toolkit2 (RKNN conversion and NPU simulator)",
                     ("rknn-toolkit2==2.3.2", "torch==2.4.0", "onnx==1.18.0", "numpy==1.26.4"),
                     "from rknn.api import RKNN", "about 5.5 GB"),
}


def spec(name: str) -> ToolSpec:
    if name not in TOOLS:
        raise UnknownNameError(f"unknown tool environment {name!r}", hint=f"known: {', '.join(TOOLS)}")
    return TOOLS[name]


def folder(name: str) -> Path:
    from edgetune.paths import cache_dir

    return cache_dir() / "tools" / spec(name).name


def python(name: str, what: str) -> Path:
    """The tool environment's interpreter, or exit 7 naming the command that creates it."""
    exe = folder(name) / "bin" / "python"
    if not (folder(name) / "installed.json").is_file() or not exe.is_file():
        raise AssetError(f"{what} needs the {spec(name).title} environment, which is not installed",
                         hint=f"`edgetune tools install {name}` creates it from the package index ({spec(name).size})")
    return exe


def status(name: str) -> dict:
    record = folder(name) / "installed.json"
    return {"name": name, "title": spec(name).title, "folder": str(folder(name)),
            "installed": json.loads(record.read_text()) if record.is_file() else None}


def install(name: str, *, quiet: bool = False, force: bool = False) -> dict:
    """Create the environment: a venv from this Python's base interpreter, the pinned requirements
    from the package index, then the import check. One that is installed with the same
    requirements and passes the check is kept (`force` re-creates it)."""
    s = spec(name)
    target = folder(name)
    record = target / "installed.json"
    if not force and record.is_file() and json.loads(record.read_text()).get("requirements") == list(s.requirements):
        check = subprocess.run([str(target / "bin" / "python"), "-c", s.check], capture_output=True)
        if check.returncode == 0:
            return {**status(name), "kept": True}
    t0 = time.perf_counter()
    (target / "installed.json").unlink(missing_ok=True)
    base = getattr(sys, "_base_executable", sys.executable)
    _run([base, "-m", "venv", "--clear", str(target)], f"creating the {name} environment")
    pip = [str(target / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check"]
    log(f"installing {', '.join(s.requirements)} into {target} ({s.size})", quiet=quiet)
    _run([*pip, *(() if not quiet else ("-q",)), *s.requirements], f"installing the {name} environment")
    _run([str(target / "bin" / "python"), "-c", s.check], f"checking the {name} environment")
    record = {"requirements": list(s.requirements), "seconds": round(time.perf_counter() - t0, 1),
              "python": sys.version.split()[0]}
    (target / "installed.json").write_text(json.dumps(record, indent=1))
    return status(name)


def _run(cmd: list[str], what: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    proc = subprocess.run(cmd, stdout=sys.stderr, stderr=subprocess.PIPE, text=True, env=env)
    if proc.returncode:
        last = [ln for ln in proc.stderr.splitlines() if ln.strip() and "WARNING: Location" not in ln]
        raise AssetError(f"{what} failed: {(last[-1] if last else f'exit status {proc.returncode}')[:200]}",
                         hint="check the package index is reachable and there is disk space; then run it again")
