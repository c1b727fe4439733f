"""Box post-processing and detection metrics in numpy, so an exported detector is decoded and
scored on a device without torch.

NMS and mAP follow ultralytics' definitions (`non_max_suppression`, `match_predictions`,
`ap_per_class`: greedy class-aware NMS; IoU thresholds 0.50:0.05:0.95; 101-point interpolated
AP averaged over the classes present in the labels) — tests check the numbers against
ultralytics' own functions on the same predictions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
MAX_WH = 7680.0
_trapezoid = getattr(np, "trapezoid", None) or np.trapz  # numpy 2 renamed trapz  # class offset for class-aware NMS in one pass (ultralytics' trick)


@dataclass(frozen=True)
class NmsConfig:
    conf: float = 0.25
    iou: float = 0.7
    max_det: int = 300
    multi_label: bool = False
    max_candidates: int = 30000

    @classmethod
    def from_dict(cls, d: dict) -> NmsConfig:
        return cls(**{k: d[k] for k in ("conf", "iou", "max_det", "multi_label") if k in d})


def xywh_to_xyxy(b: np.ndarray) -> np.ndarray:
    out = np.empty_like(b)
    out[..., :2] = b[..., :2] - b[..., 2:4] / 2
    out[..., 2:4] = b[..., :2] + b[..., 2:4] / 2
    return out


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, 4) × (m, 4) xyxy → (n, m) IoU."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area_a = (a[:, 2:] - a[:, :2]).prod(-1)
    area_b = (b[:, 2:] - b[:, :2]).prod(-1)
    return inter / (area_a[:, None] + area_b[None, :] - inter + 1e-9)


def _greedy_nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        if order.size == 1:
            break
        ious = box_iou(boxes[i: i + 1], boxes[order[1:]])[0]
        order = order[1:][ious <= iou]
    return np.array(keep, dtype=np.int64)


def nms(pred: np.ndarray, cfg: NmsConfig) -> np.ndarray:
    """Raw head output (4 + nc, anchors) with xywh boxes and class scores → (k, 6) rows of
    x0 y0 x1 y1 score class in input pixels, best first."""
    p = pred.T  # (anchors, 4 + nc)
    scores = p[:, 4:]
    if cfg.multi_label:
        i, j = np.nonzero(scores > cfg.conf)
        cand = np.concatenate([xywh_to_xyxy(p[i, :4]), scores[i, j, None], j[:, None].astype(p.dtype)], 1)
    else:
        j = scores.argmax(1)
        s = scores[np.arange(len(scores)), j]
        m = s > cfg.conf
        cand = np.concatenate([xywh_to_xyxy(p[m, :4]), s[m, None], j[m, None].astype(p.dtype)], 1)
    if not len(cand):
        return np.zeros((0, 6), dtype=np.float32)
    if len(cand) > cfg.max_candidates:
        cand = cand[np.argsort(-cand[:, 4])[: cfg.max_candidates]]
    keep = _greedy_nms(cand[:, :4] + cand[:, 5:6] * MAX_WH, cand[:, 4], cfg.iou)[: cfg.max_det]
    return cand[keep].astype(np.float32)


def match_predictions(pred_cls: np.ndarray, true_cls: np.ndarray, iou: np.ndarray) -> np.ndarray:
    """(n_pred, 10) bool: prediction is a true positive at each IoU threshold.

    COCO-style greedy matching as ultralytics ≥ 8.4 does it: predictions in the given order (best
    score first, as NMS returns them) each claim the best still-unclaimed label of their class."""
    iou = iou * (true_cls[:, None] == pred_cls[None, :])
    correct = np.zeros((len(pred_cls), len(IOU_THRESHOLDS)), dtype=bool)
    claimed = np.zeros((iou.shape[0], len(IOU_THRESHOLDS)), dtype=bool)
    cols = np.arange(len(IOU_THRESHOLDS))
    for j in np.flatnonzero((iou >= IOU_THRESHOLDS.min()).any(0)):
        available = np.where(claimed, 0, iou[:, j, None])
        k = available.argmax(0)
        correct[j] = available[k, cols] >= IOU_THRESHOLDS
        claimed[k, cols] |= correct[j]
    return correct


RECALL_GRID = np.linspace(0, 1, 101)


def _envelope(recall: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """Interpolated precision on RECALL_GRID (the monotone envelope AP integrates)."""
    # Precision falls to 0 right after the last recall reached (ultralytics ≥ 8.4), so the curve
    # is not interpolated towards recall 1.0 that was never achieved.
    mrec = np.concatenate(([0.0], recall, [recall[-1] if len(recall) else 1.0], [1.0]))
    mpre = np.flip(np.maximum.accumulate(np.flip(np.concatenate(([1.0], precision, [0.0], [0.0])))))
    return np.interp(RECALL_GRID, mrec, mpre)


def ap_per_class(tp: np.ndarray, conf: np.ndarray, pred_cls: np.ndarray,
                 target_cls: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AP (n_classes_present, 10), one row per class present in the labels, as ultralytics computes
    it, and each class's interpolated precision on RECALL_GRID at IoU 0.5 (the PR curve)."""
    order = np.argsort(-conf, kind="stable")
    tp, pred_cls = tp[order], pred_cls[order]
    classes, counts = np.unique(target_cls, return_counts=True)
    ap = np.zeros((len(classes), tp.shape[1]))
    curves = np.zeros((len(classes), len(RECALL_GRID)))
    for ci, c in enumerate(classes):
        sel = pred_cls == c
        if not sel.any():
            continue
        tpc = tp[sel].cumsum(0)
        fpc = (1 - tp[sel]).cumsum(0)
        recall = tpc / (counts[ci] + 1e-16)
        precision = tpc / (tpc + fpc)
        for k in range(tp.shape[1]):
            env = _envelope(recall[:, k], precision[:, k])
            ap[ci, k] = float(_trapezoid(env, RECALL_GRID))
            if k == 0:
                curves[ci] = env
    return ap, curves


