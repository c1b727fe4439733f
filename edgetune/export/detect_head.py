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

DEFAULT_POLICY = "decode+final"


def head_policies(model_path: Path) -> tuple[dict[str, list[str]], str | None, list]:
    """Candidate float-node sets for an ultralytics Detect head, by policy name, plus the head's
    name prefix and the graph's nodes. Empty sets when the graph has no Detect head (no DFL)."""
    import onnx

    nodes = list(onnx.load(str(model_path), load_external_data=False).graph.node)
    names = [n.name for n in nodes]
    dfl = next((n for n in names if "/dfl/" in n), None)
    if dfl is None:
        return {"none": [], "decode": [], "decode+final": [], "head": []}, None, nodes
    head = dfl.split("/dfl/")[0] + "/"
    branch = re.compile(re.escape(head) + r"cv[23]\.\d+/")  # the box (cv2) and class (cv3) conv branches
    final = re.compile(re.escape(head) + r"cv[23]\.\d+/cv[23]\.\d+\.2/")  # their last 1x1 convs
    in_head = [n for n in names if n.startswith(head)]
    return {"none": [],
            "decode": [n for n in in_head if not branch.match(n)],
            "decode+final": [n for n in in_head if not branch.match(n) or final.match(n)],
            "head": in_head}, head.strip("/"), nodes


def sensitive_head_nodes(model_path: Path, policy: str = DEFAULT_POLICY) -> tuple[list[str], dict]:
    """Node names to keep in float, and a record of what was kept (for export.json)."""
    groups, head, nodes = head_policies(model_path)
    if head is None:  # not an ultralytics Detect head: nothing task-specific to keep
        return [], {"head": None}
    keep = groups[policy]
    convs = [n.name for n in nodes if n.name in set(keep) and n.op_type == "Conv"]
    return keep, {"head": head, "policy": policy, "kept_float_nodes": len(keep), "kept_float_convs": convs,
                  "why": "box/class final convs, DFL and box decoding stay float: quantised, the shared "
                         "output scale zeroes the class scores (ultralytics#22644)"}
