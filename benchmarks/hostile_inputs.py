"""Memory and time of small hostile inputs, before and after the bounds (RESULTS.md "hostile-inputs").

Each case runs the edgetune CLI in a child process and reads the child's own peak RSS and wall
time (os.wait4). `--base DIR` runs the same cases against another source tree (e.g. a worktree
of the release) on the same inputs, side by side, alternating, so the two columns share the load.

    python benchmarks/hostile_inputs.py [--base /tmp/base] [--rounds 3] [--minutes 60]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parents[1]


def run(tree: Path, args: list[str], timeout: float = 900) -> tuple[int, float, float, str]:
    """(exit code, peak RSS MB, wall s, last stderr line) of `edgetune ARGS` from source tree `tree`.

    Measured by GNU time around the command: Linux carries a forked child's pre-exec memory into
    its peak RSS, so a child of this (large) process would report this process's size instead."""
    env = {**os.environ, "PYTHONPATH": str(tree), "CI": "true"}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "time"
        proc = subprocess.run(["/usr/bin/time", "-q", "-f", "%M %e", "-o", out, sys.executable, "-m",
                               "edgetune.cli.main", *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True, env=env, cwd=tree, timeout=timeout)
        kb, wall = out.read_text().split()[-2:]
    lines = proc.stderr.strip().splitlines()
    return proc.returncode, int(kb) / 1024, float(wall), (lines or [""])[-1][:110]


def png_header(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def valid_strip(width: int, height: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (width, height), 90).save(buf, "PNG", optimize=True)
    return buf.getvalue()


def alias_bomb(levels: int = 9) -> str:
    """A real profile whose `description` is 9 levels of 9 aliases (387 million values when
    expanded): every consumer that walks or prints the value expands it."""
    out = "x-bomb:\n  a: &a [x,x,x,x,x,x,x,x,x]\n"
    for i in range(levels - 1):
        out += f"  {chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]\n"
    import yaml

    profile = yaml.safe_load((HERE / "profiles" / "raspberry-pi-5.yaml").read_text())
    profile["description"] = "BOMB"
    return out + yaml.safe_dump(profile, sort_keys=False).replace("description: BOMB",
                                                                   f"description: *{chr(97 + levels - 1)}")


def build_exports(work: Path) -> tuple[Path, Path]:
    """A classify export (test_tinynet on embedded Fashion-MNIST) and a kws export (DS-CNN on a
    small kws-synth set): the cases need real artefacts, not their accuracy."""
    et = [sys.executable, "-m", "edgetune.cli.main"]
    steps = [
        ["data", "fashion-mnist", "--out", work / "fm", "--per-class", 20, "--val-per-class", 5],
        ["finetune", "--model", "test_tinynet", "--data", work / "fm", "--out", work / "cls", "--epochs", 1, "--quiet",
         "--img-size", 160],  # a real card's size class: the strip's resize scales with it
        ["export", work / "cls", "--target", "cpu-fp32", "--quiet"],
        ["data", "kws-synth", "--out", work / "kws-data", "--words", "yes,no", "--engines", "espeak-ng",
         "--per-word", 10, "--val-per-word", 3, "--stream-minutes", 0.2],
        ["finetune", "--model", "dscnn_s", "--data", work / "kws-data", "--out", work / "kws", "--epochs", 1, "--quiet"],
        ["export", work / "kws", "--target", "cpu-fp32", "--quiet"],
    ]
    for s in steps:
        subprocess.run([*et, *map(str, s)], check=True, cwd=HERE, stdout=subprocess.DEVNULL,
                       env={**os.environ, "CI": "true"})
    return work / "cls" / "export" / "cpu-fp32", work / "kws" / "export" / "cpu-fp32"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", type=Path, help="another source tree to measure side by side (e.g. the release)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--minutes", type=float, default=60, help="length of the long WAV for predict --stream")
    a = ap.parse_args()
    trees = {"now": HERE, **({"base": a.base.resolve()} if a.base else {})}
    with tempfile.TemporaryDirectory(prefix="hostile-bench-") as tmp:
        work = Path(tmp)
        cls, kws = build_exports(work)
        (work / "strip.png").write_bytes(valid_strip(1, 60000))
        (work / "huge.png").write_bytes(png_header(20000, 20000))
        (work / "bomb.yaml").write_text(alias_bomb())
        import soundfile as sf

        rng = np.random.default_rng(0)
        with sf.SoundFile(work / "long.wav", "w", 16000, 1, "PCM_16") as f:
            for _ in range(int(a.minutes)):
                f.write((rng.standard_normal(16000 * 60) * 0.01).astype(np.float32))
        cases = {
            f"predict, valid 1x60000 PNG ({(work / 'strip.png').stat().st_size} B)": ["predict", cls, work / "strip.png"],
            f"predict, 20000x20000 PNG header ({(work / 'huge.png').stat().st_size} B)": ["predict", cls, work / "huge.png"],
            f"profiles check, alias bomb ({(work / 'bomb.yaml').stat().st_size} B)": ["profiles", "check", work / "bomb.yaml"],
            f"predict --stream --hop 1, {a.minutes:g} min WAV ({(work / 'long.wav').stat().st_size / 1e6:.0f} MB)":
                ["predict", kws, work / "long.wav", "--stream", "--hop", "1.0"],
        }
        rows = []
        for name, args in cases.items():
            got: dict[str, list[tuple[int, float, float, str]]] = {t: [] for t in trees}
            for _ in range(a.rounds):
                for t, tree in trees.items():  # alternating: both trees see the same load
                    got[t].append(run(tree, [str(x) for x in args]))
            for t in trees:
                codes = {r[0] for r in got[t]}
                rows.append((name, t, "/".join(map(str, sorted(codes))), statistics.median(r[1] for r in got[t]),
                             statistics.median(r[2] for r in got[t]), got[t][-1][3]))
    print("| case | tree | exit | peak RSS MB (median) | wall s (median) | last line |")
    print("|---|---|---|---|---|---|")
    for name, t, code, rss, wall, line in rows:
        print(f"| {name} | {t} | {code} | {rss:.0f} | {wall:.1f} | {line.replace('|', '/')} |")


if __name__ == "__main__":
    main()
