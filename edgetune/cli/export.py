"""`edgetune export`."""

from __future__ import annotations

from pathlib import Path

import click

from edgetune.cli.common import MAX_DROP, emit, handle_errors, json_option
from edgetune.export.backends import calib_methods


@click.command()
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--target", required=True,
              help="Target id (`edgetune targets` lists them, e.g. cpu-int8), or auto (with --profile): the fastest "
                   "of the profile's targets within --max-drop.")
@click.option("--profile", default=None,
              help="Device profile for --target auto (its threads and targets), or the chip an NPU target is "
                   "compiled for (rknn-*: the profile's `npu`; default rk3588).")
@click.option("--max-drop", type=MAX_DROP, default=None,
              help="Largest allowed drop of the task metric vs fp32 (absolute, e.g. 0.02), or 'none' to record "
                   "the drop without a budget. int8 targets that miss it return their most sensitive layers to "
                   "float until they meet it; otherwise exit 5. [default for int8 targets and auto: 0.01]")
@click.option("--calib-size", type=int, default=None,
              help="Calibration samples for int8 [default: 200, or the whole training split if smaller].")
@click.option("--calib-method", type=click.Choice(calib_methods()), default=None,
              help="Activation range estimator; each target's backend lists those it honours (`edgetune targets`) "
                   "[default: the backend's measured one].")
@click.option("--per-tensor", is_flag=True, help="Per-tensor int8 weights for ORT and LiteRT (default per-channel, which holds accuracy).")
@click.option("--preset", type=click.Choice(["performance", "mixed"]), default="mixed", show_default=True,
              help="NNCF preset: asymmetric (mixed) or symmetric (performance) activations.")
@click.option("--model-type", type=click.Choice(["cnn", "transformer"]), default="cnn", show_default=True,
              help="NNCF model type (transformer keeps attention-sensitive ops float).")
@click.option("--int8-io", is_flag=True,
              help="litert-int8: int8 input and output tensors (NPU delegates, MCUs) instead of float ones.")
@click.option("--slim", is_flag=True, help="Simplify the ONNX graph with onnxslim before every target.")
@click.option("--dynamic-batch", is_flag=True, help="Dynamic batch dimension (default: static batch 1).")
@click.option("--no-search", is_flag=True, help="With --max-drop: only gate, never return layers to float.")
@click.option("--emulate", is_flag=True,
              help="int8: judge by the metric an aarch64 board computes, from the emulated device of "
                   "tools/emulated_device.py — the gate, the accuracy-aware search and export.json's metric and "
                   "drop. Each evaluation there takes minutes.")
@click.option("--quiet", is_flag=True)
@json_option
@handle_errors()
def export(run: Path, target: str, profile: str | None, max_drop: float | str | None, calib_size: int | None,
           calib_method: str | None, per_tensor: bool, preset: str, model_type: str, int8_io: bool, slim: bool, dynamic_batch: bool,
           no_search: bool, emulate: bool, quiet: bool, as_json: bool) -> None:
    """Export RUN to a target artefact, validated against PyTorch and measured on the val split."""
    from edgetune.export.context import Options
    from edgetune.export.pipeline import export_run

    options = Options(max_drop=max_drop, calib_size=calib_size, calib_method=calib_method, per_channel=not per_tensor,
                      preset=preset, model_type=None if model_type == "cnn" else model_type, slim=slim,
                      dynamic_batch=dynamic_batch, search=not no_search, int8_io=int8_io, emulate=emulate)
    result = export_run(run, target, options=options, profile=profile, quiet=quiet or as_json)
    emit(result, as_json, _human)


def _human(r: dict) -> None:
    others = [k for k in r["metrics"] if k not in (r["metric_name"], "n", "labels")]
    extra = "".join(f", {k} {r['metrics'][k]:.4f} (fp32 {r['metrics_fp32'][k]:.4f})" for k in others)
    if "auto" in r:
        click.echo(f"auto on {r['auto']['profile']} ({r['auto']['threads']} thread(s)): chose {r['target']}")
    click.echo(f"{r['target']}: {r['artifact']}\n  {r['metric_name']} {r['metric']:.4f} (fp32 {r['metric_fp32']:.4f}, "
               f"drop {r['drop']:+.4f}){extra}; max |Δ| vs PyTorch {r['max_abs_diff']:.2g}; {r['size_mb']:.2f} MB"
               + (f"\n  measured on the {r['measured_on']}" if "measured_on" in r else ""))
    if "emulated_aarch64" in r:
        e = r["emulated_aarch64"]
        click.echo(f"  judged on the {e['measured_on']}: {r['metric_name']} {e['metric']:.4f} (fp32 there "
                   f"{e['metric_fp32']:.4f}); this host: {e['host_metric']:.4f} (fp32 {e['host_metric_fp32']:.4f})")
    if "accuracy_aware" in r:
        aa = r["accuracy_aware"]
        lat = aa["latency_p50_ms_1thread"]  # empty for an artefact that runs on its accelerator only (rknn)
        click.echo(f"  accuracy-aware: {len(aa['float_layers'])} layer(s) back in float, drop {aa['drop']:+.4f}"
                   + (f"; p50 {lat['plain']:.2f} → {lat['restored']:.2f} ms (1 thread)" if lat else ""))
    if "postprocess_tuned" in r:
        _stream_thresholds(r["postprocess_tuned"])


def _stream_thresholds(t: dict) -> None:
    """kws: the per-keyword thresholds export calibrated, and the keywords that stay over budget."""
    pairs = ", ".join(f"{k} {v:.2f}" for k, v in t["thresholds"].items())
    click.echo(f"  stream thresholds (≤ {t['fa_budget_per_hour']:g} false accepts/hour on {t['negative_s']:.0f} s of "
               f"{', '.join(t['recordings'])}): {pairs}")
    if t["over_budget"]:
        # no advice beyond the fact: more `_unknown_` speech, real words included, was measured not to
        # help (benchmarks/RESULTS.md "kws-phrases", "kws-realunknown")
        fired = ", ".join(f"{k} ({t['false_accepts'][k]} at {t['thresholds'][k]:.2f})" for k in t["over_budget"])
        click.echo(f"  warning: {fired} still fire(s) on the negatives at the highest threshold allowed: expect false "
                   "accepts from them")
