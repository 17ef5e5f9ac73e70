"""The small CNN of the embedded-data chapters (book/definitions.md#def-prototype).

stem conv 3x3 C_in->32 (8/8 bits, fixed) - BN - ReLU - maxpool 2
conv 3x3 32->64 - BN - ReLU - maxpool 2
conv 3x3 64->64 - BN - ReLU - adaptive avg pool 2x2
fc 256 -> num_classes
Every conv and the fc carry a refined neuron at their input and quantized weights.
"""

from __future__ import annotations

from torch import nn

from ..layers import QConv2d, QLinear, QuantConfig


def _block(conv: nn.Module, channels: int, pool: nn.Module) -> nn.Sequential:
    return nn.Sequential(conv, nn.BatchNorm2d(channels), nn.ReLU(inplace=True), pool)


class SmallCNN(nn.Module):
    def __init__(self, num_classes: int = 10, in_channels: int = 1, cfg: QuantConfig = QuantConfig(),
                 stem_cfg: QuantConfig | None = None, width: int = 32):
        super().__init__()
        stem_cfg = stem_cfg or QuantConfig.stem(T=cfg.T)
        w1, w2 = width, 2 * width
        self.features = nn.Sequential(
            _block(QConv2d(in_channels, w1, 3, padding=1, cfg=stem_cfg, stem=True), w1, nn.MaxPool2d(2)),
            _block(QConv2d(w1, w2, 3, padding=1, cfg=cfg), w2, nn.MaxPool2d(2)),
            _block(QConv2d(w2, w2, 3, padding=1, cfg=cfg), w2, nn.AdaptiveAvgPool2d(2)),
            nn.Flatten())
        self.fc = QLinear(4 * w2, num_classes, cfg=cfg)

    def forward(self, x):
        return self.fc(self.features(x))
