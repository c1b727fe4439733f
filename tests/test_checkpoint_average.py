"""The checkpoint a classification fine-tune hands over: the average of the val-best and the last
epoch's weights (edgetune.train.loop.hand_over_average), chosen on the suite's tuning half
(benchmarks/checkpoint_choice.py). The loop is driven with scripted val metrics, so which epoch is
best is known, and each epoch leaves weights that name it."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import invoke, invoke_json

from edgetune.run import RunDir
from edgetune.train.loop import FitState, average_state_dicts, fit, load_checkpoint


def test_average_state_dicts_means_floats_and_keeps_counters():
    a = {"w": torch.tensor([1.0, 3.0]), "n": torch.tensor(4)}
    b = {"w": torch.tensor([3.0, 5.0]), "n": torch.tensor(9)}
    out = average_state_dicts(a, b)
    assert torch.equal(out["w"], torch.tensor([2.0, 4.0])) and out["n"].item() == 9


def _fit(tmp_path, metrics: list[float], epochs: int, *, resume: bool = False, average_last: bool = True) -> FitState:
    """A one-weight model whose weight is the epoch number after each epoch; val says `metrics[epoch - 1]`."""
    model = torch.nn.Linear(1, 1, bias=False)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    epoch_now = [0]

    def train_epoch(epoch: int) -> float:
        epoch_now[0] = epoch
        with torch.no_grad():
            model.weight.fill_(float(epoch))
        return 0.0

    def evaluate() -> float:  # the averaged model is evaluated too: its weight tells which it is
        w = model.weight.item()
        return metrics[epoch_now[0] - 1] if w == epoch_now[0] else w / 100

    return fit(run=RunDir(tmp_path), model=model, optimizer=opt, scheduler=sched, train_epoch=train_epoch,
               evaluate=evaluate, epochs=epochs, patience=10, on_epoch=lambda st: None, resume=resume,
               metric_name="top1", average_last=average_last)


def _weight(path) -> float:
    return load_checkpoint(path)["weight"].item()


def test_checkpoint_is_the_average_of_the_best_and_last_epochs(tmp_path):
    state = _fit(tmp_path, [0.5, 0.9, 0.6], epochs=3)
    assert _weight(tmp_path / "checkpoint.pt") == 2.5  # epochs 2 (best on val) and 3 (last)
    assert state.best_epoch == 2 and state.best_metric == 0.9  # the val-best is still on record
    assert state.checkpoint_record("top1") == {"epoch": 3, "top1": 0.025, "average_of": [2, 3]}  # its own val
    last = load_checkpoint(tmp_path / "last.pt")
    assert last["model"]["weight"].item() == 3.0 and last["best_model"]["weight"].item() == 2.0


def test_one_model_is_handed_over_as_it_is(tmp_path):
    state = _fit(tmp_path / "a", [0.5, 0.6, 0.9], epochs=3)  # the last is the best
    assert _weight(tmp_path / "a" / "checkpoint.pt") == 3.0 and state.averaged is None
    assert state.checkpoint_record("top1") == {"epoch": 3, "top1": 0.9}
    state = _fit(tmp_path / "b", [0.5, 0.9, 0.6], epochs=3, average_last=False)  # --checkpoint best
    assert _weight(tmp_path / "b" / "checkpoint.pt") == 2.0 and state.averaged is None


def test_resume_averages_from_the_val_best_not_from_the_average(tmp_path):
    _fit(tmp_path, [0.5, 0.9, 0.6, 0.7], epochs=3)
    again = _fit(tmp_path, [0.5, 0.9, 0.6, 0.7], epochs=3, resume=True)  # nothing left to train: same hand-over
    assert _weight(tmp_path / "checkpoint.pt") == 2.5 and again.averaged == {"epochs": [2, 3], "top1": 0.025}
    more = _fit(tmp_path, [0.5, 0.9, 0.6, 0.7], epochs=4, resume=True)  # epoch 4 does not beat epoch 2
    assert _weight(tmp_path / "checkpoint.pt") == 3.0 and more.averaged["epochs"] == [2, 4]
    _fit(tmp_path, [0.5, 0.9, 0.6, 0.7, 0.95], epochs=5, resume=True)  # epoch 5 is the new best and the last
    assert _weight(tmp_path / "checkpoint.pt") == 5.0 and "best_model" not in load_checkpoint(tmp_path / "last.pt")


def test_finetune_records_the_hand_over_and_export_measures_it(tmp_path, fm_data):
    out = tmp_path / "r"
    r = invoke_json("finetune", "--model", "test_tinynet", "--data", fm_data, "--out", out, "--epochs", 4,
                    "--patience", 1, "--lr", 3e-3, "--seed", 0)
    best = json.loads((out / "edgetune.json").read_text())["best"]
    assert r["best"] == best and r["metric"] == best["top1"]
    last = load_checkpoint(out / "last.pt")
    ck = load_checkpoint(out / "checkpoint.pt")
    if r["stopped_early"]:  # patience 1: it stops one epoch after its best, so there are two to average (here: 1, 2)
        assert best["average_of"] == [r["epochs"] - 1, r["epochs"]] and "best_model" in last
        expected = average_state_dicts(last["best_model"], last["model"])
    else:  # every epoch beat the one before: the last is the best
        assert best == {"epoch": 4, "top1": r["metric"]} and "best_model" not in last
        expected = last["model"]
    assert all(torch.allclose(ck[k].float(), expected[k].float()) for k in expected)
    exported = invoke_json("export", out, "--target", "cpu-fp32")
    assert exported["metric"] == pytest.approx(best["top1"], abs=1e-9)  # the val the manifest records is the checkpoint's


def test_checkpoint_option_is_checked(tmp_path, fm_data):
    res = invoke("finetune", "--model", "test_tinynet", "--data", fm_data, "--out", tmp_path / "r", "--checkpoint", "mean")
    assert res.exit_code == 2 and "'mean' is not one of 'average', 'best'" in res.stderr
