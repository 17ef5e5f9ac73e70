"""The refined multi-bit spiking neuron with a learnable temporal length (book/method.md#method-neuron,
book/definitions.md#def-per-step).

One step is one pure function, ``neuron_step``: explicit state in, spikes and state out (the
functional style of Norse and snnTorch).  It is the definition of the neuron: training runs it, the
chapters show it, the benchmarks time it.  Input x is the real-valued activation of the previous
layer (the same x at every step).  Step t uses the parameters of slot p = p(t): p = t with
``per_step=True`` (every step t < T_bound has its own Vth1_t and Bs_t), else p = 0.  As coded:

    v_0   = x                                            (no state yet: v_{-1} = 0, S_{-1} = 0)
    v_t   = v_{t-1} / tau - Vth1_p(t-1) S_{t-1} + x      (t >= 1; soft reset by subtraction, the
                                                       reset not divided by tau; tau = 1 by default)
    u_t   = v_t / Vth1_p
    k_t   = floor(u_t + 1/2)                             'round', unsigned range (spikes)
          = sign(u_t) floor(|u_t| + 1/2)                 'round', signed range (the stem)
          = floor(u_t)                                   'floor'
    S_t   = clip(k_t, qmin, qmax)                        unsigned [0, 2^Bs - 1]; signed [-qmax, qmax],
                                                         qmax = max(2^(Bs-1) - 1, 1) (quant.qrange)
    m_t   = [k_t = S_t],  c_t = sign(k_t - S_t)          inside the range; +1 / -1 / 0 clipped
                                                         above / below / inside
    r     = (1/T) sum_t A_p S_t                          (temporal squeezing, ``squeeze``)

k, m and c are quant.int_codes' (up to the sign of a zero count).  The emitted amplitude is
A_p = Vth1_p (the refined neuron: threshold = step = spike amplitude) or, with ``amplitude=True``
(the old neuron of the ablation, book/definitions.md#def-old-neuron: use it with tau = 2 and
firing='floor'), A_p = alpha_p, a separate learnable amplitude initialised to Vth1_p on the first
training batch.  The reset always subtracts the threshold crossing Vth1 S.  The layer sends r on,
and the next convolution runs once on r: conv(mean_t A S_t) = mean_t conv(A S_t).

Backward.  T is an integer: r divides by its value, and the gradient of the 1/T factor is passed
straight through to the latent T_hat (the STE of bits.LearnableInt, d T / d T_hat = 1).
The carried residual v_t/tau - Vth1 S_t is detached, as in the reference code (no BPTT through the
reset): each step's gradient reaches x through its own "+ x".  The round is straight-through inside
the range.  With G = dL/dr and sums over the elements and over the steps t of slot p:

    dL/dx        = (1/T) G * sum_t (A_p / Vth1_p) m_t        (= (1/T) G sum_t m_t when A = Vth1)
    dL/dVth1_p   = g_p (1/T) sum G (S_t - u_t m_t)            A = Vth1: LSQ (quant.py)
                 = g_p (1/T) sum G (A_p / Vth1_p) (-u_t m_t)  A = alpha: the STE through S only
    dL/dalpha_p  = g_p (1/T) sum G S_t                        (amplitude; the step's LSQ scale g)
    dL/dBs_p     = g_p c_B A_p (1/T) sum G c_t
    dL/dT_hat    = -<G, r> / T

with the LSQ scale g_p = 1/sqrt(N qmax_p) (N: elements of x) and c_B = quant.bit_grad_factor.
At alpha = Vth1 the amplitude neuron's dL/dVth1 + dL/dalpha is the refined neuron's dL/dVth1.

Memory is O(elements) and constant in T; no tensor of size elements x levels.  Shared parameters
(the default): the forward pass keeps four per-element sums over the steps (sum m_t, sum of the
Vth1 term, sum c_t, and r or sum S_t) and the backward pass is four reductions.  ``per_step=True``:
the per-slot gradients need every step apart, so the forward pass saves nothing but x and the
backward pass runs ``neuron_step`` again (the same arithmetic, so the same spikes) and reduces each
step.

Executions.  ``squeeze`` (the T steps of ``neuron_step`` and the sums) runs in one of three ways,
chosen by ``execution`` and nowhere else: as written ('eager'); on a CPU, for float32 and the
shared-parameter neuron without amplitude, as the compiled C pass of ``fused`` (the same
operations in the same order, so the same bits: tests/test_fused.py); or, opted in with
``ADABIT_FUSED=compile``, as ``squeeze`` itself compiled by torch.compile.  In torch's
deterministic mode (which train.py turns on) the neuron's forward and backward passes switch off
its NaN fill of new tensors (``_unfilled``): every element they allocate is written before it is
read, so the fill would only cost a pass over memory.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import replace
from typing import NamedTuple

import torch
import torch.utils.deterministic
from torch import nn

from . import fused
from .bits import LearnableInt
from .quant import (FIRING_MODES, RenewalPolicy, StepQuantizer, bit_grad_factor, grad_scale,
                    qrange)


# --------------------------------------------------------------------------- the definition
class State(NamedTuple):
    """What step t hands to step t + 1: the potential v_t and the reset Vth1 S_t."""

    v: torch.Tensor
    reset: torch.Tensor


class Spikes(NamedTuple):
    """Step t's spike counts S_t, and for the straight-through backward pass u_t = v_t / Vth1,
    m_t (``inside``, 0 or 1) and c_t (``clip``, -1, 0 or +1), all in x's dtype."""

    S: torch.Tensor
    u: torch.Tensor
    inside: torch.Tensor
    clip: torch.Tensor


