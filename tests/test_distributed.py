"""Data-parallel fine-tuning (`finetune --nproc N`, torchrun's launcher, DDP on gloo): N processes
train like one, rank 0 alone writes the run, a run made by N processes is an ordinary run, and a
job ends with one line whatever stops it.

Every job runs as real processes (`python -m edgetune`), as a user's would."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import invoke, invoke_json

TINY = ("--model", "test_tinynet", "--lr", "3e-3", "--batch", "32", "--seed", "0")

# Rank != 0 records every file it opens for writing, renames or removes under the run directory.
_WRITES_HOOK = """
import os, sys
if os.environ.get("RANK", "0") != "0" and os.environ.get("WATCH_DIR"):
    _dir, _log, _busy = os.environ["WATCH_DIR"], os.environ["WATCH_LOG"], []
    def _hook(event, args):
        if _busy or event not in ("open", "os.rename", "os.replace", "os.remove", "os.mkdir"):
            return
        path = args[0]
        if not isinstance(path, str) or not path.startswith(_dir):
            return
        if event == "open" and not (isinstance(args[1], str) and set(args[1]) & set("wax+")):
            return
        _busy.append(1)
        with open(_log, "a") as f:
            f.write(event + " " + path + "\\n")
        _busy.pop()
    sys.addaudithook(_hook)
