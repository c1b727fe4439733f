"""The HTML page of `data check --html`: summary, findings, histograms and a contact sheet of the
worst offenders (leak pairs side by side, unreadable files, images with tiny boxes), one
self-contained file (images inlined) that a CI job can keep as an artefact."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

from edgetune.data.check.audit import CheckReport, Finding

THUMB = 128
SHEET_ROWS = 24


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _histograms(stats: dict[str, Any]) -> list[tuple[str, bytes]]:
    from edgetune import plots

    if not plots.available():
        return []
    titles = {"image_short_sides": "image short side (px)", "boxes_per_image": "boxes per image",
              "box_short_sides_px": "box short side (px)", "clip_seconds": "clip length (s)", "peaks": "clip peak level"}
    out = []
    for key, title in titles.items():
        values = stats.get(key)
        if not values:
            continue
        plt, fig, ax = plots._figure(4.2, 2.8)
        ax.hist(values, bins=min(40, max(5, len(set(values)))), color="#4477aa")
        ax.set_title(title)
        ax.set_ylabel("count")
        out.append((title, plots._png(plt, fig)))
    return out


def _thumb(path: str) -> Any:
    from PIL import Image, ImageDraw

    from edgetune.preprocess import check_image_size

    try:
        with Image.open(path) as im:
            check_image_size(*im.size)  # the loaders' pixel bound, before decoding
            im = im.convert("RGB")
            im.thumbnail((THUMB, THUMB))
            return im
    except Exception:  # noqa: BLE001 - an unreadable file is shown as a red tile
        tile = Image.new("RGB", (THUMB, THUMB), (200, 40, 40))
        ImageDraw.Draw(tile).text((8, 56), "unreadable", fill="white")
        return tile


def contact_sheet(findings: list[Finding]) -> bytes | None:
    """Rows of the worst offenders: leaks first (the pair side by side), then unreadable files,
    conflicting labels and tiny boxes; at most SHEET_ROWS rows."""
    from PIL import Image, ImageDraw

    order = ("leak", "unreadable", "conflicting-labels", "duplicate", "tiny-box")
    rows = sorted((f for f in findings if f.kind in order and (f.files or f.kind == "unreadable")),
                  key=lambda f: order.index(f.kind))[:SHEET_ROWS]
    if not rows:
        return None
    sheet = Image.new("RGB", (2 * THUMB + 420, len(rows) * (THUMB + 8)), "white")
    draw = ImageDraw.Draw(sheet)
    for r, f in enumerate(rows):
        y = r * (THUMB + 8)
        for k, path in enumerate(f.files or (f.where,)):
            sheet.paste(_thumb(path), (k * THUMB, y))
        draw.text((2 * THUMB + 10, y + 8), f"{f.kind}: {f.detail}"[:70], fill="black")
        draw.text((2 * THUMB + 10, y + 28), f.where.replace("≈", "~")[:70], fill="#555555")
    buf = io.BytesIO()
    sheet.save(buf, "PNG")
    return buf.getvalue()


def write_html(report: CheckReport, path: Path) -> None:
    from edgetune.fsutil import write_text

    e = html.escape
    parts = [f"<!doctype html><meta charset='utf-8'><title>edgetune data check: {e(report.root)}</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}td,th{padding:2px 8px;text-align:left}"
             ".error{color:#b00}.warning{color:#a60}</style>",
             f"<h1>data check: {e(report.root)}</h1>",
             f"<p>{e(report.task)}; {len(report.classes)} classes; files {e(str(report.files))}; "
             f"{len(report.errors)} errors, {len(report.findings) - len(report.errors)} warnings; "
             f"duplicates: {e(report.near_duplicate_rule)}; {report.seconds} s</p>",
             "<h2>Per class</h2><table><tr><th>class</th>" + "".join(f"<th>{e(s)}</th>" for s in report.per_class) + "</tr>"]
    parts += ["<tr><td>" + e(c) + "</td>" + "".join(f"<td>{v.get(c, 0)}</td>" for v in report.per_class.values())
              + "</tr>" for c in report.classes]
    parts.append("</table><h2>Findings</h2><table><tr><th>severity</th><th>kind</th><th>where</th><th>detail</th></tr>")
    parts += [f"<tr class='{f.severity}'><td>{f.severity}</td><td>{e(f.kind)}</td><td>{e(f.where)}</td>"
              f"<td>{e(f.detail)}</td></tr>" for f in report.findings]
    parts.append("</table>")
    hists = _histograms(report.stats)
    if hists:
        parts.append("<h2>Distributions</h2>" + "".join(_img(png, title) for title, png in hists))
    sheet = contact_sheet(report.findings)
    if sheet:
        parts.append("<h2>Worst offenders</h2>" + _img(sheet, "contact sheet"))
    write_text(path, "\n".join(parts))
