"""Does real background noise help a keyword spotter trained on generated voices hear people?
A/B on the demo's data and recipe (`make demo`: 60 clips a keyword, `--freeze backbone --epochs
20`), five seeds each: the demo's `_background_noise_/` (generated white/pink/brown noise and TTS
babble) against the same plus `meeting_room.wav`, 6.5 min of real far-field meeting audio
(edgetune.data.real_noise; `kws-synth --real-noise`). cpu-int8 exports scored at their own
per-keyword thresholds on the held-out-voice val split, the demo's synthetic stream and the
real-voice stream (`edgetune data kws-real`). Writes RESULTS.md "kws-noise".

Decided before the run: `kws-synth` writes the real noise by default (REAL_NOISE) only if the mean
val top-1 over keyword and _unknown_ clips (voices never trained on; the _silence_ clips are left
out because each arm cuts them from its own noise files) rises and the synthetic stream's recall
does not fall. The real stream (7 utterances) is reported, not used to decide.

    python benchmarks/kws_noise.py          # needs runs/demo/kws-data (make demo)
"""

from __future__ import annotations

import shutil
import statistics
from pathlib import Path

from _kws_ab import DEMO_DATA, run_arms, write_ab

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work" / "kws-noise"
SEEDS = (0, 1, 2, 3, 4)
ARMS = {"generated noise + TTS babble (demo)": "demo", "+ real meeting-room audio": "real"}


def real_noise_data() -> Path:
    """The demo's data set with meeting_room.wav added to its _background_noise_/ (made once)."""
    from edgetune.data.audio import write_wav
    from edgetune.data.kws_synth import MEETING_ROOM
    from edgetune.data.real_noise import meeting_room
    from edgetune.data.speech_commands import NOISE_DIR

    data = WORK / "data-real"
    if not (data / NOISE_DIR / MEETING_ROOM).is_file():
        shutil.rmtree(data, ignore_errors=True)
        shutil.copytree(DEMO_DATA, data)
        write_wav(data / NOISE_DIR / MEETING_ROOM, meeting_room())
    return data


def main() -> None:
    data = {"demo": DEMO_DATA, "real": real_noise_data()}
    rows = run_arms({label: data[key] for label, key in ARMS.items()}, SEEDS,
                    lambda label, seed: WORK / f"{ARMS[label]}_s{seed}", calibrated=True)
    speech = [f"- {label}: val top-1 over keyword and _unknown_ clips (the rule's measure) "
              f"{statistics.mean(r['val_speech_top1'] for r in rs):.3f} "
              f"({' / '.join(format(r['val_speech_top1'], '.3f') for r in rs)})" for label, rs in rows.items()]
    write_ab("kws-noise", "real background noise A/B (issue 17)",
             "`python benchmarks/kws_noise.py` — the demo's KWS data (seeded kws-synth, `make demo`) and recipe "
             "(60 TTS clips a keyword, head on cached embeddings, 20 epochs), seeds " + ", ".join(map(str, SEEDS))
             + "; the second arm adds `meeting_room.wav` (6.5 min of AMI far-field meeting audio from pyannote.audio "
             "4.0.7's sdist) to `_background_noise_/`. cpu-int8 exports at their per-keyword thresholds. Means over "
             "seeds (per-seed values in brackets). The val column counts _silence_ clips, which each arm cuts from "
             "its own noise; the rule's measure, below the table, leaves them out.", "noise", rows, ("", *speech))


if __name__ == "__main__":
    main()
