"""Quantized spiking conv and linear layers (book/method.md#method-layers,
#method-neuron; book/definitions.md#def-wiring).

Each layer is  y = op(r, w_q) + bias  with  r = neuron(x)  (the refined neuron at its input, T steps
squeezed to their average) and  w_q = WeightQuantizer(w).  The convolution therefore runs once per
layer, not T times.  ``QuantConfig(amplitude=True, tau=2, firing="floor")`` gives the old neuron of
the ablation (neuron.py).  ``QuantConfig(full_precision=True)`` is the full-precision baseline
(book/definitions.md#def-full-precision): the layer skips its neuron and its weight quantizer, y = op(x, w) + bias, so a
network of such layers is the ReLU network (x is already post-BN/ReLU); the quantizer modules stay
(unused, never initialised, no gradients) so reports and checkpoints keep their shape.

A layer remembers the per-sample shapes of its last input and output, so it can report its cost:
MACs = (output elements) * (weights / output channels) per sample.

The stem (first layer) keeps 8-bit weights and 8-bit signed spikes, not learned; its T is learnable
through the task loss only, and it is left out of the bit statistics (loss.py) and of the learned
S-ACE (meter).
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .neuron import SpikingNeuron
from .quant import RenewalPolicy, StepQuantizer, WeightQuantizer


class ShapeOnly:
    """Mixin of a module that can skip its arithmetic (``shape_only``): it then returns zeros of
    the shape its output would have, and records its shapes all the same."""

    shape_only = False


@contextmanager
def shape_only(model: nn.Module):
    """Propagate shapes only: inside this context the quantized layers of ``model`` (and its other
    ``ShapeOnly`` modules) skip their neurons and their ops.

    They record their input and output shapes (so ``report`` works) and return zeros of the output
    shape that the conv / linear arithmetic gives.  The meter uses it to size big networks (an
    ImageNet ResNet at 224x224) without running their convolutions.
    """
    modules = [m for m in model.modules() if isinstance(m, ShapeOnly)]
    before = [m.shape_only for m in modules]
    for m in modules:
        m.shape_only = True
    try:
        yield
    finally:
        for m, b in zip(modules, before):
            m.shape_only = b


def _conv_out(size: int, k: int, s: int, p: int, d: int) -> int:
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


@dataclass(frozen=True)
class QuantConfig:
    """Initial W/S/T of a quantized layer and what is learned.  Bounds default to book/method.md#method-learnable-bits."""

    w_bits: int = 4
    s_bits: int = 4
    T: int = 2
    w_bound: int | None = None  # default w_bits + 2
    s_bound: int | None = None  # default s_bits + 2
    T_bound: int | None = None  # default T + 1
    learn_w: bool = True
    learn_s: bool = True
    learn_T: bool = True
    tau: float = 1.0
    firing: str = "round"
    per_step: bool = False
    signed_spikes: bool = False
    amplitude: bool = False  # the old neuron's separate learnable amplitude alpha (neuron.py)
    full_precision: bool = False  # bypass neuron and weight quantizer: y = op(x, w) + bias
    renewal: RenewalPolicy = RenewalPolicy()  # how steps are renewed (range_ratio: weights only)
    hysteresis: float = 0.0  # margin of the learned bit widths Bw, Bs (bits.LearnableInt)

    def __post_init__(self):
        for name in ("w_bits", "s_bits", "T"):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")

    @classmethod
    def stem(cls, T: int = 2, T_bound: int | None = None, learn_T: bool = True,
             full_precision: bool = False, renewal: RenewalPolicy = RenewalPolicy()
             ) -> "QuantConfig":
        """The first layer: 8-bit weights, 8-bit signed spikes, bits fixed (or full precision)."""
        return cls(w_bits=8, s_bits=8, T=T, w_bound=8, s_bound=8, T_bound=T_bound, learn_w=False,
                   learn_s=False, learn_T=learn_T, signed_spikes=True,
                   full_precision=full_precision, renewal=renewal)


