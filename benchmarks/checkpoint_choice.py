"""Which checkpoint should a classification fine-tune hand over: the epoch best on val, or the last?

"Kept" below is the epoch with the best val top-1 (the probe-initialised epoch 0 included), which
`edgetune finetune` handed over until rule A was adopted (now `--checkpoint best`). On a small val split those differences are mostly noise, and an early epoch of a
cosine schedule is taken at a high learning rate. Rule R, checked here on saved runs of the
suite without retraining: keep the last epoch unless the best beats it on val by more than one
binomial standard error of the val split, sqrt(p (1 - p) / n) at the best's p. R only ever picks
the best or the last epoch, and both are saved (checkpoint.pt, last.pt), so its test top-1 is
measured exactly. R failed its check (a8a7a74): -1.2 pt on fashion-mnist-10shot.

Rule A (added after R, with the shifted tuning set glyphs-lower): hand over the uniform average
of the kept (val-best) and the last epoch's weights, the same model when they coincide. Both come
from one fine-tune of one pretrained model with fixed BN statistics, so their average is a model of
that run (weight averaging along a trajectory, as SWA and WiSE-FT do). Measured exactly from
checkpoint.pt and last.pt (a run of the new default keeps the val-best in last.pt's "best_model").
It passed the decision below (RESULTS.md "checkpoint-choice" notes) and is the default now.

Decision, committed before any run of glyphs-lower or of A: A replaces the default hand-over only if
  1. over every saved default-recipe tuning run, A's mean test top-1 loses ≤ 0.2 pt to the kept
     checkpoint's, and no tuning set's mean over its runs loses > 1 pt (the bar R failed);
  2. on glyphs-lower, the tuning set whose test typefaces are new to its val split, A gains ≥ 1.0 pt
     over the mean of its 3 seeds;
  3. when glyphs-lower's kept epoch is its last in every seed, it says nothing: no decision.
The reporting rows are printed but decide nothing (A was written after seeing glyphs).

    python benchmarks/checkpoint_choice.py             # every saved default-recipe run of the suite
    python benchmarks/checkpoint_choice.py --write     # RESULTS.md "checkpoint-choice"
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
from pathlib import Path

import numpy as np
import torch
from _results import write_section
from suite import HALVES, MODEL, WORK, test_top1

RESULTS = WORK / "checkpoint-choice.json"  # not in results/, where every file is a set of the suite


def is_default_recipe(run: Path) -> bool:
    """edgetune's default at any size and seed ("edgetune@160", "edgetune_seed=1@default")."""
    method = run.name.split("@")[0]
    return method == "edgetune" or (method.startswith("edgetune_seed=") and method.count("=") == 1)


def rule_epoch(history: list[dict], kept: int, n_val: int) -> int:
    """The epoch R keeps, from the run's val history (epoch 0: the probe) and the epoch it kept."""
    best, last = next(h for h in history if h["epoch"] == kept), history[-1]
    se = math.sqrt(max(best["top1"] * (1 - best["top1"]), 1e-12) / n_val)
    return last["epoch"] if best["top1"] - last["top1"] <= se else kept


def measure(run: Path, data: Path) -> dict:
    from edgetune.run import RunDir
    from edgetune.train.classifier import load_trained, preprocess_for
    from edgetune.train.loop import average_state_dicts, load_checkpoint
    from edgetune.zoo import get_card

    rd = RunDir(run)
    manifest = rd.read_manifest()
    record = json.loads((run / "edgetune.json").read_text())
    history = record.get("results", record)["history"]
    n_val = sum(1 for p in (data / "val").rglob("*") if p.is_file())
    last = load_checkpoint(rd.last)  # tensors and plain values only (weights_only)
    kept = last["fit"]["best_epoch"]  # a run whose val was not trusted (keep_last) kept its last epoch already
    r = rule_epoch(history, kept, n_val)
    pre = preprocess_for(get_card(MODEL), int(manifest.spec.preprocessing["size"]))
    labels = list(manifest.labels)

    def top1_of(weights: dict[str, torch.Tensor]) -> float:
        with tempfile.TemporaryDirectory() as tmp:  # last.pt holds the model beside optimiser state
            path = Path(tmp) / "weights.pt"
            torch.save(weights, path)
            return test_top1(load_trained(manifest, path), data, labels, pre)[0]

    best = last.get("best_model") or load_checkpoint(rd.checkpoint)  # an averaged run keeps its val-best in last.pt
    top1 = {"kept": top1_of(best)}
    top1["rule"] = top1_of(last["model"]) if r != kept else top1["kept"]
    same = kept == history[-1]["epoch"]
    top1["average"] = top1["kept"] if same else top1_of(average_state_dicts(best, last["model"]))
    return {"set": run.parent.name, "run": run.name, "n_val": n_val, "last_epoch": history[-1]["epoch"],
            "kept_epoch": kept, "rule_epoch": r, **top1}


