"""`edgetune bench RUN --fleet fleet.yaml` (or `--remote` given several times): the remote bench on
a shelf of boards at once.

Each device runs in its own thread (the work is ssh subprocesses), isolated: an unreachable or
failing device becomes one row with its error line and never hides the others' results. Every
device's result is kept under RUN/fleet/<host>/<profile>/<target>.json (two boards of one profile
must not overwrite each other, so not in RUN/bench/), the merged table in RUN/fleet/fleet.json,
and the exit code summarises: an error on any device → that error's code (9 when unreachable),
else a missed budget on any → 6, else 0.

fleet.yaml:

    targets: [cpu-int8]              # optional; `--target` replaces it
    devices:
      - host: pi@pi5-a               # anything ssh accepts
        profile: raspberry-pi-5
        edgetune: ~/edgetune/bin/edgetune   # optional (default: edgetune)
        ssh_options: [Port=2222]            # optional, as --ssh-option takes them
        data: /home/pi/val                  # optional val folder on the device
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgetune.errors import EdgetuneError, ExitCode, UsageError
from edgetune.fsutil import write_json
from edgetune.untrusted import inside
from edgetune.yamlio import FieldReader, load_yaml_mapping

MAX_PARALLEL = 16  # ssh sessions at once (each is a subprocess waiting on its board)


@dataclass(frozen=True)
class FleetDevice:
    host: str
    profile: str
    edgetune: str = "edgetune"
    ssh_options: tuple[str, ...] = ()
    data: str | None = None


@dataclass(frozen=True)
class Fleet:
    devices: tuple[FleetDevice, ...]
    targets: tuple[str, ...] = ()


def read_fleet(path: Path) -> Fleet:
    """fleet.yaml, typed; a wrong field is one line naming the file and the field (exit 3)."""
    from edgetune.errors import DataError

    r = FieldReader(load_yaml_mapping(path, DataError, "fleet file"), str(path), DataError)
    is_strs = lambda v: all(isinstance(x, str) for x in v)  # noqa: E731
    targets = r.get("targets", list, [], check=is_strs, expect="a list of target names")
    entries = r.get("devices", list, check=lambda v: len(v) > 0, expect="a non-empty list of devices")
    devices: list[FleetDevice] = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise DataError(f"{path}: field 'devices[{i}]' must be a mapping (host, profile, …)")
        d = FieldReader(entry, str(path), DataError, prefix=f"devices[{i}].")
        if any(dev.host == entry.get("host") for dev in devices):  # their results would share one folder
            raise DataError(f"{path}: field 'devices[{i}].host' lists {entry['host']} a second time",
                            hint="one entry per board; list several targets under 'targets'")
        devices.append(FleetDevice(d.get("host", str), d.get("profile", str), d.get("edgetune", str, "edgetune"),
                                   tuple(d.get("ssh_options", list, [], check=is_strs, expect="a list of KEY=VALUE")),
                                   d.get("data", str, None)))
    return Fleet(tuple(devices), tuple(targets))


def host_folder(host: str) -> str:
    """A host as one path component (user@10.0.0.5:22 → user_10.0.0.5_22)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", host).lstrip(".") or "_"


def bench_fleet(run_path: str | Path, fleet: Fleet, targets: list[str | None], *, runs: int = 200,
                quiet: bool = False) -> dict[str, Any]:
    """Bench every (device, target) pair in parallel; returns the merged rows and the summary
    exit code (the caller reports it after printing the table)."""
    from edgetune.artifact import open_export
    from edgetune.bench import check_runs
    from edgetune.profiles import get_profile
    from edgetune.remote import remote_result

    check_runs(runs)
    for dev in fleet.devices:  # a typo in a profile fails before any device is contacted
        get_profile(dev.profile)
    exports = [open_export(run_path, target) for target in targets]  # so does a target never exported
    home = exports[0].run.path if exports[0].run else exports[0].folder  # where fleet/ is kept

    def one(dev: FleetDevice, target: str | None) -> dict[str, Any]:
        row: dict[str, Any] = {"host": dev.host, "profile": dev.profile, "target": target}
        try:
            result, _ = remote_result(run_path, target, dev.profile, dev.host, edgetune=dev.edgetune,
                                      ssh_options=dev.ssh_options, runs=runs, data=dev.data, quiet=quiet)
        except EdgetuneError as exc:
            return row | {"status": "error", "error": exc.one_line(), "exit_code": int(exc.exit_code)}
        out = inside(home, "fleet", host_folder(dev.host), result["profile"], f"{result['target']}.json")
        write_json(out, result)
        return row | {"target": result["target"], "status": "pass" if result["pass"] else "fail",
                      "latency_p50_ms": result["latency_ms"]["p50"], "metric_name": result["metric_name"],
                      "metric": result["metric"], "violations": result["violations"],
                      "measured_on": result.get("measured_on"), "result": str(out)}

    jobs = [(dev, target) for dev in fleet.devices for target in targets]
    with ThreadPoolExecutor(max_workers=min(len(jobs), MAX_PARALLEL)) as pool:
        rows = list(pool.map(lambda job: one(*job), jobs))
    errors = [r["exit_code"] for r in rows if r["status"] == "error"]
    code = errors[0] if errors else ExitCode.BUDGET_GATE if any(r["status"] == "fail" for r in rows) else ExitCode.OK
    summary = {"rows": rows, "exit_code": int(code), "devices": len(fleet.devices),
               "errors": len(errors), "failed": sum(r["status"] == "fail" for r in rows)}
    write_json(inside(home, "fleet", "fleet.json"), summary)
    return summary


def fleet_from_options(fleet_file: Path | None, remotes: tuple[str, ...], profile: str | None,
                       edgetune: str, ssh_options: tuple[str, ...], data: str | None) -> Fleet:
    """The fleet a bench command names: a fleet file, or several --remote hosts sharing the
    command's --profile and options."""
    if fleet_file is not None and remotes:
        raise UsageError("--fleet and --remote both name devices", hint="list every device in the fleet file")
    if fleet_file is not None:
        return read_fleet(fleet_file)
    if not profile:
        raise UsageError("several --remote hosts need --profile (the same for each), or a fleet file with one "
                         "profile per device", hint="edgetune bench RUN --fleet fleet.yaml (docs/DEVICE.md)")
    return Fleet(tuple(FleetDevice(h, profile, edgetune, ssh_options, data) for h in remotes))
