"""Accuracy-aware int8 on a model built to have exactly one quantisation-sensitive layer.

`OneSensitiveLayer` is a small CNN really trained on Fashion-MNIST. Its conv2 reads a tensor
whose 9th channel is 1000 everywhere (conv1's frozen bias; ignored by conv2's zeroed weights): per-tensor
uint8 activations then get a step of ~4, which erases the real features (≈0-3) and int8
accuracy collapses. Keeping conv2 alone in float restores it, so the search must return
exactly that layer — on ONNX Runtime (edgetune's search) and OpenVINO (NNCF accuracy control).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from edgetune.export.accuracy_aware import fewest_prefix, search
from edgetune.export.backends import openvino as ovx
from edgetune.export.backends.onnxruntime import OrtStaticQuantizer, OrtSurgeon, compute_nodes
from edgetune.export.gate import Gate
from edgetune.export.onnx import export_onnx
from edgetune.runtime import Session, open_session

BUDGET = 0.02


class OneSensitiveLayer(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 9, 3, stride=2, padding=1)
        self.conv2 = torch.nn.Conv2d(9, 16, 3, stride=2, padding=1)
        self.conv3 = torch.nn.Conv2d(16, 32, 3, stride=2, padding=1)
        self.fc = torch.nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.conv1(x))  # channel 8: the outlier
        h = F.relu(self.conv3(F.relu(self.conv2(h))))
        return self.fc(h.mean((2, 3)))


@pytest.fixture(scope="module")
def sensitive(tmp_path_factory) -> dict:
    from edgetune.data import fashion_mnist

    train, test, _ = fashion_mnist.load("embedded")
    xs = lambda s: torch.from_numpy(s.images[:, None].astype(np.float32) / 255)  # noqa: E731
    x_train, y_train = xs(train), torch.from_numpy(train.labels.astype(np.int64))
    torch.manual_seed(0)
    model = OneSensitiveLayer()
    with torch.no_grad():
        model.conv1.weight[8], model.conv1.bias[8] = 0, 1000
        model.conv2.weight[:, 8] = 0
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(15):
        for idx in torch.randperm(len(x_train)).split(64):
            opt.zero_grad()
            F.cross_entropy(model(x_train[idx]), y_train[idx]).backward()
            model.conv1.weight.grad[8], model.conv1.bias.grad[8] = 0, 0  # the outlier stays constant
            model.conv2.weight.grad[:, 8] = 0  # and ignored
            opt.step()
    model.eval()
    work = tmp_path_factory.mktemp("sensitive")
    fp32 = work / "fp32.onnx"
    x_test = xs(test).numpy()
    export_onnx(model, x_test[:1], fp32)

    def accuracy(artefact: Path | Session) -> float:
        s = artefact if isinstance(artefact, Session) else open_session(artefact)
        return float(np.mean([s.run(x_test[i: i + 1])[0].argmax() == test.labels[i] for i in range(len(x_test))]))

    convs = compute_nodes(fp32)
    return {"model": model, "fp32": fp32, "work": work, "accuracy": accuracy, "acc_fp32": accuracy(fp32),
            "calib": [x_train[i: i + 1].numpy() for i in range(0, 1000, 10)],
            "ranking": [x_test[i: i + 1] for i in range(0, 500, 16)], "conv1": convs[0], "conv2": convs[1]}


def test_fixture_model_learnt_and_plain_int8_collapses(sensitive, tmp_path):
    assert sensitive["acc_fp32"] > 0.6  # really trained (chance is 0.1)
    q = OrtStaticQuantizer(sensitive["fp32"], sensitive["calib"], tmp_path)
    assert q.kept == [sensitive["conv1"]]  # the first layer stays float by default
    q.quantize(tmp_path / "plain.onnx")
    assert sensitive["acc_fp32"] - sensitive["accuracy"](tmp_path / "plain.onnx") > 0.2


def test_ort_search_returns_exactly_the_sensitive_layer(sensitive, tmp_path):
    q = OrtStaticQuantizer(sensitive["fp32"], sensitive["calib"], tmp_path)
    plain = tmp_path / "plain.onnx"
    q.quantize(plain)
    surgeon = OrtSurgeon(plain, q.prepped, q.candidates(), tmp_path)
    result = search(surgeon, sensitive["ranking"], Gate(sensitive["acc_fp32"], BUDGET),
                    lambda layers: sensitive["accuracy"](surgeon.session(layers)), quiet=True)
    assert result.ranking[0]["layer"] == sensitive["conv2"]
    assert result.met and result.float_layers == [sensitive["conv2"]], result
    final = tmp_path / "final.onnx"
    surgeon.save(result.float_layers, final)
    assert sensitive["acc_fp32"] - sensitive["accuracy"](final) <= BUDGET
    import onnx

    g = onnx.load(str(final)).graph
    conv2 = next(n for n in g.node if n.name == sensitive["conv2"])
    producers = {o: n.op_type for n in g.node for o in n.output}
    assert all(producers.get(i) != "DequantizeLinear" for i in conv2.input)  # really computes in float
    assert sum(n.op_type == "DequantizeLinear" for n in g.node) > 0  # and the rest is still int8


def test_ort_every_layer_back_in_float_computes_the_float_graph(sensitive, tmp_path):
    """ORT's quantiser drops the ReLU behind each conv and lets the next QuantizeLinear clip; a
    layer read in float must re-apply it, and the last Gemm must write the logits unquantised —
    with every candidate in float the variant is the float graph again (it was not: restoring
    the speech embedding's clamped layers made the KWS drop worse the more layers it restored)."""
    q = OrtStaticQuantizer(sensitive["fp32"], sensitive["calib"], tmp_path)
    plain = tmp_path / "plain.onnx"
    q.quantize(plain)
    surgeon = OrtSurgeon(plain, q.prepped, q.candidates(), tmp_path)
    everything, reference = surgeon.session(surgeon.candidates()), surgeon.reference()
    for x in sensitive["ranking"][:8]:
        np.testing.assert_allclose(everything.run(x)[0], reference.run(x)[0], atol=1e-5)


def test_openvino_search_returns_exactly_the_sensitive_layer(sensitive, tmp_path):
    import onnx
    import openvino as ov

    names = [n.name for n in onnx.load(str(sensitive["fp32"])).graph.node]
    plain, _ = ovx.quantize_int8(ovx.convert(sensitive["fp32"]), sensitive["calib"], keep_float=[sensitive["conv1"]],
                                 onnx_nodes=names)
    surgeon = ovx.OpenVinoSurgeon(plain, ovx.convert(sensitive["fp32"]))
    assert sensitive["acc_fp32"] - sensitive["accuracy"](surgeon.session([])) > 0.2
    result = search(surgeon, sensitive["ranking"], Gate(sensitive["acc_fp32"], BUDGET),
                    lambda layers: sensitive["accuracy"](surgeon.session(layers)), quiet=True)
    assert [n.split("/WithoutBiases")[0] for n in result.float_layers] == [sensitive["conv2"]], result
    xml = tmp_path / "model.xml"
    surgeon.save(result.float_layers, xml)
    assert sensitive["acc_fp32"] - sensitive["accuracy"](open_session(xml)) <= BUDGET
    saved = ov.Core().read_model(str(xml))
    newly_float = [n for n in ovx.float_ops(saved) if n not in ovx.float_ops(plain)]
    assert [n.split("/WithoutBiases")[0] for n in newly_float] == [sensitive["conv2"]]
    assert sum(op.get_type_name() == "FakeQuantize" for op in saved.get_ops()) > 0  # the rest stays int8


def test_openvino_every_layer_back_in_float_computes_the_float_graph(sensitive):
    """NNCF stores a layer's int8 weights compressed (int8 Constant → Convert → Multiply), with no
    FakeQuantize to bypass: restoring a layer must also give it the float weights. With every
    candidate restored the variant computes the float model (it did not: on the suite's glyphs
    run restoring all 49 layers still lost the plain 8.3 pt, in the classifier's int8 weights)."""
    import onnx

    names = [n.name for n in onnx.load(str(sensitive["fp32"])).graph.node]
    plain, _ = ovx.quantize_int8(ovx.convert(sensitive["fp32"]), sensitive["calib"], onnx_nodes=names)
    surgeon = ovx.OpenVinoSurgeon(plain, ovx.convert(sensitive["fp32"]))
    everything, reference = surgeon.session(surgeon.candidates()), surgeon.reference()
    for x in sensitive["ranking"][:8]:
        np.testing.assert_allclose(everything.run(x)[0], reference.run(x)[0], atol=1e-4)


@pytest.mark.parametrize("metrics, k, met", [
    ([0.50, 0.60, 0.70, 0.78, 0.80, 0.80, 0.80, 0.80], 4, True),   # monotone: bisection finds the first k that fits
    ([0.50, 0.80, 0.80, 0.80], 1, True),
    ([0.50, 0.60, 0.61, 0.62, 0.63], 4, False),  # never within budget: the best mix tried (all four)
])
def test_fewest_prefix_search(metrics, k, met):
    ranked = [f"l{i}" for i in range(len(metrics) - 1)]
    calls = []

    def metric_of(layers):
        calls.append(len(layers))
        return metrics[len(layers)]

    r = fewest_prefix(ranked, metric_of, Gate(0.80, 0.01))
    assert (len(r.float_layers), r.met) == (k, met)
    assert len(calls) == len(set(calls)) <= 2 * len(ranked).bit_length() + 1  # no k evaluated twice, log steps


def test_a_miss_with_every_layer_in_float_says_it_is_not_quantisation():
    from edgetune.export.accuracy_aware import unmet_note

    metrics = [0.75, 0.75, 0.75, 0.75, 0.75]  # one borderline sample the runtime flips whatever is float
    r = fewest_prefix([f"l{i}" for i in range(4)], lambda layers: metrics[len(layers)], Gate(0.80, 0.01))
    assert not r.met and r.candidates == 4
    aa = {"trials": r.trials, "candidates": r.candidates, "drop": r.drop, "float_layers": r.float_layers}
    note, hint = unmet_note(aa)
    assert note == ("; with all 4 quantised layers back in float it still drops 0.0500, so the rest is not "
                    "quantisation (a borderline val sample, or the runtime's own arithmetic)")
    assert hint.startswith("with few val samples one flip can exceed the budget")
    partial = {**aa, "candidates": 9}  # the search stopped before trying every layer
    note, hint = unmet_note(partial)
    assert note.startswith("; the accuracy-aware search found no mix within budget (best: drop 0.0500") and hint is None
