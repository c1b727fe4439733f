"""Typed errors. Library code raises these; only `edgetune.cli` turns them into one line + exit code.

Each error carries a `hint` (how to fix it) and an exit code, so CI can tell a bad data set
from a failed accuracy gate without parsing text.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Distinct process exit codes, documented in the README."""

    OK = 0
    INTERNAL = 1
    USAGE = 2
    BAD_INPUT = 3
    EXPORT_VALIDATION = 4
    ACCURACY_GATE = 5
    BUDGET_GATE = 6
    MISSING_ASSET = 7
    OUTPUT_ERROR = 8
    REMOTE = 9
    INTERRUPTED = 130
    TERMINATED = 143  # SIGTERM (CI runners, systemd, `kill`): handled like Ctrl-C, 128 + 15


class EdgetuneError(Exception):
    """Base class: a message (what was wrong, where) and a hint (how to fix it)."""

    exit_code: ExitCode = ExitCode.INTERNAL

    def __init__(self, message: str, *, hint: str | None = None, payload: dict | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.payload = payload  # the command's JSON result, still printed under --json on a gate failure

    def one_line(self) -> str:
        return f"{self.message} (hint: {self.hint})" if self.hint else self.message


class UsageError(EdgetuneError):
    exit_code = ExitCode.USAGE


class UnknownNameError(UsageError):
    """An unknown model/target/profile/task name."""


class DataError(EdgetuneError):
    exit_code = ExitCode.BAD_INPUT


class RunDirError(EdgetuneError):
    exit_code = ExitCode.BAD_INPUT


class ProfileError(EdgetuneError):
    exit_code = ExitCode.BAD_INPUT


class CardError(EdgetuneError):
    exit_code = ExitCode.BAD_INPUT


class AssetError(EdgetuneError):
    exit_code = ExitCode.MISSING_ASSET


class ExportValidationError(EdgetuneError):
    exit_code = ExitCode.EXPORT_VALIDATION


class UnsupportedOpError(ExportValidationError):
    """The model uses an operator the exporter or the target runtime cannot express."""


class UntrustedFileError(DataError):
    """A file that would run code when loaded (a pickle) and is not pinned by sha256."""


class CalibrationError(DataError):
    """Calibration data missing or unusable for int8."""


class OutputError(EdgetuneError):
    """An output cannot be written: permission, read-only file system, disk full."""

    exit_code = ExitCode.OUTPUT_ERROR


class AccuracyGateError(EdgetuneError):
    exit_code = ExitCode.ACCURACY_GATE


class BudgetGateError(EdgetuneError):
    exit_code = ExitCode.BUDGET_GATE


class RemoteError(EdgetuneError):
    """`bench --remote`: ssh could not reach the device, or edgetune there failed (its exit
    code is passed on, so a bad profile on the device is still a 3)."""

    exit_code = ExitCode.REMOTE

    def __init__(self, message: str, *, hint: str | None = None, exit_code: ExitCode | None = None) -> None:
        super().__init__(message, hint=hint)
        if exit_code is not None:
            self.exit_code = exit_code


class Terminated(KeyboardInterrupt):
    """Raised in the main thread on SIGTERM, so every `finally` (temp folders, atomic writes) runs
    and the trainer saves its epoch exactly as on Ctrl-C."""

    exit_code = ExitCode.TERMINATED


def interruption_code(exc: BaseException) -> ExitCode:
    return ExitCode.TERMINATED if isinstance(exc, Terminated) else ExitCode.INTERRUPTED
