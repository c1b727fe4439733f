"""Report figures as PNG bytes (matplotlib, Agg backend): the Pareto plot of latency vs the task
metric, size and memory per target, the confusion matrix, the detector's PR curves.

Each function takes plain data (what the report collected from export.json and bench JSON) so the
figures can be drawn without the artefacts or the data set being present.
"""

from __future__ import annotations

import io
from typing import Any


def available() -> bool:
    """matplotlib comes with the train extra; the light install writes reports without figures."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _figure(w: float = 6.4, h: float = 4.2):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # Labels are users' class names: '$' must print as '$', not start mathtext (two of them in one
    # name made every report crash with a ValueError). Set for the process, not in a context:
    # tick labels are created at draw time, after the figure is built.
    matplotlib.rcParams["text.parse_math"] = False
    fig, ax = plt.subplots(figsize=(w, h), dpi=110)
    return plt, fig, ax


def _png(plt: Any, fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both axes (lower latency, higher metric),
    sorted by latency: the targets worth choosing between."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], float("-inf")
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def pareto(rows: list[dict[str, Any]], metric_name: str) -> bytes:
    """Measured p50 here (filled) and, where the profile allows, the device estimate (hollow)
    against the artefact's metric; the Pareto front of the measured points joined by a line."""
    plt, fig, ax = _figure()
    profiles = sorted({r["profile"] for r in rows})
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for pi, prof in enumerate(profiles):
        mine = [r for r in rows if r["profile"] == prof]
        c = colours[pi % len(colours)]
        ax.scatter([r["p50_ms"] for r in mine], [r["metric"] for r in mine], color=c, s=40,
                   label=f"{prof}: measured here", zorder=3)
        for r in mine:
            ax.annotate(r["target"], (r["p50_ms"], r["metric"]), textcoords="offset points", xytext=(4, 4), fontsize=7)
        est = [r for r in mine if r.get("estimate_ms")]
        if est:
            ax.scatter([r["estimate_ms"] for r in est], [r["metric"] for r in est], facecolors="none", edgecolors=c,
                       s=40, label=f"{prof}: device ESTIMATE", zorder=3)
        pts = [(r["p50_ms"], r["metric"]) for r in mine]
        front = [mine[i] for i in pareto_front(pts)]
        ax.plot([r["p50_ms"] for r in front], [r["metric"] for r in front], color=c, lw=1, alpha=0.6)
    ax.set_xlabel("latency p50, batch 1 (ms)")
    ax.set_ylabel(metric_name)
    ax.set_title("latency vs accuracy (up and left is better)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _png(plt, fig)


def size_memory(rows: list[dict[str, Any]]) -> bytes:
    """Artefact size and peak RSS of the inference process per target (RSS where benched)."""
    import numpy as np

    plt, fig, ax = _figure()
    names = [r["target"] for r in rows]
    x = np.arange(len(rows))
    ax.bar(x - 0.2, [r["size_mb"] for r in rows], 0.4, label="artefact size (MB)")
    ax.bar(x + 0.2, [r["peak_rss_mb"] or 0 for r in rows], 0.4, label="peak RSS of inference (MB)")
    ax.set_xticks(x, names, rotation=20, fontsize=8)
    ax.set_ylabel("MB")
    ax.set_title("size and memory")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return _png(plt, fig)


def confusion(matrix: list[list[int]], labels: list[str], title: str) -> bytes:
    """Row-normalised confusion matrix (true rows, predicted columns), counts in the cells."""
    import numpy as np

    m = np.asarray(matrix, dtype=float)
    norm = m / np.maximum(m.sum(1, keepdims=True), 1)
    n = len(labels)
    plt, fig, ax = _figure(max(4.5, 0.45 * n + 2), max(4.0, 0.45 * n + 1.5))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), labels, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(n), labels, fontsize=7)
    for i in range(n):
        for j in range(n):
            if m[i, j]:
                ax.text(j, i, int(m[i, j]), ha="center", va="center", fontsize=6,
                        color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    return _png(plt, fig)


def pr_curves(curves: dict[str, dict[str, list[float]]]) -> bytes:
    """Class-mean precision-recall at IoU 0.5, one line per target."""
    plt, fig, ax = _figure()
    for target, c in curves.items():
        ax.plot(c["recall"], c["precision"], label=target, lw=1.2)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title("precision-recall at IoU 0.5 (class mean)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _png(plt, fig)
