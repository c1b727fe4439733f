"""Per-keyword stream thresholds (calibrated by `edgetune export` on DATA/negatives/) against the
card's one threshold, on the same cpu-int8 exports: the demo's KWS data and recipe (`make demo`:
60 TTS clips a keyword, `--freeze backbone --epochs 20`), three seeds. Scored on the demo's
synthetic stream (keywords among `_unknown_` words, held-out voices) and on the real-voice stream
(edgetune.data.real_speech); the calibration saw neither: its negatives are phrases of other words
(`kws_synth.PHRASE_WORDS`). Writes RESULTS.md "kws-thresholds".

    python benchmarks/kws_thresholds.py     # needs runs/demo/kws-data (make demo)
"""

from __future__ import annotations

import json
from pathlib import Path

from _kws_ab import DEMO_DATA, measure, train_export, write_ab
from kws_real import STREAM

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work" / "kws-thresholds"
SEEDS = (0, 1, 2)
ARMS = {"one threshold (the card's 0.5)": False, "per-keyword (export's calibration)": True}


def main() -> None:
    from edgetune.data.real_speech import write_stream

    if not (STREAM / "stream.json").is_file():
        write_stream(STREAM)
    rows: dict[str, list[dict]] = {arm: [] for arm in ARMS}
    thresholds = []
    for seed in SEEDS:
        run = train_export(DEMO_DATA, WORK / f"s{seed}", seed)
        tuned = json.loads((run / "export" / "cpu-int8" / "export.json").read_text())["postprocess_tuned"]
        thresholds.append(tuned["thresholds"])
        for arm, calibrated in ARMS.items():
            rows[arm].append(measure(run, calibrated=calibrated))
            print(seed, arm, rows[arm][-1], flush=True)
    first = rows[next(iter(ARMS))][0]
    write_ab("kws-thresholds", "per-keyword stream thresholds vs one threshold (issue 17)",
             "`python benchmarks/kws_thresholds.py` — the demo's KWS data and recipe, seeds "
             + ", ".join(map(str, SEEDS)) + "; the same cpu-int8 export of each seed scored both ways. Per-keyword: "
             f"what `edgetune export` chose on the data's negatives/speech.wav ({tuned['negative_s']:.0f} s of generated "
             "phrases, no keyword; the lowest threshold ≥ 0.5 at which a keyword fires at most its share of "
             f"{tuned['fa_budget_per_hour']:g} false accepts/hour there, at most 0.95). Means over seeds "
             "(per-seed values in brackets); the last column sweeps one threshold, so it is the same for both rows.",
             "thresholds", rows, notes=(
                 "", "Thresholds export chose (seed: keyword threshold …): " + "; ".join(
                     f"{s}: " + ", ".join(f"{k} {v:.2f}" for k, v in t.items())
                     for s, t in zip(SEEDS, thresholds, strict=True)),
                 "", f"Real stream: {first['real_s']:.0f} s, so one false accept there is "
                 f"{3600 / first['real_s']:.0f} per hour."))


if __name__ == "__main__":
    main()
