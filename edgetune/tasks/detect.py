"""The detect Task: YOLO data sets, mAP50-95, artefact evaluation and prediction without torch.

Artefacts take a letterboxed float RGB image and return the raw head (1, 4 + nc, anchors);
NMS and box mapping happen here in numpy (`edgetune.tasks.boxes`), so a device with the light install
decodes the same way the export gate measured.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgetune.contract import DataRef, Manifest, ModelSpec
from edgetune.data.yolo import DetSample, YoloDataset, load_yolo_dataset
from edgetune.errors import DataError
from edgetune.fsutil import atomic_path
from edgetune.preprocess import Letterbox, open_rgb
from edgetune.progress import track
from edgetune.tasks.base import Task, calibration_size, check_classes, load_hashed
from edgetune.tasks.boxes import DetectionScorer, NmsConfig, nms, xywh_to_xyxy

# ultralytics' validation settings: every candidate above 0.001, one box per class per anchor.
EVAL_NMS = NmsConfig(conf=0.001, iou=0.7, max_det=300, multi_label=True)


class DetectTask(Task):
    name = "detect"
    output_name = "output0"
    default_batch = 16  # ultralytics' default
    # ultralytics' own default. A new detection head's mAP can sit near 0 for the first epochs of
    # a small set (ultralytics warms up for at least 100 iterations): with patience 5, a 60-epoch
    # run on 9 microscopy tiles stopped after 6 epochs at mAP50-95 0.001, where 60 epochs reach
    # 0.56 (benchmarks/RESULTS.md "detect-suite"; the composed tuning set never stopped early).
    default_patience = 100
    layout = "yolo"
    int8_float_parts = ("detect-head",)

    def output_scale(self, spec: ModelSpec) -> np.ndarray:
        """|PyTorch − ONNX| per output row: box coordinates (rows 0-3, input pixels) divided by the
        input size, class scores as they are — one tolerance (1e-3) for both. In raw pixels fp32
        round-off reached 0.022 px at 320 px on a fine-tuned yolo11n (DFL softmax, ×stride)."""
        rows = np.ones((1, 4 + len(spec.labels), 1), dtype=np.float64)
        rows[0, :4] = float(spec.preprocessing["size"])
        return rows

    def io_shapes(self, spec: ModelSpec) -> tuple[tuple[int | None, ...], tuple[int | None, ...]]:
        size = int(spec.preprocessing["size"])
        return (None, 3, size, size), (None, 4 + len(spec.labels), None)

    # -- training (torch + ultralytics, imported lazily) --------------------------------------
    def finetune(self, config: Any, *, quiet: bool = False) -> dict[str, Any]:
        from edgetune.train.detector import finetune_detector

        return finetune_detector(config, quiet=quiet)

    def load_model(self, manifest: Manifest, checkpoint: Path) -> Any:
        from edgetune.train.detector import load_trained

        return load_trained(checkpoint, manifest.checkpoint_sha256)

    def quantize_keep_float(self, fp32: Path) -> tuple[list[str], dict]:
        from edgetune.export.detect_head import sensitive_head_nodes

        return sensitive_head_nodes(fp32)

    # -- data of an existing run --------------------------------------------------------------
    def preprocess(self, spec: ModelSpec) -> Letterbox:
        return Letterbox.from_dict(spec.preprocessing)

    def open_data(self, spec: ModelSpec, data: DataRef) -> YoloDataset:
        if not data.yaml:
            raise DataError("this run records no data.yaml", hint="pass --data DATA.yaml")
        ds = load_yolo_dataset(Path(data.yaml))
        check_classes(ds.names, spec, ds.yaml_path, "data.yaml")
        return ds

    def val_files(self, spec: ModelSpec, data: DataRef, *, count: int) -> list[Path]:
        """`count` validation images evenly spaced through the split (deterministic)."""
        val = self.open_data(spec, data).splits["val"]
        picks = np.unique(np.linspace(0, len(val) - 1, min(count, len(val))).round().astype(int))
        return [val[i].image for i in picks]

    def calibration_inputs(self, spec: ModelSpec, data: DataRef, *, size: int | None,
                           default: int = 200) -> tuple[list[np.ndarray], dict]:
        """A seeded random subset of training images, letterboxed as at inference; indices and a
        hash of the files recorded so the calibration can be reproduced and audited."""
        ds = self.open_data(spec, data)
        train, seed = ds.splits["train"], data.seed
        size = calibration_size(size, len(train), default)
        picks = np.sort(np.random.default_rng(seed).permutation(len(train))[:size])
        inputs, digest = load_hashed([train[i].image for i in picks], ds.root, self.preprocess(spec))
        boxes = np.concatenate([train[i].boxes[:, 0] for i in picks]).astype(int)
        per_class = np.bincount(boxes, minlength=ds.nc)
        return inputs, {"size": int(size), "seed": seed, "split": "train", "strategy": "seeded uniform sample",
                        "indices": [int(i) for i in picks], "hash": digest,
                        "per_class_min": int(per_class.min()), "boxes_per_class": per_class.tolist()}

    # -- artefacts ---------------------------------------------------------------------------
    @staticmethod
    def _detect(session: Any, pre: Letterbox, source: Path | bytes, cfg: NmsConfig) -> tuple[np.ndarray, tuple[int, int]]:
        img = pre.open(source)
        x, geom = pre.apply(img)
        det = nms(session.run(x)[0][0], cfg)
        det[:, :4] = pre.unmap(det[:, :4], geom, *img.size)
        return det, img.size

    def evaluate(self, session: Any, spec: ModelSpec, data: DataRef, *, quiet: bool = True) -> dict[str, Any]:
        """mAP50-95 and mAP50 of an artefact on the val split (ultralytics' definitions, at the
        artefact's true letterbox shape: no rect batching)."""
        val = self.open_data(spec, data).splits["val"]
        pre = self.preprocess(spec)
        scorer = DetectionScorer()
        for s in track(val, total=len(val), desc="evaluate", quiet=quiet):
            det, (w, h) = self._detect(session, pre, s.image, EVAL_NMS)
            scorer.add(det, s.boxes[:, 0], _gt_xyxy(s, w, h))
        r = scorer.result()
        return {self.metric_name: r["map50_95"], "map50": r["map50"], "n": scorer.images, "labels": r["labels"],
                "pr_curve": r["pr_curve"]}

    def predict(self, session: Any, spec: ModelSpec, source: Path | bytes, *, top_k: int = 3) -> dict[str, Any]:
        """Boxes above the card's confidence, after NMS, in image pixels (`top_k` is for labels)."""
        cfg = NmsConfig.from_dict(spec.postprocess or {})
        det, (w, h) = self._detect(session, self.preprocess(spec), source, cfg)
        labels = spec.labels
        return {"size": [w, h], "boxes": [
            {"label": labels[int(d[5])], "class": int(d[5]), "score": round(float(d[4]), 4),
             "xyxy": [round(float(v), 1) for v in d[:4]]} for d in det]}

    def describe(self, result: dict[str, Any]) -> str:
        if not result["boxes"]:
            return "no objects above the confidence threshold"
        return "; ".join(f"{b['label']} {b['score']:.2f} [{', '.join(f'{v:.0f}' for v in b['xyxy'])}]"
                         for b in result["boxes"])

    @staticmethod
    def draw(source: Path, result: dict[str, Any], out: Path) -> None:
        """The image with its boxes and labels, written to `out` (format from the suffix)."""
        from PIL import ImageDraw

        img = open_rgb(source)
        draw = ImageDraw.Draw(img)
        width = max(2, round(max(img.size) / 300))
        palette = [(255, 56, 56), (56, 56, 255), (56, 200, 56), (255, 157, 151), (255, 178, 29), (207, 210, 49),
                   (72, 249, 10), (26, 147, 52), (0, 212, 187), (44, 153, 168)]
        for b in result["boxes"]:
            color = palette[b["class"] % len(palette)]
            draw.rectangle(b["xyxy"], outline=color, width=width)
            text = f"{b['label']} {b['score']:.2f}"
            x0, y0 = b["xyxy"][0], max(0, b["xyxy"][1] - 12)
            draw.rectangle(draw.textbbox((x0, y0), text), fill=color)
            draw.text((x0, y0), text, fill=(255, 255, 255))
        # Atomic: on a full disk the earlier file stays and the error is raised (exit 8), never a
        # truncated image reported as saved.
        fmt = {".jpg": "JPEG", ".jpeg": "JPEG"}.get(out.suffix.lower(), "PNG")
        with atomic_path(out) as tmp:
            img.save(tmp, format=fmt)


def _gt_xyxy(sample: DetSample, width: int, height: int) -> np.ndarray:
    b = xywh_to_xyxy(sample.boxes[:, 1:5].astype(np.float64))
    return b * np.array([width, height, width, height])


TASK = DetectTask()
