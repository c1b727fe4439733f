"""Registries, model cards (checked against the real architectures) and profiles."""

from __future__ import annotations

import pytest
import torch

from edgetune.errors import CardError, ProfileError, UnknownNameError
from edgetune.profiles import PROFILES, load_profile
from edgetune.train.models import build_architecture
from edgetune.zoo import MODELS, _parse_card


def test_unknown_model_suggests_close_match():
    with pytest.raises(UnknownNameError) as e:
        MODELS.get("efficientnet_lite")
    assert e.value.message == "unknown model 'efficientnet_lite'; did you mean 'efficientnet_lite0' or 'efficientnet_b0'?"
    assert e.value.hint == "`edgetune models` lists them"


@pytest.mark.parametrize("name", [n for n in MODELS.names() if MODELS.get(n).task == "classify"])
def test_card_matches_real_architecture(name):
    """The card's parameter count, classifier and stage names are true of the built model."""
    card = MODELS.get(name)
    model = build_architecture(card, card.num_classes)
    assert sum(p.numel() for p in model.parameters()) == card.num_params
    head = model.get_submodule(card.classifier)
    assert isinstance(head, torch.nn.Linear) and head.out_features == card.num_classes
    names = {n for n, _ in model.named_modules()}
    for stage in card.stages:
        for prefix in stage:
            assert prefix in names, f"{name}: stage {prefix} is not a module"
    with torch.no_grad():
        out = model.eval()(torch.rand(1, 3, card.input.size, card.input.size))
    assert out.shape == (1, card.num_classes)


def test_card_name_must_match_file(tmp_path):
    bad = tmp_path / "foo.yaml"
    bad.write_text("name: bar\ntask: classify\n")
    with pytest.raises(CardError, match=r"field 'name' is 'bar' but the file is foo.yaml"):
        _parse_card(bad)


def test_card_wrong_type_names_field(tmp_path):
    src = MODELS.get("test_tinynet").source_file
    text = open(src).read().replace("size: 32", "size: big")
    bad = tmp_path / "test_tinynet.yaml"
    bad.write_text(text)
    with pytest.raises(CardError) as e:
        _parse_card(bad)
    assert e.value.message == f"{bad}: field 'input.size' must be an integer in [8, 2048], got 'big'"


@pytest.mark.parametrize("name", PROFILES.names())
def test_shipped_profiles_load(name):
    p = PROFILES.get(name)
    assert 1 <= p.threads <= p.cores and p.sources and "classify" in p.budgets


@pytest.mark.parametrize("mutate, message", [
    (lambda t: t.replace("  threads: 4\n", ""), "field 'cpu.threads' is missing"),
    (lambda t: t.replace("ram_mb: 4096", "ram_mb: lots"), "field 'memory.ram_mb' must be a positive integer, got 'lots'"),
    (lambda t: t.replace("latency_p50_ms: 30", "latency_ms: 30"), "field 'budgets.classify.latency_ms' is not a known budget"),
    (lambda t: t.replace("arch: aarch64", "arch: arm"), "field 'cpu.arch' must be x86_64 or aarch64, got 'arm'"),
    (lambda t: t + "\n  - [unclosed\n", "is not valid YAML at line"),
])
def test_bad_profile_one_line(tmp_path, mutate, message):
    text = open(PROFILES.get("raspberry-pi-5").source_file).read()
    bad = tmp_path / "raspberry-pi-5.yaml"
    bad.write_text(mutate(text))
    with pytest.raises(ProfileError) as e:
        load_profile(bad)
    assert message in e.value.message and "\n" not in e.value.message


@pytest.mark.parametrize("name", [n for n in MODELS.names() if MODELS.get(n).task == "detect"])
def test_detector_card_matches_real_architecture(name):
    """Parameter count, stages (ultralytics layers before the head) and head of each detect card."""
    from ultralytics.nn.modules import Detect
    from ultralytics.nn.tasks import DetectionModel

    from edgetune.train.detector import arch_path

    card = MODELS.get(name)
    model = DetectionModel(arch_path(card), nc=card.num_classes, verbose=False)
    assert sum(p.numel() for p in model.parameters()) == card.num_params
    assert [s[0] for s in card.stages] == [f"model.{i}" for i in range(len(model.model) - 1)]
    assert isinstance(model.model[-1], Detect) and model.model[-1].nc == card.num_classes
    assert card.input.resize == "letterbox" and card.input.size % 32 == 0
