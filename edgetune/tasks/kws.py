"""The kws Task: Speech Commands data, top-1 over keywords + _unknown_ + _silence_, streaming.

Artefacts take one window of raw audio (1, 16000) as float in [-1, 1] and return class logits;
the front end (STFT, mel, log) is inside the graph. Everything here is numpy + soundfile, so a
device with the light install evaluates, predicts and streams exactly as the export gate did.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgetune.contract import DataRef, Manifest, ModelSpec
from edgetune.data import speech_commands as sc
from edgetune.data.audio import SAMPLE_RATE, fit_length, read_audio, require_rate, stream_audio
from edgetune.errors import DataError
from edgetune.progress import log, track
from edgetune.tasks.base import LabelTask, check_classes

if TYPE_CHECKING:
    from edgetune.tasks.kws_stream import Calibration, StreamConfig


class AudioWindow:
    """File or bytes → (1, samples) float32: mono, 16 kHz (refused otherwise), padded/cut."""

    def __init__(self, samples: int) -> None:
        self.samples = samples

    def __call__(self, source: Path | bytes) -> np.ndarray:
        audio, sr = read_audio(source)
        require_rate(sr, source if not isinstance(source, bytes) else "input")
        return fit_length(audio, self.samples)[None].astype(np.float32)


class KwsTask(LabelTask):
    name = "kws"
    output_name = "logits"
    onnx_dynamo = True  # torch.stft exports only through the dynamo exporter
    half_precision_compute = False
    default_batch = 64
    layout = "train/val"
    int8_float_parts = ("front-end",)

    def __init__(self) -> None:
        self._validation: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}

    def finetune(self, config: Any, *, quiet: bool = False) -> dict[str, Any]:
        from edgetune.train.kws import finetune_kws

        return finetune_kws(config, quiet=quiet)

    def load_model(self, manifest: Manifest, checkpoint: Path) -> Any:
        from edgetune.train.kws import load_trained

        return load_trained(manifest, checkpoint)

    def input_dims(self, spec: ModelSpec) -> tuple[int, ...]:
        return (int(spec.preprocessing["samples"]),)

    def trained_classes(self, spec: ModelSpec) -> int:
        return len(spec.labels) - 1  # _silence_ is made from noise, not read from files

    def quantize_keep_float(self, fp32: Path) -> tuple[list[str], dict]:
        """The front end stays float: every node before the first convolution (STFT, power, mel
        MatMul, log, top-dB). Its dB-scale dynamic range is what int8 would crush."""
        import onnx

        nodes = onnx.load(str(fp32), load_external_data=False).graph.node
        first_conv = next((i for i, n in enumerate(nodes) if n.op_type == "Conv"), len(nodes))
        keep = [n.name for n in nodes[:first_conv] if n.name]
        return keep, {"front_end_nodes": len(keep),
                      "why": "log-mel front end (STFT, mel MatMul, log, top-dB) kept in float"}

    def preprocess(self, spec: ModelSpec) -> AudioWindow:
        return AudioWindow(int(spec.preprocessing["samples"]))

    def open_data(self, spec: ModelSpec, data: DataRef) -> sc.KwsData:
        ds = sc.scan_kws(Path(data.root), keywords=list(data.keywords) if data.keywords else None,
                         val_split=data.val_split, seed=data.seed)
        check_classes(ds.classes, spec, ds.root, "data set")
        return ds

    def split(self, spec: ModelSpec, data: DataRef, name: str) -> tuple[sc.KwsData, list[Path], np.ndarray]:
        ds = self.open_data(spec, data)
        part = ds.train if name == "train" else ds.val
        return ds, list(part.files), part.labels

    def validation(self, spec: ModelSpec, data: DataRef) -> tuple[np.ndarray, np.ndarray]:
        """The val clips + val silence that training measured on (same seed, same noise part).

        Kept per data set for the process: export evaluates fp32 and the artefact on the same
        clips, and reading ~500 WAVs plus the noise twice was most of a small export's time."""
        samples = int(spec.preprocessing["samples"])
        key = (data.root, data.keywords, data.layout, data.seed, samples, data.hash)
        if key not in self._validation:
            ds = self.open_data(spec, data)
            clips, _ = sc.load_clips(ds.val.files, ds.root, samples)
            noises = sc.load_noise(ds.noise_files, ds.root) if ds.noise_files else sc.generated_noise(data.seed)
            self._validation = {key: sc.validation_set(ds, noises, clips, data.seed)}  # one data set at a time
        return self._validation[key]

    def describe(self, result: dict[str, Any]) -> str:
        if "detections" in result:
            if not result["detections"]:
                return "no keyword detected"
            return "; ".join(f"{d['label']} at {d['time_s']:.2f}s ({d['score']:.2f})" for d in result["detections"])
        return super().describe(result)

    def stream(self, session: Any, spec: ModelSpec, path: Path, cfg: Any) -> dict[str, Any]:
        """Detections with timestamps in a long recording (see edgetune.tasks.kws_stream)."""
        from edgetune.tasks.kws_stream import detect, smoothed_posteriors

        sr, blocks = stream_audio(path)  # any length: read block by block
        require_rate(sr, path)
        window = int(spec.preprocessing["samples"])
        times, sm, seconds, n = smoothed_posteriors(session, blocks, cfg, sr=sr, window=window)
        return {"detections": detect(times, sm, list(spec.labels), cfg, window / sr), "audio_s": round(n / sr, 2),
                "real_time_factor": round(seconds / max(n / sr, 1e-9), 5), "stream_config": cfg.to_dict()}

    def evaluate(self, session: Any, spec: ModelSpec, data: DataRef, *, quiet: bool = True) -> dict[str, Any]:
        """Top-1 of an artefact on the val clips + val silence, one window at a time."""
        clips, labels = self.validation(spec, data)
        preds = np.array([int(np.argmax(session.run(c[None])[0])) for c in
                          track(clips, total=len(clips), desc="evaluate", quiet=quiet)], dtype=np.int64)
        return self.top1(preds, labels, len(spec.labels))

    def tune_postprocess(self, artefact: Path, spec: ModelSpec, data: DataRef,
                         *, quiet: bool = True) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """Per-keyword stream thresholds calibrated on DATA/negatives/ (`kws_stream.calibrate`), on
        this artefact's own posteriors: an int8 model's scores are what a device compares."""
        from edgetune.runtime import open_session
        from edgetune.tasks.kws_stream import StreamConfig

        recordings = negative_recordings(Path(data.root))
        if not recordings:
            log(f"stream thresholds: not calibrated, {Path(data.root) / sc.NEGATIVES_DIR} holds no .wav; every keyword "
                f"keeps the card's one threshold. `edgetune data kws-negatives {data.root}` adds 28 min of real "
                "spoken words to calibrate on", quiet=quiet)
            return None
        t0 = time.perf_counter()
        cal = calibrate_on(open_session(artefact), list(spec.labels), int(spec.preprocessing["samples"]),
                           StreamConfig.from_dict(spec.postprocess), recordings, quiet=quiet)
        record = {**cal.to_dict(), "recordings": [str(w.relative_to(data.root)) for w, _ in recordings],
                  "seconds": round(time.perf_counter() - t0, 2)}
        return {"thresholds": cal.thresholds}, record

    def bench_extra(self, session: Any, spec: ModelSpec, data: DataRef) -> dict[str, Any]:
        """False accepts per hour, miss rate and real-time factor on the data set's stream
        (stream/stream.wav + stream.json, as `edgetune data kws-synth` writes)."""
        from edgetune.tasks.kws_stream import StreamConfig, score_stream

        root = Path(data.root)
        wav, labels_file = root / sc.STREAM_DIR / "stream.wav", root / sc.STREAM_DIR / "stream.json"
        if not (wav.is_file() and labels_file.is_file()):
            return {"stream": f"no stream/stream.wav + stream.json under {root}: false accepts not measured"}
        sr, blocks = stream_audio(wav)
        require_rate(sr, wav)
        events = read_stream_events(labels_file)
        cfg = StreamConfig.from_dict(spec.postprocess)
        cfg.check()
        return {"stream": score_stream(session, blocks, events, list(spec.labels), cfg, sr=SAMPLE_RATE,
                                       window=int(spec.preprocessing["samples"]))}


