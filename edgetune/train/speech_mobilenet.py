"""A keyword spotter trained on real recordings of the words: Silicon Labs' MLTK
`keyword_spotting_mobilenetv2` (MobileNetV2 ×0.15 on Speech Commands v2), rebuilt as torch modules so
it fine-tunes and exports like every other edgetune model.

- `Microfrontend`: the TFLite-Micro audio front end the model was trained with (30 ms Hann windows
  every 20 ms, a 512-point FFT, 49 mel-spaced triangular channels over 125-3999 Hz, square root,
  per-channel noise reduction, 64·ln, then TFLite-Micro's uint16 → int8 mapping), as float torch
  ops. The C original works in fixed point; this follows its arithmetic in float (same window and
  filter-bank weights after their own rounding), and the test suite checks it against the compiled
  original shipped in the same wheel. The FFT is a matmul with the windowed DFT basis of the bins
  the filter bank reads, so the graph needs no STFT or complex op on any runtime.
- `MobileNetV2Kws`: Keras' MobileNetV2 (ReLU6, BatchNorm ε = 1e-3, TF "same" padding written out)
  on the (59 frames × 49 channels) int8-valued spectrogram; weights from the Keras .h5.

Why (benchmarks/RESULTS.md "kws-pretrained"): zero-shot, the shipped model found 6 of the 7 real
keyword utterances at one false accept, where a head trained on generated speech needed 36.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

SAMPLE_RATE = 16000
INT16_MAX = 32767.0


def _mel(freq: np.ndarray | float) -> np.ndarray:
    return 1127.0 * np.log1p(np.asarray(freq, dtype=np.float32) / 700.0)


def filterbank_weights(channels: int, lower_hz: float, upper_hz: float, fft_size: int,
                       sample_rate: int = SAMPLE_RATE) -> tuple[np.ndarray, int]:
    """(channels, bins) weights on |X_k|² and the first bin they read: TFLite-Micro's filter bank.
    Each of channels + 1 bands runs from the previous band's end up to its mel centre; a bin adds
    its weight w to its own band's sum and 1 - w to the next band's (both rounded to 12 bits, as
    there); band 0's own sum is not an output."""
    spectrum = fft_size // 2 + 1
    hz_per_bin = 0.5 * sample_rate / (spectrum - 1)
    mel_low = float(_mel(lower_hz))
    centres = mel_low + (float(_mel(upper_hz)) - mel_low) / (channels + 1) * np.arange(1, channels + 2)
    start = int(1.5 + lower_hz / hz_per_bin)
    w = np.zeros((channels + 2, spectrum), dtype=np.float64)  # row b: band b's weights + band b - 1's unweights
    k = start
    for band in range(channels + 1):
        lo = mel_low if band == 0 else centres[band - 1]
        while _mel(k * hz_per_bin) <= centres[band]:
            weight = (centres[band] - _mel(k * hz_per_bin)) / (centres[band] - lo)
            w[band, k] += math.floor(weight * 4096 + 0.5) / 4096
            w[band + 1, k] += math.floor((1 - weight) * 4096 + 0.5) / 4096
            k += 1
    return w[1: channels + 1].astype(np.float32), start


