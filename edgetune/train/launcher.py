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
import uuid
from pathlib import Path

from edgetune.errors import EdgetuneError, ExitCode, Terminated, UsageError

LAUNCHED = "EDGETUNE_LAUNCHER"  # in the ranks' environment when `finetune --nproc` started them


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
        # a rank killed by a signal caused the others' failures (they report a broken collective)
        killed = [r for r, f in exc.failures.items() if f.exitcode < 0]
        rank, failure = (killed[0], exc.failures[killed[0]]) if killed else exc.get_first_failure()
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