def residual(state: State, tau: float) -> torch.Tensor:
    """R_t = v_{t-1} / tau - Vth1 S_{t-1}: what the membrane carries into step t."""
    return (state.v - state.reset) if tau == 1 else (state.v / tau).sub_(state.reset)


def membrane_update(x: torch.Tensor, state: State | None, tau: float) -> torch.Tensor:
    """v_t = v_{t-1} / tau - Vth1 S_{t-1} + x (= R_t + x), and v_0 = x (``state`` None: nothing
    before)."""
    return x if state is None else residual(state, tau).add_(x)


def neuron_step(x: torch.Tensor, state: State | None, vth, qmin: int, qmax: int, tau: float = 1.0,
                firing: str = "round") -> tuple[Spikes, State]:
    """One step: (x, state_{t-1}) -> (spikes_t, state_t), with
    u = v_t / Vth1, k = floor(u + 1/2) | sign(u) floor(|u| + 1/2) (signed) | floor(u) ('floor'),
    S_t = clip(k, qmin, qmax), m_t = [k = S_t], c_t = sign(k - S_t), state_t = (v_t, Vth1 S_t)."""
    v = membrane_update(x, state, tau)
    u = v / vth
    if firing == "floor":
        k = torch.floor(u)
    elif firing != "round":
        raise ValueError(f"firing must be one of {FIRING_MODES}, got {firing!r}")
    elif qmin >= 0:
        k = torch.add(u, 0.5).floor_()
    else:
        k = torch.abs(u).add_(0.5).floor_().copysign_(u)
    S = k.clamp(qmin, qmax)
    inside = (k == S).to(u.dtype)
    clip = k.sub_(S).sign_()
    return Spikes(S, u, inside, clip), State(v, S * vth)


@torch.no_grad()
def neuron_trace(x: torch.Tensor, vth, bits, T: int, tau: float = 1.0, firing: str = "round",
                 signed: bool = False):
    """Membrane potentials and spike counts of T steps of ``neuron_step``: returns (v, S), each
    shaped [T, *x.shape].

    ``vth`` and ``bits`` are numbers or per-step sequences of length >= T.  The amplitude of the
    old neuron does not enter v or S (the reset subtracts Vth1 S).
    """
    vths = vth if isinstance(vth, (list, tuple)) else [vth] * T
    bitss = bits if isinstance(bits, (list, tuple)) else [bits] * T
    state, vs, ss = None, [], []
    for t in range(T):
        spikes, state = neuron_step(x, state, vths[t], *qrange(int(bitss[t]), signed), tau, firing)
        vs.append(state.v)
        ss.append(spikes.S)
    return torch.stack(vs), torch.stack(ss)