class DetectionScorer:
    """Accumulates predictions and labels image by image; `result()` gives mAP50-95 and mAP50."""

    def __init__(self) -> None:
        self._tp: list[np.ndarray] = []
        self._conf: list[np.ndarray] = []
        self._pcls: list[np.ndarray] = []
        self._tcls: list[np.ndarray] = []
        self.images = 0

    def add(self, det: np.ndarray, gt_cls: np.ndarray, gt_xyxy: np.ndarray) -> None:
        """det: (k, 6) x0 y0 x1 y1 score class; gt in the same pixel space."""
        self.images += 1
        self._tcls.append(gt_cls.astype(np.int64))
        if not len(det):
            return
        if len(gt_cls):
            tp = match_predictions(det[:, 5].astype(np.int64), gt_cls.astype(np.int64), box_iou(gt_xyxy, det[:, :4]))
        else:
            tp = np.zeros((len(det), len(IOU_THRESHOLDS)), dtype=bool)
        self._tp.append(tp)
        self._conf.append(det[:, 4])
        self._pcls.append(det[:, 5].astype(np.int64))

    def result(self) -> dict[str, Any]:
        """mAP50-95, mAP50, the label count and the class-mean PR curve at IoU 0.5."""
        target = np.concatenate(self._tcls) if self._tcls else np.zeros(0, np.int64)
        if not self._tp or not len(target):
            return {"map50_95": 0.0, "map50": 0.0, "labels": int(len(target)),
                    "pr_curve": {"recall": RECALL_GRID.tolist(), "precision": [0.0] * len(RECALL_GRID)}}
        ap, curves = ap_per_class(np.concatenate(self._tp).astype(np.float64), np.concatenate(self._conf),
                                  np.concatenate(self._pcls), target)
        return {"map50_95": float(ap.mean()), "map50": float(ap[:, 0].mean()), "labels": int(len(target)),
                "pr_curve": {"recall": RECALL_GRID.round(2).tolist(),
                             "precision": curves.mean(0).round(4).tolist()}}
