"""Keyword-spotting claims, measured side by side in one run; writes the kws section of RESULTS.md.

    python benchmarks/kws.py

The honest test is cross-voice: train on espeak-ng voices only, test on synthesisers never seen
in training (flite's 5 voices and the piper neural voice), clean and with noise (pink noise +
babble of non-keywords at 10 dB SNR, fixed seed). 12 classes: 10 keywords + _unknown_ + _silence_.
1. speech_embedding_kws (pretrained front end): head on cached embeddings (`--freeze backbone`)
   and the card default (first 3 embedding stages frozen, the rest fine-tuned with augmentation),
   vs dscnn_s from scratch, vs the reference measured here before (ENVIRONMENT.md).
2. Little data: the same, with 20 clips per keyword of the unseen synthesisers added to training
   (other renders than the test clips).
3. Export of the best model: cpu-fp32 / cpu-int8 accuracy, drop, latency p50 at 1 thread, and
   false accepts per hour on the 5-minute stream (non-keyword speech over noise) at the default
   threshold and at 90% keyword recall.
Nothing runs concurrently.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from _results import cached_run, interleaved_p50s, write_section

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work" / "kws"
ET = [sys.executable, "-m", "edgetune.cli.main"]
WORDS = "yes,no,up,down,left,right,on,off,stop,go"
SETS = {
    "x": ["--engines", "espeak-ng", "--val-engines", "flite,piper", "--per-word", 200, "--val-per-word", 40,
          "--stream-minutes", 5, "--seed", 0],
    "extra": ["--engines", "flite,piper", "--val-engines", "flite", "--per-word", 20, "--val-per-word", 1,
              "--stream-minutes", 0, "--seed", 99],
}
RUNS = {  # name → (data set, finetune arguments)
    "embedding-frozen": ("x", ["--model", "speech_embedding_kws", "--freeze", "backbone", "--epochs", 30]),
    "embedding-finetune": ("x", ["--model", "speech_embedding_kws", "--freeze", "3", "--epochs", 6]),
    "dscnn-scratch": ("x", ["--model", "dscnn_s", "--epochs", 30]),
    "embedding-frozen+20": ("x+extra", ["--model", "speech_embedding_kws", "--freeze", "backbone", "--epochs", 30]),
    "embedding-finetune+20": ("x+extra", ["--model", "speech_embedding_kws", "--freeze", "3", "--epochs", 6]),
}


def sh(*args) -> dict:
    proc = subprocess.run([*ET, *map(str, args), "--json"], capture_output=True, text=True)
    if proc.returncode not in (0, 5, 6):
        raise SystemExit(f"failed: {' '.join(map(str, args))}\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout)


def dataset(name: str) -> Path:
    out = WORK / "data" / name
    if name == "x+extra":
        if not out.is_dir():
            shutil.copytree(dataset("x"), out)
            extra = dataset("extra")
            for word_dir in (extra / "train").iterdir():
                for clip in word_dir.glob("*.wav"):
                    shutil.copyfile(clip, out / "train" / word_dir.name / f"extra_{clip.name}")
        return out
    if not (out / "provenance.json").is_file():
        shutil.rmtree(out, ignore_errors=True)
        subprocess.run([*ET, "data", "kws-synth", "--out", str(out), "--words", WORDS, *map(str, SETS[name])], check=True)
    return out


def per_engine(run: Path) -> dict[str, dict[str, float]]:
    """Top-1 per test synthesiser, clean and noisy, of the run's checkpoint in PyTorch."""
    import torch

    from edgetune.data import speech_commands as sc
    from edgetune.run import RunDir
    from edgetune.tasks.kws import KwsTask
    from edgetune.train.kws import load_trained

    man = RunDir(run).read_manifest()
    model = load_trained(man, run / "checkpoint.pt")
    ds = KwsTask().open_data(man.spec, man.data)
    clips, _ = sc.load_clips(ds.val.files, ds.root)
    voices = {c["file"]: c["voice"].split(":")[0] for c in json.loads((ds.root / "provenance.json").read_text())["clips"]}
    engine = np.array([voices[str(f.relative_to(ds.root))] for f in ds.val.files])
    noises = sc.load_noise(ds.noise_files, ds.root)
    rng = np.random.default_rng(0)
    noisy = np.empty_like(clips)
    for i, c in enumerate(clips):  # pink noise + babble (validation parts), 10 dB SNR
        bed = np.zeros_like(c)
        for n in (noises[1], noises[3]):
            part = sc.noise_part(n, "val")
            s = rng.integers(0, len(part) - len(c))
            bed += part[s: s + len(c)] / (np.std(part) + 1e-9)
        noisy[i] = np.clip(c + bed * np.sqrt(np.mean(c ** 2) / (np.mean(bed ** 2) * 10)), -1, 1)
    out: dict[str, dict[str, float]] = {}
    with torch.no_grad():
        for cond, x in (("clean", clips), ("noisy", noisy)):
            pred = torch.cat([model(torch.from_numpy(x[i: i + 128])).argmax(1) for i in range(0, len(x), 128)]).numpy()
            for e in sorted(set(engine)):
                m = engine == e
                out.setdefault(e, {})[cond] = float((pred[m] == ds.val.labels[m]).mean())
    return out


