"""Run report: every export × bench of a run as `report.md` and a self-contained `report.html`.

The HTML carries its figures inline (base64 PNG) and no script, so it can be mailed or attached
to a CI job and opened anywhere. Figures: latency vs accuracy with the Pareto front (and the
device estimates), size and memory, the confusion matrix (classify, kws) or the PR curves
(detect). Provenance closes both: weights sha256, data hash, calibration hashes, seed, versions.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

from edgetune import plots
from edgetune.contract import ExportMeta, Manifest
from edgetune.fsutil import write_bytes, write_text
from edgetune.run import RunDir, read_bench_result

ESTIMATE_NOTE = ("Latency is measured on this host with each profile's threads; the ESTIMATE column is the device's "
                 "published latency of a reference model × this artefact's p50 over that model's, measured side by "
                 "side here")


def collect(run_path: str | Path) -> dict[str, Any]:
    """Everything the report shows, from the run's manifest, export.json files and bench JSON."""
    run = RunDir(Path(run_path))
    manifest = run.read_manifest()
    benches: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted((run.path / "bench").glob("*/*.json")):
        benches[(path.parent.name, path.stem)] = read_bench_result(path)
    exports = run.exports()
    rows = []
    for target, meta in exports.items():
        base = {"target": target, "drop": meta.drop, "size_mb": meta.size_mb,
                "max_abs_diff": meta.max_abs_diff, "export_pass": meta.passed}
        profiles = [(p, b) for (p, t), b in benches.items() if t == target] or [(None, None)]
        for profile, b in profiles:
            est = (b or {}).get("estimate") or {}
            rows.append({**base, "profile": profile,
                         "metric": b["metric"] if b else meta.metric,
                         "p50_ms": b["latency_ms"]["p50"] if b else None,
                         "p99_ms": b["latency_ms"]["p99"] if b else None,
                         "throughput_per_s": b["throughput_per_s"] if b else None,
                         "peak_rss_mb": b["peak_rss_mb"] if b else None,
                         "bench_pass": b["pass"] if b else None,
                         "violations": b["violations"] if b else [],
                         "estimate_ms": est.get("latency_p50_ms") if est.get("available") else None,
                         "fa_per_hour": b["stream"]["at_threshold"]["fa_per_hour"]
                         if b and isinstance(b.get("stream"), dict) else None,
                         "curves": (b or {}).get("curves") or meta.curves})
    return {"run": str(run.path), "model": manifest.model, "task": manifest.task,
            "metric_name": manifest.spec.metric_name, "best": manifest.best,
            "labels": list(manifest.labels), "rows": rows,
            "provenance": _provenance(manifest, exports)}


def _dig(d: Any, *keys: str) -> Any:
    """d[k1][k2]… or None where a level is missing or not a mapping (provenance is best effort:
    an old or hand-edited export.json must not stop the report)."""
    for k in keys:
        d = d.get(k) if isinstance(d, dict) else None
    return d


def _provenance(manifest: Manifest, exports: dict[str, ExportMeta]) -> dict[str, Any]:
    weights = manifest.weights
    return {
        "weights": {"sha256": weights and weights.sha256, "source": weights and weights.source,
                    "online": _dig(manifest.card, "weights", "online_ref")},
        "data": {"root": manifest.data.root, "hash": manifest.data.hash},
        "seed": manifest.seed, "versions": manifest.versions,
        "exports": {t: {"sha256": m.sha256, "calibration_hash": _dig(m.extra, "calibration", "hash"),
                        "calibration_size": _dig(m.extra, "calibration", "size"),
                        "float_layers": len(_dig(m.extra, "accuracy_aware", "float_layers") or []),
                        "stream_thresholds": _dig(m.spec.postprocess, "thresholds") or {},
                        "stream_over_budget": _dig(m.extra, "postprocess_tuned", "over_budget") or [],
                        "versions": {k: v for k, v in (_dig(m.extra, "versions") or {}).items()
                                     if k in ("onnxruntime", "openvino", "nncf", "onnx")}}
                    for t, m in exports.items()},
    }


def recommended(summary: dict[str, Any]) -> dict[str, Any] | None:
    """The fastest benched row that passes its export gate and every budget; else None."""
    ok = [r for r in summary["rows"] if r["p50_ms"] is not None and r["export_pass"] and r["bench_pass"]]
    return min(ok, key=lambda r: r["p50_ms"]) if ok else None


def figures(summary: dict[str, Any]) -> dict[str, bytes]:
    """The report's PNGs by name (empty without matplotlib: the light install)."""
    if not plots.available():
        return {}
    rows, m = summary["rows"], summary["metric_name"]
    out: dict[str, bytes] = {}
    benched = [r for r in rows if r["p50_ms"] is not None]
    if benched:
        out["pareto"] = plots.pareto(benched, m)
    per_target: dict[str, dict[str, Any]] = {}
    for r in rows:
        cur = per_target.setdefault(r["target"], dict(r))
        if (r["peak_rss_mb"] or 0) > (cur["peak_rss_mb"] or 0):
            cur["peak_rss_mb"] = r["peak_rss_mb"]
    if per_target:
        out["size_memory"] = plots.size_memory(list(per_target.values()))
    pick = recommended(summary) or max(rows, key=lambda r: r["metric"], default=None)
    if pick and "confusion" in pick["curves"]:
        out["confusion"] = plots.confusion(pick["curves"]["confusion"], summary["labels"],
                                           f"{pick['target']}: confusion on the val split (rows sum to 1)")
    prs = {t: r["curves"]["pr_curve"] for t, r in per_target.items() if "pr_curve" in r["curves"]}
    if prs:
        out["pr_curves"] = plots.pr_curves(prs)
    return out


