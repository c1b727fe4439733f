"""`edgetune bench … --remote user@host`: the same bench, run on the device over SSH.

Why SSH and tar, not an agent: every board a field team flashes has sshd and tar, and the device
needs only the light install (docs/DEVICE.md). One `ssh` call streams the export folder and the
profile file as a tar into a fresh temp folder on the device, runs `edgetune bench --json`
there, and removes the folder whatever happens; the JSON comes back and is kept in the run like a
local bench, so `report` shows device numbers beside host numbers.
"""

from __future__ import annotations

import io
import json
import shlex
import subprocess
import tarfile
import threading
from pathlib import Path
from typing import Any

from edgetune.artifact import open_export
from edgetune.bench import check_runs, keep_result
from edgetune.errors import AssetError, ExitCode, RemoteError, RunDirError
from edgetune.profiles import get_profile
from edgetune.progress import log
from edgetune.run import check_bench_result
from edgetune.untrusted import shown
from edgetune.yamlio import FieldReader

# BatchMode: fail with a message instead of waiting for a password prompt in CI.
SSH = ("ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=15")
NOT_FOUND = 127  # the shell's "command not found"
SSH_FAILED = 255  # ssh's own failure (connection, authentication)
MAX_REPLY_BYTES = 16 << 20  # a bench JSON is a few KB (a 1000-class confusion matrix: ~6 MB)