def interleaved_latency(run: Path, rounds: int = 5, threads: int = 1) -> str:
    """fp32 and int8 of one run measured alternately `rounds` times (bench's worker, 300 runs
    each); medians of the per-round p50s — K2's single measurements met a noisy neighbour."""
    from edgetune.run import RunDir
    from edgetune.tasks.kws import KwsTask

    manifest = RunDir(run).read_manifest()
    task = KwsTask()
    x = task.preprocess(manifest.spec)(task.val_files(manifest.spec, manifest.data, count=1)[0])
    samples = interleaved_p50s({t: run / "export" / t / "model.onnx" for t in ("cpu-fp32", "cpu-int8")}, x,
                               threads=(threads,), rounds=rounds, runs=300)
    p50 = {t: v for (t, _), v in samples.items()}
    med = {t: float(np.median(v)) for t, v in p50.items()}
    return (f"K3. Interleaved latency of `{run.name}` ({rounds} alternating rounds × 300 runs, {threads} thread, "
            f"median of p50s; command: `python benchmarks/kws.py --latency-only`): cpu-fp32 {med['cpu-fp32']:.2f} ms "
            f"(rounds {', '.join(f'{v:.2f}' for v in p50['cpu-fp32'])}), cpu-int8 {med['cpu-int8']:.2f} ms "
            f"(rounds {', '.join(f'{v:.2f}' for v in p50['cpu-int8'])}); int8 is "
            f"{med['cpu-fp32'] / med['cpu-int8']:.2f}× faster.")


def _thresholds(config: dict) -> str:
    """What the stream was scored at: the export's per-keyword thresholds (calibrated on the
    data's negatives/) when it has them, else the one threshold."""
    return "per-keyword" if config.get("thresholds") else f"{config['threshold']:g}"


