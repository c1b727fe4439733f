"""`edgetune export`."""

from __future__ import annotations

from pathlib import Path

import click

from edgetune.cli.common import emit, handle_errors, json_option


@click.command()
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--target", required=True, help="Target id (`edgetune targets`): cpu-fp32, cpu-int8.")
@click.option("--max-drop", type=float, default=None,
              help="Fail (exit 5) when the metric drops more than this vs fp32 (absolute, e.g. 0.01).")
@click.option("--calib-size", type=int, default=None,
              help="Calibration images for int8 [default: 200, or the whole training split if smaller].")
@click.option("--calib-method", type=click.Choice(["minmax", "percentile", "entropy"]), default="minmax",
              show_default=True, help="ONNX Runtime calibration method (int8).")
@click.option("--per-tensor", is_flag=True, help="Per-tensor int8 weights (default per-channel, which holds accuracy).")
@click.option("--quiet", is_flag=True)
@json_option
@handle_errors()
def export(run: Path, target: str, max_drop: float | None, calib_size: int | None, calib_method: str, per_tensor: bool,
           quiet: bool, as_json: bool) -> None:
    """Export RUN to a target artefact, validated against PyTorch and measured on the val split."""
    from edgetune.export.pipeline import export_run

    result = export_run(run, target, max_drop=max_drop, calib_size=calib_size, calib_method=calib_method,
                        per_channel=not per_tensor, quiet=quiet or as_json)
    emit(result, as_json, _human)


def _human(r: dict) -> None:
    others = [k for k in r["metrics"] if k not in (r["metric_name"], "n", "labels")]
    extra = "".join(f", {k} {r['metrics'][k]:.4f} (fp32 {r['metrics_fp32'][k]:.4f})" for k in others)
    click.echo(f"{r['target']}: {r['artifact']}\n  {r['metric_name']} {r['metric']:.4f} (fp32 {r['metric_fp32']:.4f}, "
               f"drop {r['drop']:+.4f}){extra}; max |Δ| vs PyTorch {r['max_abs_diff']:.2g}; {r['size_mb']:.2f} MB")
