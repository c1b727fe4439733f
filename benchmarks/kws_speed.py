"""Does speed perturbation (edgetune.train.kws.SPEED_PROB: the clip resampled by 0.9–1.1, which
moves tempo, pitch and formants together) help a keyword spotter trained on a few generated voices
hear others? A/B on the demo's data and recipe (`make demo`: 60 clips a keyword, `--freeze backbone
--epochs 20`), three seeds each, SPEED_PROB 0 vs 0.5 (the module default is marked); cpu-int8
exports scored at their own per-keyword thresholds on the held-out-voice val split, the demo's
synthetic stream and the real-voice stream (`edgetune data kws-real`). Writes RESULTS.md "kws-speed".

Decided before the run: it becomes the default only if the mean val top-1 (voices never trained on)
rises and the synthetic stream's recall does not fall. The real stream (7 utterances) is reported,
not used to decide: it is the only real test there is.

    python benchmarks/kws_speed.py          # needs runs/demo/kws-data (make demo)
"""

from __future__ import annotations

from pathlib import Path

from _kws_ab import ab_module_default, write_ab

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work" / "kws-speed"
SEEDS = (0, 1, 2)
ARMS = (0.0, 0.5)  # SPEED_PROB


def main() -> None:
    rows = ab_module_default("SPEED_PROB", ARMS, WORK, SEEDS, calibrated=True)
    write_ab("kws-speed", "speed perturbation A/B (issue 17)",
             "`python benchmarks/kws_speed.py` — the demo's KWS data (seeded kws-synth, `make demo` of 2026-12-03) "
             "and recipe (60 TTS clips a keyword, head on cached embeddings, 20 epochs), seeds "
             + ", ".join(map(str, SEEDS)) + "; cpu-int8 exports at their per-keyword thresholds (calibrated by "
             "export on DATA/negatives). Means over seeds (per-seed values in brackets).", "SPEED_PROB", rows)


if __name__ == "__main__":
    main()
