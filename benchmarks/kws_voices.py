"""Does more voice diversity help a keyword spotter trained on generated voices hear real people?
A/B on the demo's recipe (`make demo`: 60 clips a keyword, 15 val, `--freeze backbone --epochs
20`), three seeds each: the demo's data (espeak-ng + piper) against the same `kws-synth` call with
Debian's festival voices added (two diphone voices cut from recordings of real men, one HTS voice
trained on a real woman's recordings: `apt-get install festival festvox-kallpc16k festvox-kdlpc16k
festvox-us-slt-hts`). cpu-int8 exports scored on the demo's synthetic stream and the real-voice
stream at the export's per-keyword thresholds (each arm calibrated on its own negatives/). The val
column is each arm's own held-out voices, so it does not compare the arms. Writes RESULTS.md
"kws-voices".

    python benchmarks/kws_voices.py         # needs runs/demo/kws-data (make demo) and festival
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from _kws_ab import DEMO_DATA, run_arms, write_ab

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work" / "kws-voices"
SEEDS = (0, 1, 2)
ARMS = {"espeak-ng + piper (the demo's)": None, "+ festival (3 voices)": "espeak-ng,piper,festival"}


def make_data(engines: str | None) -> Path:
    """The demo's kws-synth call, with `engines` (None: the demo's data itself)."""
    if engines is None:
        return DEMO_DATA
    out = WORK / "data" / engines.replace(",", "_")
    if not (out / "provenance.json").is_file():
        subprocess.run([sys.executable, "-m", "edgetune.cli.main", "data", "kws-synth", "--out", str(out),
                        "--per-word", "60", "--val-per-word", "15", "--stream-minutes", "2", "--engines", engines,
                        "--json"], check=True, capture_output=True)
    return out


def main() -> None:
    rows = run_arms({arm: make_data(engines) for arm, engines in ARMS.items()}, SEEDS,
                    lambda arm, seed: WORK / "runs" / f"{(ARMS[arm] or 'demo').replace(',', '_')}_s{seed}",
                    calibrated=True)
    write_ab("kws-voices", "festival's voices added to the KWS training voices, A/B (issue 17)",
             "`python benchmarks/kws_voices.py` — the demo's kws-synth call and recipe, seeds "
             + ", ".join(map(str, SEEDS)) + "; cpu-int8 exports at their own per-keyword thresholds. Val top-1 is on "
             "each arm's own held-out voices. Means over seeds (per-seed values in brackets).", "training voices",
             rows)


if __name__ == "__main__":
    main()
