"""The classification suite: edgetune's default against the plain recipes a user would copy, on real
data sets nobody tuned edgetune for (edgetune.data.real_sets says where each comes from).

    python benchmarks/suite.py                       # both halves, every method, at edgetune's chosen size
    python benchmarks/suite.py --half tuning --methods edgetune,adamw-timm --sizes 64,96,128,160,224
    python benchmarks/suite.py --half tuning --methods "edgetune:lr=0.0002+warmup_epochs=3" --sizes 160
    python benchmarks/suite.py --half tuning-few     # the tuning sets at 10 + 5 images a class
    python benchmarks/suite.py --int8                # every set's default run to each int8 target
    python benchmarks/suite.py --write               # RESULTS.md "suite" from every saved result
    python benchmarks/suite.py --write-half reporting   # that half alone, in "suite-reporting"
    python benchmarks/suite.py --write-int8          # the --int8 results alone, in "suite-int8"

Halves: defaults are chosen on TUNING only; REPORTING is run for the report, never to choose.
(Fashion-MNIST and digits are in the tuning half because the earlier defaults were already
chosen on them.)

Per set: K images a class to train, a val split (early stopping and LP-FT's probe use it), and a
held-out test split that only this script reads. Every method gets the same ImageNet
EfficientNet-Lite0 weights, the same epochs, the same image size (the one edgetune's default picks
from the data, unless `@SIZE` overrides it) and the same evaluation (resize + centre crop, as
edgetune's export sees images). Methods:

- edgetune: `edgetune finetune` with its defaults (LP-FT, AdamW, fixed BN statistics, early stop).
- sgd-ref: torchvision's reference classification recipe (train.py): SGD momentum 0.9, lr 0.1 ×
  batch/256, weight decay 1e-4, cosine, RandomResizedCrop(0.08-1) + flip, BN in train mode.
- adamw-timm: timm's usual fine-tune recipe: AdamW lr 1e-3, weight decay 0.05, 1 warm-up epoch +
  cosine, label smoothing 0.1, RandomResizedCrop(0.08-1) + flip + colour jitter 0.4, BN in train
  mode.
- probe: `edgetune finetune --freeze backbone` (linear probe on cached features).
- random: `edgetune finetune --no-pretrained` (what pretraining buys).

Each result: test top-1, its standard error sqrt(p(1-p)/n), wall seconds (training + the val
evaluations the method does; test evaluation excluded). Nothing else runs meanwhile.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from _results import write_section
from torch.nn import functional as F
from torchvision.transforms import v2

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work" / "suite"
MODEL = "efficientnet_lite0"
EPOCHS = 8
BATCH = 32

# set → (train, val, test) images a class
TUNING = {"fashion-mnist": (30, 10, 100), "digits": (30, 10, 100), "textures": (30, 10, 75)}
REPORTING = {"mnist-5k": (30, 10, 100), "glyphs": (10, 5, 40), "faces": (30, 10, 60),
             "aerial-trees": (30, 10, 100)}
# The tuning sets again at glyphs' 10 + 5 images a class: the few-shot regime, chosen on tuning data
# (added after glyphs, the reporting half's only few-shot set, lost to AdamW over 3 seeds).
FEW_SHOT = "-10shot"
TUNING_FEW = {name + FEW_SHOT: (10, 5, test) for name, (_, _, test) in TUNING.items()}
# Glyphs has 36 classes, no tuning set more than 10: the three few-shot tuning sets as one set of
# 23 classes (each class named "<set>-<class>", each keeping its own splits).
MIXES = {"tuning-mix" + FEW_SHOT: tuple(TUNING_FEW)}
TUNING_FEW |= {name: (10, 5, 0) for name in MIXES}  # counts of a mix come from its parts
# A tuning set whose test typefaces are new to its val split, as glyphs' are (lower-case letters,
# test in FreeFont): added after glyphs' loss was traced to checkpoint choice under that shift.
TUNING_FEW["glyphs-lower"] = (10, 5, 40)
HALVES = {"tuning": TUNING, "reporting": REPORTING, "tuning-few": TUNING_FEW}
BOTH = ("tuning", "reporting")  # `--half both`, and the halves `--write` puts in section "suite"


@dataclass
class Result:
    set: str
    method: str
    size: int
    top1: float
    n: int
    seconds: float
    default: bool = False  # edgetune chose the size itself

    @property
    def se(self) -> float:
        return math.sqrt(max(self.top1 * (1 - self.top1), 1e-12) / self.n)


def make_data(name: str, counts: tuple[int, int, int]) -> Path:
    from edgetune.data.real_sets import write

    out = WORK / "data" / name
    if out.is_dir():
        return out
    if name in MIXES:
        import shutil

        for part in MIXES[name]:
            src = make_data(part, TUNING_FEW[part])
            for folder in sorted(p for p in src.glob("*/*") if p.is_dir()):  # split/class
                shutil.copytree(folder, out / folder.parent.name / f"{part.removesuffix(FEW_SHOT)}-{folder.name}")
        return out
    write(name.removesuffix(FEW_SHOT), out, dict(zip(("train", "val", "test"), counts, strict=True)), seed=0)
    return out


def _squares(root: Path, split: str, classes: list[str], pre) -> tuple[np.ndarray, np.ndarray]:
    from edgetune.data.imagefolder import _scan_split, decode_split

    s = _scan_split(root / split, classes, root, split)
    return decode_split(s, pre, root), s.labels


def test_top1(model, data: Path, classes: list[str], pre) -> tuple[float, int]:
    from edgetune.train.classifier import evaluate_top1

    x, y = _squares(data, "test", classes, pre)
    return evaluate_top1(model, x, y, pre), len(y)


def run_edgetune(name: str, data: Path, method: str, size: int | None) -> Result:
    from edgetune.run import RunDir
    from edgetune.train.classifier import finetune_classifier, load_trained, preprocess_for
    from edgetune.train.config import TrainConfig
    from edgetune.training import default_freeze
    from edgetune.zoo import get_card

    base, _, overrides = method.partition(":")  # "edgetune:lr=1e-3+bn=train": a variant tried on the tuning half
    extra = {"probe": {"freeze": "backbone"}, "random": {"pretrained": False}}.get(base, {})
    extra = {"freeze": default_freeze(get_card(MODEL), extra.get("pretrained", True)), **extra}  # as `finetune` resolves it
    fields = TrainConfig.__dataclass_fields__
    for item in filter(None, overrides.split("+")):
        key, value = item.split("=")
        kind = {"lr": float, "weight_decay": float, "label_smoothing": float, "warmup_epochs": float,
                "patience": int, "backbone_lr_factor": float, "seed": int}.get(key, str)
        if key not in fields:
            raise SystemExit(f"{method}: {key} is not a TrainConfig field")
        extra[key] = kind(value)
    # parsed first: the run folder's name comes from the method, and only a checked one is replaced
    out = WORK / "runs" / name / f"{method.replace(':', '_').replace('+', '_')}@{size or 'default'}"
    if "/" in method or out.parent != WORK / "runs" / name:
        raise SystemExit(f"{method!r} cannot name a run folder")
    if out.exists():
        import shutil

        shutil.rmtree(out)
    cfg = TrainConfig(task="classify", model=MODEL, data=data, out=out, epochs=EPOCHS, batch=BATCH, img_size=size,
                      **{"seed": 0, **extra})
    t0 = time.perf_counter()
    finetune_classifier(cfg, quiet=True)
    seconds = time.perf_counter() - t0
    manifest = RunDir(out).read_manifest()
    model = load_trained(manifest, RunDir(out).checkpoint)
    pre = preprocess_for(get_card(MODEL), int(manifest.spec.preprocessing["size"]))
    top1, n = test_top1(model, data, list(manifest.labels), pre)
    return Result(name, method, pre.size, top1, n, seconds, default=size is None)


def run_plain(name: str, data: Path, method: str, size: int) -> Result:
    """sgd-ref / adamw-timm: a plain loop with the recipe's optimiser, schedule and augmentation;
    the last epoch's model is evaluated (these recipes have no early stopping)."""
    from edgetune.assets import resolve_weights
    from edgetune.data.imagefolder import scan_imagefolder
    from edgetune.train.classifier import build_model, preprocess_for
    from edgetune.zoo import get_card

    method, seed = _without_seed(method)  # "adamw-timm:seed=1": the recipe with another training seed
    torch.manual_seed(seed)
    card = get_card(MODEL)
    pre = preprocess_for(card, size)
    folder = scan_imagefolder(data)
    t0 = time.perf_counter()
    x, y = _squares(data, "train", folder.classes, pre)
    model = build_model(card, len(folder.classes), resolve_weights(card)).to(memory_format=torch.channels_last)
    steps = math.ceil(len(y) / BATCH) * EPOCHS
    if method == "sgd-ref":
        opt = torch.optim.SGD(model.parameters(), lr=0.1 * BATCH / 256, momentum=0.9, weight_decay=1e-4)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
        aug = v2.Compose([v2.RandomResizedCrop(size, scale=(0.08, 1.0), antialias=True), v2.RandomHorizontalFlip()])
        smoothing = 0.0
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
        warm = math.ceil(len(y) / BATCH)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: (s + 1) / warm if s < warm else 0.5 * (1 + math.cos(math.pi * (s - warm) / max(steps - warm, 1))))
        aug = v2.Compose([v2.RandomResizedCrop(size, scale=(0.08, 1.0), antialias=True), v2.RandomHorizontalFlip(),
                          v2.ColorJitter(0.4, 0.4, 0.4)])
        smoothing = 0.1
    for _ in range(EPOCHS):
        model.train()
        order = torch.randperm(len(y)).numpy()
        for i in range(0, len(order), BATCH):
            idx = np.sort(order[i: i + BATCH])
            if len(idx) < 2:
                continue
            batch = torch.stack([aug(img) for img in torch.from_numpy(x[idx]).permute(0, 3, 1, 2)])
            xb = batch.float().div_(255).contiguous(memory_format=torch.channels_last)
            loss = F.cross_entropy(model(xb), torch.from_numpy(y[idx]), label_smoothing=smoothing)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    seconds = time.perf_counter() - t0
    top1, n = test_top1(model, data, folder.classes, pre)
    return Result(name, method + (f":seed={seed}" if seed else ""), size, top1, n, seconds)


