"""Which nodes of an exported YOLO graph stay in float when it is quantised to int8.

The Detect head ends in one tensor that concatenates box coordinates in pixels (0…640) with
class scores (0…1); DFL takes a softmax over 16 bins and decodes them against anchor grids.
Quantised with the rest, the shared Concat scale rounds every score to zero — the collapse of
ultralytics#22644 (measured here: mAP50-95 0.78 → 0.00). Measured on fine-tuned yolo11n
(benchmarks/RESULTS.md), keeping the decode (DFL, anchors, Concat, Sigmoid) and the final 1x1
box/class convolutions in float holds fp32 accuracy and is the fastest of the safe choices:

    int8 everywhere       0.000 mAP50-95   17.4 ms
    + decode in float     0.784            19.6 ms
    + final convs float   0.791            17.6 ms   ← default (fp32: 0.784 at 25.9 ms)
    whole head float      0.793            20.7 ms
"""

from __future__ import annotations

import re
from pathlib import Path


def sensitive_head_nodes(model_path: Path) -> tuple[list[str], dict]:
    """Node names to keep in float, and a record of what was kept (for export.json)."""
    import onnx

    nodes = onnx.load(str(model_path), load_external_data=False).graph.node
    names = [n.name for n in nodes]
    dfl = next((n for n in names if "/dfl/" in n), None)
    if dfl is None:  # not an ultralytics Detect head: nothing task-specific to keep
        return [], {"head": None}
    head = dfl.split("/dfl/")[0] + "/"
    branch = re.compile(re.escape(head) + r"cv[23]\.\d+/")  # the box (cv2) and class (cv3) conv branches
    final = re.compile(re.escape(head) + r"cv[23]\.\d+/cv[23]\.\d+\.2/")  # their last 1x1 convs
    keep = [n for n in names if n.startswith(head) and (not branch.match(n) or final.match(n))]
    convs = [n.name for n in nodes if n.name in set(keep) and n.op_type == "Conv"]
    return keep, {"head": head.strip("/"), "kept_float_nodes": len(keep), "kept_float_convs": convs,
                  "why": "box/class final convs, DFL and box decoding stay float: quantised, the shared "
                         "output scale zeroes the class scores (ultralytics#22644)"}
