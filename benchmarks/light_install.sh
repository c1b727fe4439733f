#!/usr/bin/env bash
# The light install as a device gets it: build the wheel, install it into a fresh venv with its
# base dependencies only (no torch, no ultralytics), copy one export folder elsewhere, and run
# `bench` and `predict` from it. Writes the "light-install" section of benchmarks/RESULTS.md.
#
#     bash benchmarks/light_install.sh
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=$(mktemp -d /tmp/edgetune-light.XXXX)
trap 'rm -rf "$WORK"' EXIT
SRC=benchmarks/_work/export/EfficientNet-Lite0/run/export/cpu-int8
IMG=$(ls benchmarks/_work/fm_k100/val/sneaker/* | head -1)

.venv/bin/pip wheel --quiet --no-deps . -w "$WORK/dist"
python3 -m venv "$WORK/venv"
t0=$(date +%s)
"$WORK/venv/bin/pip" install --quiet --disable-pip-version-check "$WORK"/dist/edgetune-*.whl 2>&1 | grep -v "is ignored: it is neither" || true
t1=$(date +%s)
cp -r "$SRC" "$WORK/cpu-int8"
cp "$IMG" "$WORK/photo.png"
cd "$WORK"   # away from the source tree: profiles must come from the wheel
export EDGETUNE_CACHE="$WORK/cache"   # a device's empty cache: no reference models built there
if venv/bin/python -c "import torch" 2>/dev/null; then echo "torch is installed: not a light install"; exit 1; fi
if venv/bin/python -c "import ultralytics" 2>/dev/null; then echo "ultralytics is installed"; exit 1; fi
venv/bin/edgetune profiles > profiles.txt
venv/bin/edgetune bench cpu-int8 --profile raspberry-pi-5 --json > bench.json
venv/bin/edgetune predict cpu-int8 photo.png --json > predict.json
SIZE=$(du -sm venv | cut -f1)
cd - > /dev/null
venv_py=.venv/bin/python
$venv_py - "$WORK" "$SIZE" "$((t1 - t0))" <<'PY'
import json, sys
from pathlib import Path
sys.path.insert(0, "benchmarks")
from _results import write_section

work, size, secs = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
b = json.loads((work / "bench.json").read_text())
p = json.loads((work / "predict.json").read_text())
profiles = (work / "profiles.txt").read_text().count("\n") - 2
top = p["predictions"][0]["top"][0]
write_section("light-install", "\n".join([
    "## Light install (what a device runs)", "",
    "`bash benchmarks/light_install.sh` — the wheel from `pip wheel --no-deps .` installed into a fresh venv "
    "with its base dependencies only, then `bench` and `predict` run from a copied export folder outside "
    "the source tree (EfficientNet-Lite0 cpu-int8, profile raspberry-pi-5).", "",
    f"- venv size {size} MB, pip install {secs} s; `import torch` and `import ultralytics` fail there, as on a device",
    f"- `edgetune profiles` lists {profiles} profiles from the wheel's share/edgetune/profiles",
    f"- bench: p50 {b['latency_ms']['p50']:.2f} ms, peak RSS {b['peak_rss_mb']:.0f} MB, pass {b['pass']}, "
    f"metric from {b['metric_source']}",
    f"- estimate: {b['estimate']['reason'] if not b['estimate']['available'] else 'available'}",
    f"- predict: top-1 {top['label']} ({top['score']:.3f}) on a val sneaker",
]))
print(open("benchmarks/RESULTS.md").read().split("<!-- light-install:begin -->")[1].split("<!-- light-install:end -->")[0])
PY
