"""Does reverberation augmentation (synthetic room impulse responses, edgetune.train.kws) help a
keyword spotter trained on dry TTS voices hear real ones? A/B on the demo's data and recipe
(`make demo`: 60 clips a keyword, `--freeze backbone --epochs 20`), three seeds each, RIR_PROB
0 vs 0.5 (the module default is marked); cpu-int8 exports scored on the held-out-voice val split, the demo's
synthetic stream and the real-voice stream (`edgetune data kws-real`). Writes RESULTS.md "kws-rir".

    python benchmarks/kws_rir.py            # needs runs/demo/kws-data (make demo)
"""

from __future__ import annotations

from pathlib import Path

from _kws_ab import ab_module_default, write_ab

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work" / "kws-rir"
SEEDS = (0, 1, 2)
ARMS = (0.0, 0.5)  # RIR_PROB


def main() -> None:
    rows = ab_module_default("RIR_PROB", ARMS, WORK, SEEDS, calibrated=False)
    write_ab("kws-rir", "reverberation augmentation A/B (issue 17)",
             "`python benchmarks/kws_rir.py` — the demo's KWS data and recipe (60 TTS clips a keyword, head on cached "
             "embeddings, 20 epochs), seeds " + ", ".join(map(str, SEEDS)) + "; cpu-int8 exports at the default "
             "stream threshold 0.5. Means over seeds (per-seed values in brackets).", "RIR_PROB", rows)


if __name__ == "__main__":
    main()