def table(rows: list[dict]) -> list[str]:
    lines = ["| half | set | run | val n | epochs run | kept epoch → test | R's epoch → test | R Δ pt | A (kept + last) → test "
             "| A Δ pt |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        a = r.get("average")
        lines.append(f"| {r['half']} | {r['set']} | {r['run']} | {r['n_val']} | {r['last_epoch']} | {r['kept_epoch']} → "
                     f"{r['kept']:.4f} | {r['rule_epoch']} → {r['rule']:.4f} | {(r['rule'] - r['kept']) * 100:+.1f} | "
                     + ("– | – |" if a is None else f"{a:.4f} | {(a - r['kept']) * 100:+.1f} |"))
    for half in ("tuning", "reporting"):
        sub = [r for r in rows if r["half"] == half]
        if not sub:
            continue
        lines.append(f"\n- {half}: {len(sub)} runs; R picks another epoch in "
                     f"{sum(r['rule_epoch'] != r['kept_epoch'] for r in sub)}, A averages two in "
                     f"{sum(r['last_epoch'] != r['kept_epoch'] for r in sub)}")
        lines.append("  - " + _means("every run", sub))
        for name in dict.fromkeys(r["set"] for r in sub):
            lines.append("  - " + _means(name, [r for r in sub if r["set"] == name]))
    return lines


def _means(label: str, rows: list[dict]) -> str:
    """Mean test top-1 of each rule over `rows` and its gain over the kept checkpoint, in pt."""
    kept = np.mean([r["kept"] for r in rows])
    parts = [f"{label} ({len(rows)} runs): kept {kept:.4f}"]
    for key, name in (("rule", "R"), ("average", "A")):
        vals = [r[key] for r in rows if key in r]
        if len(vals) == len(rows):
            parts.append(f"{name} {np.mean(vals):.4f} ({(np.mean(vals) - kept) * 100:+.2f} pt)")
    return ", ".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--write", action="store_true", help="write RESULTS.md from the saved measurements")
    args = ap.parse_args()
    if not args.write:
        torch.set_num_threads(2)
        half_of = {name: ("reporting" if half == "reporting" else "tuning") for half, sets in HALVES.items() for name in sets}
        rows = []
        for run in sorted(p for p in (WORK / "runs").glob("*/*") if (p / "last.pt").is_file() and is_default_recipe(p)):
            if run.parent.name in half_of:
                rows.append({"half": half_of[run.parent.name], **measure(run, WORK / "data" / run.parent.name)})
                print(json.dumps(rows[-1]), flush=True)
        RESULTS.write_text(json.dumps(rows, indent=1))
    rows = sorted(json.loads(RESULTS.read_text()), key=lambda r: (r["half"] != "tuning", r["set"], r["run"]))
    write_section("checkpoint-choice", "\n".join([
        "## checkpoint-choice: the epoch best on val, or the last one (issue 17)", "",
        "`python benchmarks/checkpoint_choice.py`, then `--write` (this section)", "",
        "R: keep the last epoch unless the best (the probe-initialised epoch 0 included) beats it on val by more than "
        "one binomial standard error of the val split. A: the average of the kept and the last epoch's weights "
        "(`edgetune finetune`'s default since it passed its check; `--checkpoint best` hands over the kept one). Saved runs of `benchmarks/suite.py` with edgetune's default "
        "recipe, every size and seed; test top-1 of the checkpoint each rule keeps.", "", *table(rows)]))


if __name__ == "__main__":
    main()