# --------------------------------------------------------------------------- T steps, squeezed
class Squeezed(NamedTuple):
    """What the forward pass of the layer's neuron produces: r, sum_t S_t (shared slot with an
    amplitude, else None), the per-element sums for backward (None where not asked for), and the
    count of non-zero spikes (a float64 0-d tensor)."""

    r: torch.Tensor
    sum_S: torch.Tensor | None
    n_inside: torch.Tensor | None
    d_vth: torch.Tensor | None
    n_clip: torch.Tensor | None
    nonzero: torch.Tensor


def squeeze(x: torch.Tensor, vth: torch.Tensor, alpha: torch.Tensor | None,
            ranges: list[tuple[int, int]], T: int, tau: float, firing: str,
            sums: tuple[bool, bool, bool] = (False, False, False), count: bool = False) -> Squeezed:
    """T steps of ``neuron_step`` on x, slot p(t) of ``vth``, ``alpha`` and ``ranges`` at step t:

        r = (1/T) sum_t Vth1_p S_t               (summed in step order, then divided by T)
          = alpha_0 (sum_t S_t) / T              (one slot, with an amplitude)
          = (1/T) sum_t alpha_p S_t              (one slot per step, with an amplitude)

    and, as ``sums`` = (for x, for Vth1, for Bs) asks (one slot only), n_inside = sum_t m_t,
    d_vth = sum_t (S_t - u_t m_t) (with an amplitude sum_t u_t m_t) and n_clip = sum_t c_t, each
    starting from its t = 0 term.  ``count``: the non-zero S_t are counted.
    """
    x = x.contiguous()  # and so is every tensor made from it
    want_x, want_vth, want_bits = sums
    amp, shared = alpha is not None, vth.shape[0] == 1
    nonzero = torch.zeros((), dtype=torch.float64, device=x.device)
    state = total = n_inside = d_vth = n_clip = None
    for t in range(T):
        p = 0 if shared else t
        s, state = neuron_step(x, state, vth[p], *ranges[p], tau, firing)
        if count:
            nonzero += torch.count_nonzero(s.S)
        if want_bits:
            n_clip = s.clip if t == 0 else n_clip.add_(s.clip)
        if want_vth:
            d = s.u * s.inside if amp else torch.addcmul(s.S, s.u, s.inside, value=-1)
            d_vth = d if t == 0 else d_vth.add_(d)
        if want_x:
            n_inside = s.inside if t == 0 else n_inside.add_(s.inside)
        if not amp:
            total = state.reset if t == 0 else total.add_(state.reset)
        elif shared:
            total = s.S if t == 0 else total.add_(s.S)
        else:
            A_S = torch.mul(s.S, alpha[p])
            total = A_S if t == 0 else total.add_(A_S)
    if amp and shared:
        return Squeezed(torch.mul(total, alpha[0]).div_(T), total, n_inside, d_vth, n_clip, nonzero)
    return Squeezed(total.div_(T), None, n_inside, d_vth, n_clip, nonzero)


def _squeeze_c(x, vth, alpha, ranges, T, tau, firing, sums=(False, False, False), count=False):
    """``squeeze`` as the compiled C pass (fused.py; one slot, no amplitude)."""
    r, n_inside, d_vth, n_clip, nonzero = fused.neuron_steps(x, float(vth[0]), *ranges[0], tau, T,
                                                             firing, sums)
    nonzero = torch.tensor(float(nonzero if count else 0), dtype=torch.float64, device=x.device)
    return Squeezed(r, None, n_inside, d_vth, n_clip, nonzero)


_compiled = None


def _squeeze_compiled(*args):
    """``squeeze`` compiled by torch.compile (once per shape, T, range and options)."""
    global _compiled
    if _compiled is None:
        _compiled = torch.compile(squeeze, dynamic=False, fullgraph=True)
    return _compiled(*args)


EXECUTIONS = {"c": _squeeze_c, "compiled": _squeeze_compiled, "eager": squeeze}


def execution(x: torch.Tensor, shared: bool, amplitude: bool, firing: str, T: int) -> str:
    """Which execution of ``squeeze`` runs a call (the only place that chooses), by ADABIT_FUSED:
    unset or '1': 'c' where ``fused.covers`` the call, else 'eager'; '0': 'eager'; 'compile':
    'compiled' (opt-in: each new shape and T compiles first)."""
    if os.environ.get("ADABIT_FUSED") == "compile":
        return "compiled"
    return "c" if fused.covers(x, shared, amplitude, firing, T) else "eager"