"""


def run_cli(*args: object, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgetune", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


def history(run: Path) -> list[dict]:
    return json.loads((run / "edgetune.json").read_text())["history"]


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "error" in line.lower() or "Traceback" in line]


@pytest.fixture(scope="module")
def ddp_runs(tmp_path_factory, fm_data) -> dict[str, Path]:
    """The tiny classifier trained by 2 processes as `tiny_run` is by one, with rank 1's writes
    watched."""
    root = tmp_path_factory.mktemp("ddp")
    hook = root / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(_WRITES_HOOK)
    runs = {"writes": root}
    for name, epochs in (("full", 10),):
        out = runs[name] = root / name
        p = run_cli("finetune", *TINY, "--data", fm_data, "--out", out, "--epochs", epochs, "--nproc", 2, "--json",
                    env={"PYTHONPATH": str(hook), "WATCH_DIR": str(out), "WATCH_LOG": str(root / f"{name}.writes")})
        assert p.returncode == 0, p.stderr[-3000:]
        assert len(p.stdout.strip().splitlines()) == 1  # one result, from rank 0
        assert json.loads(p.stdout)["processes"] == 2
    return runs


@pytest.mark.slow
def test_two_processes_train_like_one_with_the_same_global_batch(ddp_runs, tiny_run):
    one, two = history(tiny_run), history(ddp_runs["full"])
    assert [h["epoch"] for h in two] == [h["epoch"] for h in one] == list(range(1, 11))
    # the same steps on the same global batches; only BatchNorm's batch statistics are per process
    for a, b in zip(one, two, strict=True):
        assert b["loss"] == pytest.approx(a["loss"], rel=0.02), (one, two)
    best_one = json.loads((tiny_run / "edgetune.json").read_text())["best"]["top1"]
    best_two = json.loads((ddp_runs["full"] / "edgetune.json").read_text())["best"]["top1"]
    assert best_two > 0.35 and abs(best_two - best_one) <= 0.05, (best_one, best_two)


@pytest.mark.slow
def test_same_seed_and_world_size_give_the_same_run(fm_data, tmp_path):
    def numbers(run: Path) -> list[dict]:
        return [{k: v for k, v in h.items() if k not in ("seconds", "elapsed")} for h in history(run)]

    for name in ("a", "b"):
        p = run_cli("finetune", *TINY, "--data", fm_data, "--out", tmp_path / name, "--epochs", 2, "--nproc", 2)
        assert p.returncode == 0, p.stderr[-3000:]
    assert numbers(tmp_path / "a") == numbers(tmp_path / "b")


@pytest.mark.slow
def test_only_rank_0_writes_the_run_directory(ddp_runs):
    root = ddp_runs["writes"]
    for name in ("full",):
        assert not (root / f"{name}.writes").exists(), (root / f"{name}.writes").read_text()
        assert sorted(p.name for p in ddp_runs[name].iterdir()) == ["checkpoint.pt", "edgetune.json", "last.pt"]
    # the hook does see what rank 0 writes when told to watch it (the check can fail)
    hook = root / "hook"
    p = subprocess.run([sys.executable, "-c", "open(r'%s', 'w').close()" % (root / "probe.txt")],
                       env={**os.environ, "PYTHONPATH": str(hook), "RANK": "1", "WATCH_DIR": str(root),
                            "WATCH_LOG": str(root / "probe.writes")})
    assert p.returncode == 0 and "probe.txt" in (root / "probe.writes").read_text()


@pytest.mark.slow
def test_a_run_of_two_processes_resumes_with_two_and_with_one_and_exports(ddp_runs, fm_data, tmp_path):
    out = tmp_path / "r"
    shutil.copytree(ddp_runs["full"], out)
    p = run_cli("finetune", *TINY, "--data", fm_data, "--out", out, "--epochs", 11, "--nproc", 2, "--resume")
    assert p.returncode == 0, p.stderr[-3000:]
    assert "resuming after epoch 10" in p.stderr and p.stderr.count("resuming") == 1  # rank 0 alone logs
    assert [h["epoch"] for h in history(out)] == list(range(1, 12))
    res = invoke("finetune", *TINY, "--data", fm_data, "--out", out, "--epochs", 12, "--resume", "--quiet")
    assert res.exit_code == 0, res.stderr[-3000:]
    assert [h["epoch"] for h in history(out)] == list(range(1, 13))
    exported = invoke_json("export", out, "--target", "cpu-fp32")
    assert exported["metric"] == pytest.approx(json.loads((out / "edgetune.json").read_text())["best"]["top1"], abs=0.011)


@pytest.mark.slow
def test_a_bad_input_ends_the_job_with_one_line(tmp_path, fm_data):
    one = invoke("finetune", *TINY, "--data", tmp_path / "missing", "--out", tmp_path / "o1")
    two = run_cli("finetune", *TINY, "--data", tmp_path / "missing", "--out", tmp_path / "o2", "--nproc", 2)
    assert two.returncode == one.exit_code == 3
    assert error_lines(two.stderr) == error_lines(one.stderr) and len(error_lines(one.stderr)) == 1, two.stderr


def test_detection_refuses_nproc_in_one_line(det_data, tmp_path):
    res = invoke("finetune", "--model", "test_yolo_tiny", "--data", det_data, "--out", tmp_path / "d", "--nproc", 2)
    assert res.exit_code == 2
    assert res.stderr.strip() == ("edgetune: error: --nproc: detect does not train as several processes (hint: drop "
                                  "--nproc; detect uses ultralytics' own multi-GPU DDP: --device 0,1)")


def _rank_pid(launcher: int, rank: int, timeout: float = 60) -> int:
    """The pid of `rank` among the launcher's children (torchrun's environment names it)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for child in Path(f"/proc/{launcher}/task/{launcher}/children").read_text().split():
            try:
                env = Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if f"RANK={rank}".encode() in env:
                return int(child)
        time.sleep(0.2)
    raise AssertionError(f"no rank {rank} under {launcher}")


