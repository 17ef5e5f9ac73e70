"""The refined multi-bit spiking neuron with a learnable temporal length (book/method.md#method-neuron,
book/definitions.md#def-per-step).

Input x is the real-valued activation of the previous layer (the same x at every step).  Step t
uses the parameters of slot p = p(t): p = t with ``per_step=True`` (every step t < T_bound has its
own Vth1_t and Bs_t), else p = 0.  As coded, for t = 0 .. T-1:

    v_0   = x
    v_t   = v_{t-1} / tau - Vth1_p(t-1) S_{t-1} + x   (t >= 1; soft reset by subtraction, the
                                                     reset not divided by tau; tau = 1 by default)
    u_t   = v_t / Vth1_p
    S_t   = clip(R(u_t), qmin, qmax)                   R, qmin, qmax exactly as quant.int_codes:
            unsigned (spikes): [0, 2^Bs - 1], 'round': R(u) = floor(u + 0.5), 'floor': floor(u);
            signed (the stem): [-qmax, qmax], qmax = max(2^(Bs-1) - 1, 1), 'round': R(u) =
            sign(u) floor(|u| + 0.5), 'floor': floor(u); any other int_codes mode from int_codes
    r     = (1/T) * sum_t A_p S_t                      (temporal squeezing)

with the emitted amplitude A_p = Vth1_p (the refined neuron: threshold = step = spike amplitude)
or, with ``amplitude=True`` (the old neuron of the ablation, book/definitions.md#def-old-neuron: use it with tau = 2 and
firing='floor'), A_p = alpha_p, a separate learnable amplitude initialised to Vth1_p on the first
training batch.  The reset always subtracts the threshold crossing Vth1 * S.  The layer sends r on,
and the next convolution runs once on r: conv(mean_t A S_t) = mean_t conv(A S_t).

Backward.  T is an integer: r divides by its value, and the gradient of the 1/T factor is passed
straight through to the latent T_hat (the STE of bits.LearnableInt, d T / d T_hat = 1).
The carried residual v_t/tau - Vth1 S_t is detached, as in the reference code (no BPTT through the
reset): each step's gradient reaches x through its own "+ x".  The round is straight-through inside
the range (m_t = [qmin <= R(u_t) <= qmax], c_t = +1 / -1 / 0 clipped above / below / inside, as
int_codes).  With G = dL/dr and sums over the elements and over the steps t of slot p:

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
backward pass recomputes the T steps (the same arithmetic, so the same spikes) and reduces each one.

Two implementations of the forward step loop give the same bits: on a CPU, for float32 and the
shared-parameter neuron without amplitude, a compiled C pass (``fused``, one read of x, all T
steps on blocks held in the first-level cache); everywhere else the eager loop ``_Steps`` on reused buffers.
"""

from __future__ import annotations

import torch
from torch import nn

from . import fused
from .bits import LearnableInt
from .quant import FIRING_MODES, StepQuantizer, bit_grad_factor, grad_scale, int_codes, qrange


def membrane_update(v: torch.Tensor, out: torch.Tensor, x: torch.Tensor,
                    tau: float) -> torch.Tensor:
    """v_t = v_{t-1} / tau - out_{t-1} + x (out = Vth1 S: the reset)."""
    return (v if tau == 1 else v / tau) - out + x


def neuron_step(x, v, out, vth, qmin: int, qmax: int, tau: float = 1.0, firing: str = "round"):
    """One step as a pure function: (x, state=(v, out)) -> (S_t, state=(v_t, out_t = Vth1 S_t))."""
    v = membrane_update(v, out, x, tau)
    s = int_codes(v / vth, qmin, qmax, firing)[0]
    return s, (v, vth * s)


