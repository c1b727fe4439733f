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
    """Print the table of RUN's exports and benches and write RUN/report.md."""
    from edgetune.report import markdown, write_report

    summary, path = write_report(run)
    emit({**summary, "report": str(path)}, as_json, lambda s: click.echo(markdown(s) + f"\n(written to {path})"))