@contextmanager
def _unfilled():
    """torch.empty without the NaN fill of deterministic mode (train.py turns that mode on): every
    tensor made inside is written in full before it is read, so the fill is a wasted pass."""
    det = torch.utils.deterministic
    fill = det.fill_uninitialized_memory and torch.are_deterministic_algorithms_enabled()
    if fill:
        det.fill_uninitialized_memory = False
    try:
        yield
    finally:
        if fill:
            det.fill_uninitialized_memory = True


# --------------------------------------------------------------------------- autograd
def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.dot(a.reshape(-1), b.reshape(-1))


def _scaled_product(a: torch.Tensor, b: torch.Tensor, c: float) -> torch.Tensor:
    """0 + c a b, as torch.addcmul computes it (the + 0 turns -0 into +0), in a new contiguous
    tensor."""
    out = torch.empty_like(a, memory_format=torch.contiguous_format)
    return torch.addcmul(a.new_zeros(()), a, b, value=c, out=out)


class _SqueezedNeuron(torch.autograd.Function):
    """r = (1/T) sum_t A_p(t) S_t (``squeeze``), with the spike count as a second output.

    Inputs: x, vth [slots], alpha ([slots], or None: A = vth), bits (the latents B_hat, [slots] or
    0-d for one slot) and T_hat (0-d): for their gradients only (straight through: d B / d B_hat =
    d T / d T_hat = 1), then constants: T, ranges [(qmin, qmax)] per
    slot, tau, firing, gscales and factors per slot, count (count the non-zero spikes), grad
    (False: no backward will be asked for, keep nothing).  ``slots`` is 1 (shared) or T (one per
    step).
    """

    @staticmethod
    def forward(ctx, x, vth, alpha, bits, T_hat, T, ranges, tau, firing, gscales, factors, count,
                grad=True):
        slots = vth.shape[0]
        if slots not in (1, T):
            raise ValueError(f"{slots} parameter slots for T = {T} steps: expected 1 or {T}")
        need = [bool(grad and n) for n in ctx.needs_input_grad[:5]]
        need_x, need_vth, need_alpha, need_bits, need_T = need
        amp, shared = alpha is not None, slots == 1
        sums = shared and any(need)  # per-element sums over the steps, for backward
        run = EXECUTIONS[execution(x, shared, amp, firing, T)]
        with _unfilled():
            out = run(x, vth, alpha, ranges, T, tau, firing,
                      (sums and need_x, sums and need_vth, sums and need_bits), count)
        ctx.mark_non_differentiable(out.nonzero)
        ctx.consts = (T, ranges, tau, firing, gscales, factors, shared, need, bits.shape)
        if shared:
            keep = (out.sum_S if need_alpha or need_T else None) if amp else \
                (out.r if need_T else None)
            ctx.save_for_backward(vth, alpha, out.n_inside, out.d_vth, out.n_clip, keep)
        else:
            ctx.save_for_backward(vth, alpha, x if any(need) else None)
        return out.r, out.nonzero

    @staticmethod
    def backward(ctx, grad, _grad_nonzero):
        T, ranges, tau, firing, gscales, factors, shared, need, bits_shape = ctx.consts
        with _unfilled():
            if shared:
                grads = _backward_shared(ctx, grad, T, gscales, factors, need)
            else:
                grads = _backward_recompute(ctx, grad, T, ranges, tau, firing, gscales, factors,
                                            need)
        grad_x, grad_vth, grad_alpha, grad_bits, grad_T = grads
        if grad_bits is not None:
            grad_bits = grad_bits.reshape(bits_shape)
        return (grad_x, grad_vth, grad_alpha, grad_bits, grad_T,
                None, None, None, None, None, None, None, None)


