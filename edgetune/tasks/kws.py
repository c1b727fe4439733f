"""The kws Task: Speech Commands data, top-1 over keywords + _unknown_ + _silence_, streaming.

Artefacts take one window of raw audio (1, 16000) as float in [-1, 1] and return class logits;
the front end (STFT, mel, log) is inside the graph. Everything here is numpy + soundfile, so a
device with the light install evaluates, predicts and streams exactly as the export gate did.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgetune.data import speech_commands as sc
from edgetune.data.audio import SAMPLE_RATE, fit_length, read_audio, require_rate, stream_audio
from edgetune.errors import DataError
from edgetune.progress import track
from edgetune.tasks import calibration_size, load_hashed, softmax_top, stratified


class AudioWindow:
    """File or bytes → (1, samples) float32: mono, 16 kHz (refused otherwise), padded/cut."""

    def __init__(self, samples: int) -> None:
        self.samples = samples

    def __call__(self, source: Path | bytes) -> np.ndarray:
        audio, sr = read_audio(source)
        require_rate(sr, source if not isinstance(source, bytes) else "input")
        return fit_length(audio, self.samples)[None].astype(np.float32)


class KwsTask:
    name = "kws"
    metric_name = "top1"
    output_name = "logits"
    onnx_dynamo = True  # torch.stft exports only through the dynamo exporter
    half_precision_compute = False
    default_batch = 64

    def finetune(self, config: Any, *, quiet: bool = False) -> dict[str, Any]:
        from edgetune.train.kws import finetune_kws

        return finetune_kws(config, quiet=quiet)

    def load_model(self, manifest: dict[str, Any], checkpoint: Path) -> Any:
        from edgetune.train.kws import load_trained

        return load_trained(manifest, checkpoint)

    @staticmethod
    def output_scale(manifest: dict[str, Any]) -> None:
        return None

    @staticmethod
    def io_shapes(meta: dict[str, Any]) -> tuple[tuple[int | None, ...], tuple[int | None, ...]]:
        return (None, int(meta["preprocessing"]["samples"])), (None, len(meta["labels"]))

    @staticmethod
    def quantize_keep_float(fp32: Path) -> tuple[list[str], dict]:
        """The front end stays float: every node before the first convolution (STFT, power, mel
        MatMul, log, top-dB). Its dB-scale dynamic range is what int8 would crush."""
        import onnx

        nodes = onnx.load(str(fp32), load_external_data=False).graph.node
        first_conv = next((i for i, n in enumerate(nodes) if n.op_type == "Conv"), len(nodes))
        keep = [n.name for n in nodes[:first_conv] if n.name]
        return keep, {"front_end_nodes": len(keep),
                      "why": "log-mel front end (STFT, mel MatMul, log, top-dB) kept in float"}

    @staticmethod
    def preprocess(manifest: dict[str, Any]) -> AudioWindow:
        return AudioWindow(int(manifest["preprocessing"]["samples"]))

    @staticmethod
    def data(manifest: dict[str, Any], override: str | None = None) -> sc.KwsData:
        d = manifest["data"]
        root = Path(override or d["root"])
        layout = d.get("layout", "train/val")
        val_split = float(layout.split(":", 1)[1]) if layout.startswith("split:") and not override else None
        data = sc.scan_kws(root, keywords=d.get("keywords"), val_split=val_split, seed=int(manifest["seed"]))
        if data.classes != list(manifest["labels"]):
            raise DataError(f"classes in {root} ({', '.join(data.classes)}) differ from the run's labels "
                            f"({', '.join(manifest['labels'])})", hint="point --data at the run's data set")
        return data

    def __init__(self) -> None:
        self._validation: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}

    def validation(self, manifest: dict[str, Any], data: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The val clips + val silence that training measured on (same seed, same noise part).

        Kept per data set for the process: export evaluates fp32 and the artefact on the same
        clips, and reading ~500 WAVs plus the noise twice was most of a small export's time."""
        d = manifest["data"]
        key = (data or d["root"], tuple(d.get("keywords") or ()), d.get("layout"), int(manifest["seed"]),
               int(manifest["preprocessing"]["samples"]), d.get("hash"))
        if key not in self._validation:
            ds = self.data(manifest, data)
            clips, _ = sc.load_clips(ds.val.files, ds.root, int(manifest["preprocessing"]["samples"]))
            seed = int(manifest["seed"])
            noises = sc.load_noise(ds.noise_files, ds.root) if ds.noise_files else sc.generated_noise(seed)
            self._validation = {key: sc.validation_set(ds, noises, clips, seed)}  # one data set at a time
        return self._validation[key]

    def val_files(self, manifest: dict[str, Any], *, count: int, data: str | None = None) -> list[Path]:
        ds = self.data(manifest, data)
        return [ds.val.files[i] for i in stratified(ds.val.labels, count, seed=0)]

    def export_inputs(self, manifest: dict[str, Any], *, count: int, data: str | None = None) -> list[np.ndarray]:
        pre = self.preprocess(manifest)
        return [pre(p) for p in self.val_files(manifest, count=count, data=data)]

    def calibration_inputs(self, manifest: dict[str, Any], *, size: int | None, seed: int,
                           default: int = 200) -> tuple[list[np.ndarray], dict]:
        """Per-class stratified training clips (keywords and _unknown_), file hash recorded."""
        ds = self.data(manifest)
        size = calibration_size(size, len(ds.train.files), default)
        picks = stratified(ds.train.labels, size, seed=seed)
        inputs, digest = load_hashed([ds.train.files[i] for i in picks], ds.root, self.preprocess(manifest))
        per_class = np.bincount(ds.train.labels[picks], minlength=len(ds.classes) - 1)
        return inputs, {"size": len(picks), "seed": seed, "split": "train", "strategy": "stratified per class",
                        "indices": [int(i) for i in picks], "hash": digest, "per_class_min": int(per_class.min())}

    def predict(self, session: Any, meta: dict[str, Any], source: Path | bytes) -> dict[str, Any]:
        return softmax_top(session.run(self.preprocess(meta)(source))[0][0], meta["labels"], int(meta.get("top_k", 3)))

    @staticmethod
    def describe(result: dict[str, Any]) -> str:
        if "detections" in result:
            if not result["detections"]:
                return "no keyword detected"
            return "; ".join(f"{d['label']} at {d['time_s']:.2f}s ({d['score']:.2f})" for d in result["detections"])
        return ", ".join(f"{t['label']} {t['score']:.3f}" for t in result["top"])

    def stream(self, session: Any, meta: dict[str, Any], path: Path, cfg: Any) -> dict[str, Any]:
        """Detections with timestamps in a long recording (see edgetune.kws_stream)."""
        from edgetune.kws_stream import detect, smoothed_posteriors

        sr, blocks = stream_audio(path)  # any length: read block by block
        require_rate(sr, path)
        window = int(meta["preprocessing"]["samples"])
        times, sm, seconds, n = smoothed_posteriors(session, blocks, cfg, sr=sr, window=window)
        return {"detections": detect(times, sm, meta["labels"], cfg, window / sr), "audio_s": round(n / sr, 2),
                "real_time_factor": round(seconds / max(n / sr, 1e-9), 5), "stream_config": cfg.to_dict()}

    def evaluate(self, session: Any, manifest: dict[str, Any], *, data: str | None = None,
                 quiet: bool = True) -> dict[str, Any]:
        """Top-1 of an artefact on the val clips + val silence, one window at a time."""
        clips, labels = self.validation(manifest, data)
        preds = np.array([int(np.argmax(session.run(c[None])[0])) for c in
                          track(clips, total=len(clips), desc="evaluate", quiet=quiet)], dtype=np.int64)
        n = len(manifest["labels"])
        confusion = np.zeros((n, n), dtype=np.int64)
        np.add.at(confusion, (labels, preds), 1)
        return {self.metric_name: float((preds == labels).mean()), "n": int(len(labels)), "confusion": confusion.tolist()}

    def bench_extra(self, session: Any, manifest: dict[str, Any], meta: dict[str, Any], *,
                    data: str | None = None) -> dict[str, Any]:
        """False accepts per hour, miss rate and real-time factor on the data set's stream
        (stream/stream.wav + stream.json, as `edgetune data kws-synth` writes)."""
        from edgetune.kws_stream import StreamConfig, score_stream

        root = Path(data or manifest["data"]["root"])
        wav, labels_file = root / "stream" / "stream.wav", root / "stream" / "stream.json"
        if not (wav.is_file() and labels_file.is_file()):
            return {"stream": f"no stream/stream.wav + stream.json under {root}: false accepts not measured"}
        sr, blocks = stream_audio(wav)
        require_rate(sr, wav)
        events = _stream_events(labels_file)
        cfg = StreamConfig.from_dict(meta.get("postprocess"))
        return {"stream": score_stream(session, blocks, events, manifest["labels"], cfg, sr=SAMPLE_RATE,
                                       window=int(manifest["preprocessing"]["samples"]))}


def _stream_events(path: Path) -> list[dict[str, Any]]:
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
