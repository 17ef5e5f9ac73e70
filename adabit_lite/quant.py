"""Quantizers with learnable step sizes and learnable bit widths (book/method.md#method-quantizers,
#method-bit-gradient, #method-renewal; book/definitions.md#def-quantizers).

Integer ranges (book/definitions.md#def-spike-range, #def-binary-weights):
    signed   (weights):  qmax = max(2^(B-1) - 1, 1), qmin = -qmax
    unsigned (spikes):   qmax = 2^B - 1,             qmin = 0
    B = 1 signed is binary: q = sign(u) with sign(0) = -1 (qmax_eff = 1).

Forward, u = x / s:
    q = clip(round(u), qmin, qmax)           round = half away from zero ('round'), or floor ('floor')
    x_q = s * q

Backward (LSQ, with the STE through round; a value is "inside" when round(u) lies in [qmin, qmax],
for binary when |u| <= 1):
    d x_q / d x = 1 inside, 0 outside
    d x_q / d s = (q - u) inside, q outside                               times g = 1/sqrt(N * qmax)
    d x_q / d B = +-s * c_B where clipped above (+) / below (-), else 0   times g
with N the element count of the tensor quantized and c_B = (qmax + 1) ln 2 for B > 1, qmax ln 2 at
B = 1 (the reference code's choice).

Step initialisation (first training batch): s = 2 mean|x| / sqrt(qmax).
Step renewal (Algorithm 1 of the paper, ``grid_search_step``): when the rounded bit width changes,
s = c*/qmax with c* the clipping range among c_k = k R / K (k = 1..K, R = max - min) that minimises
mean |Q(x) - x|^p.  Which quantizers renew, and when renewal stops, is decided in renew.py.
Statistics are all-reduced over processes when torch.distributed is initialised.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from .bits import LearnableInt

FIRING_MODES = ("round", "floor")


def qrange(bits: int, signed: bool) -> tuple[int, int]:
    """Integer range (qmin, qmax) of a B-bit quantizer."""
    if bits < 1:
        raise ValueError(f"bit width must be >= 1, got {bits}")
    if signed:
        qmax = max(2 ** (bits - 1) - 1, 1)
        return -qmax, qmax
    return 0, 2 ** bits - 1


def bit_grad_factor(bits: int, qmax: int) -> float:
    """c_B = d qmax / d B: (qmax + 1) ln 2 for B > 1 and qmax ln 2 at B = 1."""
    return (qmax if bits == 1 else qmax + 1) * math.log(2.0)


def grad_scale(numel: int, qmax: int) -> float:
    """LSQ gradient scale g = 1 / sqrt(N * qmax)."""
    return 1.0 / math.sqrt(numel * qmax)


def int_codes(u: torch.Tensor, qmin: int, qmax: int, mode: str = "round"):
    """Integer codes of u = x/s and the two masks the backward pass needs.

    Returns (q, inside, clip): q = clip(round(u), qmin, qmax); inside = qmin <= round(u) <= qmax;
    clip = +1 above the range, -1 below, 0 inside.  ``mode``: 'round' (half away from zero; for an
    unsigned range floor(u + 0.5), which differs only at u = -0.5 exactly), 'floor', or 'binary'
    (q = sign(u), sign(0) = -1, inside = |u| <= 1).
    """
    if mode == "binary":
        q = torch.where(u > 0, 1.0, -1.0).to(u.dtype)
        inside = u.abs() <= 1
        clip = (u > 1).to(u.dtype) - (u < -1).to(u.dtype)
        return q, inside, clip
    if mode == "round":
        r = torch.floor(u + 0.5) if qmin >= 0 else torch.sign(u) * torch.floor(u.abs() + 0.5)
    elif mode == "floor":
        r = torch.floor(u)
    else:
        raise ValueError(f"mode must be one of 'round', 'floor', 'binary', got {mode!r}")
    q = r.clamp(qmin, qmax)
    return q, r == q, torch.sign(r - q)


def fake_quant(x: torch.Tensor, step, bits: int, signed: bool, mode: str | None = None) -> torch.Tensor:
    """s * clip(round(x/s), qmin, qmax), no gradient bookkeeping (used by renewal and tests)."""
    qmin, qmax = qrange(bits, signed)
    if mode is None:
        mode = "binary" if (signed and bits == 1) else "round"
    return int_codes(x / step, qmin, qmax, mode)[0] * step


class _LSQ(torch.autograd.Function):
    """x_q = s * clip(round(x/s), qmin, qmax) with the LSQ gradients of the module docstring."""

    @staticmethod
    def forward(ctx, x, step, bits, qmin, qmax, mode, gscale, factor):
        q, _, _ = int_codes(x / step, qmin, qmax, mode)
        ctx.save_for_backward(x, step)
        ctx.consts = (qmin, qmax, mode, gscale, factor)
        return q * step

    @staticmethod
    def backward(ctx, grad):
        x, step = ctx.saved_tensors
        qmin, qmax, mode, gscale, factor = ctx.consts
        u = x / step
        q, inside, clip = int_codes(u, qmin, qmax, mode)
        grad_x = grad * inside if ctx.needs_input_grad[0] else None
        grad_step = grad_bits = None
        if ctx.needs_input_grad[1]:
            grad_step = (grad * torch.where(inside, q - u, q)).sum().reshape(step.shape) * gscale
        if ctx.needs_input_grad[2]:
            grad_bits = (grad * clip).sum() * step.reshape(()) * (factor * gscale)
        return grad_x, grad_step, grad_bits, None, None, None, None, None


def lsq_quantize(x: torch.Tensor, step: torch.Tensor, bits: torch.Tensor, signed: bool,
                 mode: str | None = None) -> torch.Tensor:
    """LSQ fake quantisation of x with a learnable step and a learnable bit width.

    ``bits`` is the straight-through value of a LearnableInt (integer-valued 0-d tensor).
    """
    b = int(bits.detach().item())
    qmin, qmax = qrange(b, signed)
    if mode is None:
        mode = "binary" if (signed and b == 1) else "round"
    return _LSQ.apply(x, step, bits, qmin, qmax, mode, grad_scale(x.numel(), qmax),
                      bit_grad_factor(b, qmax))


# ---------------------------------------------------------------- statistics across processes
def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def _all_reduce(t: torch.Tensor, op=None, sync: bool = True) -> torch.Tensor:
    """All-reduce ``t`` in place (sum by default) when torch.distributed is running and sync is on."""
    if sync and _distributed():
        dist.all_reduce(t, op=op or dist.ReduceOp.SUM)
    return t


@torch.no_grad()
def init_step(x: torch.Tensor, qmax: int, sync: bool = True) -> torch.Tensor:
    """s = 2 mean|x| / sqrt(qmax), mean over all processes; never exactly 0."""
    stats = torch.stack([x.detach().abs().sum(), torch.tensor(float(x.numel()), device=x.device,
                                                              dtype=x.dtype)])
    total, count = _all_reduce(stats, sync=sync)
    return (2 * total / count / math.sqrt(qmax)).clamp_min(torch.finfo(x.dtype).tiny)


@torch.no_grad()
def grid_search_step(x: torch.Tensor, bits: int, signed: bool, K: int = 100, p: float = 2.4,
                     sync: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Algorithm 1: the step that minimises mean |Q(x) - x|^p over K clipping ranges.

    c_k = k R / K (k = 1..K), R = max(x) - min(x); the quantizer's range is [0, c_k] (unsigned) or
    [-c_k, c_k] (signed), so the candidate step is c_k / qmax.  Returns (step, c*).  The extrema and
    the K scores are all-reduced over processes, so every replica picks the same step.
    Memory is O(elements): candidates are scored one at a time.
    """
    x = x.detach()
    _, qmax = qrange(bits, signed)
    hi = _all_reduce(x.max().clone(), dist.ReduceOp.MAX if _distributed() else None, sync)
    lo = _all_reduce(x.min().clone(), dist.ReduceOp.MIN if _distributed() else None, sync)
    R = (hi - lo).clamp_min(torch.finfo(x.dtype).tiny)
    candidates = R * torch.arange(1, K + 1, device=x.device, dtype=x.dtype) / K
    scores = torch.stack([(fake_quant(x, c / qmax, bits, signed) - x).abs().pow(p).sum()
                          for c in candidates])
    _all_reduce(scores, sync=sync)
    best = candidates[int(torch.argmin(scores))]
    return best / qmax, best