class Microfrontend(nn.Module):
    """(N, samples) float audio in [-1, 1] → (N, 1, frames, channels): the int8-valued spectrogram
    (as floats in [-128, 127]) that TFLite-Micro's front end gives for int16 audio."""

    def __init__(self, *, window_ms: int = 30, step_ms: int = 20, channels: int = 49, lower_hz: float = 125.0,
                 upper_hz: float = 3999.0, even_smoothing: float = 0.025, odd_smoothing: float = 0.06,
                 min_signal_remaining: float = 0.03, scale_shift: int = 6) -> None:
        super().__init__()
        self.win, self.step = window_ms * SAMPLE_RATE // 1000, step_ms * SAMPLE_RATE // 1000
        fft = 1 << (self.win - 1).bit_length()
        fb, start = filterbank_weights(channels, lower_hz, upper_hz, fft)
        end = int(np.flatnonzero(fb.any(0)).max()) + 1
        i = np.arange(self.win)
        window = np.floor((0.5 - 0.5 * np.cos(2 * np.pi * (i + 0.5) / self.win)) * 4096 + 0.5) / 4096
        angle = 2 * np.pi * np.arange(start, end)[None, :] * i[:, None] / fft
        # real and imaginary DFT rows of the bins the filter bank reads, windowed; / fft as kiss_fftr scales
        basis = np.concatenate([np.cos(angle), -np.sin(angle)], axis=1) * window[:, None] / fft
        self.register_buffer("basis", torch.from_numpy(basis.astype(np.float32)), persistent=False)
        self.register_buffer("fb", torch.from_numpy(fb[:, start:end].T.copy()), persistent=False)
        smoothing = np.where(np.arange(channels) % 2 == 0, even_smoothing, odd_smoothing)
        self._smoothing_values = tuple(float(v) for v in np.unique(smoothing))
        # (values, 1, channels): 1 where a channel uses that smoothing value
        pick = (smoothing[None, :] == np.array(self._smoothing_values)[:, None]).astype(np.float32)[:, None]
        self.register_buffer("pick", torch.from_numpy(pick), persistent=False)
        self.min_signal_remaining = min_signal_remaining
        # log: 2^scale_shift · ln(signal · 2^correction), correction = log2(fft) - 1 - 12 / 2
        self.log_gain = float(1 << scale_shift)
        self.log_input_gain = float(2 ** ((fft.bit_length()) - 1 - 6))
        self._index: torch.Tensor | None = None
        self._decay: torch.Tensor | None = None  # (smoothing values, T, T), see _noise_estimate

    def _frame_index(self, samples: int, device: torch.device) -> torch.Tensor:
        """(T, win) sample indices of every frame: a Gather, which every runtime has (unlike unfold)."""
        if self._index is None or self._index.shape[0] != (samples - self.win) // self.step + 1:
            starts = torch.arange(0, samples - self.win + 1, self.step)
            self._index = starts[:, None] + torch.arange(self.win)[None, :]
        return self._index.to(device)

    def _noise_estimate(self, signal: torch.Tensor) -> torch.Tensor:
        """The per-channel noise estimate e[t] = s·x[t] + (1 − s)·e[t−1], from e = 0 for every window.

        The recursion is linear, so it is one lower-triangular (T, T) matmul over time per smoothing
        value (even and odd channels differ): the same values as the C code's loop, without a
        T-step loop unrolled into the exported graph (which stalled LiteRT's int8 calibration)."""
        frames = signal.shape[1]
        if self._decay is None or self._decay.shape[-1] != frames:
            lag = np.arange(frames)[:, None] - np.arange(frames)[None, :]
            s = np.array(self._smoothing_values, np.float64)[:, None, None]
            decay = np.where(lag >= 0, s * (1 - s) ** np.maximum(lag, 0), 0.0)  # (values, T, T)
            self._decay = torch.from_numpy(decay.astype(np.float32))
        estimates = self._decay.to(signal.device) @ signal.unsqueeze(1)  # (N, values, T, channels)
        return (estimates * self.pick).sum(dim=1)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        x = torch.clamp(audio, -1.0, 1.0) * INT16_MAX
        frames = x[:, self._frame_index(x.shape[-1], x.device)]  # (N, T, win)
        spec = frames @ self.basis  # (N, T, 2·bins)
        re, im = spec.chunk(2, dim=-1)
        energy = (re * re + im * im) @ self.fb  # (N, T, channels)
        # the C code's integers are kept where they matter: a channel whose noise-reduced value is
        # below 1 is 0 there (log 0 → the int8 floor); in float it would be a loud -128 + 40
        signal = torch.floor(64.0 * torch.sqrt(energy))  # sqrt of the 12-bit weighted sum: × 2^6
        estimate = self._noise_estimate(signal)
        reduced = torch.floor(torch.maximum(signal - torch.minimum(estimate, signal), self.min_signal_remaining * signal))
        reduced = reduced * self.log_input_gain
        logged = torch.where(reduced > 1.0, self.log_gain * torch.log(torch.clamp(reduced, min=1.0)),
                             torch.zeros_like(reduced))
        # TFLite-Micro's micro_features: int8 = (uint16 · 256 + 333) / 666 - 128, clamped
        return torch.clamp(logged * (256.0 / 666.0) - 128.0, -128.0, 127.0).unsqueeze(1)


