"""Benchmark 2: one quantized spiking conv layer, forward + backward, three ways.

Shapes of book/definitions.md#def-benchmark-shapes at batch 64: a 3x3 convolution with as many output channels as input channels
(wide ResNet-20: 128 channels at 32x32; small-cnn: 32 channels at 14x14 and 64 at 7x7), T in
{1, 2, 4, 8}, padding 1, followed by BatchNorm and ReLU in every variant:

- ``squeezed``: ``adabit_lite.layers.QConv2d`` (refined neuron at the input, T steps squeezed to
  their average, 4-bit LSQ weights, one convolution) -> BN -> ReLU, Bs = Bw = 4 (QuantConfig
  defaults), training mode;
- ``multistep``: the usual multi-step layer: snntorch.Leaky (IF, beta = 1, subtract reset,
  arctan surrogate) fed x at each step, then, per step, convolution with the same 4-bit LSQ
  weights -> BN -> ReLU: T convolutions; the T outputs are stacked [T, B, C, H, W] for the next
  layer, and the gradient flows back through all T steps;
- ``ann``: the quantized-ANN floor: a plain nn.Conv2d -> BN -> ReLU, once.

The backward pass gets a N(0, 1) gradient of the output's shape.
"""

from __future__ import annotations

import snntorch as snn
import torch
import torch.nn.functional as F
from torch import nn

from adabit_lite.layers import QConv2d, QuantConfig
from adabit_lite.quant import WeightQuantizer

from .common import BATCH, SMOKE_BATCH, backward_call, compare, ratio, shapes

T_VALUES = (1, 2, 4, 8)
CONV_SHAPES = ("wide-resnet20", "small-cnn.conv2", "small-cnn.conv3")


class MultiStep(nn.Module):
    """snntorch IF neuron + one convolution per time step (+ BN + ReLU per step)."""

    def __init__(self, channels: int, T: int):
        super().__init__()
        self.T = T
        self.lif = snn.Leaky(beta=1.0, threshold=1.0, reset_mechanism="subtract")
        self.conv = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.wq = WeightQuantizer(4)
        self.bn = nn.BatchNorm2d(channels)

    def forward(self, x):
        w = self.wq(self.conv.weight)
        mem = self.lif.reset_mem()
        ys = []
        for _ in range(self.T):
            spk, mem = self.lif(x, mem)
            ys.append(F.relu(self.bn(F.conv2d(spk, w, padding=1))))
        return torch.stack(ys)


def run(smoke: bool = False, rounds: int | None = None, min_time: float | None = None,
        device: torch.device = torch.device("cpu")) -> dict:
    torch.manual_seed(0)
    batch = SMOKE_BATCH if smoke else BATCH
    rounds = rounds or (1 if smoke else 3)
    min_time = (0.0 if smoke else 0.25) if min_time is None else min_time
    rows = []
    for shape_name in CONV_SHAPES:
        shape, where = shapes(smoke)[shape_name]
        C = shape[0]
        size = (batch,) + shape
        for T in T_VALUES:
            x = torch.relu(torch.randn(size, device=device)).requires_grad_()
            g = torch.randn(size, device=device)
            g_multi = torch.randn((T,) + size, device=device)
            squeezed = nn.Sequential(QConv2d(C, C, 3, padding=1, cfg=QuantConfig(T=T)),
                                     nn.BatchNorm2d(C), nn.ReLU()).to(device).train()
            multi = MultiStep(C, T).to(device).train()
            ann = nn.Sequential(nn.Conv2d(C, C, 3, padding=1, bias=False), nn.BatchNorm2d(C),
                                nn.ReLU()).to(device).train()
            squeezed(x)  # first call initialises the quantizer steps
            multi(x)

            res = compare({"squeezed": backward_call(squeezed, x, g),
                           "multistep": backward_call(multi, x, g_multi),
                           "ann": backward_call(ann, x, g)}, rounds=rounds, min_time=min_time)
            row = {"shape": shape_name, "where": where, "input": list(size), "channels": C,
                   "elements": x.numel(), "T": T,
                   **{f"{k}_ms": 1e3 * v["median_s"] for k, v in res.items()},
                   "rounds": rounds}
            for label, (a, b) in {"squeezed_vs_multistep": ("squeezed", "multistep"),
                                  "squeezed_vs_ann": ("squeezed", "ann"),
                                  "multistep_vs_ann": ("multistep", "ann")}.items():
                r = ratio(res, a, b)
                row[label] = r["ratio"]
                row[label + "_min"], row[label + "_max"] = r["ratio_min"], r["ratio_max"]
            rows.append(row)
            print(f"[layer] {shape_name:16s} T={T}: squeezed {row['squeezed_ms']:8.2f} ms  multistep "
                  f"{row['multistep_ms']:8.2f} ms  ann {row['ann_ms']:8.2f} ms  "
                  f"squeezed/multistep {row['squeezed_vs_multistep']:.2f}  "
                  f"squeezed/ann {row['squeezed_vs_ann']:.2f}", flush=True)
    return {"device": str(device), "batch": batch, "T_values": list(T_VALUES), "rounds": rounds,
            "min_time_s": min_time,
            "config": "Bw = Bs = 4 (QuantConfig defaults), 3x3 conv, padding 1, C in = C out",
            "rows": rows}
