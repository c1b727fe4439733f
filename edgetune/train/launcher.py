"""`edgetune finetune --nproc N`: torchrun's own launcher, started from the CLI on one node.

The same elastic agent `torchrun --standalone --nproc-per-node N` runs (torch.distributed.launcher),
with a local c10d rendezvous on a free loopback port and no restarts: a failed rank ends the job.
It starts N copies of the same `edgetune finetune` command (without --nproc); the processes find
each other through torchrun's environment (edgetune.train.distributed.job). Multi-node jobs use
torchrun itself (docs/DISTRIBUTED.md).

What the user sees is one line and one exit code, as for any edgetune command: a rank that stopped
on an error said so itself (rank 0 prints a shared error once; Ctrl-C is reported by rank 0 with the
epoch it saved); what no rank can say — a rank killed by a signal, the launcher itself terminated —
the launcher says, here, once. The agent's own log and its traceback-like failure report are kept
off the terminal.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
import uuid
from pathlib import Path
from typing import Any, NoReturn

from edgetune.errors import EdgetuneError, ExitCode, Terminated, UsageError

LAUNCHED = "EDGETUNE_LAUNCHER"  # in the ranks' environment when `finetune --nproc` started them
WAIT_FOR_RANK0_S = 30.0  # a silent rank's wait for the agent to stop it (rank 0 is printing the line)


class JobFailed(EdgetuneError):
    """A distributed fine-tune ended without every rank finishing."""


def env_int(name: str, default: int) -> int:
    """One of torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK…), `default` when unset or empty."""
    return int(os.environ.get(name) or default)


def launched_by_torchrun() -> bool:
    """Whether this process is one rank of a job of several (torchrun's environment)."""
    return env_int("WORLD_SIZE", 1) > 1


def secondary_rank() -> bool:
    """A rank other than 0: it prints no result (rank 0 does, once)."""
    return launched_by_torchrun() and env_int("RANK", 0) != 0


def echo(exc: BaseException) -> BaseException:
    """Mark an error every rank raises as rank 0's to report (the others exit with its code, silent)."""
    exc._edgetune_echo = True  # type: ignore[attr-defined]
    return exc


def silent_here(exc: BaseException) -> bool:
    """Whether this process should not print `exc`: a rank other than 0 stays silent about what
    rank 0 reports too (a shared input error, Ctrl-C, a broken collective), and speaks, prefixed
    with its rank, only of its own failure; under `--nproc` no rank reports being terminated."""
    if not launched_by_torchrun():
        return False
    if os.environ.get(LAUNCHED) and (isinstance(exc, Terminated) or getattr(exc, "_edgetune_peer", False)
                                     or getattr(exc, "exit_code", None) == ExitCode.TERMINATED):
        return True  # stopped because another rank ended: `--nproc`'s launcher says why, once
    if not secondary_rank():
        return False
    return (getattr(exc, "_edgetune_echo", False) or isinstance(exc, KeyboardInterrupt)
            or getattr(exc, "exit_code", None) in (ExitCode.INTERRUPTED, ExitCode.TERMINATED))


def rank_prefix() -> str:
    """'rank N: ' in a distributed job's processes other than rank 0."""
    return f"rank {env_int('RANK', 0)}: " if secondary_rank() else ""


def exit_silently(exc: BaseException, code: int) -> NoReturn:
    """End a rank whose error another process reports (`silent_here`).

    Under `--nproc`, a rank that stopped because another one did exits 143, the code of a rank the
    agent stopped, so the launcher never takes it for the job's cause. A rank other than 0 holding
    the error rank 0 reports waits, up to WAIT_FOR_RANK0_S, for the agent to stop it: had it left
    first, the agent could stop rank 0 before rank 0 printed the job's one line (seen in CI: the
    job said "rank 1 was stopped by SIGTERM" for a missing --data folder)."""
    launched = bool(os.environ.get(LAUNCHED))
    if launched and getattr(exc, "_edgetune_peer", False):
        code = ExitCode.TERMINATED
    elif launched and secondary_rank() and getattr(exc, "_edgetune_echo", False):
        sys.stdout.flush()
        sys.stderr.flush()
        signal.signal(signal.SIGTERM, lambda *_: os._exit(code))
        end = time.monotonic() + WAIT_FOR_RANK0_S
        while time.monotonic() < end:
            time.sleep(0.05)
    sys.exit(code)


def _cause(exc: Any) -> tuple[int, Any]:
    """The rank whose end ended the job, and its failure record (torchelastic's ProcessFailure).

    The agent stops the other ranks with SIGTERM once one rank ends, so a SIGTERM (143, or -15 for
    a rank still importing) is the least likely cause; a rank killed by another signal (the OOM
    killer's SIGKILL) is the likeliest, then a rank that ended with its own exit code (it printed
    why, or rank 0 did for it)."""
    def weight(item: tuple[int, Any]) -> tuple[int, int]:
        rank, failure = item
        code = failure.exitcode
        if code in (ExitCode.TERMINATED, -signal.SIGTERM):
            return 2, rank
        return (0 if code < 0 else 1), rank

    return min(exc.failures.items(), key=weight)


def launch(argv: list[str], nproc: int, out: Path) -> int:
    """Run `edgetune <argv>` as `nproc` ranks on this machine; the job's exit code. `out` is the
    run directory, named in the messages about where the last completed epoch is."""
    if launched_by_torchrun():
        raise UsageError("--nproc inside a torchrun job", hint="use either torchrun or --nproc, not both")
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    for name in ("torch.distributed.elastic", "torch.distributed.launcher"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=f"edgetune-{uuid.uuid4().hex[:8]}",
                          rdzv_backend="c10d", rdzv_endpoint="127.0.0.1:0", max_restarts=0, monitor_interval=0.1)
    os.environ[LAUNCHED] = "1"
    saved = f"{out / 'last.pt'} holds the last completed epoch"
    try:
        elastic_launch(config, sys.executable)("-m", "edgetune", *argv)
    except ChildFailedError as exc:
        rank, failure = _cause(exc)
        code = failure.exitcode
        if code > 0 and code != ExitCode.TERMINATED:
            return code  # that rank printed its own line (or, for a bug, its traceback)
        name = signal.Signals(-code).name if code < 0 else "SIGTERM"
        err = JobFailed(f"rank {rank} of {nproc} (pid {failure.pid}) was stopped by {name}; the other ranks were "
                        f"stopped too and {saved}", hint="continue with the same command plus --resume")
        err.exit_code = 128 - code if code < 0 else ExitCode.TERMINATED  # as a shell reports a signal
        raise err from None
    except SignalException as exc:
        if exc.sigval == signal.SIGINT:
            return int(ExitCode.INTERRUPTED)  # rank 0 reported the interrupted epoch
        err = JobFailed(f"terminated ({exc.sigval.name}); every rank was stopped and {saved}",
                        hint="continue with the same command plus --resume")
        err.exit_code = ExitCode.TERMINATED
        raise err from None
    finally:
        os.environ.pop(LAUNCHED, None)
    return 0
