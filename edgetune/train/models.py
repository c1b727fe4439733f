"""Build torch modules from model cards: architecture, pretrained weights, new head, freezing."""

from __future__ import annotations

import re
from collections.abc import Iterable

import torch
from torch import nn

from edgetune.assets import ResolvedWeights
from edgetune.errors import AssetError, UsageError
from edgetune.zoo import ModelCard


class TinyNet(nn.Module):
    """A 3-conv network for fast tests (no pretrained weights)."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()

        def block(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, cout, 3, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

        self.stem, self.block1, self.block2 = block(3, 16), block(16, 32), block(32, 64)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.block2(self.block1(self.stem(x)))).flatten(1)
        return self.classifier(x)


class Normalized(nn.Module):
    """Puts the card's mean/std inside the network, so artefacts take RGB in [0, 1]."""

    def __init__(self, model: nn.Module, mean: Iterable[float], std: Iterable[float]) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model((x - self.mean) / self.std)


# ---- weight layout converters (file layout → architecture layout) ----------------------------

_LITE_STAGE_DEPTHS = (1, 2, 2, 3, 3, 4, 1)
_LUKE_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
_LUKE_DS = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_LUKE_IR = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
            "_project_conv": "conv_pwl", "_bn2": "bn3"}


def lukemelas_to_timm_lite(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """lukemelas-style EfficientNet-Lite keys (`_blocks.N._depthwise_conv`) → timm `blocks.S.I.conv_dw`.

    The flat block index N maps to (stage, index) by the Lite stage depths 1,2,2,3,3,4,1; the
    first block is depthwise-separable (no expansion), the rest inverted residuals.
    """
    positions = [(s, i) for s, d in enumerate(_LITE_STAGE_DEPTHS) for i in range(d)]
    out: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        m = re.fullmatch(r"_blocks\.(\d+)\.(\w+)\.(\w+)", key)
        if m:
            n, layer, param = int(m.group(1)), m.group(2), m.group(3)
            stage, idx = positions[n]
            table = _LUKE_DS if n == 0 else _LUKE_IR
            out[f"blocks.{stage}.{idx}.{table[layer]}.{param}"] = value
            continue
        top, _, param = key.partition(".")
        if top not in _LUKE_TOP:
            raise AssetError(f"unexpected key {key!r} in EfficientNet-Lite weights")
        out[f"{_LUKE_TOP[top]}.{param}"] = value
    return out


CONVERTERS = {"lukemelas_efficientnet_lite": lukemelas_to_timm_lite}


def _load_state_dict(card: ModelCard, weights: ResolvedWeights) -> dict[str, torch.Tensor]:
    path = weights.path
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd = load_file(str(path))
        else:
            sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, pickled code (weights_only refuses it), wrong format
        raise AssetError(f"cannot load weights {path}: {str(exc).splitlines()[0][:200]}",
                         hint="the file is corrupt or not a plain state_dict; re-fetch it") from None
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    conv = card.weights.converter
    if conv and any(k.startswith("_blocks.") for k in sd):
        sd = CONVERTERS[conv](sd)
    return sd


def build_architecture(card: ModelCard, num_classes: int) -> nn.Module:
    if card.arch_source == "timm":
        import timm

        return timm.create_model(card.arch_name, pretrained=False, num_classes=num_classes)
    if card.arch_source == "torchvision":
        import torchvision.models

        return getattr(torchvision.models, card.arch_name)(weights=None, num_classes=num_classes)
    if card.arch_source == "edgetune" and card.arch_name == "tinynet":
        return TinyNet(num_classes)
    raise UsageError(f"model card {card.name}: unknown architecture {card.arch_source}:{card.arch_name}")


def get_submodule_parent(model: nn.Module, dotted: str) -> tuple[nn.Module, str]:
    parent_name, _, child = dotted.rpartition(".")
    return (model.get_submodule(parent_name) if parent_name else model), child


def create_pretrained(card: ModelCard, weights: ResolvedWeights | None) -> nn.Module:
    """The card's architecture with its original head, loaded strictly from `weights`."""
    model = build_architecture(card, card.num_classes)
    if weights is not None:
        sd = _load_state_dict(card, weights)
        try:
            model.load_state_dict(sd, strict=True)
        except RuntimeError as exc:
            first = str(exc).splitlines()[1].strip() if len(str(exc).splitlines()) > 1 else str(exc)
            raise AssetError(f"weights {weights.path} do not fit {card.name}: {first[:200]}",
                             hint="pass the weights file made for this model card") from None
    return model


def replace_head(model: nn.Module, card: ModelCard, num_classes: int) -> nn.Linear:
    parent, child = get_submodule_parent(model, card.classifier)
    old = getattr(parent, child)
    if not isinstance(old, nn.Linear):
        raise UsageError(f"model card {card.name}: classifier {card.classifier} is {type(old).__name__}, not Linear")
    new = nn.Linear(old.in_features, num_classes)
    nn.init.normal_(new.weight, std=0.01)
    nn.init.zeros_(new.bias)
    setattr(parent, child, new)
    return new


def head_of(model: nn.Module, card: ModelCard) -> nn.Linear:
    return model.get_submodule(card.classifier)  # type: ignore[return-value]


def set_bn_momentum(model: nn.Module, momentum: float = 0.1) -> None:
    """torchvision's MobileNetV3 uses BN momentum 0.01: after a short fine-tune the running
    statistics still describe ImageNet and eval accuracy sits at chance (ENVIRONMENT.md)."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.momentum = momentum


def frozen_prefixes(card: ModelCard, freeze: int) -> tuple[str, ...]:
    if not 0 <= freeze <= len(card.stages):
        raise UsageError(f"--freeze {freeze} is out of range for {card.name}",
                         hint=f"use 0..{len(card.stages)} (stages), or 'backbone'")
    return tuple(p for stage in card.stages[:freeze] for p in stage)


def apply_freeze(model: nn.Module, prefixes: tuple[str, ...]) -> list[nn.Module]:
    """Stop gradients in the frozen stages; returns those modules so the loop keeps them in eval
    mode (frozen BN layers must not update running statistics either)."""
    frozen = []
    for name, module in model.named_modules():
        if any(name == p or name.startswith(p + ".") for p in prefixes):
            for param in module.parameters(recurse=False):
                param.requires_grad_(False)
            frozen.append(module)
    return frozen