@dataclass
class LayerReport:
    """What the statistics and the meter need to know about one quantized layer."""

    name: str
    kind: str  # "conv" or "linear"
    Bw: int
    Bs: list[int]  # one entry per active time step (a single entry when shared)
    T: int
    weights: int
    in_features: int  # per sample
    macs: int  # per sample
    stem: bool = False
    full_precision: bool = False  # neuron and weight quantizer bypassed (Bw, Bs, T: the config's)
    in_shape: tuple = field(default=(), repr=False)
    out_shape: tuple = field(default=(), repr=False)

    @property
    def Bs_mean(self) -> float:
        return sum(self.Bs) / len(self.Bs)


class QuantLayer(ShapeOnly, nn.Module):
    """Mixin for layers made of a spiking neuron (input) and a weight quantizer."""

    def _setup(self, cfg: QuantConfig, stem: bool) -> None:
        self.cfg, self.stem = cfg, stem
        self.neuron = SpikingNeuron.from_config(cfg)
        self.wq = WeightQuantizer.from_config(cfg)
        self.in_shape: tuple = ()
        self.out_shape: tuple = ()

    def _remember(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.in_shape, self.out_shape = tuple(x.shape[1:]), tuple(y.shape[1:])

    def report(self, name: str = "") -> LayerReport:
        if not self.in_shape:
            raise RuntimeError(f"layer {name or self!r} has not seen an input yet: run one forward "
                               "pass before asking for its report")
        n = self.neuron
        w_per_out = self.weight.numel() // self.weight.shape[0]
        return LayerReport(
            name=name, kind=self.kind, Bw=int(self.wq.bits[0]), Bs=n.bit_values(n.active_slots()),
            T=int(n.T), weights=self.weight.numel(), in_features=math.prod(self.in_shape),
            macs=math.prod(self.out_shape) * w_per_out, stem=self.stem,
            full_precision=self.cfg.full_precision, in_shape=self.in_shape,
            out_shape=self.out_shape)


class QConv2d(nn.Conv2d, QuantLayer):
    """Conv2d whose input passes the refined neuron and whose weights are quantized."""

    kind = "conv"

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, groups=1,
                 bias=False, cfg: QuantConfig = QuantConfig(), stem: bool = False):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                         groups=groups, bias=bias)
        self._setup(cfg, stem)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.shape_only:
            y = x.new_zeros(x.shape[:-3] + (self.out_channels,) + self._spatial_out(x.shape[-2:]))
        elif self.cfg.full_precision:
            y = self._conv_forward(x, self.weight, self.bias)
        else:
            y = self._conv_forward(self.neuron(x), self.wq(self.weight), self.bias)
        self._remember(x, y)
        return y

    def _spatial_out(self, hw) -> tuple[int, int]:
        if self.padding == "same":
            return tuple(hw)
        pad = (0, 0) if self.padding == "valid" else self.padding
        return tuple(_conv_out(n, k, s, p, d) for n, k, s, p, d in
                     zip(hw, self.kernel_size, self.stride, pad, self.dilation))


class QLinear(nn.Linear, QuantLayer):
    """Linear layer whose input passes the refined neuron and whose weights are quantized."""

    kind = "linear"

    def __init__(self, in_features, out_features, bias=True, cfg: QuantConfig = QuantConfig(),
                 stem: bool = False):
        super().__init__(in_features, out_features, bias=bias)
        self._setup(cfg, stem)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.shape_only:
            y = x.new_zeros(x.shape[:-1] + (self.out_features,))
        elif self.cfg.full_precision:
            y = F.linear(x, self.weight, self.bias)
        else:
            y = F.linear(self.neuron(x), self.wq(self.weight), self.bias)
        self._remember(x, y)
        return y


def quant_layers(model: nn.Module, include_stem: bool = False) -> list[tuple[str, QuantLayer]]:
    """(name, layer) of every quantized layer of ``model`` in definition order."""
    return [(name, m) for name, m in model.named_modules()
            if isinstance(m, QuantLayer) and (include_stem or not m.stem)]


def layer_reports(model: nn.Module, include_stem: bool = True) -> list[LayerReport]:
    return [m.report(name) for name, m in quant_layers(model, include_stem)]


def clamp_(model: nn.Module) -> None:
    """After each optimiser step: bit/T latents back inside their bounds, steps positive."""
    for m in model.modules():
        if isinstance(m, StepQuantizer):
            m.clamp_()
