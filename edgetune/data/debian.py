"""Files out of a Debian package without installing it: `apt-get download` + `dpkg-deb -x` (no
root install), copied into edgetune's cache. Debian serves real data (Fashion-MNIST, recorded
speech in alsa-utils) through apt, which reaches the package index when nothing else does."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from edgetune.errors import AssetError
from edgetune.fsutil import atomic_dir, work_dir
from edgetune.paths import cache_dir


def debian_files(package: str, folder: str, names: Sequence[str] | None, *, fetch: bool = True, hint: str = "",
                 cache_name: str | None = None) -> Path:
    """The folder holding `names` from `package`'s `folder` (e.g. usr/share/sounds/alsa): the
    system's own when the package is installed, else edgetune's cache, fetched once. `names=None`:
    the whole folder, swapped into the cache in one piece (a present copy is a complete one)."""
    system = Path("/") / folder
    cached = cache_dir() / "data" / (cache_name or package)
    if names is None:
        if system.is_dir():
            return system
        if cached.is_dir():
            return cached
    elif all((system / n).is_file() for n in names):
        return system
    elif all((cached / n).is_file() for n in names):
        return cached
    if not fetch:
        raise AssetError(f"{package}'s files are not available locally", hint=hint or f"apt-get install {package}")
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise AssetError(f"fetching Debian's {package} needs apt-get and dpkg-deb (Debian/Ubuntu)",
                         hint=hint or f"copy {', '.join(names) if names else f'/{folder}'} from {package} to {cached}")
    with work_dir("deb") as tmp:
        proc = subprocess.run(["apt-get", "download", "-q", package], cwd=tmp, capture_output=True, text=True)
        debs = sorted(Path(tmp).glob("*.deb"))
        if proc.returncode != 0 or not debs:
            raise AssetError(f"`apt-get download {package}` failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}",
                             hint="run `apt-get update` first" + (f", or {hint}" if hint else ""))
        subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(Path(tmp) / "x")], check=True, capture_output=True)
        src = Path(tmp) / "x" / folder
        if names is None:
            if not src.is_dir():
                raise AssetError(f"Debian's {package} has no {folder}")
            with atomic_dir(cached) as building:
                shutil.copytree(src, building, dirs_exist_ok=True)
            return cached
        missing = [n for n in names if not (src / n).is_file()]
        if missing:
            raise AssetError(f"Debian's {package} has no {folder}/{missing[0]}")
        cached.mkdir(parents=True, exist_ok=True)
        for n in names:
            shutil.copyfile(src / n, cached / n)
    return cached
