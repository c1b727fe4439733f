"""Make ultralytics safe to run without a network, quiet on stdout and fast on a small CPU.

Every trap below was met on this project's machines (shared/ENVIRONMENT.md):
- `check_font("Arial.ttf")` contacts GitHub on every train/val and no flag stops it: a local TTF
  (matplotlib's DejaVuSans) is placed where ultralytics looks first, `$YOLO_CONFIG_DIR/Ultralytics/`;
- missing requirements are pip-installed at run time: `YOLO_AUTOINSTALL=0`, `YOLO_OFFLINE=1`
  (set by `edgetune._env` before anything imports ultralytics);
- the settings file, hub sync and `runs/` land in the user's home and cwd: the config dir lives in
  the edgetune cache, `sync=False`, and every train passes `project=` (the run directory);
- training uses `cpu_count - 1` threads (1 of 2 cores here): the module constant is raised;
- the logger writes to stdout, which must carry only `--json`: its handlers go to stderr;
- it prints its full argument line, the model table and every data-scan note into each run's
  terminal: `captured` keeps all of it in RUN/ultralytics/train.log and shows the training
  progress and val tables only (everything with `finetune --verbose`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

from edgetune.cpu import usable_cores
from edgetune.paths import cache_dir


def config_dir() -> Path:
    return Path(os.environ.get("YOLO_CONFIG_DIR") or cache_dir() / "ultralytics")


def _place_font(folder: Path) -> None:
    target = folder / "Arial.ttf"
    if target.is_file():
        return
    import matplotlib

    source = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    folder.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    shutil.copyfile(source, tmp)
    tmp.replace(target)
    # Arial.Unicode.ttf is asked for when class names are not ASCII.
    if not (folder / "Arial.Unicode.ttf").exists():
        shutil.copyfile(target, folder / "Arial.Unicode.ttf")


class _DropRamCacheWarning(logging.Filter):
    """ultralytics warns that cache='ram' "may produce non-deterministic training results"; with
    edgetune's single dataloader worker two runs give identical weights (a test proves it), so
    the warning would only send users chasing a problem they do not have."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "cache='ram' may produce non-deterministic" not in record.getMessage()


class _ProgressOnly(logging.Filter):
    """The terminal's share of ultralytics' log: the epoch lines and val tables (and warnings)."""

    SHOWN = ("_do_train", "print_results", "final_eval")  # trainer epoch loop, validator results

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or record.funcName in self.SHOWN


class _WarningsOnly(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING


class _PlainFormatter(logging.Formatter):
    """The log file without the terminal colour codes."""

    def format(self, record: logging.LogRecord) -> str:
        return re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", super().format(record))


@contextlib.contextmanager
def captured(log_file: Path, *, verbose: bool = False, quiet: bool = False) -> Iterator[None]:
    """All of ultralytics' log lines into `log_file`; on the terminal only what `verbose`/`quiet` ask."""
    from ultralytics.utils import LOGGER

    log_file.parent.mkdir(parents=True, exist_ok=True)
    file_handler = logging.FileHandler(log_file, encoding="utf-8")
    file_handler.setFormatter(_PlainFormatter("%(message)s"))
    terminal = None if verbose and not quiet else (_WarningsOnly() if quiet else _ProgressOnly())
    streams = [h for h in LOGGER.handlers if type(h) is logging.StreamHandler]
    level = LOGGER.level
    LOGGER.setLevel(logging.INFO)  # the file gets everything, whatever the terminal shows
    LOGGER.addHandler(file_handler)
    for h in streams:
        if terminal is not None:
            h.addFilter(terminal)
    try:
        yield
    finally:
        LOGGER.removeHandler(file_handler)
        file_handler.close()
        for h in streams:
            if terminal is not None:
                h.removeFilter(terminal)
        LOGGER.setLevel(level)


def prepare(*, threads: int | None = None, quiet: bool = False) -> None:
    """Call before the first `import ultralytics` in a process (later calls are cheap no-ops)."""
    os.environ.setdefault("YOLO_CONFIG_DIR", str(config_dir()))
    _place_font(Path(os.environ["YOLO_CONFIG_DIR"]) / "Ultralytics")
    import contextlib

    # The first import creates the settings file and announces it; its logger binds sys.stdout
    # when created. Under redirection both go to stderr, and stdout stays pure --json.
    with contextlib.redirect_stdout(sys.stderr):
        from ultralytics.utils import LOGGER, SETTINGS, torch_utils

    wanted = {"sync": False, "clearml": False, "comet": False, "mlflow": False, "wandb": False, "runs_dir": str(config_dir() / "runs"),
              "datasets_dir": str(config_dir() / "datasets"), "weights_dir": str(config_dir() / "weights")}
    if any(SETTINGS.get(k) != v for k, v in wanted.items()):
        SETTINGS.update(wanted)
    for handler in LOGGER.handlers:
        if type(handler) is logging.StreamHandler and handler.stream is not sys.stderr:  # not pytest's
            handler.setStream(sys.stderr)
    LOGGER.setLevel(logging.WARNING if quiet else logging.INFO)
    if not any(isinstance(f, _DropRamCacheWarning) for f in LOGGER.filters):
        LOGGER.addFilter(_DropRamCacheWarning())
    n = threads or usable_cores()
    torch_utils.NUM_THREADS = n  # select_device() resets torch threads to this on CPU
