"""The refined multi-bit spiking neuron with a learnable temporal length (method.md section 3).

Input x is the real-valued activation of the previous layer (the same x at every step).  With
v = 0 and out = 0 before the first step, for t = 0 .. T-1:

    v_t   = v_{t-1} / tau - out_{t-1} + x              (soft reset by subtraction; tau = 1 default)
    S_t   = clip(round(v_t / Vth1), 0, 2^Bs - 1)       (round = floor(u + 0.5); or floor firing)
    out_t = Vth1 * S_t                                 (Vth1: threshold = step = spike amplitude)
    r     = (1/T) * sum_t out_t                        (temporal squeezing)

so v_0 = x.  The layer sends r on, and the next convolution runs once on r: conv(mean_t out_t) =
mean_t conv(out_t).  1/T is coded as 1 / T_ste, where T_ste has the value T and passes its gradient to
T_hat, so dL/dT_hat = -<dL/dr, r> / T.  The carried residual (v_t/tau - out_t) is detached, as in the
reference code (no BPTT through the reset): each step's gradient reaches x through its own "+ x".

Per-step gradients are LSQ's (quant.py).  Because every step feeds the same average r, backward
needs only sums over steps, so the fused function saves O(elements) tensors, not T of them:
    dL/dx     = dL/dr_sum * sum_t inside_t
    dL/dVth1  = g * sum(dL/dr_sum * sum_t (S_t - u_t inside_t))
    dL/dBs    = g * Vth1 * c_B * sum(dL/dr_sum * sum_t clip_t)
With ``per_step=True`` every step t < T_bound has its own Vth1_t and Bs_t (the sums then run per step).
A signed neuron (the stem's 8-bit signed spikes) uses q = sign(u) min(floor(|u| + 0.5), qmax).
"""

from __future__ import annotations

import torch
from torch import nn

from .bits import LearnableInt
from .quant import FIRING_MODES, StepQuantizer, bit_grad_factor, grad_scale, int_codes, qrange


def membrane_update(v: torch.Tensor, out: torch.Tensor, x: torch.Tensor, tau: float) -> torch.Tensor:
    """v_t = v_{t-1} / tau - out_{t-1} + x."""
    return (v if tau == 1 else v / tau) - out + x


def neuron_step(x, v, out, vth, qmin: int, qmax: int, tau: float = 1.0, firing: str = "round"):
    """One step as a pure function: (x, state=(v, out)) -> (S_t, state=(v_t, out_t))."""
    v = membrane_update(v, out, x, tau)
    s = int_codes(v / vth, qmin, qmax, firing)[0]
    return s, (v, vth * s)


@torch.no_grad()
def neuron_trace(x: torch.Tensor, vth, bits, T: int, tau: float = 1.0, firing: str = "round",
                 signed: bool = False):
    """Membrane potentials and spike counts of T steps: returns (v, S), each shaped [T, *x.shape].

    ``vth`` and ``bits`` are numbers or per-step sequences of length >= T.
    """
    vths = vth if isinstance(vth, (list, tuple)) else [vth] * T
    bitss = bits if isinstance(bits, (list, tuple)) else [bits] * T
    v, out = torch.zeros_like(x), torch.zeros_like(x)
    vs, ss = [], []
    for t in range(T):
        qmin, qmax = qrange(int(bitss[t]), signed)
        s, (v, out) = neuron_step(x, v, out, vths[t], qmin, qmax, tau, firing)
        vs.append(v)
        ss.append(s)
    return torch.stack(vs), torch.stack(ss)


