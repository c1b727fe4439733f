"""Shared by the KWS A/B benchmarks (kws_rir.py, kws_speed.py, kws_phrases.py, …): train an arm of the demo's KWS
recipe (head on cached embeddings, 20 epochs), export it to cpu-int8, score it on the held-out-voice
val split, the demo's synthetic stream and the real-voice stream, and tabulate means over seeds."""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from _results import write_section
from kws_real import STREAM, score

DEMO_DATA = Path(__file__).resolve().parent.parent / "runs" / "demo" / "kws-data"
COLUMNS = ("| val top-1 (held-out TTS voices) | synthetic stream recall | synthetic FA/h | real keyword hits "
           "| real false accepts | real: threshold for 0.85 recall (false accepts) |")


# `make demo`'s KWS fine-tune (edgetune.training.finetune's arguments)
DEMO_RECIPE = {"model": "speech_embedding_kws", "freeze": "backbone", "epochs": 20}


def train_export(data: Path, out: Path, seed: int, recipe: dict | None = None) -> Path:
    """A KWS recipe (the demo's by default) on `data` into `out`, exported to cpu-int8 (reused when done)."""
    from edgetune.training import finetune

    if (out / "export" / "cpu-int8" / "export.json").is_file():
        return out
    shutil.rmtree(out, ignore_errors=True)
    r = dict(recipe or DEMO_RECIPE)
    finetune(r.pop("model"), data, out, seed=seed, quiet=True, **r)
    subprocess.run([sys.executable, "-m", "edgetune.cli.main", "export", str(out), "--target", "cpu-int8", "--quiet"],
                   check=True, capture_output=True)
    return out


def measure(run: Path, *, calibrated: bool = False) -> dict:
    """The cpu-int8 export of `run`: val, synthetic stream, real stream; at the card's one threshold
    (as kws_rir and kws_phrases were recorded), or at the export's per-keyword thresholds."""
    from edgetune.data.real_speech import write_stream

    if not (STREAM / "stream.json").is_file():
        write_stream(STREAM)
    export = run / "export" / "cpu-int8"
    meta = json.loads((export / "export.json").read_text())
    synth, real = (score(export, s, calibrated=calibrated) for s in (DEMO_DATA / "stream", STREAM))
    best = real.get("at_recall_0.85")
    return {"val_top1": meta["metric"], "val_speech_top1": speech_top1(meta), "synth_recall": synth["at_threshold"]["recall"],
            "synth_fa_h": synth["at_threshold"]["fa_per_hour"], "real_hits": real["at_threshold"]["hits"],
            "real_events": real["events"], "real_fa": real["at_threshold"]["false_accepts"], "real_s": real["audio_s"],
            "real_best": f"{best['threshold']} ({best['false_accepts']})" if best else "not reached"}


def speech_top1(meta: dict) -> float:
    """Val top-1 of an export over its keyword and _unknown_ clips: the confusion matrix without
    the _silence_ row, whose clips are cut from the data set's own noise files (so differ when the
    noise does)."""
    conf = meta["curves"]["confusion"]
    rows = [i for i, name in enumerate(meta["labels"]) if name != "_silence_"]
    return sum(conf[i][i] for i in rows) / sum(sum(conf[i]) for i in rows)


def seeds_cell(rows: list[dict], key: str, fmt: str = "{:.3f}", mean_fmt: str | None = None) -> str:
    """A table cell over seeds: the mean of `key` (`mean_fmt`, else `fmt`), each seed's value in brackets."""
    mean = statistics.mean(r[key] for r in rows)
    return f"{(mean_fmt or fmt).format(mean)} ({' / '.join(fmt.format(r[key]) for r in rows)})"


def hits_cell(rows: list[dict]) -> str:
    """Real keyword hits over seeds, as "3.2/7 (3 / 4 / …)"."""
    return seeds_cell(rows, "real_hits", "{:d}", "{:.1f}/" + str(rows[0]["real_events"]))


