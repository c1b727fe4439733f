"""Which nodes of an exported YOLO graph stay in float when it is quantised to int8.

The Detect head ends in one tensor that concatenates box coordinates in pixels (0…640) with
class scores (0…1); DFL takes a softmax over 16 bins and decodes them against anchor grids.
Quantised with the rest, the shared Concat scale rounds every score to zero — the collapse of
ultralytics#22644 (measured here: mAP50-95 0.81 → 0.00). Keeping the decode (DFL, anchors,
Concat, Sigmoid) float fixes that; keeping the final 1x1 box/class convs float too (the default,
as ultralytics#22644 suggests) held fp32 accuracy within 0.7 pt on two data sets
(benchmarks/RESULTS.md D4, `python benchmarks/detect_int8_heads.py RUN...`):

    mAP50-95            set A    set B
    fp32                0.811    0.755
    int8 everywhere     0.000    0.000
    + decode float      0.803    0.749
    + final convs       0.806    0.748   ← default: 18.8 ms vs fp32 27-31 ms (D2, 1 thread)
    whole head float    0.803    0.753

The policies' latencies differ by less than this machine's noise (D4), the whole-head policy
being the slowest where it differs.
"""

from __future__ import annotations

import re
from pathlib import Path

DEFAULT_POLICY = "decode+final"


def conv_branches(head: str) -> re.Pattern[str]:
    """Names inside the Detect head `head` ("/model.23/") that belong to its box (cv2) and class
    (cv3) conv branches, as opposed to the decode after them."""
    return re.compile(re.escape(head) + r"cv[23]\.\d+/")


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
    branch = conv_branches(head)
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
