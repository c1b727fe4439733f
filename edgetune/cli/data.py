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


@data.command("objects-on-photos")
@click.option("--out", required=True, type=click.Path(path_type=Path))
@click.option("--train", "n_train", default=240, show_default=True, type=int, help="Training images.")
@click.option("--val", "n_val", default=60, show_default=True, type=int, help="Validation images (unseen backgrounds).")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--long-side", default=480, show_default=True, type=int, help="Image size: pixels on the longer side.")
@click.option("--max-objects", default=4, show_default=True, type=int, help="At most this many objects per image.")
@click.option("--classes", default=None, help="Comma-separated subset of person,cat,cup,motorcycle,rocket,coin,logo.")
@json_option
@handle_errors()
def objects_on_photos(out: Path, n_train: int, n_val: int, seed: int, long_side: int, max_objects: int,
                      classes: str | None, as_json: bool) -> None:
    """A YOLO detection set from real images: real object crops pasted onto real photos, exact labels.

    Objects and backgrounds come from scikit-image, scikit-learn and ultralytics' own sample
    photos (no download). Validation images use backgrounds never seen in training.
    """
    from edgetune.data.objects_on_photos import write_dataset
    from edgetune.errors import UsageError

    if n_train < 1 or n_val < 1:
        raise UsageError("--train and --val must be ≥ 1")
    if not 64 <= long_side <= 4096:
        raise UsageError(f"--long-side must be in [64, 4096], got {long_side}")
    if max_objects < 1:
        raise UsageError(f"--max-objects must be ≥ 1, got {max_objects}")
    if out.exists() and any(out.iterdir()):
        raise UsageError(f"{out} exists and is not empty", hint="choose a new --out or delete it")
    result = write_dataset(out, train=n_train, val=n_val, seed=seed, long_side=long_side, max_objects=max_objects,
                           classes=[c.strip() for c in classes.split(",")] if classes else None)
    emit(result, as_json, lambda r: click.echo(
        f"wrote {r['train']} train + {r['val']} val images ({r['boxes_train']} + {r['boxes_val']} boxes, "
        f"{len(r['classes'])} classes) to {r['out']}; train with --data {r['data_yaml']}"))