# the real-words benchmarks' (kws_realneg, kws_realunknown) shared columns
STREAM_COLUMNS = "real keyword hits | real-stream false accepts | synthetic stream recall"


def stream_cells(rows: list[dict]) -> str:
    """STREAM_COLUMNS' cells of one arm over seeds."""
    return f"{hits_cell(rows)} | {seeds_cell(rows, 'real_fa', '{:d}', '{:.1f}')} | {seeds_cell(rows, 'synth_recall')}"


def table(first: str, arms: dict[str, list[dict]]) -> list[str]:
    """One row an arm: means over its seeds, per-seed values in brackets."""
    lines = [f"| {first} {COLUMNS}", "|---|---|---|---|---|---|---|"]
    for arm, rs in arms.items():
        lines.append(f"| {arm} | {seeds_cell(rs, 'val_top1')} | {seeds_cell(rs, 'synth_recall')} | "
                     f"{seeds_cell(rs, 'synth_fa_h', '{:.0f}')} | {hits_cell(rs)} | "
                     f"{seeds_cell(rs, 'real_fa', '{:d}', '{:.1f}')} | {' / '.join(r['real_best'] for r in rs)} |")
    return lines


def run_arms(arms: dict[str, Path], seeds: tuple[int, ...], run_dir: Callable[[str, int], Path], *,
             calibrated: bool, prepare: Callable[[str], None] = lambda _label: None,
             recipes: dict[str, dict] | None = None) -> dict[str, list[dict]]:
    """Each arm (label → its data set) over `seeds`: `prepare(label)`, its recipe (`recipes[label]`,
    else the demo's) into `run_dir(label, seed)`, then `measure`; rows for `table`, keyed by label."""
    rows: dict[str, list[dict]] = {}
    for label, data in arms.items():
        for seed in seeds:
            prepare(label)
            row = measure(train_export(data, run_dir(label, seed), seed, (recipes or {}).get(label)),
                          calibrated=calibrated)
            rows.setdefault(label, []).append(row)
            print(label, seed, row, flush=True)
    return rows


def ab_module_default(name: str, arms: tuple[float, ...], work: Path, seeds: tuple[int, ...], *,
                      calibrated: bool, recipe: dict | None = None,
                      run_dir: Callable[[float, int], Path] | None = None) -> dict[str, list[dict]]:
    """An A/B of one training constant of edgetune.train.kws (RIR_PROB, SPEED_PROB, DISTILL_WEIGHT):
    each value in `arms` over `seeds` on the demo's data with `recipe` (the demo's by default), as
    rows for `table` keyed by the value, the module's default marked. `run_dir(value, seed)` may
    place (or reuse) a run; else work/<prefix><value>_s<seed>. The constant is set in this process
    only (the trainer runs here) and restored."""
    import edgetune.train.kws as kws

    default = getattr(kws, name)
    values = {f"{v:g}{' (default)' if v == default else ''}": v for v in arms}
    prefix = name.split("_")[0].lower()
    where = run_dir or (lambda value, seed: work / f"{prefix}{value:g}_s{seed}")
    try:
        return run_arms(dict.fromkeys(values, DEMO_DATA), seeds, lambda label, seed: where(values[label], seed),
                        calibrated=calibrated, prepare=lambda label: setattr(kws, name, values[label]),
                        recipes=dict.fromkeys(values, recipe) if recipe else None)
    finally:
        setattr(kws, name, default)


def write_ab(section: str, title: str, intro: str, first: str, rows: dict[str, list[dict]],
             notes: tuple[str, ...] = ()) -> None:
    """One A/B section of RESULTS.md: `## section: title`, the command and set-up, the arms' table
    (`first` heads the arm column), then any note lines."""
    write_section(section, "\n".join([f"## {section}: {title}", "", intro, "", *table(first, rows), *notes]))