def _same_pad(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TF "same" padding (before, after) along one axis: the extra pixel goes after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class _ConvBN(nn.Module):
    """Conv (no bias) → BatchNorm(ε 1e-3) → optional ReLU6, with TF's padding for the input size."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, size: tuple[int, int], *,
                 groups: int = 1, relu: bool = True) -> None:
        super().__init__()
        self.pad = (*_same_pad(size[1], kernel, stride), *_same_pad(size[0], kernel, stride))
        self.conv = nn.Conv2d(cin, cout, kernel, stride, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=1e-3)
        self.relu = relu
        self.out_size = (-(-size[0] // stride), -(-size[1] // stride))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(F.pad(x, self.pad) if any(self.pad) else x))
        return F.relu6(x) if self.relu else x


class _InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, expand: int, stride: int, size: tuple[int, int]) -> None:
        super().__init__()
        hidden = cin * expand
        self.expand = _ConvBN(cin, hidden, 1, 1, size) if expand != 1 else None
        self.depthwise = _ConvBN(hidden, hidden, 3, stride, size, groups=hidden)
        self.project = _ConvBN(hidden, cout, 1, 1, self.depthwise.out_size, relu=False)
        self.residual = stride == 1 and cin == cout
        self.out_size = self.depthwise.out_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.depthwise(self.expand(x) if self.expand is not None else x))
        return x + y if self.residual else y


# Keras MobileNetV2's block table (expansion, output channels before the width multiplier, repeats,
# first stride) and MLTK's width 0.15 as the .h5 holds it: channels 8, 8, 8, 16, 16, 24, 48; last conv 384.
_BLOCKS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def _divisible(v: float, d: int = 8) -> int:
    new = max(d, int(v + d / 2) // d * d)
    return new + d if new < 0.9 * v else new


class MobileNetV2Kws(nn.Module):
    """Keras MobileNetV2 (width `alpha`) on a (1, frames, channels) spectrogram; `classifier` is the
    final Dense layer (logits: Keras' softmax is left to the loss and the stream scorer)."""

    def __init__(self, num_classes: int, size: tuple[int, int] = (59, 49), alpha: float = 0.15,
                 last_channels: int = 384) -> None:
        super().__init__()
        first = _divisible(32 * alpha)
        stem = _ConvBN(1, first, 3, 2, size)
        layers: list[nn.Module] = [stem]
        cin, hw = first, stem.out_size
        for expand, channels, repeats, stride in _BLOCKS:
            cout = _divisible(channels * alpha)
            for r in range(repeats):
                block = _InvertedResidual(cin, cout, expand, stride if r == 0 else 1, hw)
                layers.append(block)
                cin, hw = cout, block.out_size
        layers.append(_ConvBN(cin, last_channels, 1, 1, hw))
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(last_channels, num_classes)

    def forward(self, spectrogram: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.body(spectrogram))

    @torch.no_grad()
    def load_keras_h5(self, source: Path | IO[bytes], *, what: str | None = None) -> None:
        """Copy the weights of Keras' MobileNetV2 layer names (Conv1, expanded_conv_*, block_N_*,
        Conv_1, predictions) from an .h5 model file (a path or a file object; `what` names it in
        errors)."""
        import h5py

        from edgetune.errors import AssetError

        path = what or str(source)
        with h5py.File(source, "r") as f:
            if "model_weights" not in f:
                raise AssetError(f"{path} is not a Keras model file (no 'model_weights' group)")
            g = f["model_weights"]

            def take(layer: str, name: str) -> torch.Tensor:
                try:
                    return torch.from_numpy(np.asarray(g[layer][layer][name + ":0"], dtype=np.float32))
                except KeyError:
                    raise AssetError(f"{path}: no weight {layer}/{name}: not the MobileNetV2 edgetune expects") from None

            def conv_bn(m: _ConvBN, conv: str, bn: str, depthwise: bool = False) -> None:
                k = take(conv, "depthwise_kernel" if depthwise else "kernel")  # (kh, kw, in, out|mult)
                k = k.permute(2, 3, 0, 1) if depthwise else k.permute(3, 2, 0, 1)
                if k.shape != m.conv.weight.shape:
                    raise AssetError(f"{path}: {conv} has shape {tuple(k.shape)}, the model {tuple(m.conv.weight.shape)}")
                m.conv.weight.copy_(k)
                for ours, theirs in (("weight", "gamma"), ("bias", "beta"), ("running_mean", "moving_mean"),
                                     ("running_var", "moving_variance")):
                    getattr(m.bn, ours).copy_(take(bn, theirs))

            layers = list(self.body)
            conv_bn(layers[0], "Conv1", "bn_Conv1")
            for i, block in enumerate(layers[1:-3]):
                name = "expanded_conv" if i == 0 else f"block_{i}"
                if block.expand is not None:
                    conv_bn(block.expand, f"{name}_expand", f"{name}_expand_BN")
                conv_bn(block.depthwise, f"{name}_depthwise", f"{name}_depthwise_BN", depthwise=True)
                conv_bn(block.project, f"{name}_project", f"{name}_project_BN")
            conv_bn(layers[-3], "Conv_1", "Conv_1_bn")
            w = take("predictions", "kernel").T
            if w.shape != self.classifier.weight.shape:
                raise AssetError(f"{path}: predictions has {w.shape[0]} classes, the model {self.classifier.out_features}")
            self.classifier.weight.copy_(w)
            self.classifier.bias.copy_(take("predictions", "bias"))


# The classes of the shipped head, in its order, and the front end it was trained with, in the
# compiled original's setting names (keyword_spotting_mobilenetv2.py's `classes` and `frontend_settings`).
MLTK_LABELS = ("left", "right", "up", "down", "stop", "go", "_unknown_", "_silence_")
MLTK_FRONTEND = {"sample_rate_hz": 16000, "sample_length_ms": 1200, "window_size_ms": 30, "window_step_ms": 20,
                 "filterbank_n_channels": 49, "filterbank_upper_band_limit": 3999.0,
                 "filterbank_lower_band_limit": 125.0, "noise_reduction_enable": True,
                 "noise_reduction_smoothing_bits": 10, "noise_reduction_even_smoothing": 0.025,
                 "noise_reduction_odd_smoothing": 0.06, "noise_reduction_min_signal_remaining": 0.03,
                 "pcan_enable": False, "log_scale_enable": True, "log_scale_shift": 6}


class MobileNetKws(nn.Module):
    """1 s of 16 kHz audio → logits: zero-padded by 0.1 s each side to the 1.2 s the model was
    trained on (MLTK pads Speech Commands' 1 s clips the same way), `features` (the front end, no
    parameters), `body` and `classifier` (the names edgetune's KWS trainer splits and freezes by)."""

    PAD = 1600

    def __init__(self, num_classes: int) -> None:
        from edgetune.train.speech_models import ContextPad

        super().__init__()
        self.features = nn.Sequential(ContextPad(self.PAD), Microfrontend())
        net = MobileNetV2Kws(num_classes)
        self.body, self.classifier = net.body, net.classifier

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.body(self.features(audio)))

    @torch.no_grad()
    def load_pretrained(self, archive: Path, labels: Sequence[str]) -> list[str]:
        """Weights from the MLTK model archive (`.mltk.zip` holding the Keras .h5). The classifier
        rows of the user's classes that the shipped head knows (by name) are copied, the others keep
        their fresh initialisation; returns the classes copied. A user's keywords the model was
        trained on then start from what thousands of real speakers taught it."""
        import io
        import zipfile

        from edgetune.errors import AssetError

        try:
            with zipfile.ZipFile(archive) as z:
                name = next(n for n in z.namelist() if n.endswith(".h5"))
                data = io.BytesIO(z.read(name))
        except (zipfile.BadZipFile, StopIteration):
            raise AssetError(f"{archive} is not an MLTK model archive with a Keras .h5 inside") from None
        net = MobileNetV2Kws(len(MLTK_LABELS))
        net.load_keras_h5(data, what=f"{archive}: {name}")
        self.body.load_state_dict(net.body.state_dict())
        copied = []
        for i, c in enumerate(labels):
            if c in MLTK_LABELS:
                j = MLTK_LABELS.index(c)
                self.classifier.weight[i] = net.classifier.weight[j]
                self.classifier.bias[i] = net.classifier.bias[j]
                copied.append(c)
        return copied


def compiled_microfrontend(wrapper_so: Path, settings_py: Path) -> Callable[[np.ndarray], np.ndarray]:
    """The compiled original from the MLTK wheel (its C++ AudioFeatureGenerator) with the shipped
    model's settings, for checking `Microfrontend` against it: int16 audio (1.2 s) → the int8
    spectrogram. Its Python package is stubbed so the wheel's mltk/__init__ (which imports
    TensorFlow) never runs; x86-64 CPython 3.11 only."""
    import importlib
    import shutil
    import sys
    import types

    from edgetune.paths import cache_dir

    pkg = "mltk.core.preprocess.audio.audio_feature_generator"
    root = cache_dir() / "mltk-frontend"  # one fixed place: repeated calls reuse it, nothing piles up in /tmp
    where = root / pkg.replace(".", "/")
    where.mkdir(parents=True, exist_ok=True)
    # the module's init symbol fixes its file name; the settings class is plain Python. A copy that
    # is there is the same pinned file, and may be loaded: never written over (it is mapped)
    for src, name in ((wrapper_so, "_audio_feature_generator_wrapper.cpython-311-x86_64-linux-gnu.so"),
                      (settings_py, "audio_feature_generator_settings.py")):
        if not (where / name).is_file():
            shutil.copy(src, where / (name + ".part"))
            (where / (name + ".part")).replace(where / name)
    parts = pkg.split(".")
    for i in range(1, len(parts) + 1):
        name = ".".join(parts[:i])
        if name not in sys.modules:
            mod = types.ModuleType(name)
            mod.__path__ = [str(root / name.replace(".", "/"))]
            sys.modules[name] = mod
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    cfg = importlib.import_module(pkg + ".audio_feature_generator_settings").AudioFeatureGeneratorSettings()
    for k, v in MLTK_FRONTEND.items():
        setattr(cfg, k, v)
    gen = importlib.import_module(pkg + "._audio_feature_generator_wrapper").AudioFeatureGeneratorWrapper(cfg)
    shape = cfg.spectrogram_shape

    def run(audio: np.ndarray) -> np.ndarray:
        out = np.zeros(shape, dtype=np.int8)
        gen.process_sample(audio.astype(np.int16), out)
        return out

    return run


class ShippedHeadDistiller:
    """Learning without forgetting (Li & Hoiem, 2016) for a fine-tune from the shipped model: a
    frozen copy of it (the teacher) and a trainable copy of its 8-class head on the student's body;
    the loss adds the KL divergence between the two heads' softened outputs, so the body keeps
    telling apart what thousands of real speakers taught it while the new head learns the user's
    words. The extra head is training-only: it is not part of the model that is saved or exported
    (nor checkpointed: a resumed run starts it again from the shipped head). Off by default
    (edgetune.train.kws.DISTILL_WEIGHT): its A/B did not pass, RESULTS.md "kws-distill"."""

    def __init__(self, archive: Path, body: nn.Module, weight: float, temperature: float = 2.0) -> None:
        self.teacher = MobileNetKws(len(MLTK_LABELS))
        self.teacher.load_pretrained(archive, list(MLTK_LABELS))
        self.teacher.eval().requires_grad_(False)
        self.old_head = nn.Linear(self.teacher.classifier.in_features, len(MLTK_LABELS))
        self.old_head.load_state_dict(self.teacher.classifier.state_dict())
        self.weight, self.temperature = weight, temperature
        self._features: torch.Tensor | None = None
        body.register_forward_hook(lambda _m, _i, out: setattr(self, "_features", out))

    def to(self, device: torch.device) -> ShippedHeadDistiller:
        self.teacher.to(device)
        self.old_head.to(device)
        return self

    def parameters(self) -> list[nn.Parameter]:
        return list(self.old_head.parameters())

    def loss(self, spectrogram: torch.Tensor) -> torch.Tensor:
        """The distillation term for the batch the student's body has just seen (`spectrogram`)."""
        assert self._features is not None, "the student's body must run first"
        with torch.no_grad():
            target = F.softmax(self.teacher.classifier(self.teacher.body(spectrogram)) / self.temperature, dim=1)
        student = F.log_softmax(self.old_head(self._features) / self.temperature, dim=1)
        return self.weight * self.temperature ** 2 * F.kl_div(student, target, reduction="batchmean")
