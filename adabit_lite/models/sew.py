"""SEW-ResNet-34 for ImageNet (Fang et al. 2021), spiking-quantized with adabit_lite layers.

Layout: stem conv 7x7 stride 2, 3->64 (8-bit weights and spikes, fixed) - BN - ReLU - max pool
3x3/2; stages of 3/4/6/3 basic blocks at 64/128/256/512 (strides 1/2/2/2, 1x1 downsample convs
where the shape changes); global average pool; fc 512->1000.  At 224x224 the blocks run at
56/28/14/7.

The SEW ("spike-element-wise") block puts the activation on each path *before* the residual add
and none after it ("ADD" connection):

    out = A(BN2(conv2(A(BN1(conv1(x)))))) + s(x),   s(x) = x, or A(BN(conv1x1_s(x)))

In the original, A is a spiking neuron and the add sums spike trains.  Here, as everywhere in
adabit_lite (book/definitions.md#def-residual), A is a ReLU and the residual stream is the real-valued sum of
those activations; every conv (1x1 downsample included) and the fc has its own refined neuron at
its input, which re-encodes that real value into multi-bit spikes.  So the SEW structure (where
the non-linearities sit) is kept, while the add itself is full precision like the other residual
adds and BN.

Size: 21,779,648 conv/fc weights (21.78 M); 21,797,672 parameters with BN and biases, the figure
torchvision reports for ResNet-34 and that the SEW and Shen papers print, truncated, as 21.79 M.
Per-sample MACs at 224x224, every conv and the fc counted: 3.664 G (Shen et al. use 3.40 G for the
same network, see meter.py).
"""

from __future__ import annotations

from torch import nn

from ..layers import QConv2d, QLinear, QuantConfig
from .resnet import conv_bn, make_stages


class SEWBlock(nn.Module):
    """SEW basic block with the ADD connection: activation on both paths, none after the add."""

    def __init__(self, c_in: int, c_out: int, stride: int, cfg: QuantConfig):
        super().__init__()
        self.branch1 = conv_bn(c_in, c_out, 3, stride, cfg)
        self.branch2 = conv_bn(c_out, c_out, 3, 1, cfg)
        self.shortcut = (conv_bn(c_in, c_out, 1, stride, cfg) if stride != 1 or c_in != c_out
                         else None)
        self.act = nn.ReLU()

    def forward(self, x):
        out = self.act(self.branch2(self.act(self.branch1(x))))
        return out + (x if self.shortcut is None else self.act(self.shortcut(x)))


class SEWResNet(nn.Module):
    """ImageNet-style SEW-ResNet: 7x7/2 stem, max pool, stages of SEW blocks, avg pool, fc."""

    def __init__(self, depths=(3, 4, 6, 3), widths=(64, 128, 256, 512), num_classes: int = 1000,
                 in_channels: int = 3, cfg: QuantConfig = QuantConfig(),
                 stem_cfg: QuantConfig | None = None):
        super().__init__()
        stem_cfg = stem_cfg or QuantConfig.stem(T=cfg.T)
        self.stem = nn.Sequential(
            QConv2d(in_channels, widths[0], 7, stride=2, padding=3, cfg=stem_cfg, stem=True),
            nn.BatchNorm2d(widths[0]), nn.ReLU(), nn.MaxPool2d(3, stride=2, padding=1))
        self.stages = make_stages(SEWBlock, widths[0], widths, depths, (1, 2, 2, 2), cfg)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = QLinear(widths[-1], num_classes, cfg=cfg)

    def forward(self, x):
        return self.fc(self.pool(self.stages(self.stem(x))))


def sew_resnet34(num_classes: int = 1000, in_channels: int = 3, cfg: QuantConfig = QuantConfig(),
                 stem_cfg: QuantConfig | None = None, width: int = 64) -> SEWResNet:
    """SEW-ResNet-34 (3/4/6/3 SEW blocks at width, 2, 4, 8 width), ImageNet head by default."""
    return SEWResNet((3, 4, 6, 3), (width, 2 * width, 4 * width, 8 * width), num_classes,
                     in_channels, cfg, stem_cfg)
