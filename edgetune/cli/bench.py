"""`edgetune bench`."""

from __future__ import annotations

from pathlib import Path

import click

from edgetune.cli.common import emit, handle_errors, json_option


@click.command()
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--target", default=None, help="An exported target of RUN (not needed when RUN is an export folder).")
@click.option("--profile", "profile", default=None,
              help="Device profile name (`edgetune profiles`) or YAML path (with --fleet: each device's own).")
@click.option("--runs", default=200, show_default=True, type=int, help="Timed runs after warm-up (≥100).")
@click.option("--threads", type=int, default=None, help="Override the profile's thread count.")
@click.option("--data", type=str, default=None, help="Val data folder, when not at the run's recorded path.")
@click.option("--estimate/--no-estimate", default=True, show_default=True,
              help="Also estimate the profile's device latency from its published reference latencies.")
@click.option("--remote", metavar="USER@HOST", multiple=True,
              help="Bench on the device over ssh (key or agent login; the light install there) and keep its "
                   "result here. --data is then a folder on the device. Repeat it for several devices at once "
                   "(a fleet, as with --fleet).")
@click.option("--fleet", "fleet_file", type=click.Path(path_type=Path), default=None,
              help="A fleet file (hosts, each with its profile; docs/DEVICE.md): bench every device in parallel, "
                   "one table, one exit code.")
@click.option("--remote-edgetune", default="edgetune", show_default=True, metavar="CMD",
              help="The edgetune command on the device, e.g. ~/edgetune/bin/edgetune.")
@click.option("--ssh-option", "ssh_options", multiple=True, metavar="KEY=VALUE",
              help="Passed to ssh as -o KEY=VALUE (Port=2222, IdentityFile=…); repeatable.")
@click.option("--emulate", is_flag=True,
              help="The metric as an aarch64 board computes it, from the emulated device of "
                   "tools/emulated_device.py (qemu): metric only, no latency.")
@click.option("--metric-only", is_flag=True,
              help="Only the metric on the val data (no latency runs, nothing written): for a device too slow "
                   "to time, such as the emulated one.")
@click.option("--quiet", is_flag=True)
@json_option
@handle_errors()
def bench(run: Path, target: str | None, profile: str, runs: int, threads: int | None, data: str | None,
          estimate: bool, remote: tuple[str, ...], fleet_file: Path | None, remote_edgetune: str,
          ssh_options: tuple[str, ...], emulate: bool, metric_only: bool, quiet: bool, as_json: bool) -> None:
    """Latency p50/p90/p99, peak RSS, size and metric of an artefact here; pass/fail vs the profile.

    RUN is a run directory (with --target) or an export folder (RUN/export/T, or a copy of it on
    the device: only the light install is needed there). With --remote the same bench runs on
    the device over ssh (no estimate: it is measured there)."""
    from edgetune.errors import UsageError

    if fleet_file is not None or len(remote) > 1:
        return _fleet(run, target, profile, runs, data, remote, fleet_file, remote_edgetune, ssh_options,
                      emulate or metric_only, quiet, as_json)
    if not profile:
        raise UsageError("--profile is needed: the device whose budgets and threads to bench against",
                         hint="`edgetune profiles` lists them, e.g. --profile raspberry-pi-5")
    host = remote[0] if remote else None
    show_metric = lambda r: click.echo(  # noqa: E731
        f"{r['target']} on {r['profile']}, {r['measured_on']}: {r['metric_name']} {r['metric']:.4f} "
        f"({r['metric_source']}" + (f"; {r['gap_to_export']:+.4f} vs export's {r['metric_at_export']:.4f}"
                                    if "gap_to_export" in r else "") + f"); {r['size_mb']:.2f} MB")
    if emulate:
        from edgetune.emulated import bench_emulated

        if host:
            raise UsageError("--emulate and --remote are two different devices", hint="choose one")
        return emit(bench_emulated(run, target, profile, data=data, quiet=quiet or as_json), as_json, show_metric)
    if metric_only and not host:
        from edgetune.bench import measure_metric

        return emit(measure_metric(run, target, profile, data=data), as_json, show_metric)
    if host:
        from edgetune.remote import bench_remote

        result = bench_remote(run, target, profile, host, edgetune=remote_edgetune, ssh_options=ssh_options,
                              runs=runs, threads=threads, data=data, metric_only=metric_only, quiet=quiet or as_json)
        if metric_only:
            return emit(result, as_json, show_metric)
    else:
        from edgetune.bench import bench_run

        result = bench_run(run, target, profile, runs=runs, threads=threads, data=data, estimate=estimate,
                           quiet=quiet or as_json)
    emit(result, as_json, _human)