def run(name: str, counts: tuple[int, int, int], methods: list[str], sizes: list[int | None]) -> list[Result]:
    data = make_data(name, counts)
    results = []
    default_size = None
    for size in sizes:
        for method in methods:
            if method.partition(":")[0] in ("edgetune", "probe", "random"):
                r = run_edgetune(name, data, method, size)
                default_size = default_size or r.size
            else:
                r = run_plain(name, data, method, size or default_size or _default_size(data))
            print(f"{name:14s} {method:11s} {r.size:4d}px top-1 {r.top1:.4f} ± {r.se:.4f}  {r.seconds:6.1f} s", flush=True)
            results.append(r)
            _save(results, name)
    return results


def _default_size(data: Path) -> int:
    from edgetune.train.img_size import choose_img_size
    from edgetune.zoo import get_card

    return choose_img_size(get_card(MODEL).input.size, sorted((data / "train").rglob("*.png")))[0]


def _save(results: list[Result], name: str) -> None:
    path = WORK / "results" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    old = json.loads(path.read_text()) if path.is_file() else []
    keep = {(r["method"], r["size"]): r for r in old}
    keep.update({(r.method, r.size): {**r.__dict__, "se": r.se} for r in results})
    path.write_text(json.dumps(list(keep.values()), indent=1))