def main() -> None:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if "--latency-only" in sys.argv:
        write_section("kws-latency", interleaved_latency(WORK / "runs" / "embedding-frozen"))
        return
    rows = {}
    for name, (data_name, args) in RUNS.items():
        data = dataset(data_name)
        out = WORK / "runs" / name
        full = [*args, "--data", str(data), "--seed", 0, "--patience", 30]
        man, wall, _ = cached_run(out, [str(a) for a in full],
                                  lambda full=full, out=out: sh("finetune", *full, "--out", out))
        rows[name] = {"val": man["best"]["top1"], "wall": wall, "engines": per_engine(out)}
        print(name, rows[name], flush=True)

    # K2: the best cross-voice model, and the same recipe with 20 clips/keyword of the test voices.
    best = max(("embedding-frozen", "embedding-finetune"), key=lambda n: rows[n]["val"])
    k2 = [best, best + "+20"]
    exports, benches = {}, {}
    from edgetune.tasks.kws_stream import StreamConfig

    for name in k2:
        run = WORK / "runs" / name
        manifest = json.loads((run / "edgetune.json").read_text())  # stream settings under test: today's defaults
        manifest["postprocess"] = StreamConfig().to_dict()
        (run / "edgetune.json").write_text(json.dumps(manifest, indent=2))
        for t in ("cpu-fp32", "cpu-int8"):
            exports[name, t] = sh("export", run, "--target", t)
            benches[name, t] = sh("bench", run, "--target", t, "--profile", "x86-64-avx512", "--threads", 1,
                                  "--runs", 300)

    ref = {"embedding": {"flite": 0.86, "piper": 0.74}, "dscnn": {"flite": 0.63, "piper": 0.71}}
    lines = [
        "## Keyword spotting (issue 4)", "",
        f"Command: `python benchmarks/kws.py` — {platform.machine()}, {os.cpu_count()} cores, one job at a time.",
        "Data: `edgetune data kws-synth` — train on espeak-ng voices only (200 clips per keyword), test on "
        "synthesisers never seen in training: flite (5 voices) and piper (neural voice), 40 clips per keyword "
        "across them; 12 classes (10 keywords + `_unknown_` + `_silence_`). Noisy = pink noise + babble of "
        "non-keywords at 10 dB SNR. Top-1 of the best checkpoint in PyTorch.", "",
        "### K1. Cross-voice generalisation (top-1 on unseen synthesisers)", "",
        "| model | training | flite clean | piper clean | flite noisy | piper noisy | val (all) | wall s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        e = r["engines"]
        lines.append(f"| {name} | {' '.join(map(str, RUNS[name][1][1:]))} | {e['flite']['clean']:.3f} | {e['piper']['clean']:.3f} | "
                     f"{e['flite']['noisy']:.3f} | {e['piper']['noisy']:.3f} | {r['val']:.3f} | {r['wall']:.0f} |")
    lines += [f"| reference (ENVIRONMENT.md) | frozen-embedding head | {ref['embedding']['flite']:.2f} | "
              f"{ref['embedding']['piper']:.2f} | – | – | – | – |",
              f"| reference (ENVIRONMENT.md) | DS-CNN from scratch | {ref['dscnn']['flite']:.2f} | "
              f"{ref['dscnn']['piper']:.2f} | – | – | – | – |", "",
              "`+20`: 20 clips per keyword (and 30 `_unknown_`) rendered by flite and piper with another seed "
              "added to the espeak-ng training set; the test clips are other renders of the same synthesisers.", "",
              "### K2. Exports: int8 drop, latency (1 thread, 300 timed runs each) and streaming false accepts", "",
              "| run | target | top1 | drop vs fp32 | size MB | p50 ms | p99 ms | FA/h at threshold | miss rate | "
              "FA/h at 90% recall (threshold) | real-time factor |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for (name, t), x in exports.items():
        b = benches[name, t]
        s = b["stream"]
        r90 = s.get("at_recall_0.9")
        lines.append(f"| {name} | {t} | {x['metric']:.4f} | {x['drop']:+.4f} | {x['size_mb']:.2f} | "
                     f"{b['latency_ms']['p50']:.2f} | {b['latency_ms']['p99']:.2f} | "
                     f"{s['at_threshold']['fa_per_hour']:.1f} ({_thresholds(s['config'])}) | "
                     f"{s['at_threshold']['miss_rate']:.1%} | "
                     + (f"{r90['fa_per_hour']:.1f} ({r90['threshold']:.3f})" if r90 else "not reached")
                     + f" | {s['real_time_factor']:.4f} |")
    s0 = benches[best, "cpu-fp32"]["stream"]
    lines += ["", f"Stream: {s0['audio_s'] / 60:.0f} min of non-keyword speech by the unseen synthesisers over pink "
              f"noise, {s0['events']} keywords at known times; window 1 s, hop 0.1 s, smoothing 0.3 s, refractory 1 s. "
              "Stream settings: edgetune's defaults (in the first FA/h column's brackets: the export's per-keyword thresholds, calibrated on the data's negatives/, or the one threshold); the sweep column is the highest threshold "
              "that still finds 90% of the keywords."]
    write_section("kws", "\n".join(lines))
    write_section("kws-latency", interleaved_latency(WORK / "runs" / best))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
