"""Bit statistics and the bit-budget loss (book/method.md#method-bit-loss).

Over the learned layers (the stem excluded), with rounded bits carrying straight-through gradients:

    mean Bw = sum_l n_w,l Bw_l / sum_l n_w,l          n_w,l: weight count of layer l
    mean Bs = sum_l n_x,l Bs_l / sum_l n_x,l          n_x,l: input features per sample; Bs_l the mean
    mean T  = sum_l n_x,l T_l  / sum_l n_x,l                 of the layer's active per-step Bs
    BB      = mean T * mean Bw * mean Bs

    L = L_task + l_w |mean Bw - Bw_tar| + l_s |mean Bs - Bs_tar| + l_T |mean T - T_tar|

Reference coefficients l_w = l_s = 0.04, l_T = 0.01.  With a tolerance band d > 0 (a remedy
against flip-flopping; the paper has d = 0) every term becomes l max(|mean - target| - d, 0):
the bit loss is satisfied once the mean is within d of its target, so a mean that whole bits can
only bracket stops being pushed back and forth.

``bit_stats(model, soft=True)`` uses the un-rounded clip(B_hat) of every bit width instead of the
rounded B (T stays rounded): a remedy against flip-flopping, since the L1 loss on rounded means
never settles when the target lies between the means that whole bits can reach.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .layers import quant_layers
from .wst import parse_wst


@dataclass
class BitStats:
    """Weighted means as 0-d tensors (differentiable through the STE)."""

    W: torch.Tensor
    S: torch.Tensor
    T: torch.Tensor

    @property
    def bit_budget(self) -> torch.Tensor:
        return self.W * self.S * self.T

    def as_floats(self) -> dict[str, float]:
        return {"W": self.W.item(), "S": self.S.item(), "T": self.T.item(),
                "bit_budget": self.bit_budget.item()}

    def wst(self, digits: int = 2) -> str:
        return "/".join(f"{v.item():.{digits}f}" for v in (self.W, self.S, self.T))


def weighted_means(n_w, Bw, n_x, Bs, T) -> tuple:
    """(mean Bw, mean Bs, mean T) over layers: Bw weighted by the weight counts n_w, Bs and T by
    the input feature counts n_x (the module docstring).  Works on tensors (the loss, with
    gradients) and on pandas columns (the meter) alike."""
    return (n_w * Bw).sum() / n_w.sum(), (n_x * Bs).sum() / n_x.sum(), (n_x * T).sum() / n_x.sum()


def bit_stats(model: nn.Module, soft: bool = False) -> BitStats:
    """Weighted mean Bw, Bs and T of the learned (non-stem) quantized layers of ``model``
    (``soft``: bit widths as un-rounded clip(B_hat), for the loss)."""
    layers = [m for _, m in quant_layers(model)]
    if not layers:
        raise ValueError("the model has no learned quantized layers")
    if any(not m.in_shape for m in layers):
        raise RuntimeError("run one forward pass first: input feature counts are known only then")
    n_w = torch.tensor([float(m.weight.numel()) for m in layers])
    n_x = torch.tensor([float(torch.Size(m.in_shape).numel()) for m in layers])
    value = (lambda b: b.soft()) if soft else (lambda b: b())
    bw = torch.stack([value(m.wq.bits[0]) for m in layers])
    bs = torch.stack([torch.stack([value(b) for b in m.neuron.bits[: m.neuron.active_slots()]]).mean()
                      for m in layers])
    t = torch.stack([m.neuron.T() for m in layers])
    return BitStats(*weighted_means(n_w.to(bw), bw, n_x.to(bw), bs, t))


@dataclass(frozen=True)
class BitTarget:
    """Target mean W/S/T and the penalty coefficients of the bit loss."""

    W: float = 1.0
    S: float = 1.0
    T: float = 1.0
    lam_w: float = 0.04
    lam_s: float = 0.04
    lam_T: float = 0.01
    tol: float = 0.0  # the tolerance band d

    @classmethod
    def parse(cls, wst: str, **coefficients) -> "BitTarget":
        """From a string "W/S/T", e.g. "1.5/1.5/1"."""
        return cls(*parse_wst(wst), **coefficients)


def bit_loss(stats: BitStats, target: BitTarget) -> torch.Tensor:
    """l_w |W - W_tar|_d + l_s |S - S_tar|_d + l_T |T - T_tar|_d,  |u|_d = max(|u| - d, 0)."""
    def band(u):
        return (u.abs() - target.tol).clamp_min(0) if target.tol > 0 else u.abs()

    return (target.lam_w * band(stats.W - target.W) + target.lam_s * band(stats.S - target.S)
            + target.lam_T * band(stats.T - target.T))
