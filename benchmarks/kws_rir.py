"""Does reverberation augmentation (synthetic room impulse responses, edgetune.train.kws) help a
keyword spotter trained on dry TTS voices hear real ones? A/B on the demo's data and recipe
(`make demo`: 60 clips a keyword, `--freeze backbone --epochs 20`), three seeds each, RIR_PROB
0 vs 0.5 (the module default is marked); cpu-int8 exports scored on the held-out-voice val split, the demo's
synthetic stream and the real-voice stream (`edgetune data kws-real`). Writes RESULTS.md "kws-rir".

    python benchmarks/kws_rir.py            # needs runs/demo/kws-data (make demo)
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from _results import write_section
from kws_real import STREAM, score

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work" / "kws-rir"
DATA = HERE.parent / "runs" / "demo" / "kws-data"
SEEDS = (0, 1, 2)
ARMS = (0.0, 0.5)  # RIR_PROB


def train(rir_prob: float, seed: int) -> Path:
    import edgetune.train.kws as kws
    from edgetune.training import finetune

    out = WORK / f"rir{rir_prob:g}_s{seed}"
    if (out / "export" / "cpu-int8" / "export.json").is_file():
        return out
    shutil.rmtree(out, ignore_errors=True)
    kws.RIR_PROB = rir_prob  # benchmark-only override of the module default
    finetune("speech_embedding_kws", DATA, out, freeze="backbone", epochs=20, seed=seed, quiet=True)
    subprocess.run([sys.executable, "-m", "edgetune.cli.main", "export", str(out), "--target", "cpu-int8", "--quiet"],
                   check=True, capture_output=True)
    return out


def main() -> None:
    import edgetune.train.kws as kws
    from edgetune.data.real_speech import write_stream

    if not (STREAM / "stream.json").is_file():
        write_stream(STREAM)
    default = kws.RIR_PROB
    rows: dict[float, list[dict]] = {}
    for rir in ARMS:
        for seed in SEEDS:
            run = train(rir, seed)
            export = run / "export" / "cpu-int8"
            meta = json.loads((export / "export.json").read_text())
            synth = score(export, DATA / "stream")
            real = score(export, STREAM)
            r = {"val_top1": meta["metric"], "synth_recall": synth["at_threshold"]["recall"],
                 "synth_fa_h": synth["at_threshold"]["fa_per_hour"], "real_hits": real["at_threshold"]["hits"],
                 "real_events": real["events"], "real_fa": real["at_threshold"]["false_accepts"]}
            rows.setdefault(rir, []).append(r)
            print(rir, seed, json.dumps(r), flush=True)
    m = lambda rs, k: statistics.mean(r[k] for r in rs)  # noqa: E731
    lines = ["## kws-rir: reverberation augmentation A/B (issue 17)", "",
             "`python benchmarks/kws_rir.py` — the demo's KWS data and recipe (60 TTS clips a keyword, head on cached "
             "embeddings, 20 epochs), seeds " + ", ".join(map(str, SEEDS)) + "; cpu-int8 exports at the default "
             "stream threshold 0.5. Means over seeds (per-seed values in brackets).", "",
             "| RIR_PROB | val top-1 (held-out TTS voices) | synthetic stream recall | synthetic FA/h | "
             "real keyword hits | real false accepts |", "|---|---|---|---|---|---|"]
    for rir, rs in rows.items():
        per = lambda k, f="{:.3f}", rs=rs: " / ".join(f.format(r[k]) for r in rs)  # noqa: E731
        lines.append(f"| {rir:g}{' (default)' if rir == default else ''} | {m(rs, 'val_top1'):.3f} ({per('val_top1')}) | "
                     f"{m(rs, 'synth_recall'):.3f} ({per('synth_recall')}) | {m(rs, 'synth_fa_h'):.0f} "
                     f"({per('synth_fa_h', '{:.0f}')}) | {m(rs, 'real_hits'):.1f}/{rs[0]['real_events']} "
                     f"({per('real_hits', '{:d}')}) | {m(rs, 'real_fa'):.1f} ({per('real_fa', '{:d}')}) |")
    write_section("kws-rir", "\n".join(lines))


if __name__ == "__main__":
    main()