def calibrate_on(session: Any, labels: list[str], window: int, cfg: StreamConfig,
                 recordings: list[tuple[Path, list[dict[str, Any]]]], *, quiet: bool = True) -> Calibration:
    """`kws_stream.calibrate` on any model behind the session interface, streamed over
    `recordings` ((wav, keyword events) each, as `negative_recordings` lists them). The bar counts
    audio blocks: half an hour of negatives takes ~50 s on 2 cores."""
    from edgetune.tasks.kws_stream import calibrate, smoothed_posteriors

    scored = []
    for wav, events in recordings:
        sr, blocks = stream_audio(wav)
        require_rate(sr, wav)
        ticks = track(blocks, total=len(blocks), desc=f"stream thresholds ({wav.name})", quiet=quiet)
        times, sm, _, _ = smoothed_posteriors(session, ticks, cfg, sr=sr, window=window)
        scored.append((times, sm, events))
    return calibrate(scored, labels, cfg, window / SAMPLE_RATE)


def negative_recordings(root: Path) -> list[tuple[Path, list[dict[str, Any]]]]:
    """DATA/negatives/*.wav: recordings of the deployment's sound with people talking, and no
    keyword in them, unless a same-named .json lists their keyword events as stream.json does."""
    folder = root / sc.NEGATIVES_DIR
    if not folder.is_dir():
        return []
    return [(wav, read_stream_events(wav.with_suffix(".json")) if wav.with_suffix(".json").is_file() else [])
            for wav in sorted(folder.glob("*.wav"))]


def read_stream_events(path: Path) -> list[dict[str, Any]]:
    """stream.json's keyword events (label, start_s, end_s), checked: a hand-edited file is one line."""
    from edgetune.run import read_json_file

    data = read_json_file(path, what="stream labels", hint="`edgetune data kws-synth` writes stream.json")
    events = data.get("events")
    ok = isinstance(events, list) and all(
        isinstance(e, dict) and isinstance(e.get("label"), str)
        and all(isinstance(e.get(k), (int, float)) and not isinstance(e.get(k), bool) for k in ("start_s", "end_s"))
        for e in events)
    if not ok:
        raise DataError(f"{path}: field 'events' must be a list of {{label, start_s, end_s}}",
                        hint="`edgetune data kws-synth` writes stream.json")
    return events


TASK = KwsTask()