INT8_TARGETS = ("cpu-int8", "openvino-int8", "litert-int8")


def int8_report() -> None:
    """The int8 default budget on every set's edgetune run: how often plain int8 would have lost
    more than a point on val, and what the search cost (saved to _work/suite/results/int8.json)."""
    import subprocess

    rows = []
    for name in {**TUNING, **REPORTING}:
        chosen = _default_size(WORK / "data" / name)  # the run at the size edgetune's default picks
        runs = [r for r in (WORK / "runs" / name / "edgetune@default", WORK / "runs" / name / f"edgetune@{chosen}")
                if (r / "checkpoint.pt").is_file()][:1]
        for run in runs:
            for target in INT8_TARGETS:
                t0 = time.perf_counter()
                proc = subprocess.run([sys.executable, "-m", "edgetune.cli.main", "export", str(run), "--target", target,
                                       "--json"], capture_output=True, text=True)
                seconds = time.perf_counter() - t0
                if proc.returncode not in (0, 5):
                    rows.append({"set": name, "run": run.name, "target": target, "error": proc.stderr.strip()[-300:]})
                    continue
                r = json.loads(proc.stdout)
                aa = r.get("accuracy_aware") or {}
                rows.append({"set": name, "run": run.name, "target": target, "n_val": r["metrics"]["n"],
                             "plain_drop": aa.get("plain_drop", r["drop"]), "drop": r["drop"], "pass": r["pass"],
                             "float_layers": len(aa.get("float_layers", [])), "seconds": round(seconds, 1),
                             "p50_ms": aa.get("latency_p50_ms_1thread")})
                print(json.dumps(rows[-1]), flush=True)
    (WORK / "results" / "int8.json").write_text(json.dumps(rows, indent=1))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--half", choices=[*HALVES, "both"], default="both")
    ap.add_argument("--methods", default="edgetune,sgd-ref,adamw-timm,probe,random")
    ap.add_argument("--sizes", default="default", help="comma list of image sizes; 'default' = edgetune's choice")
    ap.add_argument("--sets", default=None, help="comma list of sets (default: every set of the half)")
    ap.add_argument("--write", action="store_true", help="write the RESULTS.md section from every saved result")
    ap.add_argument("--write-half", choices=list(HALVES), default=None,
                    help="write one half's saved results to its own section, suite-<half>")
    ap.add_argument("--write-int8", action="store_true", help="write the saved --int8 results to section suite-int8")
    ap.add_argument("--int8", action="store_true", help="export every saved edgetune run to the int8 targets")
    args = ap.parse_args()
    torch.set_num_threads(2)
    if args.write or args.write_half:
        return write(args.write_half)
    if args.write_int8:
        return write_section("suite-int8", "## suite-int8: the int8 default budget on the suite's default runs "
                             "(issue 17)\n\n`python benchmarks/suite.py --int8`, then `--write-int8` (this section)\n"
                             + "\n".join(_int8_lines(json.loads((WORK / "results" / "int8.json").read_text()))))
    if args.int8:
        return int8_report()
    sets = {k: v for half in (BOTH if args.half == "both" else (args.half,)) for k, v in HALVES[half].items()}
    if args.sets:
        sets = {k: v for half in HALVES.values() for k, v in half.items() if k in args.sets.split(",")}
    sizes = [None if s == "default" else int(s) for s in args.sizes.split(",")]
    for name, counts in sets.items():
        run(name, counts, args.methods.split(","), sizes)