def _backward_shared(ctx, grad, T, gscales, factors, need):
    """Four reductions of the per-element sums that forward kept."""
    vth, alpha, n_inside, d_vth, n_clip, keep = ctx.saved_tensors
    need_x, need_vth, need_alpha, need_bits, need_T = need
    amp = alpha is not None
    g = gscales[0] / T  # the LSQ scale and the 1/T of squeezing, as one number
    vth = vth.detach()[0]
    A = alpha.detach()[0] if amp else vth
    grad_x = grad_vth = grad_alpha = grad_bits = grad_T = None
    gf = grad.contiguous().view(-1)
    if need_vth:
        grad_vth = _dot(gf, d_vth).reshape(1) * g
        if amp:
            grad_vth = -grad_vth * (A / vth)
    if need_bits:
        grad_bits = _dot(gf, n_clip).reshape(1) * (g * factors[0]) * A
    if amp and (need_alpha or need_T):
        gs = _dot(gf, keep)  # <G, sum_t S_t>
        if need_alpha:
            grad_alpha = (gs * g).reshape(1)
        if need_T:
            grad_T = -(gs * A) / (T * T)
    elif need_T:
        grad_T = -_dot(gf, keep) / T
    if need_x:
        if amp:
            grad_x = torch.mul(grad, n_inside).mul_(A / (vth * T))
        elif T == 1:
            grad_x = torch.mul(grad, n_inside)
        else:
            grad_x = _scaled_product(grad, n_inside, 1.0 / T)
    return grad_x, grad_vth, grad_alpha, grad_bits, grad_T


def _backward_recompute(ctx, grad, T, ranges, tau, firing, gscales, factors, need):
    """One slot per step: run ``neuron_step`` T times again (the same spikes) and reduce each step
    against G."""
    vth, alpha, x = ctx.saved_tensors
    need_x, need_vth, need_alpha, need_bits, need_T = need
    amp = alpha is not None
    vth = vth.detach()
    A = alpha.detach() if amp else vth
    x = x.detach().contiguous()
    dev, dt = grad.device, grad.dtype
    g = torch.tensor(gscales, dtype=dt, device=dev) / T
    gf = grad.contiguous().view(-1)
    state = n_inside = None
    dv, db, ds = [], [], []
    for t in range(T):
        s, state = neuron_step(x, state, vth[t], *ranges[t], tau, firing)
        if need_bits:
            db.append(_dot(gf, s.clip))
        if need_alpha or need_T:
            ds.append(_dot(gf, s.S))
        if need_vth:
            dv.append(_dot(gf, s.u * s.inside if amp else
                           torch.addcmul(s.S, s.u, s.inside, value=-1)))
        if need_x:  # sum_t (A_t / Vth1_t) m_t
            m = s.inside * (A[t] / vth[t]) if amp else s.inside
            n_inside = m if t == 0 else n_inside.add_(m)
    grad_x = grad_vth = grad_alpha = grad_bits = grad_T = None
    if need_vth:
        grad_vth = torch.stack(dv) * g
        if amp:
            grad_vth = -grad_vth * (A / vth)
    if need_bits:
        grad_bits = torch.stack(db) * g * torch.tensor(factors, dtype=dt, device=dev) * A
    if need_alpha:
        grad_alpha = torch.stack(ds) * g
    if need_T:
        grad_T = -(torch.stack(ds) * A).sum() / (T * T)
    if need_x:
        grad_x = _scaled_product(grad, n_inside, 1.0 / T)
    return grad_x, grad_vth, grad_alpha, grad_bits, grad_T


