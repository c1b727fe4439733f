"""Cached-feature linear probe: run the frozen backbone once, then fit only the head.

Used for `--freeze backbone` (the whole training) and as the head initialisation of a full
fine-tune (LP-FT, Kumar et al. 2022): a head that already fits the classes keeps the first
fine-tuning steps from wrecking the pretrained features, so fewer epochs reach the same accuracy.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from edgetune.train.models import get_submodule_parent

L2_GRID = (1e-4, 1e-3, 1e-2)  # chosen on val per data set, not tuned to one


@torch.no_grad()
def extract_features(model: nn.Module, head_path: str, batches: Callable[[], list[torch.Tensor]]) -> torch.Tensor:
    """Features entering the head `head_path` (the head is swapped for Identity meanwhile)."""
    parent, child = get_submodule_parent(model, head_path)
    head = getattr(parent, child)
    setattr(parent, child, nn.Identity())
    was_training = model.training
    model.eval()
    try:
        return torch.cat([model(x) for x in batches()])
    finally:
        setattr(parent, child, head)
        model.train(was_training)


def fit_linear(train_x: torch.Tensor, train_y: torch.Tensor, val_x: torch.Tensor, val_y: torch.Tensor,
               num_classes: int, *, label_smoothing: float = 0.1, max_iter: int = 200) -> tuple[dict, float, float]:
    """Full-batch L-BFGS logistic regression for each L2 strength; keep the best on val.

    Returns (Linear state_dict, val accuracy, chosen L2). Deterministic: no sampling involved.
    """
    best: tuple[dict, float, float] | None = None
    for l2 in L2_GRID:
        layer = _lbfgs_logreg(train_x, train_y, num_classes, l2, label_smoothing, max_iter)
        with torch.no_grad():
            acc = (layer(val_x).argmax(1) == val_y).float().mean().item()
        if best is None or acc > best[1]:
            best = ({k: v.clone() for k, v in layer.state_dict().items()}, acc, l2)
    assert best is not None
    return best


def _lbfgs_logreg(x: torch.Tensor, y: torch.Tensor, num_classes: int, l2: float, label_smoothing: float,
                  max_iter: int) -> nn.Linear:
    layer = nn.Linear(x.shape[1], num_classes)
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)
    opt = torch.optim.LBFGS(layer.parameters(), lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(layer(x), y, label_smoothing=label_smoothing) + l2 * layer.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return layer


def val_uninformative(val_acc: float, num_classes: int) -> bool:
    """The linear probe scores no better than chance on val: val predicts nothing about the model.

    A pretrained feature extractor with a head fitted on the training images that does no better
    than guessing on val says val does not look like train (another site, camera or source). Every
    checkpoint would then be chosen on a split that predicts nothing: on the suite's aerial-trees
    (val from another aerial tile) the probe scored 0.45 on val and 0.76 on test, and fine-tuned
    epochs that reached a constant 0.50 on val replaced it and scored chance on test (RESULTS.md
    "suite"). The fine-tune then keeps its last epoch, as a plain recipe without val would.
    """
    return val_acc <= 1 / num_classes


def chance_warning(val_acc: float, num_classes: int) -> str | None:
    """The line the fine-tune logs when `val_uninformative`, else None."""
    if not val_uninformative(val_acc, num_classes):
        return None
    return (f"warning: the linear probe on cached features scores {val_acc:.2f} on val, no better than chance "
            f"({1 / num_classes:.2f} for {num_classes} classes): the val images may not look like the training "
            "images, so no checkpoint is chosen on them: every epoch runs and the last is kept; check the split "
            "(--val-split holds out training images instead)")