def _fleet(run: Path, target: str | None, profile: str | None, runs: int, data: str | None, remote: tuple[str, ...],
           fleet_file: Path | None, remote_edgetune: str, ssh_options: tuple[str, ...], metric_mode: bool, quiet: bool,
           as_json: bool) -> None:
    from edgetune.errors import ExitCode, RemoteError, UsageError
    from edgetune.fleet import bench_fleet, fleet_from_options

    if metric_mode:
        raise UsageError("--emulate and --metric-only bench one device, not a fleet", hint="drop --fleet/--remote")
    fleet = fleet_from_options(fleet_file, remote, profile, remote_edgetune, ssh_options, data)
    targets = [target] if target else list(fleet.targets) or [None]
    summary = bench_fleet(run, fleet, targets, runs=runs, quiet=quiet or as_json)
    emit(summary, as_json, _fleet_table)
    if summary["exit_code"]:  # after the table: every device's row is printed whatever failed
        raise RemoteError(f"{summary['errors']} of {len(summary['rows'])} device bench(es) failed and "
                          f"{summary['failed']} missed budgets",
                          hint="each row says which and why; the others' results are kept in RUN/fleet/",
                          exit_code=ExitCode(summary["exit_code"]))


def _fleet_table(s: dict) -> None:
    from edgetune.cli.common import table

    rows = [[r["host"], r["profile"], r["target"] or "", r["status"].upper(),
             f"{r['latency_p50_ms']:.2f}" if "latency_p50_ms" in r else "",
             f"{r['metric_name']} {r['metric']:.4f}" if "metric" in r else "",
             r.get("error") or "; ".join(r.get("violations", []))] for r in s["rows"]]
    click.echo(table(rows, ["host", "profile", "target", "status", "p50 ms", "metric", "why"]))


def _human(r: dict) -> None:
    lat = r["latency_ms"]
    click.echo(f"{r['target']} on {r['profile']} ({r['threads']} thread(s)): p50 {lat['p50']:.2f} ms, "
               f"p90 {lat['p90']:.2f}, p99 {lat['p99']:.2f}; {r['metric_name']} {r['metric']:.4f}; "
               f"{r['size_mb']:.2f} MB; peak RSS {r['peak_rss_mb']:.0f} MB  → {'PASS' if r['pass'] else 'FAIL'}")
    if r.get("gap_to_export"):  # measured here, and not what export measured (another runtime build, a board)
        click.echo(f"  {r['metric_name']} {r['gap_to_export']:+.4f} vs export's {r['metric_at_export']:.4f}")
    if r.get("latency_e2e_ms"):
        e2e = r["latency_e2e_ms"]
        click.echo(f"  end to end (decode + preprocess + inference + post-processing): p50 {e2e['p50']:.2f} ms, "
                   f"p90 {e2e['p90']:.2f}, p99 {e2e['p99']:.2f}")
    stream = r.get("stream")
    if isinstance(stream, dict):
        at, cfg = stream["at_threshold"], stream["config"]
        which = ("per-keyword thresholds (export's)" if cfg.get("thresholds")
                 else f"threshold {cfg['threshold']:.2f}")
        click.echo(f"  stream ({stream['audio_s'] / 60:.1f} min, {stream['events']} keywords): {which} "
                   f"→ {at['fa_per_hour']:.1f} false accepts/hour, miss rate "
                   f"{at['miss_rate']:.1%}; real-time factor {stream['real_time_factor']:.4f}")
        r90 = stream.get("at_recall_0.9")
        click.echo("  at 90% keyword recall: " + (f"one threshold {r90['threshold']:.3f} → {r90['fa_per_hour']:.1f} "
                                                 f"false accepts/hour" if r90 else "not reached at any threshold"))
    elif stream:
        click.echo(f"  {stream}")
    est = r.get("estimate")
    if est and est["available"]:
        ref = est["reference"]
        click.echo(f"  {r['profile']} ESTIMATE (not measured there): p50 ≈ {est['latency_p50_ms']:.1f} ms — the "
                   f"published {ref['model']}@{ref['imgsz']} {ref['runtime']} latency there ({ref['latency_ms']:g} ms) × "
                   f"{est['ratio_to_reference']:.3f}, this artefact's p50 over that model's, measured side by side "
                   f"here ({est['host_artifact_p50_ms']:.2f} / {est['host_reference_p50_ms']:.1f} ms)"
                   + (f"; would miss {', '.join(est['violations'])}" if est["violations"] else ""))
        for c in est["caveats"]:
            click.echo(f"    caveat: {c}")
    elif est:
        click.echo(f"  no device estimate: {est['reason']}")
    click.echo(f"  {r['note']}" + (f" (measured on {r['remote']} over ssh: {r['measured_on']})" if r.get("remote") else ""))