@torch.no_grad()
def neuron_trace(x: torch.Tensor, vth, bits, T: int, tau: float = 1.0, firing: str = "round",
                 signed: bool = False):
    """Membrane potentials and spike counts of T steps: returns (v, S), each shaped [T, *x.shape].

    ``vth`` and ``bits`` are numbers or per-step sequences of length >= T.  The amplitude of the
    old neuron does not enter v or S (the reset subtracts Vth1 S).
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


class _Steps:
    """The step loop on reused scratch buffers (no allocation per step, no bool tensors: the masks
    are 0/1 in x's dtype, several times faster than bool in elementwise arithmetic on a CPU).

    After ``advance(t)`` and ``fire(...)``: ``v`` = v_t, ``u`` = u_t, ``s`` = S_t, ``inside`` = m_t
    and, if asked for, ``a`` = c_t.  ``reset(vth)`` then computes out_t = Vth1 S_t, which the next
    ``advance`` subtracts.  ``take(name, replace)`` hands a buffer over (to become an accumulator)
    and, if more steps follow, puts a fresh one in its place, so the first step needs no copy.
    """

    def __init__(self, x: torch.Tensor, tau: float, firing: str):
        self.x, self.tau, self.firing = x, tau, firing
        self.v = None  # v_0 = x: no copy; a buffer from step 1 on
        self.u = self._new()
        self.a = self._new()  # R(u_t), then c_t, then (t >= 1) out_t
        self.s = self._new()
        self.inside = self._new()
        self.out = None

    def _new(self) -> torch.Tensor:
        return torch.empty_like(self.x, memory_format=torch.contiguous_format)

    def take(self, name: str, replace: bool = True) -> torch.Tensor:
        buf = getattr(self, name)
        setattr(self, name, self._new() if replace else None)
        return buf

    def advance(self, t: int) -> None:
        """v_t = v_{t-1} / tau - out_{t-1} + x (the operations of membrane_update, in its order)."""
        x = self.x
        if t == 0:
            self.v = x
            return
        if t == 1:
            self.v = self._new()
            if self.tau != 1:
                torch.div(x, self.tau, out=self.v).sub_(self.out)
            else:
                torch.sub(x, self.out, out=self.v)
        else:
            if self.tau != 1:
                self.v.div_(self.tau)
            self.v.sub_(self.out)
        self.v.add_(x)

    def fire(self, vth: torch.Tensor, qmin: int, qmax: int, need_clip: bool) -> None:
        """S_t, m_t (and c_t) of int_codes(v_t / vth, qmin, qmax, firing)."""
        u, a, s = self.u, self.a, self.s
        torch.div(self.v, vth, out=u)
        if self.firing == "round" and qmin >= 0:
            torch.add(u, 0.5, out=a).floor_()
        elif self.firing == "round":  # sign(u) floor(|u| + 0.5) (the sign of a zero aside)
            torch.abs(u, out=a).add_(0.5).floor_().copysign_(u)
        elif self.firing == "floor":
            torch.floor(u, out=a)
        else:  # any other int_codes mode, from int_codes itself
            q, inside, clip = int_codes(u, qmin, qmax, self.firing)
            s.copy_(q)
            self.inside.copy_(inside)
            if need_clip:
                a.copy_(clip)
            return
        torch.clamp(a, qmin, qmax, out=s)
        torch.eq(a, s, out=self.inside)
        if need_clip:
            torch.sub(a, s, out=a).sign_()

    def reset(self, vth: torch.Tensor, fresh: bool = False) -> torch.Tensor:
        """out_t = Vth1 S_t (in a fresh tensor, or in ``a``)."""
        self.out = torch.mul(self.s, vth) if fresh else torch.mul(self.s, vth, out=self.a)
        return self.out


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.dot(a.reshape(-1), b.reshape(-1))


def _scaled_product(a: torch.Tensor, b: torch.Tensor, c: float) -> torch.Tensor:
    """0 + c a b, as torch.addcmul computes it (the + 0 turns -0 into +0)."""
    return torch.zeros_like(a, memory_format=torch.contiguous_format).addcmul_(a, b, value=c)


class _SqueezedNeuron(torch.autograd.Function):
    """r = (1/T) sum_t A_p(t) S_t (module docstring), with the spike count as a second output.

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
        if fused.covers(x, shared, amp, firing, T):  # the same steps in one compiled pass
            r, n_inside, d_vth, n_clip, count_ = fused.neuron_steps(
                x, float(vth[0]), *ranges[0], tau, T, firing,
                (sums and need_x, sums and need_vth, sums and need_bits))
            nonzero = torch.tensor(float(count_ if count else 0), dtype=torch.float64,
                                   device=x.device)
            ctx.mark_non_differentiable(nonzero)
            ctx.consts = (T, ranges, tau, firing, gscales, factors, shared, need, bits.shape)
            ctx.save_for_backward(vth, alpha, n_inside, d_vth, n_clip, r if need_T else None)
            return r, nonzero
        st = _Steps(x, tau, firing)
        nonzero = torch.zeros((), dtype=torch.float64, device=x.device)
        total = n_inside = d_vth = n_clip = None
        for t in range(T):
            p = 0 if shared else t
            more = t < T - 1
            st.advance(t)
            st.fire(vth[p], *ranges[p], sums and need_bits)
            if count:
                nonzero += torch.count_nonzero(st.s)
            if sums and need_bits:  # sum_t c_t
                n_clip = st.take("a", more) if t == 0 else n_clip.add_(st.a)
            if sums and need_vth:  # sum_t (S_t - u_t m_t), or with an amplitude sum_t u_t m_t
                if amp:
                    st.u.mul_(st.inside)
                else:
                    torch.addcmul(st.s, st.u, st.inside, value=-1, out=st.u)
                d_vth = st.take("u", more) if t == 0 else d_vth.add_(st.u)
            if sums and need_x:  # sum_t m_t
                n_inside = st.take("inside", more) if t == 0 else n_inside.add_(st.inside)
            if not amp:  # sum_t Vth1 S_t; out_t is also the next step's reset
                out = st.reset(vth[p], fresh=(t == 0))
                total = out if t == 0 else total.add_(out)
                continue
            if more:
                st.reset(vth[p])
            if shared:  # sum_t S_t
                total = st.take("s", more) if t == 0 else total.add_(st.s)
            else:  # sum_t alpha_t S_t
                total = torch.mul(st.s, alpha[0]) if t == 0 else \
                    total.add_(torch.mul(st.s, alpha[p], out=st.u))
        if amp and shared:
            r = torch.mul(total, alpha[0]).div_(T)
            keep = total if (need_alpha or need_T) else None
        else:
            r = total.div_(T)
            keep = r if (shared and need_T) else None
        ctx.mark_non_differentiable(nonzero)
        ctx.consts = (T, ranges, tau, firing, gscales, factors, shared, need, bits.shape)
        if shared:
            ctx.save_for_backward(vth, alpha, n_inside, d_vth, n_clip, keep)
        else:
            ctx.save_for_backward(vth, alpha, x if any(need) else None)
        return r, nonzero

    @staticmethod
    def save_sums(ctx, vth, alpha, bits, n_inside, d_vth, n_clip, keep, T, gscales, factors):
        """Store the shared path's state for ``backward`` after a forward pass computed elsewhere
        (the benchmarks' torch.compile prototype): the four per-element sums of ``forward``, with
        keep = r (or sum_t S_t with an amplitude)."""
        need = [bool(n) for n in ctx.needs_input_grad[:5]]
        ctx.consts = (T, None, None, None, gscales, factors, True, need, bits.shape)
        ctx.save_for_backward(vth, alpha, n_inside, d_vth, n_clip, keep)

    @staticmethod
    def backward(ctx, grad, _grad_nonzero):
        T, ranges, tau, firing, gscales, factors, shared, need, bits_shape = ctx.consts
        if shared:
            grads = _backward_shared(ctx, grad, T, gscales, factors, need)
        else:
            grads = _backward_recompute(ctx, grad, T, ranges, tau, firing, gscales, factors, need)
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
        else:  # 0 + (1/T) G n_inside; a zero tensor, not a broadcast 0-d one, keeps the vector path
            grad_x = _scaled_product(grad, n_inside, 1.0 / T)
    return grad_x, grad_vth, grad_alpha, grad_bits, grad_T


def _backward_recompute(ctx, grad, T, ranges, tau, firing, gscales, factors, need):
    """One slot per step: run the T steps again (forward's arithmetic, so the same spikes) and
    reduce each step against G."""
    vth, alpha, x = ctx.saved_tensors
    need_x, need_vth, need_alpha, need_bits, need_T = need
    amp = alpha is not None
    vth = vth.detach()
    A = alpha.detach() if amp else vth
    dev, dt = grad.device, grad.dtype
    g = torch.tensor(gscales, dtype=dt, device=dev) / T
    gf = grad.contiguous().view(-1)
    st = _Steps(x.detach(), tau, firing)
    n_inside = None
    dv, db, ds = [], [], []
    for t in range(T):
        st.advance(t)
        st.fire(vth[t], *ranges[t], need_bits)
        if need_bits:
            db.append(_dot(gf, st.a))
        if need_alpha or need_T:
            ds.append(_dot(gf, st.s))
        if need_vth:
            if amp:
                st.u.mul_(st.inside)
            else:
                torch.addcmul(st.s, st.u, st.inside, value=-1, out=st.u)
            dv.append(_dot(gf, st.u))
        if need_x:  # sum_t (A_t / Vth1_t) m_t
            if amp:
                st.inside.mul_(A[t] / vth[t])
            n_inside = st.take("inside", t < T - 1) if t == 0 else n_inside.add_(st.inside)
        if t < T - 1:
            st.reset(vth[t])
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
                 per_step: bool = False, amplitude: bool = False):
        if firing not in FIRING_MODES:
            raise ValueError(f"firing must be one of {FIRING_MODES}, got {firing!r}")
        if tau < 1:
            raise ValueError(f"tau must be >= 1, got {tau}")
        T_bound = T + 1 if T_bound is None else T_bound
        super().__init__(bits, bits_bound, learnable_bits, signed, slots=T_bound if per_step else 1)
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