@dataclass(frozen=True)
class RenewalPolicy:
    """How a quantizer sets and renews its step, fixed when it is built.

    ``K``, ``p``: the grid of Algorithm 1 (``grid_search_step``).  ``running_extrema``: the
    reference code's renewal, whose clipping range never shrinks.  ``range_ratio``: the reference
    code's weight renewal s' = s qmax(B') / qmax(B) instead of the grid search.  ``renewal_limit``
    > 0: at most that many renewals per slot and epoch (a flip beyond it keeps the step).
    ``sync_stats``: all-reduce the statistics of initialisation and renewal over processes.
    """

    K: int = 100
    p: float = 2.4
    running_extrema: bool = False
    range_ratio: bool = False
    renewal_limit: int = 0
    sync_stats: bool = True

    def __post_init__(self):
        if isinstance(self.K, bool) or int(self.K) != self.K or self.K < 1:
            raise ValueError(f"K must be an integer >= 1, got {self.K!r}")
        if not self.p > 0:
            raise ValueError(f"p must be > 0, got {self.p!r}")
        if isinstance(self.renewal_limit, bool) or int(self.renewal_limit) != self.renewal_limit \
                or self.renewal_limit < 0:
            raise ValueError(f"renewal_limit must be an integer >= 0, got {self.renewal_limit!r}")


