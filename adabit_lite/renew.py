"""Step-size renewal policy: which quantizers renew, and when renewal switches off (method.md 5, 9).

The renewal itself (a grid search run the moment a rounded bit width changes) is
``quant.grid_search_step``, triggered in ``StepQuantizer.observe``.  This module decides where it is
enabled:

    variant:  "none" | "activation" (default: spike quantizers) | "weight" | "both"

and switches it off for good, per kind (weights, spikes), at the end of epoch e when

    d (mean - target) < rho |init - target|  and  e >= min_epoch,   or  init == target,

with d = sign(init - target) (so a kind that is still far from its target keeps renewing),
rho = 0.24 and min_epoch = ceil(0.07 * epochs) by default (the reference: 14 of 200 epochs).
The stem never renews (its bits are fixed).
"""

from __future__ import annotations

import math

from torch import nn

from .layers import quant_layers
from .loss import BitStats

VARIANTS = ("none", "activation", "weight", "both")
KINDS = ("weight", "spike")


def default_min_epoch(epochs: int) -> int:
    return -(-7 * epochs // 100)  # ceil(0.07 * epochs) without float round-off


class Renewal:
    """Enable renewal on a model's quantizers and apply the switch-off rule after each epoch."""

    def __init__(self, model: nn.Module, variant: str = "activation", init: tuple = (4, 4),
                 target: tuple = (1, 1), rho: float = 0.24, min_epoch: int = 1):
        if variant not in VARIANTS:
            raise ValueError(f"renewal variant must be one of {VARIANTS}, got {variant!r}")
        self.model, self.variant, self.rho, self.min_epoch = model, variant, rho, min_epoch
        self.init = dict(zip(KINDS, (float(v) for v in init)))
        self.target = dict(zip(KINDS, (float(v) for v in target)))
        self.active = {"weight": variant in ("weight", "both"),
                       "spike": variant in ("activation", "both")}
        self.switched_off_at: dict[str, int] = {}
        self._apply()

    def _quantizers(self, kind: str):
        for _, layer in quant_layers(self.model):
            yield layer.wq if kind == "weight" else layer.neuron

    def _apply(self) -> None:
        for kind in KINDS:
            for q in self._quantizers(kind):
                q.renew_enabled.fill_(self.active[kind])

    def end_epoch(self, epoch: int, stats: BitStats) -> list[str]:
        """Apply the switch-off rule after epoch ``epoch`` (0-based); return the kinds switched off."""
        means = {"weight": stats.W.item(), "spike": stats.S.item()}
        off = []
        for kind in KINDS:
            if not self.active[kind]:
                continue
            gap = self.init[kind] - self.target[kind]
            direction = math.copysign(1.0, gap)
            reached = direction * (means[kind] - self.target[kind]) < self.rho * abs(gap)
            if gap == 0 or (reached and epoch >= self.min_epoch):
                self.active[kind] = False
                self.switched_off_at[kind] = epoch
                off.append(kind)
        self._apply()
        return off

    def state_dict(self) -> dict:
        return {"active": dict(self.active), "switched_off_at": dict(self.switched_off_at)}

    def load_state_dict(self, state: dict) -> None:
        self.active = dict(state["active"])
        self.switched_off_at = dict(state["switched_off_at"])
        self._apply()


def renewal_counts(model: nn.Module) -> dict[str, dict[str, int]]:
    """Per learned layer: flips and renewals of its weight and spike quantizers."""
    return {name: {"w_flips": int(m.wq.flips.sum()), "w_renewals": int(m.wq.renewals.sum()),
                   "s_flips": int(m.neuron.flips.sum()), "s_renewals": int(m.neuron.renewals.sum())}
            for name, m in quant_layers(model)}
