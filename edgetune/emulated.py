"""`edgetune bench … --emulate`: the metric an aarch64 board computes, from an emulated one.

ONNX Runtime's and OpenVINO's aarch64 int8 kernels are not this host's (x86 without VNNI
saturates in U8S8, ARM's dot-product kernels do not), so an int8 drop measured here may differ
on the board. `tools/emulated_device.py` builds a Debian arm64 userland run by qemu-user with the
light install and an sshd on loopback; this module finds it and runs the real remote bench there
on the same val data (host folders are shared read-only at the same paths inside). Latency under
emulation is meaningless, so the device runs `bench --metric-only` (no timed runs: they would only
cost minutes), and the result is kept apart from real benches (RUN/emulated/<profile>/<target>.json)
and labelled as what it is. `export --emulate` judges int8 candidates here too (device_metric).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgetune.contract import DataRef
from edgetune.errors import AssetError, UsageError
from edgetune.fsutil import write_json
from edgetune.untrusted import MAX_JSON_BYTES, inside, parse_json, read_text, safe_name

LABEL = "emulated aarch64 (qemu): metric only, no latency"
SETUP = "sudo python tools/emulated_device.py setup && sudo python tools/emulated_device.py start"
PROFILE = "raspberry-pi-5"  # the board the device imitates (its /proc/cpuinfo): export --emulate's profile


@dataclass(frozen=True)
class EmulatedDevice:
    host: str
    port: int
    ssh_options: tuple[str, ...]  # as `--ssh-option` takes them: KEY=VALUE
    edgetune: str
    shared: tuple[str, ...]  # host folders visible at the same path inside


def device_dir() -> Path:
    return Path(os.environ.get("EDGETUNE_EMU_DIR", Path.home() / ".cache" / "edgetune" / "emulated-aarch64"))


def find_device() -> EmulatedDevice:
    """The running emulated device, or one line (exit 7) naming the command that makes it."""
    info_file = device_dir() / "device.json"
    if not info_file.is_file():
        raise AssetError(f"no emulated aarch64 device in {device_dir()}", hint=f"create and start it: {SETUP}")
    info = parse_json(read_text(info_file, limit=MAX_JSON_BYTES, what="device file", error=AssetError),
                      what=str(info_file), error=AssetError)
    try:
        opts = info["ssh_options"]
        if not isinstance(opts, list) or not all(isinstance(o, str) for o in opts):
            raise TypeError
        dev = EmulatedDevice(str(info["host"]), int(info["port"]), tuple(o for o in opts[1::2]), str(info["edgetune"]),
                             tuple(str(p) for p in info.get("shared", [])))
    except (KeyError, TypeError, ValueError, AttributeError):
        raise AssetError(f"{info_file} is not a device file written by tools/emulated_device.py",
                         hint=f"recreate it: {SETUP}") from None
    if not _sshd_alive(info.get("pid_file")):  # a pid check, not a probe connection: no socket is opened
        raise AssetError(f"the emulated aarch64 device is not running (its sshd for port {dev.port} is gone)",
                         hint="start it: sudo python tools/emulated_device.py start")
    return dev


def _sshd_alive(pid_file: object) -> bool:
    try:
        pid = int(Path(str(pid_file)).read_text().strip())
    except (OSError, ValueError):
        return False
    return Path(f"/proc/{pid}").exists()


def device_data(dev: EmulatedDevice, ref: DataRef | None) -> str | None:
    """The val data as the device names it (the host path: shared folders keep their paths), or
    one line when the device cannot see it or could not re-make the split."""
    if ref is None:
        return None
    if ref.val_split is not None:
        raise UsageError(f"the emulated device measures on a val folder, and this run split its val "
                         f"{ref.val_split:g} of {ref.root} itself (layout {ref.layout})",
                         hint="write train/ and val/ folders with `edgetune data split`, fine-tune on them, "
                              "and export again")
    local = Path(ref.yaml or ref.root).resolve()
    if not any(local.is_relative_to(p) for p in dev.shared):
        raise AssetError(f"the val data {local} is not visible inside the emulated device (it shares "
                         f"{', '.join(dev.shared) or 'nothing'})",
                         hint=f"restart it sharing the folder: sudo python tools/emulated_device.py start --share {local.parent}")
    return str(local)


def device_metric(folder: Path, data: DataRef, *, quiet: bool = False) -> dict[str, Any]:
    """The metric of the export folder `folder` (export.json and its files) on `data`, computed
    inside the emulated device: its result JSON (metric only)."""
    from edgetune.remote import remote_result

    dev = find_device()
    result, _ = remote_result(folder, None, PROFILE, dev.host, edgetune=dev.edgetune, ssh_options=dev.ssh_options,
                              data=device_data(dev, data), metric_only=True, quiet=quiet)
    return result | {"measured_on": LABEL, "emulated": True}


def bench_emulated(run_path: str | Path, target: str | None, profile: str, *, data: str | None = None,
                   quiet: bool = False) -> dict[str, Any]:
    """The remote bench on the emulated device, metric only; kept in RUN/emulated/ (or the export
    folder's emulated/), never where real latency results live."""
    from edgetune.artifact import open_export
    from edgetune.remote import remote_result

    dev = find_device()
    export = open_export(run_path, target)
    local = device_data(dev, export.data(data))
    result, export = remote_result(run_path, target, profile, dev.host, edgetune=dev.edgetune,
                                   ssh_options=dev.ssh_options, data=local, metric_only=True, quiet=quiet)
    kept = result | {"measured_on": LABEL, "emulated": True, "data": local}
    base = export.run.path / "emulated" if export.run else export.folder / "emulated"
    out = inside(base.parent, base.name, safe_name(kept["profile"], "profile"), f"{safe_name(kept['target'], 'target')}.json")
    write_json(out, kept)
    return kept