def _bundle(export_dir: Path, profile_file: Path) -> bytes:
    """export/ (the folder as a device keeps it) and profile.yaml, as an in-memory tar. The
    profile always travels, so the device checks the very budgets the host would, whatever
    edgetune version it has installed."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for f in sorted(export_dir.iterdir()):
            if f.is_file():  # bench/ results from earlier runs stay behind
                tar.add(f, arcname=f"export/{f.name}")
        tar.add(profile_file, arcname="profile.yaml")
    return buf.getvalue()


def remote_script(edgetune: str, bench_args: list[str]) -> str:
    """POSIX sh run on the device: unpack into a temp folder, bench, remove the folder (on exit
    or hang-up). `edgetune` is inserted as written, so `~/venv/bin/edgetune` expands; the rest is
    quoted."""
    args = " ".join(shlex.quote(a) for a in bench_args)
    return ('d=$(mktemp -d "${TMPDIR:-/tmp}/edgetune-remote-XXXXXX") || exit 1; '
            'trap \'rm -rf "$d"\' EXIT; trap \'exit 129\' HUP INT TERM; '
            f'tar -xf - -C "$d" && {edgetune} bench "$d/export" --profile "$d/profile.yaml" {args}')


def bench_remote(run_path: str | Path, target: str | None, profile_name: str, host: str, *,
                 edgetune: str = "edgetune", ssh_options: tuple[str, ...] = (), runs: int = 200,
                 threads: int | None = None, data: str | None = None, metric_only: bool = False,
                 quiet: bool = False) -> dict[str, Any]:
    """Bench the export on `host` (anything `ssh` accepts: user@host, a Host alias) and keep the
    device's result locally. `data` is a val folder on the device. `metric_only`: the device's
    metric alone, returned and not kept (no latency to keep beside the host's benches)."""
    result, export = remote_result(run_path, target, profile_name, host, edgetune=edgetune, ssh_options=ssh_options,
                                   runs=runs, threads=threads, data=data, metric_only=metric_only, quiet=quiet)
    return result if metric_only else keep_result(result, export.run, export.folder)


def remote_result(run_path: str | Path, target: str | None, profile_name: str, host: str, *,
                  edgetune: str = "edgetune", ssh_options: tuple[str, ...] = (), runs: int = 200,
                  threads: int | None = None, data: str | None = None, metric_only: bool = False,
                  quiet: bool = False) -> tuple[dict[str, Any], Any]:
    """The device's checked bench JSON and the local export it measured (nothing written)."""
    check_runs(runs)  # bad arguments fail here, before any connection
    profile = get_profile(profile_name)
    export = open_export(run_path, target)
    args = ["--metric-only", "--json"] if metric_only else ["--runs", str(runs), "--no-estimate", "--json"]
    args += (["--threads", str(threads)] if threads and not metric_only else []) + (["--data", data] if data else [])
    script = remote_script(edgetune, args)
    cmd = [*SSH, *(a for o in ssh_options for a in ("-o", o)), host, "--", "sh -c " + shlex.quote(script)]
    log(f"bench {export.meta.target} on {host} over ssh (profile {profile.name}, "
        f"{'metric only' if metric_only else f'{runs} runs'})", quiet=quiet)
    rc, out, err = _run_bounded(cmd, _bundle(export.folder, Path(profile.source_file)), MAX_REPLY_BYTES, host)
    result = _parse(out.decode(errors="replace")) if rc in (ExitCode.OK, ExitCode.BUDGET_GATE) else None
    if result is None:
        raise _failure(rc, err.decode(errors="replace"), host, edgetune)
    _check_reply(result, host, profile.name, export.meta.target, metric_only=metric_only)
    result["remote"] = host
    return result, export


def _check_reply(result: dict[str, Any], host: str, profile: str, target: str, *, metric_only: bool) -> None:
    """The device's JSON names where its result is kept: it must be the bench asked for, with
    the fields a report reads (a device is not trusted to choose paths on the host)."""
    if result.get("profile") != profile or result.get("target") != target:
        raise RemoteError(f"{host} answered for profile {shown(result.get('profile'))}, target "
                          f"{shown(result.get('target'))}; asked for {profile}, {target}",
                          hint="check --remote-edgetune points at edgetune itself; nothing was written")
    try:
        if metric_only:
            FieldReader(result, f"{host}'s metric", RunDirError).get("metric", (int, float))
        else:
            check_bench_result(result, f"{host}'s bench result")
    except RunDirError as exc:
        raise RemoteError(exc.message, hint="install the same edgetune version on the device; nothing was written") from None


def _run_bounded(cmd: list[str], data: bytes, limit: int, host: str) -> tuple[int, bytes, bytes]:
    """subprocess.run(input=data, capture_output=True) that kills the command once stdout or
    stderr passes `limit` bytes: a device cannot make the host buffer gigabytes."""
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    outs: dict[str, bytearray] = {"out": bytearray(), "err": bytearray()}
    over: list[str] = []

    def drain(stream: Any, key: str) -> None:
        while chunk := stream.read(1 << 16):
            outs[key] += chunk
            if len(outs[key]) > limit:
                over.append(key)
                proc.kill()
                return

    readers = [threading.Thread(target=drain, args=(proc.stdout, "out"), daemon=True),
               threading.Thread(target=drain, args=(proc.stderr, "err"), daemon=True)]
    for t in readers:
        t.start()
    try:
        proc.stdin.write(data)
        proc.stdin.close()
    except BrokenPipeError:  # ssh gave up before reading everything: its stderr says why
        pass
    rc = proc.wait()
    for t in readers:
        t.join()
    if over:
        raise RemoteError(f"{host} sent more than {limit:,} bytes on std{over[0]}; stopped reading",
                          hint="check --remote-edgetune points at edgetune itself; nothing was written")
    return rc, bytes(outs["out"]), bytes(outs["err"])


def _parse(stdout: str) -> dict[str, Any] | None:
    for line in reversed(stdout.strip().splitlines()):
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                return None
    return None


def _failure(rc: int, stderr: str, host: str, edgetune: str) -> Exception:
    last = (stderr.strip().splitlines() or ["no output"])[-1].strip()
    if rc == SSH_FAILED:
        return RemoteError(f"ssh to {host} failed: {last}",
                           hint=f"check that `ssh {host} true` works without a password (a key or an agent); "
                                "pass ssh options with --ssh-option KEY=VALUE")
    if rc == NOT_FOUND:
        return AssetError(f"{edgetune} not found on {host}: {last}",
                          hint="install the light install there (docs/DEVICE.md) or pass --remote-edgetune "
                               "with its path, e.g. ~/edgetune/bin/edgetune")
    if rc in (ExitCode.OK, ExitCode.BUDGET_GATE):  # it ran, but printed no bench result
        return RemoteError(f"{edgetune} on {host} exited {rc} without a bench result: {last}",
                           hint="point --remote-edgetune at edgetune itself, the same version as here")
    message = last.removeprefix("edgetune: error: ")
    return RemoteError(f"on {host} (exit {rc}): {message}", exit_code=next((c for c in ExitCode if c == rc), None))
