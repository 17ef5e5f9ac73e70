"""Spikformer for CIFAR (Zhou et al. 2023), spiking-quantized with adabit_lite layers.

Layout of Spikformer-L-D (L encoder blocks at width D; CIFAR: 32x32 input, 64 tokens):

- spiking patch splitting (SPS): conv3x3 3->D/8 (the stem: 8-bit weights and spikes, fixed),
  conv D/8->D/4, conv D/4->D/2, max pool 3x3/2, conv D/2->D, max pool 3x3/2, each conv followed by
  BN and an activation; then a relative-position conv D->D (BN, activation) added to its input;
  the 8x8 map becomes N = 64 tokens of width D.
- L blocks:  x = x + SSA(x);  x = x + MLP(x)
  SSA: Q, K, V = N_q(BN(Linear_q(x))), N_k(BN(Linear_k(x))), N_v(BN(Linear_v(x)))
       per head (d = D / heads):  A = Q K^T * 0.125,  O = A V;  out = A(BN(Linear_o(O)))
  MLP: out = A(BN(fc2(A(BN(fc1(x))))))   with hidden width ratio * D
- head: mean over tokens, Linear D -> classes.

What is quantized (the choice of this package, stated because the papers leave it open):
- the input of every conv and linear layer (q, k, v, o projections, fc1, fc2, the SPS convs and the
  head): each is a QConv2d / QLinear with its own refined neuron (learnable Bs, T) and weight
  quantizer (learnable Bw), as in book/definitions.md#def-residual;
- the attention's Q, K and V tensors: each passes its own ``SpikingNeuron`` (unsigned, learnable Bs
  and T), so the two attention products multiply spike tensors.  The products use the squeezed
  rates r = (1/T) sum_t Vth1 S_t, like the layers do (one matmul, not T); for a bilinear product
  this is the product of the time averages, not the time average of the per-step products.

As in the rest of the package the residual stream is real-valued: where Spikformer has a LIF
neuron after a BN, this version has a ReLU ("A" above), and the next layer's own neuron re-encodes
that value (the neuron of Linear_o plays the role of Spikformer's attention LIF).  BN, max pooling,
the residual adds, the attention scale and the token mean stay full precision.

For the meter each SSA reports two matmul rows (``MatmulReport``, kind "attn"), both N * N * D MACs
per sample: Q K^T, whose "weight" operand is K (Bs_K bits) and whose spike input is Q (Bs_Q, T_Q),
and A V, whose spike input is V (Bs_V, T_V) and whose "weight" operand is the attention map A,
an integer of at most ``attn_map_bits(d, qmax_Q, qmax_K)`` bits per step (it sums d products of a
Q code and a K code).  Their S-ACE is MACs * (bits of the weight operand) * sum_t Bs_t, like a layer.

Size (``spikformer-4-384``): 9,281,040 linear/conv weights, 9,324,730 parameters with BN and
biases: the 9.32 M of the Spikformer paper.  Spikformer-4-256 has 4,155,178 (printed 4.15 M) and
2-384 5,765,050 (printed 5.76 M: sizes are truncated, not rounded).  Shen et al.'s table 2 prints
4.15 M for 4-384 as well, the size of 4-256: a copy in their table, kept as published and marked
there.  Per-sample MACs of 4-384 at 32x32: 0.9215 G in convs and linears, 0.0126 G in attention.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from torch import nn

from ..layers import LayerReport, QConv2d, QLinear, QuantConfig, ShapeOnly
from ..neuron import SpikingNeuron


def attn_map_bits(head_dim: int, qmax_q: int, qmax_k: int) -> int:
    """Bits of the integer attention map per step: A_ij = sum over d of (Q code) * (K code)."""
    return max(1, math.ceil(math.log2(head_dim * qmax_q * qmax_k + 1)))


@dataclass
class MatmulReport(LayerReport):
    """Cost report of a product of two spike tensors (an attention matmul), kind "attn".

    ``Bw`` holds the bits of the operand that plays the weight's role, ``Bs``/``T`` those of the
    spike input (see the module docstring); ``weights`` is 0.
    """

    op: str = "qk"  # "qk": Q K^T;  "av": A V
    head_dim: int = 0

    def uniform(self, S: int, T: int) -> "MatmulReport":
        """This row at a uniform S/T: Q, K, V all S-bit spikes over T steps."""
        qmax = 2 ** S - 1
        bw = S if self.op == "qk" else attn_map_bits(self.head_dim, qmax, qmax)
        return replace(self, Bw=bw, Bs=[S], T=T)


def token_bn(bn: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """BatchNorm1d over the channel axis of tokens shaped [B, N, C]."""
    return bn(x.transpose(1, 2)).transpose(1, 2)


class SpikingSelfAttention(ShapeOnly, nn.Module):
    """Spikformer's SSA with quantized projections and spiking (multi-bit) Q, K, V."""

    def __init__(self, dim: int, heads: int, cfg: QuantConfig = QuantConfig(), scale: float = 0.125):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.dim, self.heads, self.scale = dim, heads, scale
        # Q, K, V: unsigned spikes of the new neuron, outside the bit statistics (no hysteresis)
        qkv_cfg = replace(cfg, amplitude=False, signed_spikes=False, hysteresis=0.0)
        for n in "qkv":
            setattr(self, n, QLinear(dim, dim, cfg=cfg))
            setattr(self, f"{n}_bn", nn.BatchNorm1d(dim))
            setattr(self, f"{n}_neuron", SpikingNeuron.from_config(qkv_cfg))
        self.o = QLinear(dim, dim, cfg=cfg)
        self.o_bn = nn.BatchNorm1d(dim)
        self.act = nn.ReLU()
        self.tokens = 0

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        B, N, D = t.shape
        return t.reshape(B, N, self.heads, D // self.heads).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, D = x.shape
        self.tokens = N
        if self.shape_only:
            for n in "qkv":
                getattr(self, n)(x)
            out = x.new_zeros(B, N, D)
        else:
            q, k, v = (self._heads(getattr(self, f"{n}_neuron")(
                token_bn(getattr(self, f"{n}_bn"), getattr(self, n)(x)))) for n in "qkv")
            attn = q @ k.transpose(-2, -1) * self.scale
            out = (attn @ v).transpose(1, 2).reshape(B, N, D)
        return self.act(token_bn(self.o_bn, self.o(out)))

    def cost_reports(self, name: str = "") -> list[tuple[MatmulReport, SpikingNeuron]]:
        """The two attention matmuls as meter rows, each with the neuron of its spike input."""
        if not self.tokens:
            raise RuntimeError(f"attention {name or self!r} has not seen an input yet")
        N, D, d = self.tokens, self.dim, self.dim // self.heads
        prefix = f"{name}." if name else ""

        def mean_bits(n: SpikingNeuron) -> float:
            return n.mean_bits()

        def row(op: str, inp: SpikingNeuron, bw) -> MatmulReport:
            return MatmulReport(name=prefix + op, kind="attn", Bw=bw,
                                Bs=inp.bit_values(inp.active_slots()), T=int(inp.T), weights=0,
                                in_features=N * D, macs=N * N * D, in_shape=(N, D),
                                out_shape=(N, N * self.heads) if op == "qk" else (N, D),
                                op=op, head_dim=d)

        qn, kn, vn = self.q_neuron, self.k_neuron, self.v_neuron
        qmax_q, qmax_k = 2 ** round(mean_bits(qn)) - 1, 2 ** round(mean_bits(kn)) - 1
        return [(row("qk", qn, mean_bits(kn)), qn),
                (row("av", vn, attn_map_bits(d, qmax_q, qmax_k)), vn)]


class MLP(nn.Module):
    def __init__(self, dim: int, hidden: int, cfg: QuantConfig = QuantConfig()):
        super().__init__()
        self.fc1, self.bn1 = QLinear(dim, hidden, cfg=cfg), nn.BatchNorm1d(hidden)
        self.fc2, self.bn2 = QLinear(hidden, dim, cfg=cfg), nn.BatchNorm1d(dim)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(token_bn(self.bn2, self.fc2(self.act(token_bn(self.bn1, self.fc1(x))))))


class EncoderBlock(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: float, cfg: QuantConfig):
        super().__init__()
        self.attn = SpikingSelfAttention(dim, heads, cfg)
        self.mlp = MLP(dim, int(dim * mlp_ratio), cfg)

    def forward(self, x):
        x = x + self.attn(x)
        return x + self.mlp(x)


def _conv_bn_act(c_in, c_out, cfg, stem=False):
    return [QConv2d(c_in, c_out, 3, padding=1, cfg=cfg, stem=stem), nn.BatchNorm2d(c_out), nn.ReLU()]


class PatchSplitting(nn.Module):
    """SPS for CIFAR: 4 convs (two max pools: 32x32 -> 8x8) and a residual position conv."""

    def __init__(self, in_channels: int, dim: int, cfg: QuantConfig, stem_cfg: QuantConfig):
        super().__init__()
        self.proj = nn.Sequential(
            *_conv_bn_act(in_channels, dim // 8, stem_cfg, stem=True),
            *_conv_bn_act(dim // 8, dim // 4, cfg),
            *_conv_bn_act(dim // 4, dim // 2, cfg), nn.MaxPool2d(3, 2, 1),
            *_conv_bn_act(dim // 2, dim, cfg), nn.MaxPool2d(3, 2, 1))
        self.rpe = nn.Sequential(*_conv_bn_act(dim, dim, cfg))

    def forward(self, x):
        x = self.proj(x)
        x = x + self.rpe(x)
        return x.flatten(2).transpose(1, 2)  # [B, N, D]


class Spikformer(nn.Module):
    """Spikformer-``depth``-``dim`` for 32x32 images."""

    def __init__(self, depth: int = 4, dim: int = 384, heads: int = 12, mlp_ratio: float = 4.0,
                 num_classes: int = 10, in_channels: int = 3, cfg: QuantConfig = QuantConfig(),
                 stem_cfg: QuantConfig | None = None):
        super().__init__()
        stem_cfg = stem_cfg or QuantConfig.stem(T=cfg.T)
        self.patch = PatchSplitting(in_channels, dim, cfg, stem_cfg)
        self.blocks = nn.Sequential(*(EncoderBlock(dim, heads, mlp_ratio, cfg) for _ in range(depth)))
        self.head = QLinear(dim, num_classes, cfg=cfg)

    def forward(self, x):
        return self.head(self.blocks(self.patch(x)).mean(1))


def spikformer_4_384(num_classes: int = 10, in_channels: int = 3, cfg: QuantConfig = QuantConfig(),
                     stem_cfg: QuantConfig | None = None, width: int = 384) -> Spikformer:
    """Spikformer-4-384 (12 heads, MLP ratio 4); ``width`` shrinks it for quick tests."""
    return Spikformer(4, width, 12, 4.0, num_classes, in_channels, cfg, stem_cfg)


def spikformer_4_256(num_classes: int = 10, in_channels: int = 3, cfg: QuantConfig = QuantConfig(),
                     stem_cfg: QuantConfig | None = None, width: int = 256) -> Spikformer:
    """Spikformer-4-256 (8 heads, MLP ratio 4); ``width`` shrinks it for quick tests."""
    return Spikformer(4, width, 8, 4.0, num_classes, in_channels, cfg, stem_cfg)


def spikformer_2_384(num_classes: int = 10, in_channels: int = 3, cfg: QuantConfig = QuantConfig(),
                     stem_cfg: QuantConfig | None = None, width: int = 384) -> Spikformer:
    """Spikformer-2-384 (12 heads, MLP ratio 4); ``width`` shrinks it for quick tests."""
    return Spikformer(2, width, 12, 4.0, num_classes, in_channels, cfg, stem_cfg)
