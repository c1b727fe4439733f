"""`edgetune tools install NAME` and `edgetune tools list`: converters in environments of their own."""

from __future__ import annotations

import click

from edgetune.cli.common import emit, handle_errors, json_option


@click.group()
def tools() -> None:
    """Tool environments: converters whose pins conflict with edgetune's (Rockchip's rknn-toolkit2)."""


@tools.command("install")
@click.argument("name")
@click.option("--force", is_flag=True, help="Re-create it even when it is installed and works.")
@click.option("--quiet", is_flag=True, help="No pip output.")
@json_option
@handle_errors()
def install(name: str, force: bool, quiet: bool, as_json: bool) -> None:
    """Create the tool environment NAME from the package index (kept when it is there and works)."""
    from edgetune import tools_env

    result = tools_env.install(name, quiet=quiet or as_json, force=force)
    emit(result, as_json, lambda r: click.echo(
        f"{r['name']}: {'already installed' if r.get('kept') else 'installed'} in {r['folder']} "
        f"({r['installed']['seconds']:.0f}s to install)"))


@tools.command("list")
@json_option
@handle_errors()
def list_(as_json: bool) -> None:
    """Each tool environment, where it lives and whether it is installed."""
    from edgetune import tools_env

    rows = [tools_env.status(n) for n in tools_env.TOOLS]
    emit(rows, as_json, lambda rs: [click.echo(f"{r['name']:<8} {'yes' if r['installed'] else 'no ':<4} "
                                               f"{r['folder']}  {r['title']}") for r in rs])
