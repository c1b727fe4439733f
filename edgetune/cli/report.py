"""`edgetune report RUN`."""

from __future__ import annotations

from pathlib import Path

import click

from edgetune.cli.common import emit, handle_errors, json_option


@click.command()
@click.argument("run", type=click.Path(path_type=Path))
@json_option
@handle_errors()
def report(run: Path, as_json: bool) -> None:
    """Print the table of RUN's exports and benches; write RUN/report.md and a self-contained
    RUN/report.html (Pareto plot, size and memory, confusion matrix or PR curves, provenance)."""
    from edgetune.report import write_report

    summary, path = write_report(run)
    html = path.with_suffix(".html")
    emit({**summary, "report": str(path), "html": str(html)}, as_json,
         lambda s: click.echo(path.read_text() + f"\n(written to {path} and {html})"))