class StepQuantizer(nn.Module):
    """Learnable step(s) s and bit width(s) B, with their training-time bookkeeping.

    ``slots`` > 1 gives every time step its own (s_t, B_t) (temporal-wise parameters); weights use one.
    ``policy`` (a ``RenewalPolicy``) says how the step is renewed.  Buffers (saved in checkpoints):
    ``initialized``; per slot ``last_bits``, ``flips`` (changes of the rounded B seen in training),
    ``renewals``, ``epoch_renewals`` (renewals since the last ``start_epoch()``); ``renew_enabled``
    (switched by renew.Renewal).  ``hysteresis``: the bit widths' margin (bits.LearnableInt).
    """

    def __init__(self, bits: int, bound: int | None, learnable_bits: bool, signed: bool,
                 slots: int = 1, policy: RenewalPolicy = RenewalPolicy(), hysteresis: float = 0.0):
        super().__init__()
        if bound is None:
            bound = bits + 2
        self.signed, self.policy = signed, policy
        self.bits = nn.ModuleList(LearnableInt(bits, 1, bound, learnable_bits, hysteresis)
                                  for _ in range(slots))
        self.step = nn.Parameter(torch.ones(slots))
        self.register_buffer("initialized", torch.tensor(False))
        self.register_buffer("renew_enabled", torch.tensor(False))
        self.register_buffer("last_bits", torch.full((slots,), bits, dtype=torch.long))
        self.register_buffer("flips", torch.zeros(slots, dtype=torch.long))
        self.register_buffer("renewals", torch.zeros(slots, dtype=torch.long))
        self.register_buffer("epoch_renewals", torch.zeros(slots, dtype=torch.long))
        self.register_buffer("clip_max", torch.zeros(slots))

    def bit_values(self, active: int | None = None) -> list[int]:
        return [int(self.bits[i]) for i in range(active or len(self.bits))]

    @torch.no_grad()
    def observe(self, x: torch.Tensor, active: int = 1, bits: list[int] | None = None) -> None:
        """Training-time bookkeeping before x is quantised (slots < ``active`` are in use; ``bits``:
        their rounded bit widths, if the caller has them already).

        First call: s = 2 mean|x|/sqrt(qmax) for every slot.  Afterwards, a slot whose rounded bit
        width differs from the last one seen counts a flip and, if renewal is enabled (and the
        slot's renewals this epoch are below the policy's ``renewal_limit``), gets a new step from
        ``grid_search_step(x)`` at once.
        """
        if not bool(self.initialized):
            for i, b in enumerate(self.bit_values()):
                self.step[i] = init_step(x, qrange(b, self.signed)[1], self.policy.sync_stats)
                self.last_bits[i] = b
            self.initialized.fill_(True)
            return
        for i, b in enumerate(self.bit_values(active) if bits is None else bits):
            if b == int(self.last_bits[i]):
                continue
            self.flips[i] += 1
            old, self.last_bits[i] = int(self.last_bits[i]), b
            capped = 0 < self.policy.renewal_limit <= int(self.epoch_renewals[i])
            if bool(self.renew_enabled) and not capped:
                self.step[i] = self._renewed_step(x, b, i, old)
                self.renewals[i] += 1
                self.epoch_renewals[i] += 1

    @torch.no_grad()
    def start_epoch(self) -> None:
        """Reset the per-epoch renewal counts (the training loop calls it before each epoch)."""
        self.epoch_renewals.zero_()

    def _renewed_step(self, x: torch.Tensor, b: int, i: int, old: int) -> torch.Tensor:
        """The grid search's step; with the policy's ``range_ratio`` the reference code's weight
        rule s' = s * qmax(b) / qmax(old) (the step shrinks when bits drop: a documented flaw)."""
        pol = self.policy
        if pol.range_ratio:
            return self.step[i] * (qrange(b, self.signed)[1] / qrange(old, self.signed)[1])
        step, c = grid_search_step(x, b, self.signed, pol.K, pol.p, pol.sync_stats)
        if not pol.running_extrema:
            return step
        self.clip_max[i] = torch.maximum(self.clip_max[i], c)
        return self.clip_max[i] / qrange(b, self.signed)[1]

    @torch.no_grad()
    def clamp_(self) -> None:
        """After an optimiser step: latents back inside their bounds, steps positive."""
        for b in self.bits:
            b.clamp_()
        self.step.clamp_(min=torch.finfo(self.step.dtype).tiny)


class WeightQuantizer(StepQuantizer):
    """Signed weight quantizer: w_q = S_q * clip(round(w / S_q), -qmax, qmax); B = 1: S_q * sign(w)."""

    def __init__(self, bits: int = 4, bound: int | None = None, learnable_bits: bool = True,
                 policy: RenewalPolicy = RenewalPolicy(), hysteresis: float = 0.0):
        super().__init__(bits, bound, learnable_bits, signed=True, slots=1, policy=policy,
                         hysteresis=hysteresis)

    @classmethod
    def from_config(cls, cfg) -> "WeightQuantizer":
        """The weight quantizer a ``layers.QuantConfig`` describes."""
        return cls(cfg.w_bits, cfg.w_bound, cfg.learn_w, cfg.renewal, cfg.hysteresis)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        bits, b = self.bits[0].value()
        if self.training:
            self.observe(w, 1, [b])
        return lsq_quantize(w, self.step, bits, signed=True)
