"""What freezing the first stages saves per training step: EfficientNet-Lite0, a batch of 32 at
160 px (the size edgetune picks for small images), 2 threads, BN statistics fixed (the default),
AdamW; median of STEPS timed steps after one warm-up, each arm in turn in one process. Writes
RESULTS.md "freeze-step".

    python benchmarks/freeze_step.py
"""

from __future__ import annotations

import statistics
import time

import torch
from _results import write_section
from torch.nn import functional as F

FREEZE = (0, 2, 3, 4)
SIZE, BATCH, STEPS = 160, 32, 9


def step_ms(freeze: int) -> float:
    from edgetune.assets import resolve_weights
    from edgetune.train import models as M
    from edgetune.train.classifier import build_model
    from edgetune.zoo import get_card

    card = get_card("efficientnet_lite0")
    model = build_model(card, 10, resolve_weights(card)).to(memory_format=torch.channels_last)
    if freeze:
        M.apply_freeze(model.model, M.frozen_prefixes(card, freeze))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    model.train()
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.eval()
    g = torch.Generator().manual_seed(0)
    x = torch.rand(BATCH, 3, SIZE, SIZE, generator=g).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (BATCH,), generator=g)
    times = []
    for _ in range(STEPS + 1):
        t = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t)
    return statistics.median(times[1:]) * 1000


def main() -> None:
    torch.set_num_threads(2)
    ms = {f: step_ms(f) for f in FREEZE}
    lines = ["## freeze-step: training-step time with the first stages frozen (EfficientNet-Lite0)", "",
             "`python benchmarks/freeze_step.py` — a batch of 32 at 160 px, 2 threads, BN statistics fixed, AdamW; "
             f"median of {STEPS} steps. `--freeze 3` (stem, blocks.0, blocks.1) is Lite0's default.", "",
             "| --freeze | ms a step | vs every stage trained |", "|---|---|---|"]
    lines += [f"| {f or 'none'} | {v:.0f} | ×{v / ms[0]:.2f} |" for f, v in ms.items()]
    print("\n".join(lines))
    write_section("freeze-step", "\n".join(lines))


if __name__ == "__main__":
    main()
