"""Spiking-quantized ResNets: the wide ResNet-20, ResNet-19 and ResNet-18 for CIFAR, and a small
ResNet-8 (the Fashion-MNIST stage).

Wiring (book/definitions.md#def-residual, #def-stem).  Every conv and linear layer is a QConv2d / QLinear, so each one,
the 1x1 downsample convs included, has its own refined neuron (Vth1, Bs, T) at its input and its
own weight quantizer (Bw).  The residual stream carries the real-valued post-BN/ReLU activation,
not spikes: the shortcut adds that activation and every branch conv re-encodes it with its own
neuron.  BN, ReLU, pooling and the residual adds stay full precision.  The stem (first conv) sees
the image and keeps 8-bit weights and 8-bit signed spikes (``QuantConfig.stem``).

A basic block (post-activation, as in He et al. and the SNN papers that use these networks):

    h   = ReLU(BN1(conv3x3_s(x)))
    out = ReLU(BN2(conv3x3(h)) + shortcut(x)),  shortcut = BN(conv1x1_s(x)) where the shape changes

Architectures (per-sample MACs at 32x32 in brackets, all convs and linears counted, stem included):

- ``resnet20`` -- the *wide* ResNet-20 of the SNN literature (Dspike, MLF, Ternary/Multi-bit spike,
  Yao et al.): stem 3x3 3->128; stages of 3 blocks at 128/256/512 (strides 1/2/2); global average
  pool; fc 512->classes.  2,587,235,328 MACs (2.5872 G); 17,277,312 conv/fc weights.
- ``resnet19`` -- the tdBN / TET ResNet-19: stem 3x3 3->128; stages of 3/3/2 blocks at 128/256/512
  (strides 1/2/2); global average pool; fc 512->256, fc 256->classes (the hidden fc has its own
  neuron like every other layer).  2.2854 G MACs; 12.687 M conv/fc weights, 12.698 M parameters
  with BN and biases.  The size the papers print for it, 12.63 M, lies between our count and that
  of the same net with a single fc (12.559 M weights, 12.569 M with BN and biases).  A 64-channel
  stem with the two-fc head would give 12,630,858 (12.63 M), but the tdBN/TET network has a
  128-channel stem; we keep that layout and do not force the published figure.
- ``resnet8`` -- one block per stage at width/2 width/4 width (default 16: stem 3x3 1->16, stages
  16/32/64, strides 1/2/2, fc 64->classes): nine learned layers (six 3x3 convs, two 1x1 downsample
  convs, the fc) whose weight counts range from 512 to 36,864.
- ``resnet18`` -- ResNet-18 for CIFAR: stem 3x3 3->64 (stride 1, no max pool); stages of 2 blocks at
  64/128/256/512 (strides 1/2/2/2); fc 512->classes.  0.5554 G MACs; 11.164 M conv/fc weights,
  11.174 M parameters with BN and biases (the usual "11.17 M").
"""

from __future__ import annotations

from torch import nn

from ..layers import QConv2d, QLinear, QuantConfig