class _SqueezedNeuron(torch.autograd.Function):
    """sum_t Vth1_{p(t)} S_t over T steps, saving only per-element sums for backward."""

    @staticmethod
    def forward(ctx, x, vth, bits, T, ranges, tau, firing, gscales, factors, count):
        slots = vth.shape[0]
        need_vth, need_bits = ctx.needs_input_grad[1], ctx.needs_input_grad[2]
        total = torch.zeros_like(x)
        n_inside = torch.zeros_like(x)
        d_vth = x.new_zeros((slots,) + x.shape) if need_vth else None
        n_clip = x.new_zeros((slots,) + x.shape) if need_bits else None
        nonzero = x.new_zeros(())
        v = out = None
        for t in range(T):
            p = t if slots > 1 else 0
            v = x if t == 0 else membrane_update(v, out, x, tau)
            u = v / vth[p]
            s, inside, clip = int_codes(u, *ranges[p], firing)
            out = vth[p] * s
            total += out
            n_inside += inside
            if need_vth:
                d_vth[p] += s - u * inside
            if need_bits:
                n_clip[p] += clip
            if count:
                nonzero += torch.count_nonzero(s)
        ctx.save_for_backward(vth, n_inside, d_vth, n_clip)
        ctx.consts = (gscales, factors)
        ctx.mark_non_differentiable(nonzero)
        return total, nonzero

    @staticmethod
    def backward(ctx, grad, _grad_nonzero):
        vth, n_inside, d_vth, n_clip = ctx.saved_tensors
        gscales, factors = ctx.consts
        gs = torch.tensor(gscales, dtype=grad.dtype, device=grad.device)
        grad_x = grad * n_inside if ctx.needs_input_grad[0] else None
        grad_vth = grad_bits = None
        if d_vth is not None:
            grad_vth = (grad * d_vth).flatten(1).sum(1) * gs
        if n_clip is not None:
            fs = torch.tensor(factors, dtype=grad.dtype, device=grad.device)
            grad_bits = (grad * n_clip).flatten(1).sum(1) * gs * fs * vth.detach()
        return grad_x, grad_vth, grad_bits, None, None, None, None, None, None, None


class SpikingNeuron(StepQuantizer):
    """Refined multi-bit neuron at a layer's input: x -> r = (1/T) sum_t Vth1 S_t.

    Parameters: Vth1 (``step``, one per slot), Bs (``bits``, one per slot), T (``T``).
    Bounds (method.md 2): Bs in [1, Bs_init + 2], T in [1, T_init + 1] unless given.
    ``track_rate=True`` accumulates the spike counts that the meter turns into a firing rate.
    """

    def __init__(self, bits: int = 4, T: int = 2, bits_bound: int | None = None,
                 T_bound: int | None = None, learnable_bits: bool = True, learnable_T: bool = True,
                 tau: float = 1.0, firing: str = "round", signed: bool = False,
                 per_step: bool = False):
        if firing not in FIRING_MODES:
            raise ValueError(f"firing must be one of {FIRING_MODES}, got {firing!r}")
        if tau < 1:
            raise ValueError(f"tau must be >= 1, got {tau}")
        T_bound = T + 1 if T_bound is None else T_bound
        super().__init__(bits, bits_bound, learnable_bits, signed, slots=T_bound if per_step else 1)
        self.T = LearnableInt(T, 1, T_bound, learnable_T)
        self.tau, self.firing, self.per_step = float(tau), firing, per_step
        self.track_rate = False
        self.register_buffer("spike_count", torch.zeros((), dtype=torch.float64))
        self.register_buffer("spike_slots", torch.zeros((), dtype=torch.float64))

    def active_slots(self, T: int | None = None) -> int:
        return (int(self.T) if T is None else T) if self.per_step else 1

    def mean_bits(self) -> float:
        """Mean Bs over the active steps t < T."""
        bits = self.bit_values(self.active_slots())
        return sum(bits) / len(bits)

    @torch.no_grad()
    def clamp_(self) -> None:
        super().clamp_()
        self.T.clamp_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T = int(self.T)
        slots = self.active_slots(T)
        if self.training:
            self.observe(x, slots)
        bits = [int(b) for b in self.bits[:slots]]
        ranges = [qrange(b, self.signed) for b in bits]
        total, nonzero = _SqueezedNeuron.apply(
            x, self.step[:slots], torch.stack([b() for b in self.bits[:slots]]), T, ranges,
            self.tau, self.firing, [grad_scale(x.numel(), q) for _, q in ranges],
            [bit_grad_factor(b, q) for b, (_, q) in zip(bits, ranges)], self.track_rate)
        if self.track_rate:
            self.spike_count += nonzero.detach().to(torch.float64)
            self.spike_slots += x.numel() * T
        return total / self.T()

    def extra_repr(self) -> str:
        return (f"T={int(self.T)}, Bs={self.bit_values(self.active_slots())}, tau={self.tau}, "
                f"firing={self.firing}, signed={self.signed}, per_step={self.per_step}")
