"""Does training on real spoken words as `_unknown_` let a KWS model trained on generated keywords
reject real speech by itself, so that its calibrated thresholds can sit lower and real keywords get
through? A/B on the demo's data and recipe (head on cached embeddings, 20 epochs), five seeds:

- demo: the demo's training set (the kws-noise demo-recipe runs, reused);
- + real _unknown_: the same plus part A of the real words' tuning half as `_unknown_` clips (cut
  or padded to 1 s): ca, es, gl, nl, ru, uk (every second tuning language, alphabetically, from the
  first).

Both arms' cpu-int8 exports are calibrated on the same audio, which neither trained on: the demo's
generated phrases plus part B of the tuning half (de, fr, lt, pt, sr). Scored on the reporting half
of the real words (false accepts), the real-voice stream (hits, false accepts), the demo's synthetic
stream (recall) and held-out generated voices (val top-1 over keyword and _unknown_ clips). Writes
RESULTS.md "kws-realunknown".

Decided before this run: kws-synth also writes part A to train/_unknown_ (and part B only to
negatives/) if, over the five seeds, real keyword hits rise by at least 0.4 of 7 on average (two
utterances over the seeds), false accepts on the reporting-half words rise by no more than a fifth,
and held-out-voice top-1 over keyword and _unknown_ clips falls by at most 1 pt. Otherwise nothing
changes.

    python benchmarks/kws_realunknown.py     # needs runs/demo/kws-data (make demo) and the kws-noise runs
"""

from __future__ import annotations

import shutil
import statistics
from pathlib import Path

from _kws_ab import DEMO_DATA, STREAM_COLUMNS, seeds_cell, speech_top1, stream_cells, train_export
from _results import write_section
from kws_real import export_model
from kws_realneg import GENERATED, prepare_words, recalibrated, scored

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work" / "kws-realunknown"
SEEDS = (0, 1, 2, 3, 4)
PART_A = ("ca", "es", "gl", "nl", "ru", "uk")
ARMS = ("demo", "+ real _unknown_")


def part(train: bool) -> list[Path]:
    """Part A (train) or part B (calibrate) of the real words' tuning half."""
    from edgetune.data import real_words

    return [p for p in real_words.half("tuning") if (p.parent.name in PART_A) == train]


def data_with_real_unknown() -> Path:
    """The demo's data with part A as 1 s `_unknown_` clips, and only the generated negatives (made once)."""
    from edgetune.data.audio import SAMPLE_RATE, fit_length, write_wav
    from edgetune.data.real_words import load_word

    data = WORK / "data"
    if (data / ".complete").is_file():
        return data
    shutil.rmtree(data, ignore_errors=True)
    shutil.copytree(DEMO_DATA, data, ignore=shutil.ignore_patterns("real-words.*"))
    for p in part(train=True):
        write_wav(data / "train" / "_unknown_" / f"real_{p.parent.name}_{p.stem}.wav", fit_length(load_word(p), SAMPLE_RATE))
    (data / ".complete").write_text("")
    return data


def measure(export: Path, negatives: Path) -> dict:
    """An export recalibrated on the generated phrases + `negatives`, scored on the three streams."""
    import json

    session, labels, window, cfg = export_model(export)
    row = scored(session, labels, window, recalibrated(session, labels, window, cfg, (GENERATED, negatives)))
    return {**row, "speech_top1": speech_top1(json.loads((export / "export.json").read_text())),
            "threshold": statistics.mean(row["thresholds"].values())}


def main() -> None:
    from edgetune.data.real_words import write_recording

    prepare_words()
    negatives = WORK / "part-b.wav"
    if not negatives.with_suffix(".json").is_file():
        write_recording(negatives, "tuning", paths=part(train=False))
    data = data_with_real_unknown()
    runs = {"demo": lambda s: HERE / "_work" / "kws-noise" / f"demo_s{s}",
            "+ real _unknown_": lambda s: train_export(data, WORK / f"realunk_s{s}", s)}
    rows: dict[str, list[dict]] = {}
    for arm in ARMS:
        for s in SEEDS:
            rows.setdefault(arm, []).append(measure(runs[arm](s) / "export" / "cpu-int8", negatives))
            print(arm, s, rows[arm][-1], flush=True)
    lines = ["## kws-realunknown: real spoken words as `_unknown_` training clips, A/B (issue 17)", "",
             "`python benchmarks/kws_realunknown.py` — the demo's KWS data and recipe (head on cached embeddings, 20 "
             "epochs), seeds " + ", ".join(map(str, SEEDS)) + "; the second arm adds part A of the real words' tuning "
             f"half ({', '.join(PART_A)}: {len(part(train=True))} words) to train/_unknown_. Both arms' cpu-int8 "
             "exports calibrated on the generated phrases + part B (the other tuning languages), scored on the "
             "reporting half (18.8 min), the real-voice stream and the synthetic stream. Means over seeds "
             "(per-seed values in brackets).", "",
             f"| arm | held-out-voice top-1 (keyword + _unknown_ clips) | real words: false accepts | {STREAM_COLUMNS} "
             "| mean threshold |", "|---|---|---|---|---|---|---|"]
    for arm, rs in rows.items():
        lines.append(f"| {arm} | {seeds_cell(rs, 'speech_top1')} | {seeds_cell(rs, 'words_fa', '{:d}', '{:.1f}')} | "
                     f"{stream_cells(rs)} | {statistics.mean(r['threshold'] for r in rs):.3f} |")
    write_section("kws-realunknown", "\n".join(lines))


if __name__ == "__main__":
    main()
