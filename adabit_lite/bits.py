"""The learnable integer: a bit width (Bw, Bs) or a temporal length (T).

method.md section 2.  A float latent B_hat is turned into an integer

    B = round(clip(B_hat, low, high))            (round half up: floor(u + 0.5))

and the gradient passes straight through to B_hat (STE):

    value = B_hat + stopgrad(B - B_hat)          forward: B,  d value / d B_hat = 1.

The reference code lets B_hat drift outside [low, high]; here ``clamp_()`` pulls it back after
every optimiser step (the training loop calls it), so a latent never has to travel back from far
outside the bounds before the integer can move again.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class LearnableInt(nn.Module):
    """One learnable integer B in [low, high] with a straight-through float latent ``B_hat``.

    ``learnable=False`` keeps B fixed at ``init`` (no gradient, never clamped away from it).
    """

    def __init__(self, init: float, low: int = 1, high: int | None = None, learnable: bool = True):
        super().__init__()
        if high is None:
            high = int(math.floor(init + 0.5))
        if not low <= init <= high:
            raise ValueError(f"init {init} is outside the bounds [{low}, {high}]")
        self.low, self.high = int(low), int(high)
        self.latent = nn.Parameter(torch.tensor(float(init)), requires_grad=learnable)

    @property
    def learnable(self) -> bool:
        return self.latent.requires_grad

    def _rounded(self) -> torch.Tensor:
        return torch.floor(self.latent.detach().clamp(self.low, self.high) + 0.5)

    def forward(self) -> torch.Tensor:
        """B as a 0-d tensor whose gradient flows to ``latent`` unchanged (STE)."""
        b = self._rounded()
        return self.latent + (b - self.latent).detach()

    def __int__(self) -> int:
        return int(self._rounded().item())

    @torch.no_grad()
    def clamp_(self) -> None:
        """Keep the latent inside [low, high] (call after each optimiser step)."""
        self.latent.clamp_(self.low, self.high)

    @torch.no_grad()
    def set_(self, value: float) -> None:
        """Set the latent (and so B) to ``value``, e.g. to fix learned bits from the start."""
        if not self.low <= value <= self.high:
            raise ValueError(f"value {value} is outside the bounds [{self.low}, {self.high}]")
        self.latent.fill_(float(value))

    def extra_repr(self) -> str:
        return (f"B={int(self)}, B_hat={self.latent.item():.3f}, bounds=[{self.low}, {self.high}], "
                f"learnable={self.learnable}")