def _start_long_job(fm_data: Path, out: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "edgetune", "finetune", *TINY, "--data", str(fm_data), "--out",
                             str(out), "--epochs", "500", "--patience", "500", "--nproc", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    end = time.monotonic() + 120
    while not (out / "last.pt").is_file():  # at least one epoch completed and saved
        assert proc.poll() is None and time.monotonic() < end, proc.communicate()[1][-3000:]
        time.sleep(0.2)
    return proc


def _epochs_saved(out: Path) -> int:
    import torch

    return torch.load(out / "last.pt", weights_only=True)["fit"]["epoch"]


@pytest.mark.slow
def test_ctrl_c_ends_the_whole_job_with_one_line_and_last_pt_intact(fm_data, tmp_path):
    out = tmp_path / "r"
    proc = _start_long_job(fm_data, out)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert len(error_lines(stderr)) == 1 and "interrupted during epoch" in stderr and "--resume" in stderr, stderr
    assert _epochs_saved(out) >= 1


@pytest.mark.slow
def test_a_killed_rank_ends_the_whole_job_with_one_line_and_last_pt_intact(fm_data, tmp_path):
    out = tmp_path / "r"
    proc = _start_long_job(fm_data, out)
    os.kill(_rank_pid(proc.pid, 1), signal.SIGKILL)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 137, stderr
    assert len(error_lines(stderr)) == 1, stderr
    assert "rank 1 of 2" in stderr and "SIGKILL" in stderr and "--resume" in stderr, stderr
    saved = _epochs_saved(out)
    p = run_cli("finetune", *TINY, "--data", fm_data, "--out", out, "--epochs", saved + 1, "--resume", "--quiet")
    assert p.returncode == 0, p.stderr[-2000:]


@pytest.mark.slow
def test_kws_two_processes_train_like_one(kws_data, kws_run, frontend_files, tmp_path):
    out = tmp_path / "kws2"
    p = run_cli("finetune", "--model", "speech_embedding_kws", "--data", kws_data, "--out", out, "--freeze", "backbone",
                "--epochs", 30, "--seed", 0, "--nproc", 2, "--json")
    assert p.returncode == 0, p.stderr[-3000:]
    one, two = kws_run[1]["metric"], json.loads(p.stdout.strip().splitlines()[-1])["metric"]
    assert two > 0.8 and abs(two - one) <= 0.05, (one, two)


def _check_same_worker(rank: int, store: str, out: str) -> None:
    import torch.distributed as td

    from edgetune.train.distributed import Dist

    td.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=3)
    try:
        Dist(rank=rank, world=3).check_same("abc" if rank < 2 else "abd", "the data in D (its hash)", hint="same files")
        message = "no error"
    except Exception as exc:  # noqa: BLE001 — the test asserts what was raised
        message = f"{type(exc).__name__}: {exc.one_line()} echo={getattr(exc, '_edgetune_echo', False)}"
    Path(out, f"{rank}.txt").write_text(message)
    td.destroy_process_group()


@pytest.mark.slow
def test_ranks_holding_different_data_are_named_on_every_rank(tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(_check_same_worker, args=(str(tmp_path / "store"), str(tmp_path)), nprocs=3)
    said = [(tmp_path / f"{r}.txt").read_text() for r in range(3)]
    line = "DataError: the data in D (its hash) differs between rank 0 and rank(s) 2 (hint: same files)"
    assert said == [f"{line} echo=False", f"{line} echo=True", f"{line} echo=True"]  # rank 0 alone prints it


@pytest.mark.parametrize("codes, cause", [
    ({0: 3, 1: 143}, 0),    # rank 0 printed the data error; the agent then stopped rank 1
    ({0: 143, 1: 3}, 1),    # rank 1's own error; rank 0 was stopped
    ({0: -15, 1: 2}, 1),    # rank 0 stopped while still importing (no handler yet)
    ({0: 143, 1: -9}, 1),   # the OOM killer's SIGKILL outweighs everything
    ({0: 143, 1: 143}, 0),  # only SIGTERMs: the lowest rank
])
def test_the_launcher_reports_the_rank_that_ended_the_job_not_one_it_stopped(codes, cause):
    from types import SimpleNamespace

    from edgetune.train.launcher import _cause

    failures = {rank: SimpleNamespace(exitcode=code) for rank, code in codes.items()}
    assert _cause(SimpleNamespace(failures=failures))[0] == cause