def _fmt(v: Any, spec: str) -> str:
    return "–" if v is None else format(v, spec)


def _table(summary: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    m = summary["metric_name"]
    head = ["target", m, "drop vs fp32", "size MB", "profile", "p50 ms (here)", "p99 ms", "device p50 ESTIMATE ms",
            "peak RSS MB", "FA/h", "pass"]
    body = []
    for r in summary["rows"]:
        ok = r["export_pass"] and (r["bench_pass"] is not False)
        verdict = "yes" if ok else "NO" + (f" ({'; '.join(r['violations'])})" if r["violations"] else "")
        body.append([r["target"], f"{r['metric']:.4f}", f"{r['drop']:+.4f}", f"{r['size_mb']:.2f}", r["profile"] or "–",
                     _fmt(r["p50_ms"], ".2f"), _fmt(r["p99_ms"], ".2f"), _fmt(r["estimate_ms"], ".1f"),
                     _fmt(r["peak_rss_mb"], ".0f"), _fmt(r["fa_per_hour"], ".1f"), verdict])
    return head, body


def _headline(summary: dict[str, Any]) -> str:
    m = summary["metric_name"]
    best = _fmt((summary["best"] or {}).get(m), ".4f")
    rec = recommended(summary)
    pick = (f"fastest artefact within every gate: **{rec['target']}** on {rec['profile']} "
            f"({rec['p50_ms']:.2f} ms p50 here, {m} {rec['metric']:.4f})" if rec else
            "no benched artefact passes every gate yet")
    return f"{summary['model']} ({summary['task']}); best val {m} {best}. {pick}."


def _provenance_lines(p: dict[str, Any]) -> list[str]:
    lines = [f"weights sha256 {p['weights']['sha256']} (source: {p['weights']['source']}, "
             f"online: {p['weights']['online']})",
             f"data {p['data']['root']} hash {p['data']['hash']}", f"seed {p['seed']}",
             "versions: " + ", ".join(f"{k} {v}" for k, v in p["versions"].items())]
    for t, e in p["exports"].items():
        cal = f"calibration {e['calibration_size']} inputs, hash {e['calibration_hash']}" if e["calibration_hash"] else \
            "no calibration (float)"
        thresholds = e.get("stream_thresholds") or {}
        stream = ("; stream thresholds calibrated on DATA/negatives: " + ", ".join(
            f"{k} {v}" for k, v in thresholds.items() if isinstance(v, (int, float)))
            + (f" (over budget: {', '.join(map(str, e['stream_over_budget']))})" if e.get("stream_over_budget") else "")
            if isinstance(thresholds, dict) and thresholds else "")
        lines.append(f"{t}: artefact sha256 {e['sha256']}; {cal}; {e['float_layers']} layer(s) kept in float by "
                     f"the accuracy-aware search{stream}")
    return lines


def markdown(summary: dict[str, Any], pngs: dict[str, str] | None = None) -> str:
    head, body = _table(summary)
    lines = [f"# edgetune report: {summary['run']}", "", _headline(summary), "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    lines += ["", ESTIMATE_NOTE + " (see the bench JSON's `estimate`)."]
    for name, file in (pngs or {}).items():
        lines += ["", f"![{name}]({file})"]
    lines += ["", "## Provenance", ""] + [f"- {line}" for line in _provenance_lines(summary["provenance"])]
    return "\n".join(lines) + "\n"


_CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f0f0f0}td:first-child,td:nth-child(5){text-align:left}.no{color:#b00;font-weight:bold}
figure{display:inline-block;margin:1em}img{max-width:520px}li{font-size:13px;font-family:monospace}"""


def to_html(summary: dict[str, Any], figs: dict[str, bytes]) -> str:
    """One self-contained page: inline CSS, inline PNGs, no scripts, every string escaped."""
    e = html.escape
    head, body = _table(summary)
    rows = "".join("<tr>" + "".join(f"<td class='no'>{e(c)}</td>" if i == len(row) - 1 and c.startswith("NO")
                                    else f"<td>{e(c)}</td>" for i, c in enumerate(row)) + "</tr>" for row in body)
    fig_html = "".join(f"<figure><img alt='{e(n)}' src='data:image/png;base64,{base64.b64encode(b).decode()}'>"
                       f"<figcaption>{e(n.replace('_', ' '))}</figcaption></figure>" for n, b in figs.items())
    if not figs:
        fig_html = "<p>No figures: matplotlib is not installed here (light install).</p>"
    prov = "".join(f"<li>{e(line)}</li>" for line in _provenance_lines(summary["provenance"]))
    headline = e(_headline(summary)).replace("**", "")
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>edgetune report: "
            f"{e(summary['run'])}</title><style>{_CSS}</style></head><body>"
            f"<h1>edgetune report</h1><p>{e(summary['run'])}</p><p>{headline}</p>"
            f"<table><tr>{''.join(f'<th>{e(h)}</th>' for h in head)}</tr>{rows}</table>"
            f"<p>{e(ESTIMATE_NOTE)}.</p>{fig_html}<h2>Provenance</h2><ul>{prov}</ul></body></html>\n")


def write_report(run_path: str | Path) -> tuple[dict[str, Any], Path]:
    """Write RUN/report.md, RUN/report.html and RUN/report-<figure>.png; return the summary and
    the Markdown path."""
    run = Path(run_path)
    summary = collect(run)
    figs = figures(summary)
    pngs = {}
    for name, data in figs.items():
        write_bytes(run / f"report-{name}.png", data)
        pngs[name] = f"report-{name}.png"
    out = run / "report.md"
    write_text(out, markdown(summary, pngs))
    write_text(run / "report.html", to_html(summary, figs))
    return summary, out
