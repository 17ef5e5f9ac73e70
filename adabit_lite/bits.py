"""The learnable integer: a bit width (Bw, Bs) or a temporal length (T).

book/method.md#method-learnable-bits.  A float latent B_hat is turned into an integer

    B = round(clip(B_hat, low, high))            (round half up: floor(u + 0.5))

and the gradient passes straight through to B_hat (STE):

    value = B_hat + stopgrad(B - B_hat)          forward: B,  d value / d B_hat = 1.

The reference code lets B_hat drift outside [low, high]; here ``clamp_()`` pulls it back after
every optimiser step (the training loop calls it), so a latent never has to travel back from far
outside the bounds before the integer can move again.

Remedies against flip-flopping at the rounding boundary, both off by
default (the paper's behaviour):

    hysteresis h > 0:  B is a held integer, updated in ``clamp_()`` only when the clipped latent
                       has moved at least 1/2 + h away from it:
                           B <- round(clip(B_hat))   if |clip(B_hat) - B| >= 1/2 + h
                       so a B_hat dithering around k + 1/2 (by less than h) changes B at most once.
    freeze_():         B_hat stops learning (no gradient; the optimiser skips it).
"""

from __future__ import annotations

import math

import torch
from torch import nn


class LearnableInt(nn.Module):
    """One learnable integer B in [low, high] with a straight-through float latent ``B_hat``.

    ``learnable=False`` keeps B fixed at ``init`` (no gradient, never clamped away from it).
    ``hysteresis`` (>= 0, < 1/2) is the margin past the half-way point that B_hat must cross before
    B changes (0: plain rounding).  Buffer ``held``: the integer, used when hysteresis > 0.
    """

    def __init__(self, init: float, low: int = 1, high: int | None = None, learnable: bool = True,
                 hysteresis: float = 0.0):
        super().__init__()
        if high is None:
            high = int(math.floor(init + 0.5))
        if not low <= init <= high:
            raise ValueError(f"init {init} is outside the bounds [{low}, {high}]")
        self.low, self.high = int(low), int(high)
        self.latent = nn.Parameter(torch.tensor(float(init)), requires_grad=learnable)
        self.register_buffer("held", self._nearest())
        self.hysteresis = 0.0
        self.set_hysteresis(hysteresis)

    @property
    def learnable(self) -> bool:
        return self.latent.requires_grad

    def set_hysteresis(self, margin: float) -> None:
        """Use hysteresis ``margin`` from now on (B keeps its current value)."""
        if not 0.0 <= margin < 0.5:
            raise ValueError(f"hysteresis must be in [0, 0.5), got {margin}")
        current = self._rounded()
        self.hysteresis = float(margin)
        self.held.copy_(current)

    def _nearest(self) -> torch.Tensor:
        return torch.floor(self.latent.detach().clamp(self.low, self.high) + 0.5)

    def _rounded(self) -> torch.Tensor:
        return self.held.clone() if self.hysteresis > 0 else self._nearest()

    def forward(self) -> torch.Tensor:
        """B as a 0-d tensor whose gradient flows to ``latent`` unchanged (STE)."""
        b = self._rounded()
        return self.latent + (b - self.latent).detach()

    def value(self) -> tuple[torch.Tensor, int]:
        """(``forward()``, ``int(self)``) from one rounding: B as the STE tensor and as an int."""
        b = self._rounded()
        return self.latent + (b - self.latent).detach(), int(b.item())

    def soft(self) -> torch.Tensor:
        """clip(B_hat, low, high): the un-rounded value (for a loss on un-rounded means)."""
        return self.latent.clamp(self.low, self.high)

    def __int__(self) -> int:
        return int(self._rounded().item())

    @torch.no_grad()
    def clamp_(self) -> None:
        """After an optimiser step: the latent back inside [low, high]; with hysteresis, update B."""
        self.latent.clamp_(self.low, self.high)
        if self.hysteresis > 0:
            c = self.latent.detach()
            if (c - self.held).abs() >= 0.5 + self.hysteresis:
                self.held.copy_(self._nearest())

    @torch.no_grad()
    def freeze_(self) -> None:
        """Stop learning: B stays at its current value for good."""
        self.latent.fill_(float(self._rounded()))
        self.latent.requires_grad_(False)

    @torch.no_grad()
    def set_(self, value: float) -> None:
        """Set the latent (and so B) to ``value``, e.g. to fix learned bits from the start."""
        if not self.low <= value <= self.high:
            raise ValueError(f"value {value} is outside the bounds [{self.low}, {self.high}]")
        self.latent.fill_(float(value))
        self.held.copy_(self._nearest())

    def extra_repr(self) -> str:
        return (f"B={int(self)}, B_hat={self.latent.item():.3f}, bounds=[{self.low}, {self.high}], "
                f"learnable={self.learnable}, hysteresis={self.hysteresis}")