PEERS = ("sgd-ref", "adamw-timm")


def _verdict(rows: list[dict]) -> str | None:
    """Default (edgetune at its own size) vs the best peer recipe at the same size."""
    default = next((r for r in rows if r["method"] == "edgetune" and r.get("default")), None)
    if default is None:
        return None
    peers = [r for r in rows if r["method"] in PEERS and r["size"] == default["size"]]
    if not peers:
        return None
    best = max(peers, key=lambda r: r["top1"])
    gap = default["top1"] - best["top1"]
    se = math.hypot(default["se"], best["se"])
    word = "better" if gap > se else "worse" if gap < -se else "tie (within 1 SE)"
    return (f"default {default['top1']:.4f} in {default['seconds']:.0f} s vs best recipe {best['method']} "
            f"{best['top1']:.4f} in {best['seconds']:.0f} s: {gap * 100:+.1f} pt, {word}; "
            f"time ×{default['seconds'] / best['seconds']:.2f}")


def _means(rows: dict[str, list[dict]], sets: dict) -> list[str]:
    """Mean top-1 and total time over the sets where the default and every peer ran at one size."""
    per_method: dict[str, list[tuple[float, float]]] = {}
    for name in sets:
        default = next((r for r in rows.get(name, []) if r.get("default")), None)
        same = {r["method"]: r for r in rows.get(name, []) if default and r["size"] == default["size"]}
        if default is None or not all(p in same for p in PEERS):
            return []
        for m in ("edgetune", *PEERS):
            per_method.setdefault(m, []).append((same[m]["top1"], same[m]["seconds"]))
    return [f"- mean over the {len(sets)} sets: " + "; ".join(
        f"{m} {np.mean([a for a, _ in v]):.4f} in {sum(t for _, t in v):.0f} s" for m, v in per_method.items())]


