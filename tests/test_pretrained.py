"""Real pretrained weights, resolved without a hub, predict real photos correctly."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from conftest import offline_weights
from PIL import Image

from edgetune.preprocess import ImagePreprocess
from edgetune.train.models import Normalized, create_pretrained, lukemelas_to_timm_lite

skimage_data = pytest.importorskip("skimage.data")

# ImageNet-1k indices: 281 tabby, 282 tiger cat, 285 Egyptian cat; 967 espresso.
CATS = {281, 282, 285}
ESPRESSO = 967


@pytest.fixture(scope="module")
def lite0():
    card, weights = offline_weights("efficientnet_lite0")
    model = Normalized(create_pretrained(card, weights), card.input.mean, card.input.std).eval()
    i = card.input
    return model, ImagePreprocess.for_size(i.size, i.crop_pct, i.interpolation, i.mean, i.std)


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("photo, classes, min_p", [("chelsea", CATS, 0.5), ("coffee", {ESPRESSO}, 0.8)])
def test_efficientnet_lite0_recognises_real_photos(lite0, photo, classes, min_p):
    model, pre = lite0
    with torch.no_grad():
        probs = model(torch.from_numpy(pre(_png(getattr(skimage_data, photo)())))).softmax(-1)[0]
    assert int(probs.argmax()) in classes
    assert float(probs[list(classes)].sum()) >= min_p


def test_converter_covers_every_tensor_exactly_once():
    """All 296 carrier tensors map onto distinct timm keys (strict loading then proves shapes)."""
    import timm

    target = timm.create_model("tf_efficientnet_lite0").state_dict()
    depths = (1, 2, 2, 3, 3, 4, 1)
    fake = {"_conv_stem.weight": 0, "_fc.weight": 0, "_fc.bias": 0}
    n = 0
    for d in depths:
        for _ in range(d):
            layers = ["_depthwise_conv", "_bn1", "_project_conv", "_bn2"] + ([] if n == 0 else ["_expand_conv", "_bn0"])
            for layer in layers:
                fake[f"_blocks.{n}.{layer}.weight"] = 0
            n += 1
    mapped = lukemelas_to_timm_lite(fake)
    assert len(mapped) == len(fake)
    assert set(mapped) <= set(target)


# -- COCO YOLO from the segmentation carrier -----------------------------------------------------
def test_yolo11n_transfer_finds_coco_objects():
    """The official COCO yolo11n-seg checkpoint transferred into a yolo11n detector finds the bus
    and the people in ultralytics' own sample photos — before any fine-tuning — decoded by
    edgetune's numpy letterbox + NMS."""
    from pathlib import Path

    from edgetune.preprocess import Letterbox
    from edgetune.tasks.boxes import NmsConfig, nms
    from edgetune.train.detector import count_transfer
    from edgetune.train.ultralytics_env import prepare

    _, weights = offline_weights("yolo11n")
    counts = count_transfer(weights.path, "yolo11n.yaml", nc=7)
    assert counts["coco_transferred"] == counts["coco_total"] == 499
    assert counts["source_task"] == "segment" and counts["source_tensors"] > 499
    assert counts["finetune_total"] == 499 and 400 < counts["finetune_transferred"] < 499

    prepare(quiet=True)
    import ultralytics
    from ultralytics import YOLO
    from ultralytics.nn.modules import Detect

    yolo = YOLO("yolo11n.yaml")
    yolo.load(str(weights.path))
    net = yolo.model.float().eval()
    for m in net.modules():
        if isinstance(m, Detect):
            m.export, m.format = True, "onnx"
    names = net.names
    assets = Path(ultralytics.__file__).parent / "assets"
    pre = Letterbox(640)
    found = {}
    for image in ("bus.jpg", "zidane.jpg"):
        img = pre.open(assets / image)
        x, _ = pre.apply(img)
        with torch.no_grad():
            out = net(torch.from_numpy(x))
        out = out[0] if isinstance(out, (list, tuple)) else out
        det = nms(out[0].numpy(), NmsConfig(conf=0.4))
        found[image] = sorted(names[int(c)] for c in det[:, 5])
    assert "bus" in found["bus.jpg"] and found["bus.jpg"].count("person") >= 3, found
    assert found["zidane.jpg"].count("person") >= 2, found


def test_a_probe_at_chance_on_val_is_warned_about():
    """Val that does not look like train (here: each class's val images carry another class's
    label) leaves the probe at chance on val, and the line the fine-tune logs says so; a val that
    matches gets none."""
    from edgetune.train.probe import chance_warning, fit_linear

    g = torch.Generator().manual_seed(0)
    centres = torch.randn(3, 16, generator=g) * 4
    y = torch.arange(3).repeat_interleave(20)
    x_train = centres[y] + torch.randn(60, 16, generator=g)
    x_val = centres[y] + torch.randn(60, 16, generator=g)
    _, acc, _ = fit_linear(x_train, y, x_val, y, 3)
    assert acc > 0.9 and chance_warning(acc, 3) is None
    _, acc, _ = fit_linear(x_train, y, x_val, (y + 1) % 3, 3)
    assert acc <= 1 / 3
    assert chance_warning(acc, 3) == (
        f"warning: the linear probe on cached features scores {acc:.2f} on val, no better than chance (0.33 for 3 "
        "classes): the val images may not look like the training images, so no checkpoint is chosen on them: every "
        "epoch runs and the last is kept; check the split (--val-split holds out training images instead)")


@pytest.mark.parametrize("keep_last", [False, True])
def test_a_val_that_says_nothing_keeps_the_last_epoch(tmp_path, keep_last):
    """With val uninformative (the probe at chance) every epoch runs and checkpoint.pt is the last
    one, however val moves; otherwise val chooses it and stops early as before."""
    from edgetune.run import RunDir
    from edgetune.train.loop import FitState, fit, load_checkpoint

    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
    val = iter([0.9, 0.6, 0.5, 0.4, 0.3, 0.2])  # the best epoch is the first

    def train_epoch(epoch: int) -> float:
        with torch.no_grad():
            model.weight.fill_(float(epoch))  # each epoch's weights say which epoch it was
        return 1.0

    run = RunDir(tmp_path)
    initial = FitState(best_metric=0.5, keep_last=keep_last)
    state = fit(run=run, model=model, optimizer=opt, scheduler=sched, train_epoch=train_epoch, evaluate=lambda: next(val),
                epochs=6, patience=2, on_epoch=lambda st: None, resume=False, metric_name="top1", initial=initial)
    kept = float(load_checkpoint(run.checkpoint)["weight"][0, 0])
    if keep_last:
        assert (state.epoch, state.best_epoch, kept, state.stopped_early) == (6, 6, 6.0, False)
    else:
        assert (state.epoch, state.best_epoch, kept, state.stopped_early) == (3, 1, 1.0, True)
