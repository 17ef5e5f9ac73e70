"""A small event CNN with time-preserving layers (book chapter 8; adabit_lite.temporal).

Input ``[B, T, C, H, W]`` (batch-major, as train.py slices the ``moving-digits`` bundle's
``[N, T, C, H, W]`` tensors), transposed to time-major ``[T, B, C, H, W]`` inside.  Every step t
goes through

    stem TQConv2d 3x3 C_in->w (8/8 bits, fixed) - BN - ReLU - maxpool 2
    TQConv2d 3x3 w->2w - BN - ReLU - maxpool 2
    TQConv2d 3x3 2w->2w - BN - ReLU - adaptive avg pool 2x2 - flatten
    TQLinear 8w -> num_classes

and the logits are averaged over the T steps at the end.  BN, ReLU and pooling act per step on the
folded ``[T*B, ...]`` tensor (BN statistics shared over steps).  Each layer's neuron carries its
membrane residual from step to step, the network's only memory of the frame order.  T = ``frames``
(the data's binning), fixed; ``cfg``'s T fields are not used.

``time_average_input=True`` is the control of chapter 8: the input is replaced by its mean over
time at every step before the network, so the model sees only the time average.  On
``moving-digits`` the two members of a (clockwise, counterclockwise) pair have the same time
average (data.py), so such a model gives both the same output and is at chance.

Data from ``data.make_loaders`` are time-major already: feed those to ``forward_steps`` (or
transpose them back to ``[B, T, ...]`` for ``forward``).
"""

from __future__ import annotations

import torch
from torch import nn

from ..layers import QuantConfig
from ..temporal import PerStep, TQConv2d, TQLinear


def _block(conv: nn.Module, channels: int, pool: nn.Module) -> nn.Sequential:
    return nn.Sequential(conv, PerStep(nn.BatchNorm2d(channels), nn.ReLU(inplace=True), pool))


class EventCNN(nn.Module):
    """The event CNN of chapter 8 (module docstring).  ``width`` w is the stem's channel count."""

    def __init__(self, num_classes: int = 2, in_channels: int = 2,
                 cfg: QuantConfig = QuantConfig(), stem_cfg: QuantConfig | None = None,
                 width: int = 16, frames: int = 8, time_average_input: bool = False):
        super().__init__()
        if not isinstance(time_average_input, bool):
            raise ValueError("time_average_input must be True or False, got "
                             f"{time_average_input!r}")
        stem_cfg = stem_cfg or QuantConfig.stem(T=frames, learn_T=False)
        self.frames, self.time_average_input = int(frames), time_average_input
        w1, w2 = width, 2 * width
        self.features = nn.Sequential(
            _block(TQConv2d(in_channels, w1, 3, padding=1, cfg=stem_cfg, stem=True, frames=frames),
                   w1, nn.MaxPool2d(2)),
            _block(TQConv2d(w1, w2, 3, padding=1, cfg=cfg, frames=frames), w2, nn.MaxPool2d(2)),
            _block(TQConv2d(w2, w2, 3, padding=1, cfg=cfg, frames=frames), w2,
                   nn.Sequential(nn.AdaptiveAvgPool2d(2), nn.Flatten())))
        self.fc = TQLinear(4 * w2, num_classes, cfg=cfg, frames=frames)

    def forward_steps(self, x: torch.Tensor) -> torch.Tensor:
        """Time-major input [T, B, C, H, W] -> per-step logits [T, B, num_classes]."""
        if x.dim() != 5 or x.shape[0] != self.frames:
            raise ValueError(f"expected a time-major input [T={self.frames}, B, C, H, W], got "
                             f"shape {tuple(x.shape)}")
        if self.time_average_input:
            x = x.mean(0, keepdim=True).expand_as(x)
        return self.fc(self.features(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Batch-major input [B, T, C, H, W] -> logits [B, num_classes] (mean over the T steps)."""
        if x.dim() != 5 or x.shape[1] != self.frames:
            raise ValueError(f"expected an input [B, T={self.frames}, C, H, W], got shape "
                             f"{tuple(x.shape)}")
        return self.forward_steps(x.transpose(0, 1)).mean(0)
