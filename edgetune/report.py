"""Run summary: one table of every export and bench of a run, as text and report.md."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgetune.fsutil import write_text
from edgetune.run import RunDir


def collect(run_path: str | Path) -> dict[str, Any]:
    run = RunDir(Path(run_path))
    manifest = run.read_manifest()
    benches = {}
    for path in sorted((run.path / "bench").glob("*/*.json")):
        benches[(path.parent.name, path.stem)] = json.loads(path.read_text())
    rows = []
    for target, meta in run.exports().items():
        base = {"target": target, "metric": meta["metric"], "drop": meta["drop"], "size_mb": meta["size_mb"],
                "max_abs_diff": meta["max_abs_diff"], "export_pass": meta["pass"]}
        profiles = [(p, b) for (p, t), b in benches.items() if t == target] or [(None, None)]
        for profile, b in profiles:
            rows.append({**base, "profile": profile,
                         "p50_ms": b["latency_ms"]["p50"] if b else None,
                         "p99_ms": b["latency_ms"]["p99"] if b else None,
                         "peak_rss_mb": b["peak_rss_mb"] if b else None,
                         "bench_pass": b["pass"] if b else None,
                         "fa_per_hour": b["stream"]["at_threshold"]["fa_per_hour"]
                         if b and isinstance(b.get("stream"), dict) else None})
    return {"run": str(run.path), "model": manifest["model"], "task": manifest["task"],
            "metric_name": manifest["metric_name"], "best": manifest.get("best"), "rows": rows}


def _fmt(v: Any, spec: str) -> str:
    return "–" if v is None else format(v, spec)


def markdown(summary: dict[str, Any]) -> str:
    m = summary["metric_name"]
    lines = [f"# edgetune report: {summary['run']}", "",
             f"{summary['model']} ({summary['task']}); best val {m} "
             f"{_fmt((summary['best'] or {}).get(m), '.4f')}", "",
             f"| target | {m} | drop vs fp32 | size MB | profile | p50 ms | p99 ms | peak RSS MB | FA/h | pass |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in summary["rows"]:
        ok = r["export_pass"] and (r["bench_pass"] is not False)
        lines.append(f"| {r['target']} | {r['metric']:.4f} | {r['drop']:+.4f} | {r['size_mb']:.2f} | "
                     f"{r['profile'] or '–'} | {_fmt(r['p50_ms'], '.2f')} | {_fmt(r['p99_ms'], '.2f')} | "
                     f"{_fmt(r['peak_rss_mb'], '.0f')} | {_fmt(r['fa_per_hour'], '.1f')} | {'yes' if ok else 'NO'} |")
    return "\n".join(lines) + "\n"


def write_report(run_path: str | Path) -> tuple[dict[str, Any], Path]:
    summary = collect(run_path)
    out = Path(run_path) / "report.md"
    write_text(out, markdown(summary))
    return summary, out
