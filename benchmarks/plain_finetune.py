"""The peer: a plain torchvision-style fine-tuning script, as most people would write it.

ImageFolder + per-sample PIL transforms + DataLoader + AdamW + cross-entropy, evaluating on the
val split after every epoch. Same model (timm tf_efficientnet_lite0 with the same ImageNet
weights), same data, same image size and epochs as edgetune, so the time-to-accuracy comparison
in RESULTS.md is like for like. Prints one JSON line: per-epoch val top-1 and elapsed seconds.

    python benchmarks/plain_finetune.py DATA_DIR --img-size 128 --epochs 6
"""

from __future__ import annotations

import argparse
import json
import time

import timm
import torch
from torch import nn
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

from edgetune.assets import resolve_weights
from edgetune.train.models import create_pretrained
from edgetune.zoo import get_card


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--img-size", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    t0 = time.perf_counter()
    card = get_card("efficientnet_lite0")
    model = create_pretrained(card, resolve_weights(card))  # the same ImageNet weights as edgetune
    assert isinstance(model, timm.models.EfficientNet)
    norm = transforms.Normalize(card.input.mean, card.input.std)
    resize = int(args.img_size / card.input.crop_pct)
    train_tf = transforms.Compose([transforms.Grayscale(3), transforms.RandomResizedCrop(args.img_size),
                                   transforms.RandomHorizontalFlip(), transforms.ToTensor(), norm])
    val_tf = transforms.Compose([transforms.Grayscale(3), transforms.Resize(resize),
                                 transforms.CenterCrop(args.img_size), transforms.ToTensor(), norm])
    train = datasets.ImageFolder(f"{args.data}/train", train_tf)
    val = datasets.ImageFolder(f"{args.data}/val", val_tf)
    model.reset_classifier(len(train.classes))
    tl = DataLoader(train, batch_size=args.batch, shuffle=True, num_workers=2)
    vl = DataLoader(val, batch_size=64, num_workers=2)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.epochs * len(tl))
    loss_fn = nn.CrossEntropyLoss()
    history = []
    for epoch in range(1, args.epochs + 1):
        model.train()
        for x, y in tl:
            loss = loss_fn(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        model.eval()
        correct = 0
        with torch.no_grad():
            for x, y in vl:
                correct += (model(x).argmax(1) == y).sum().item()
        history.append({"epoch": epoch, "top1": correct / len(val), "elapsed": time.perf_counter() - t0})
        print(json.dumps(history[-1]), flush=True)
    print(json.dumps({"history": history}))


if __name__ == "__main__":
    main()
