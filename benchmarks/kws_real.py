"""KWS on real human voices: the exported models of KWS runs on the real-speech stream
(edgetune.data.real_speech: 7 keyword utterances by 2 speakers, 44 s of other real speech).

    python benchmarks/kws_real.py runs/demo/kws [more KWS runs…]

For each run and each of its exports (cpu-fp32, cpu-int8 as present): keyword hits at the run's
stream threshold, false accepts on the real non-keyword speech, and the threshold sweep's best
recall with its false accepts; beside them the run's own (synthetic) stream figures from
`edgetune bench`'s scorer. Writes RESULTS.md "kws-real".
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from _results import write_section

HERE = Path(__file__).resolve().parent
STREAM = HERE / "_work" / "kws-real" / "stream"


def score(export: Path, stream: Path) -> dict:
    from edgetune.artifact import open_export
    from edgetune.data.audio import SAMPLE_RATE, stream_audio
    from edgetune.tasks.kws import read_stream_events
    from edgetune.tasks.kws_stream import StreamConfig, score_stream

    art = open_export(export)
    spec = art.meta.spec
    sr, blocks = stream_audio(stream / "stream.wav")
    events = read_stream_events(stream / "stream.json")
    cfg = StreamConfig.from_dict(spec.postprocess)
    return score_stream(art.open_session(), blocks, events, list(spec.labels), cfg, sr=SAMPLE_RATE,
                        window=int(spec.preprocessing["samples"]), target_recall=0.85)


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
             "| run | export | threshold | hits | false accepts | best recall (threshold, false accepts) |",
             "|---|---|---|---|---|---|"]
    for run in runs:
        for target in ("cpu-fp32", "cpu-int8"):
            export = run / "export" / target
            if not (export / "export.json").is_file():
                continue
            r = score(export, STREAM)
            at = r["at_threshold"]
            sweep_best = r.get("at_recall_0.85")
            best = (f"{sweep_best['recall']:.2f} ({sweep_best['threshold']}, {sweep_best['false_accepts']})"
                    if sweep_best else "0.85 not reached")
            lines.append(f"| {run} | {target} | {at['threshold']} | {at['hits']}/{r['events']} | {at['false_accepts']} "
                         f"| {best} |")
            print(lines[-1], flush=True)
    write_section("kws-real", "\n".join(lines))


if __name__ == "__main__":
    main([Path(a) for a in sys.argv[1:]])