def _without_seed(method: str) -> tuple[str, int]:
    """("edgetune:freeze=3", 2) for "edgetune:seed=2+freeze=3"; a method without seed= is seed 0."""
    base, _, overrides = method.partition(":")
    items = [i for i in overrides.split("+") if i]
    seed = next((int(i.split("=")[1]) for i in items if i.startswith("seed=")), 0)
    rest = "+".join(i for i in items if not i.startswith("seed="))
    return base + (":" + rest if rest else ""), seed


def _seed_groups(results: list[dict]) -> dict[tuple[str, int], dict[int, dict]]:
    """A set's results by (method without its seed, size), then by seed."""
    groups: dict[tuple[str, int], dict[int, dict]] = {}
    for r in results:
        method, seed = _without_seed(r["method"])
        groups.setdefault((method, r["size"]), {})[seed] = r
    return groups


def _seed_means(rows: dict[str, list[dict]], sets: dict) -> list[str]:
    """Mean top-1 and time over the seeds of every method run with more than one seed, and the
    default against the best peer recipe on those means where both ran the same seeds."""
    out = []
    for name in sets:
        groups = _seed_groups(rows.get(name, []))
        for (method, size), by_seed in sorted(groups.items()):
            if len(by_seed) > 1:
                top1 = [by_seed[k]["top1"] for k in sorted(by_seed)]
                secs = [by_seed[k]["seconds"] for k in sorted(by_seed)]
                out.append(f"- {name} {size} px {method}: mean of seeds {sorted(by_seed)} {np.mean(top1):.4f} "
                           f"({' / '.join(f'{t:.3f}' for t in top1)}) in {np.mean(secs):.0f} s")
        verdict = _verdict(_mean_rows(groups))
        if verdict:
            out.append(f"- {name}, means over the same seeds: {verdict}")
    return ["", "Several seeds:", *out] if out else []


def _mean_rows(groups: dict[tuple[str, int], dict[int, dict]]) -> list[dict]:
    """One row per method and size that ran the default's seeds (two or more): its mean top-1 and
    time, with the test split's standard error at that mean, for `_verdict`."""
    default = next(((m, size) for (m, size), by in groups.items()
                    if m == "edgetune" and any(r.get("default") for r in by.values())), None)
    seeds = set(groups[default]) if default else set()
    if len(seeds) < 2:
        return []
    rows = []
    for (method, size), by_seed in groups.items():
        if set(by_seed) >= seeds and size == default[1]:
            picked = [by_seed[k] for k in sorted(seeds)]
            top1, n = float(np.mean([r["top1"] for r in picked])), picked[0]["n"]
            rows.append({"method": method, "size": size, "top1": top1, "seconds": float(np.mean([r["seconds"] for r in picked])),
                         "se": math.sqrt(max(top1 * (1 - top1), 1e-12) / n), "default": (method, size) == default})
    return rows


