"""KWS on real human voices: the exported models of KWS runs on the real-speech stream
(edgetune.data.real_speech: 7 keyword utterances by 2 speakers, 44 s of other real speech).

    python benchmarks/kws_real.py runs/demo/kws [more KWS runs…]

For each run and each of its exports (cpu-fp32, cpu-int8 as present): keyword hits and false
accepts on the real non-keyword speech at the export's per-keyword thresholds (calibrated on the
run's DATA/negatives/, generated speech: nothing of this stream) and at the card's one threshold
(what the export would use without negatives), and the one-threshold sweep's best recall with its
false accepts. Writes RESULTS.md "kws-real".
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from _results import write_section

HERE = Path(__file__).resolve().parent
STREAM = HERE / "_work" / "kws-real" / "stream"


def export_model(export: Path) -> tuple[Any, list[str], int, Any]:
    """(session, labels, window samples, the stream config it recorded) of an export folder."""
    from edgetune.artifact import open_export
    from edgetune.tasks.kws_stream import StreamConfig

    art = open_export(export)
    spec = art.meta.spec
    return art.open_session(), list(spec.labels), int(spec.preprocessing["samples"]), StreamConfig.from_dict(spec.postprocess)


def score_session(session: Any, labels: list[str], window: int, cfg: Any, stream: Path) -> dict:
    """edgetune's stream score of any model behind the session interface on `stream`."""
    from edgetune.data.audio import SAMPLE_RATE, stream_audio
    from edgetune.tasks.kws import read_stream_events
    from edgetune.tasks.kws_stream import score_stream

    _, blocks = stream_audio(stream / "stream.wav")
    return score_stream(session, blocks, read_stream_events(stream / "stream.json"), labels, cfg, sr=SAMPLE_RATE,
                        window=window, target_recall=0.85)


def score(export: Path, stream: Path, *, calibrated: bool = True) -> dict:
    """An export at its calibrated per-keyword thresholds, or (`calibrated=False`) at its one threshold."""
    session, labels, window, cfg = export_model(export)
    return score_session(session, labels, window, cfg if calibrated else replace(cfg, thresholds={}), stream)


def exports(runs: list[Path]) -> Iterator[tuple[Path, str, Path]]:
    """(run, target, export folder) of each run's cpu-fp32 and cpu-int8 exports that exist."""
    for run in runs:
        for target in ("cpu-fp32", "cpu-int8"):
            export = run / "export" / target
            if (export / "export.json").is_file():
                yield run, target, export


def main(runs: list[Path]) -> None:
    from edgetune.data.real_speech import write_stream

    if not (STREAM / "stream.json").is_file():
        write_stream(STREAM)
    meta = json.loads((STREAM / "stream.json").read_text())
    lines = ["## kws-real: KWS runs on real human voices (issue 17)", "",
             f"`python benchmarks/kws_real.py {' '.join(map(str, runs))}`", "",
             f"Stream: {meta['seconds']} s; {len(meta['events'])} real keyword utterances "
             f"({', '.join(e['text'] for e in meta['events'])}); {meta['non_keyword_speech_s']} s of real non-keyword "
             "speech (alsa-utils, pocketsphinx fixtures, LibriVox). A false accept is any detection outside a "
             "keyword utterance ± 0.75 s or with the wrong word.", "",
             "| run | export | per-keyword thresholds: hits | false accepts | one threshold: threshold | hits "
             "| false accepts | best recall, one threshold (threshold, false accepts) |",
             "|---|---|---|---|---|---|---|---|"]
    for run, target, export in exports(runs):
        r, one = score(export, STREAM), score(export, STREAM, calibrated=False)
        cal, at = r["at_threshold"], one["at_threshold"]
        sweep_best = r.get("at_recall_0.85")
        best = (f"{sweep_best['recall']:.2f} ({sweep_best['threshold']}, {sweep_best['false_accepts']})"
                if sweep_best else "0.85 not reached")
        per_kw = (f"{cal['hits']}/{r['events']} | {cal['false_accepts']}" if r["config"]["thresholds"]
                  else "(no negatives: not calibrated) | –")
        lines.append(f"| {run} | {target} | {per_kw} | {at['threshold']} | {at['hits']}/{r['events']} "
                     f"| {at['false_accepts']} | {best} |")
        print(lines[-1], flush=True)
    write_section("kws-real", "\n".join(lines))


if __name__ == "__main__":
    main([Path(a) for a in sys.argv[1:]])