# --------------------------------------------------------------------------- the module
class SpikingNeuron(StepQuantizer):
    """Multi-bit spiking neuron at a layer's input: x -> r = (1/T) sum_t A S_t (module docstring).

    Parameters: Vth1 (``step``, one per slot), Bs (``bits``, one per slot), T (``T``) and, with
    ``amplitude=True``, the emitted amplitude ``alpha`` (one per slot; None otherwise).
    Bounds (book/method.md#method-learnable-bits): Bs in [1, Bs_init + 2], T in [1, T_init + 1] unless given.
    ``per_step=True``: one slot per step t < T_bound.  ``track_rate=True`` accumulates the counts of
    non-zero spike entries (``spike_count``) over ``spike_slots`` = elements x T that the meter
    turns into a firing rate.  The old neuron of the ablation: ``tau=2, firing='floor',
    amplitude=True``.
    """

    def __init__(self, bits: int = 4, T: int = 2, bits_bound: int | None = None,
                 T_bound: int | None = None, learnable_bits: bool = True, learnable_T: bool = True,
                 tau: float = 1.0, firing: str = "round", signed: bool = False,
                 per_step: bool = False, amplitude: bool = False,
                 policy: RenewalPolicy = RenewalPolicy(), hysteresis: float = 0.0):
        if firing not in FIRING_MODES:
            raise ValueError(f"firing must be one of {FIRING_MODES}, got {firing!r}")
        if tau < 1:
            raise ValueError(f"tau must be >= 1, got {tau}")
        if policy.range_ratio:
            raise ValueError("range_ratio is a weight renewal rule; a neuron renews Vth1 by the "
                             "grid search")
        T_bound = T + 1 if T_bound is None else T_bound
        super().__init__(bits, bits_bound, learnable_bits, signed, slots=T_bound if per_step else 1,
                         policy=policy, hysteresis=hysteresis)
        self.T = LearnableInt(T, 1, T_bound, learnable_T)
        self.tau, self.firing, self.per_step = float(tau), firing, per_step
        self.amplitude = bool(amplitude)
        if self.amplitude:  # set to Vth1 when the step is first initialised (observe)
            self.alpha = nn.Parameter(torch.ones_like(self.step.detach()))
        else:
            self.register_parameter("alpha", None)
        self.track_rate = False
        self.register_buffer("spike_count", torch.zeros((), dtype=torch.float64))
        self.register_buffer("spike_slots", torch.zeros((), dtype=torch.float64))

    @classmethod
    def from_config(cls, cfg) -> "SpikingNeuron":
        """The neuron a ``layers.QuantConfig`` describes (its policy's weight-only
        ``range_ratio`` dropped)."""
        return cls(cfg.s_bits, cfg.T, cfg.s_bound, cfg.T_bound, cfg.learn_s, cfg.learn_T, cfg.tau,
                   cfg.firing, cfg.signed_spikes, cfg.per_step, cfg.amplitude,
                   replace(cfg.renewal, range_ratio=False), cfg.hysteresis)

    def active_slots(self, T: int | None = None) -> int:
        return (int(self.T) if T is None else T) if self.per_step else 1

    def mean_bits(self) -> float:
        """Mean Bs over the active steps t < T."""
        bits = self.bit_values(self.active_slots())
        return sum(bits) / len(bits)

    @torch.no_grad()
    def observe(self, x: torch.Tensor, active: int = 1, bits: list[int] | None = None) -> None:
        """StepQuantizer.observe; with an amplitude, alpha = Vth1 right after the first step
        initialisation (renewals of Vth1 later leave alpha alone)."""
        first = not bool(self.initialized)
        super().observe(x, active, bits)
        if first and self.alpha is not None:
            self.alpha.copy_(self.step)

    @torch.no_grad()
    def clamp_(self) -> None:
        super().clamp_()
        self.T.clamp_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T = int(self.T)
        slots = self.active_slots(T)
        bits = self.bit_values(slots)
        if self.training:
            self.observe(x, slots, bits)
        ranges = [qrange(b, self.signed) for b in bits]
        # the latents themselves carry the straight-through gradients of Bs and T (no STE tensors,
        # no slicing of parameters that are used whole: a call costs a few tensor operations less)
        whole = slots == self.step.numel()
        latents = self.bits[0].latent if slots == 1 else \
            torch.stack([self.bits[i].latent for i in range(slots)])
        r, nonzero = _SqueezedNeuron.apply(
            x, self.step if whole else self.step[:slots],
            None if self.alpha is None else (self.alpha if whole else self.alpha[:slots]),
            latents, self.T.latent, T, ranges, self.tau,
            self.firing, [grad_scale(x.numel(), q) for _, q in ranges],
            [bit_grad_factor(b, q) for b, (_, q) in zip(bits, ranges)], self.track_rate,
            torch.is_grad_enabled())
        if self.track_rate:
            self.spike_count += nonzero
            self.spike_slots += x.numel() * T
        return r

    def extra_repr(self) -> str:
        return (f"T={int(self.T)}, Bs={self.bit_values(self.active_slots())}, tau={self.tau}, "
                f"firing={self.firing}, signed={self.signed}, per_step={self.per_step}, "
                f"amplitude={self.amplitude}")
