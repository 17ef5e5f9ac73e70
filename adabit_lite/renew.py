"""Step-size renewal policy: which quantizers renew, and when renewal switches off (book/method.md#method-renewal,
book/definitions.md#def-switch-off).

The renewal itself (a grid search run the moment a rounded bit width changes) is
``quant.grid_search_step``, triggered in ``StepQuantizer.observe``.  This module decides where it is
enabled:

    variant:  "none" | "activation" (default: spike quantizers) | "weight" | "both"

and switches it off for good, per kind (weights, spikes), at the end of epoch e when

    d (mean - target) < rho |init - target|  and  e >= min_epoch,   or  init == target,

with d = sign(init - target) (so a kind that is still far from its target keeps renewing),
rho = 0.24 and min_epoch = ceil(0.07 * epochs) by default (the reference: 14 of 200 epochs).
The stem never renews (its bits are fixed).  How a renewal computes its step (the grid, the
reference code's rules, a per-epoch limit) is each quantizer's own ``quant.RenewalPolicy``, fixed
when the model is built.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .layers import quant_layers
from .loss import BitStats

VARIANTS = ("none", "activation", "weight", "both")
KINDS = ("weight", "spike")


def default_min_epoch(epochs: int) -> int:
    return -(-7 * epochs // 100)  # ceil(0.07 * epochs) without float round-off


class Renewal:
    """Enable renewal on a model's quantizers and apply the switch-off rule after each epoch.

    The rule is checked for both kinds whatever the variant; when it fires for a kind, that kind's
    renewal (if any) stops for good and, with ``freeze=True``, its bit widths stop learning (a
    remedy against flip-flopping; the paper only decays the bit learning rate).
    """

    def __init__(self, model: nn.Module, variant: str = "activation", init: tuple = (4, 4),
                 target: tuple = (1, 1), rho: float = 0.24, min_epoch: int = 1,
                 freeze: bool = False):
        if variant not in VARIANTS:
            raise ValueError(f"renewal variant must be one of {VARIANTS}, got {variant!r}")
        self.model, self.variant, self.rho, self.min_epoch = model, variant, rho, min_epoch
        self.freeze = freeze
        self.init = dict(zip(KINDS, (float(v) for v in init)))
        self.target = dict(zip(KINDS, (float(v) for v in target)))
        self.renews = {"weight": variant in ("weight", "both"),
                       "spike": variant in ("activation", "both")}
        self.fired_at: dict[str, int] = {}
        self._apply()

    @property
    def active(self) -> dict[str, bool]:
        """Per kind: is renewal on now."""
        return {k: self.renews[k] and k not in self.fired_at for k in KINDS}

    @property
    def switched_off_at(self) -> dict[str, int]:
        """Per renewed kind: the epoch after which its renewal switched off."""
        return {k: e for k, e in self.fired_at.items() if self.renews[k]}

    @property
    def frozen_at(self) -> dict[str, int]:
        """Per kind: the epoch after which its bit widths were frozen (``freeze=True``)."""
        return dict(self.fired_at) if self.freeze else {}

    def _quantizers(self, kind: str):
        for _, layer in quant_layers(self.model):
            yield layer.wq if kind == "weight" else layer.neuron

    def _apply(self) -> None:
        active = self.active
        for kind in KINDS:
            for q in self._quantizers(kind):
                q.renew_enabled.fill_(active[kind])
                if self.freeze and kind in self.fired_at:
                    for b in q.bits:
                        b.freeze_()

    def start_epoch(self) -> None:
        """Before an epoch: reset the per-epoch renewal counts."""
        for kind in KINDS:
            for q in self._quantizers(kind):
                q.start_epoch()

    def end_epoch(self, epoch: int, stats: BitStats) -> list[str]:
        """Apply the switch-off rule after epoch ``epoch`` (0-based); return the kinds for which it
        fired now."""
        means = {"weight": stats.W.item(), "spike": stats.S.item()}
        fired = []
        for kind in KINDS:
            if kind in self.fired_at:
                continue
            gap = self.init[kind] - self.target[kind]
            direction = math.copysign(1.0, gap)
            reached = direction * (means[kind] - self.target[kind]) < self.rho * abs(gap)
            if gap == 0 or (reached and epoch >= self.min_epoch):
                self.fired_at[kind] = epoch
                fired.append(kind)
        self._apply()
        return fired

    @torch.no_grad()
    def renew_now(self, forward) -> None:
        """Renew now, for each kind that the variant renews (switched off or not), every quantizer
        whose rounded bits changed since it last saw them, during one call of ``forward()`` (a
        training-mode pass); then back to the switch-off state (used after a projection)."""
        for kind in KINDS:
            for q in self._quantizers(kind):
                q.renew_enabled.fill_(self.renews[kind])
        forward()
        self._apply()

    def state_dict(self) -> dict:
        return {"fired_at": dict(self.fired_at)}

    def load_state_dict(self, state: dict) -> None:
        self.fired_at = dict(state["fired_at"])
        self._apply()


def renewal_counts(model: nn.Module) -> dict[str, dict[str, int]]:
    """Per learned layer: flips and renewals of its weight and spike quantizers."""
    return {name: {"w_flips": int(m.wq.flips.sum()), "w_renewals": int(m.wq.renewals.sum()),
                   "s_flips": int(m.neuron.flips.sum()), "s_renewals": int(m.neuron.renewals.sum())}
            for name, m in quant_layers(model)}