def write(only: str | None = None) -> None:
    """RESULTS.md "suite": one table a half, from every result saved under _work/suite/results;
    `only` (a key of HALVES): that half alone, in its own section "suite-<half>" (when the
    other half's results are not on this machine: their rows stay where they were written)."""
    rows = {path.stem: json.loads(path.read_text()) for path in sorted((WORK / "results").glob("*.json"))
            if path.stem != "int8"}
    for name, results in rows.items():  # the size edgetune's rule picks for this set's images, run or given
        chosen = _default_size(WORK / "data" / name)
        for r in results:
            r["default"] = r["method"] == "edgetune" and r["size"] == chosen
    lines = []
    for half in (only,) if only else BOTH:
        sets = HALVES[half]
        lines += [f"\n**{half} half** (test top-1 ± standard error, wall seconds; EfficientNet-Lite0, {EPOCHS} epochs, "
                  f"batch {BATCH}, 2 threads; (default) = the size edgetune chose)\n",
                  "| set | method | px | top-1 | s |", "|---|---|---|---|---|"]
        verdicts = []
        for name in sets:
            for r in sorted(rows.get(name, []), key=lambda r: (r["size"], r["method"])):
                tag = " (default)" if r.get("default") else ""
                lines.append(f"| {name} | {r['method']} | {r['size']}{tag} | {r['top1']:.4f} ± {r['se']:.4f} "
                             f"| {r['seconds']:.0f} |")
            v = _verdict(rows.get(name, []))
            if v:
                verdicts.append(f"- {name}: {v}")
        lines += ["", *verdicts, *_means(rows, sets), *_seed_means(rows, sets)]
    int8 = WORK / "results" / "int8.json"
    if int8.is_file() and not only:
        lines += _int8_lines(json.loads(int8.read_text()))
    name, command = (f"suite-{only}", f"`python benchmarks/suite.py --half {only}`, then `--write-half {only}` "
                                      "(this section)") if only else \
        ("suite", "`python benchmarks/suite.py --half tuning|reporting`, `--int8`, then `--write` (this section)")
    write_section(name, f"## {name}: real classification sets, edgetune's default vs plain recipes (issue 17)\n\n"
                  f"{command}\n\n"
                  "`edgetune` = `edgetune finetune`'s defaults, which for EfficientNet-Lite0 keep the first 3 stages "
                  "frozen (the card's `default_freeze`, chosen on the tuning half's `freeze=3` vs `freeze=none` "
                  "rows; `freeze=none` was the default before). A `seed=N` variant differs from its row only in "
                  "the training seed; the data splits are the same.\n"
                  + "\n".join(lines))


def _int8_lines(rows: list[dict]) -> list[str]:
    ok = [r for r in rows if "error" not in r]
    missed = [r for r in ok if r["plain_drop"] > 0.01 + 1e-12]
    lines = ["", "**int8 with the default 1-pt budget** (`edgetune export RUN --target T`, no --max-drop; drop "
             "on the run's val split)", "", "| set | run | target | val n | plain drop | final drop | layers in float "
             "| pass | export s |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['set']} | {r['run']} | {r['target']} | error: {r['error'][:80]} | | | | | |")
            continue
        lines.append(f"| {r['set']} | {r['run']} | {r['target']} | {r['n_val']} | {r['plain_drop'] * 100:+.2f} "
                     f"| {r['drop'] * 100:+.2f} | {r['float_layers']} | {r['pass']} | {r['seconds']} |")
    lines += ["", f"Plain int8 would have lost more than 1 pt on {len(missed)} of {len(ok)} exports; after the search "
                  f"{sum(r['pass'] for r in ok)} of {len(ok)} pass."]
    return lines


if __name__ == "__main__":
    main()
