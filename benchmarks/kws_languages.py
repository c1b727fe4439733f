"""Which real spoken words does a calibrated KWS export take for a command, language by language?

`make demo`'s KWS exports calibrate their per-keyword thresholds on generated phrases plus the
tuning half of edgetune.data.real_words. Here they meet the reporting half (never calibrated on:
English and 11 other languages, 726 words), one word at a time: each word between 0.5 s of faint
noise, streamed at the export's own thresholds, so every detection is a false accept that belongs
to one word. English is the keywords' own language: its words ("nose", "umbrella"...) are the
negatives an English deployment hears, and the question is whether the multilingual rest makes the
reporting half's rate look better or worse than English alone. Writes RESULTS.md "kws-languages".

    python benchmarks/kws_languages.py [runs/demo/kws]
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import numpy as np
from _results import write_section
from kws_real import export_model, exports

GAP_S = 0.5
NOISE_DB = -50.0  # as real_words.write_recording pads its words


def word_detections(export: Path) -> dict[Path, tuple[float, list[str]]]:
    """Every reporting-half word → (seconds streamed, the keywords the export detects in it at its
    calibrated thresholds)."""
    from edgetune.data import real_words
    from edgetune.data.audio import SAMPLE_RATE
    from edgetune.tasks.kws_stream import detect, smoothed_posteriors

    session, labels, window, cfg = export_model(export)
    rng = np.random.default_rng(0)
    gap = int(GAP_S * SAMPLE_RATE)
    out = {}
    for path in real_words.half("reporting"):
        audio = np.pad(real_words.load_word(path), (gap, gap))
        audio += rng.standard_normal(len(audio)).astype(np.float32) * float(10 ** (NOISE_DB / 20))
        times, sm, _, _ = smoothed_posteriors(session, [audio], cfg, sr=SAMPLE_RATE, window=window)
        out[path] = (len(audio) / SAMPLE_RATE, [d["label"] for d in detect(times, sm, labels, cfg, window / SAMPLE_RATE)])
    return out


def main(runs: list[Path]) -> None:
    lines = ["## kws-languages: real spoken words taken for a keyword, language by language (issue 17)", "",
             f"`python benchmarks/kws_languages.py {' '.join(map(str, runs))}`", "",
             "Each word of the real words' reporting half alone, between 0.5 s of faint noise, at the export's "
             "calibrated per-keyword thresholds; every detection is a false accept. FA/h: per hour of that "
             "language's audio as streamed (word + 1 s).", ""]
    for run, target, export in exports(runs):
        streamed = word_detections(export)
        fired = {p: labels for p, (_, labels) in streamed.items()}
        by_lang: dict[str, list[Path]] = {}
        for path in fired:
            by_lang.setdefault(path.parent.name, []).append(path)
        lines += [f"**{run} {target}**", "", "| language | words | false accepts | FA/h | words that fired (keyword) |",
                  "|---|---|---|---|---|"]
        total_fa, total_s = 0, 0.0
        for lang in sorted(by_lang, key=lambda k: (k != "en", k)):
            paths = by_lang[lang]
            seconds = sum(streamed[p][0] for p in paths)
            fa = sum(len(fired[p]) for p in paths)
            total_fa, total_s = total_fa + fa, total_s + seconds
            which = ", ".join(f"{p.stem} ({'/'.join(sorted(set(fired[p])))})" for p in paths if fired[p])
            lines.append(f"| {lang} | {len(paths)} | {fa} | {fa / seconds * 3600:.0f} | {which} |")
        kw = Counter(k for v in fired.values() for k in v)
        lines += [f"| all | {len(fired)} | {total_fa} | {total_fa / total_s * 3600:.0f} | by keyword: "
                  f"{', '.join(f'{k} {n}' for k, n in kw.most_common())} |", ""]
        print("\n".join(lines[-len(by_lang) - 3:]), flush=True)
    write_section("kws-languages", "\n".join(lines))


if __name__ == "__main__":
    main([Path(a) for a in sys.argv[1:]] or [Path("runs/demo/kws")])