def conv_bn(c_in: int, c_out: int, k: int, stride: int, cfg: QuantConfig) -> nn.Sequential:
    """QConv2d (k x k, 'same' padding for odd k, no bias) followed by BatchNorm."""
    return nn.Sequential(QConv2d(c_in, c_out, k, stride=stride, padding=k // 2, cfg=cfg),
                         nn.BatchNorm2d(c_out))


class BasicBlock(nn.Module):
    """out = ReLU(BN(conv(ReLU(BN(conv(x))))) + shortcut(x)); every conv has its own neuron."""

    def __init__(self, c_in: int, c_out: int, stride: int, cfg: QuantConfig):
        super().__init__()
        self.branch1 = conv_bn(c_in, c_out, 3, stride, cfg)
        self.branch2 = conv_bn(c_out, c_out, 3, 1, cfg)
        self.shortcut = (conv_bn(c_in, c_out, 1, stride, cfg) if stride != 1 or c_in != c_out
                         else nn.Identity())
        self.act = nn.ReLU()

    def forward(self, x):
        h = self.act(self.branch1(x))
        return self.act(self.branch2(h) + self.shortcut(x))


def make_stages(block, width_in: int, widths, depths, strides, cfg: QuantConfig) -> nn.Sequential:
    """Stages of ``block``; the first block of a stage carries the stride and the width change."""
    stages, c = [], width_in
    for w, n, s in zip(widths, depths, strides):
        blocks = []
        for i in range(n):
            blocks.append(block(c, w, s if i == 0 else 1, cfg))
            c = w
        stages.append(nn.Sequential(*blocks))
    return nn.Sequential(*stages)


class CifarResNet(nn.Module):
    """3x3 stem (8-bit, fixed) - stages of blocks - global average pool - fc head.

    ``head`` lists the hidden widths of the fc head (``()``: a single fc).
    """

    def __init__(self, depths, widths, strides, stem_width: int, head=(), num_classes: int = 10,
                 in_channels: int = 3, cfg: QuantConfig = QuantConfig(),
                 stem_cfg: QuantConfig | None = None, block=BasicBlock):
        super().__init__()
        stem_cfg = stem_cfg or QuantConfig.stem(T=cfg.T)
        self.stem = nn.Sequential(
            QConv2d(in_channels, stem_width, 3, padding=1, cfg=stem_cfg, stem=True),
            nn.BatchNorm2d(stem_width), nn.ReLU())
        self.stages = make_stages(block, stem_width, widths, depths, strides, cfg)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        layers, c = [], widths[-1]
        for h in head:
            layers += [QLinear(c, h, cfg=cfg), nn.ReLU()]
            c = h
        layers.append(QLinear(c, num_classes, cfg=cfg))
        self.head = nn.Sequential(*layers)

    def forward(self, x):
        return self.head(self.pool(self.stages(self.stem(x))))


def resnet20(num_classes: int = 10, in_channels: int = 3, cfg: QuantConfig = QuantConfig(),
             stem_cfg: QuantConfig | None = None, width: int = 128) -> CifarResNet:
    """Wide ResNet-20 (3 x 3 blocks at width, 2 width, 4 width; width 128 by default)."""
    return CifarResNet((3, 3, 3), (width, 2 * width, 4 * width), (1, 2, 2), width, (),
                       num_classes, in_channels, cfg, stem_cfg)


def resnet8(num_classes: int = 10, in_channels: int = 1, cfg: QuantConfig = QuantConfig(),
            stem_cfg: QuantConfig | None = None, width: int = 16) -> CifarResNet:
    """ResNet-8: one block per stage at width, 2 width, 4 width (strides 1, 2, 2): six 3x3
    convs, two 1x1 downsample convs and the fc are learned (nine layers)."""
    return CifarResNet((1, 1, 1), (width, 2 * width, 4 * width), (1, 2, 2), width, (),
                       num_classes, in_channels, cfg, stem_cfg)


def resnet19(num_classes: int = 10, in_channels: int = 3, cfg: QuantConfig = QuantConfig(),
             stem_cfg: QuantConfig | None = None, width: int = 128) -> CifarResNet:
    """ResNet-19 of tdBN/TET (3/3/2 blocks at 128/256/512, head fc 512->256->classes)."""
    return CifarResNet((3, 3, 2), (width, 2 * width, 4 * width), (1, 2, 2), width, (2 * width,),
                       num_classes, in_channels, cfg, stem_cfg)


def resnet18(num_classes: int = 10, in_channels: int = 3, cfg: QuantConfig = QuantConfig(),
             stem_cfg: QuantConfig | None = None, width: int = 64) -> CifarResNet:
    """ResNet-18 for CIFAR (3x3 stem, no max pool; 2/2/2/2 blocks at 64..512)."""
    return CifarResNet((2, 2, 2, 2), (width, 2 * width, 4 * width, 8 * width), (1, 2, 2, 2), width,
                       (), num_classes, in_channels, cfg, stem_cfg)
