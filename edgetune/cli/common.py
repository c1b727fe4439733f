"""What every command shares: --json output, one-line errors with distinct exit codes."""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import math
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import click

from edgetune.errors import EdgetuneError, ExitCode, Terminated, interruption_code


class FiniteFloat(click.ParamType):
    """click's FLOAT accepts 'inf' and 'nan' (Python's float does); no edgetune option means
    either, and they reached arithmetic as OverflowError or gates that could never pass."""

    name = "float"

    def convert(self, value: Any, param: Any, ctx: Any) -> float:
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


FINITE = FiniteFloat()


class MaxDropParam(FiniteFloat):
    """--max-drop: a finite number, or 'none' to record the drop without a budget."""

    name = "float|none"

    def convert(self, value: Any, param: Any, ctx: Any) -> float | str:
        from edgetune.export.gate import NO_BUDGET

        if isinstance(value, str) and value.strip().lower() == NO_BUDGET:
            return NO_BUDGET
        return super().convert(value, param, ctx)


MAX_DROP = MaxDropParam()

json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout (for CI).")


_json_stdout: list[Any] = []  # the real stdout while a --json command runs with stdout sent to stderr


def _echo_json(obj: Any) -> None:
    click.echo(json.dumps(obj, default=str), file=_json_stdout[-1] if _json_stdout else None)


def emit(result: Any, as_json: bool, human: Callable[[Any], None] | None = None) -> None:
    if as_json:
        _echo_json(result)
    elif human is not None:
        human(result)
    else:
        click.echo(json.dumps(result, indent=2, default=str))


def fail(message: str, code: int, exc: BaseException | None = None) -> None:
    if exc is not None and "RANK" in os.environ:  # a process of a distributed fine-tune (torchrun)
        from edgetune.train.launcher import exit_silently, rank_prefix, silent_here

        if "edgetune.train.distributed" in sys.modules:  # never import torch here (a device's light install)
            # a process group left up at exit can abort the process (SIGABRT) and hide its exit code
            sys.modules["edgetune.train.distributed"].finish()
        if silent_here(exc):
            exit_silently(exc, code)
        message = rank_prefix() + message
    click.echo(f"edgetune: error: {message}", err=True)
    sys.exit(code)


# Write-side failures (exit 8); any other OSError escaping a command is an input it could not read.
_OUTPUT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG}


@contextlib.contextmanager
def _terminate_like_ctrl_c() -> Iterator[None]:
    """SIGTERM's default kills the process on the spot: no `finally`, so temp folders of hundreds
    of MB stayed in /tmp. While a command runs, SIGTERM unwinds like Ctrl-C (exit 143, one line).

    Only in the process that installed it: a forked worker (a multiprocessing pool, a dataloader)
    inherits the handler, and a pool stops its workers with SIGTERM, so there it dies as before
    (raising instead kept them alive and hung the parent's join). The previous handler comes back
    when the command ends, for callers that run commands in-process (tests, notebooks).

    A signal whose handler runs inside a finaliser or a weakref callback (the import system's
    module locks have one) raises where Python ignores exceptions ("Exception ignored in …"): the
    command went on and exited 0 after a SIGTERM. Such an ignored interruption is sent again, so
    it is raised in the command's own code. Nor is SIGTERM raised inside an import: raised in the
    middle of torch's, a native callback turned it into an abort (exit -6, a C++ stack); it waits
    until the import is done."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    owner, running = os.getpid(), [True]

    def send_again(sig: int) -> None:
        """From another thread, so the handler runs in the main thread's own code; never once the
        command is over (a caller running commands in-process must not get a stray interruption)."""
        def send() -> None:
            if running[0]:
                os.kill(owner, sig)

        timer = threading.Timer(0.05, send)
        timer.daemon = True  # nor may it hold up the interpreter's exit
        timer.start()

    def on_sigterm(signum: int, frame: Any) -> None:
        if os.getpid() != owner:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        if _importing(frame):
            send_again(signal.SIGTERM)
            return
        raise Terminated()

    previous_hook = sys.unraisablehook

    def on_unraisable(unraisable: Any) -> None:
        if os.getpid() == owner and isinstance(unraisable.exc_value, KeyboardInterrupt):
            send_again(signal.SIGTERM if isinstance(unraisable.exc_value, Terminated) else signal.SIGINT)
            return
        previous_hook(unraisable)

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    sys.unraisablehook = on_unraisable
    try:
        yield
    finally:
        running[0] = False
        signal.signal(signal.SIGTERM, previous)
        sys.unraisablehook = previous_hook


def _importing(frame: Any) -> bool:
    """Whether `frame` runs inside an import (importlib's frames are on its stack)."""
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


def handle_errors(as_json_param: str = "as_json") -> Callable:
    """Turn EdgetuneError into `edgetune: error: <what> (hint: <fix>)` and its exit code.

    Under --json a gate failure still prints its result object on stdout first, so CI sees the
    numbers and the non-zero code together; anything a library prints meanwhile (ONNX Runtime's
    calibrators, NNCF) goes to stderr, so stdout holds exactly one JSON object.
    """

    def deco(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            as_json = bool(kwargs.get(as_json_param))
            quiet_stdout = contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext()
            _json_stdout.append(sys.stdout)
            try:
                with _terminate_like_ctrl_c(), quiet_stdout:
                    return fn(*args, **kwargs)
            except EdgetuneError as exc:
                if as_json and exc.payload is not None:
                    _echo_json(exc.payload)
                fail(exc.one_line(), int(exc.exit_code), exc)
            except KeyboardInterrupt as exc:
                code = interruption_code(exc)
                fail("terminated (SIGTERM)" if code == ExitCode.TERMINATED else "interrupted", int(code), exc)
            except OSError as exc:
                where = f": {exc.filename}" if exc.filename else ""
                if exc.errno in _OUTPUT_ERRNOS:  # writes are atomic, so nothing half-written stays
                    fail(f"{exc.strerror or exc}{where} (hint: check free space and permissions; no partial output "
                         "was kept)", int(ExitCode.OUTPUT_ERROR))
                fail(f"{exc.strerror or exc}{where}", int(ExitCode.BAD_INPUT))  # a file a library could not read
            finally:
                _json_stdout.pop()

        return wrapper

    return deco


def table(rows: list[list[Any]], headers: list[str]) -> str:
    cells = [headers] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    line = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()  # noqa: E731
    return "\n".join([line(cells[0]), line(["-" * w for w in widths])] + [line(r) for r in cells[1:]])


def argv_without(ctx: click.Context, *skip: str) -> list[str]:
    """The command line of `ctx`'s command rebuilt from its parsed options, less `skip`: what a
    launcher passes on to the processes it starts (options left at their default are left out)."""
    argv: list[str] = []
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if not isinstance(param, click.Option) or param.name in skip or value is None or value == param.default:
            continue
        if param.is_flag:
            flag = param.opts[0] if value else (param.secondary_opts or [None])[0]
            argv += [flag] if flag else []
        else:
            argv += [param.opts[0], str(value)]
    return argv
