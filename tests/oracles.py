"""Independent test oracles: the neuron's recurrence written again, on purpose, apart from
adabit_lite.neuron (whose ``neuron_step`` is the one definition the package trains with).

Each oracle is written from the equations of book/method.md#method-neuron in a different way from
the package (numpy in float64, or one LSQ quantizer call per step with autograd doing the
backward pass), so that a test comparing the two checks the definition against the book rather
than against a copy of itself.  Nothing in the package imports this file.
"""

from __future__ import annotations

import numpy as np
import torch

from adabit_lite.neuron import SpikingNeuron
from adabit_lite.quant import bit_grad_factor, grad_scale, int_codes, lsq_quantize, qrange
from adabit_lite.temporal import TemporalNeuron


def neuron_codes(x, step: float, b: int, T: int) -> np.ndarray:
    """Oracle.  Codes S_t, shape (T,) + x.shape, of the refined neuron in numpy float64 (tau = 1,
    round firing, unsigned b bits):

        v_0 = x,                        S_0 = clip(floor(v_0 / s + 1/2), 0, 2^b - 1)
        v_t = v_{t-1} - s S_{t-1} + x,  S_t = clip(floor(v_t / s + 1/2), 0, 2^b - 1)
    """
    x = np.asarray(x, dtype=float)
    out = np.empty((T,) + x.shape, dtype=float)
    v = x.copy()
    for t in range(T):
        if t > 0:
            v = v - step * out[t - 1] + x
        out[t] = np.clip(np.floor(v / step + 0.5), 0, 2 ** b - 1)
    return out


def lsq_neuron(x: torch.Tensor, n: SpikingNeuron) -> torch.Tensor:
    """Oracle.  The squeezed neuron as T LSQ quantizer calls: v_t = (v_{t-1}/tau - out_{t-1})
    detached + x, out_t = lsq_quantize(v_t) = Vth1 S_t, r = (sum_t out_t) / T_ste (no amplitude)."""
    T = int(n.T)
    v = out = torch.zeros_like(x)
    total = 0
    for t in range(T):
        p = t if n.per_step else 0
        v = (v / n.tau - out).detach() + x
        out = lsq_quantize(v, n.step[p:p + 1], n.bits[p](), n.signed, mode=n.firing)
        total = total + out
    return total / n.T()


class _Code(torch.autograd.Function):
    """S = int_codes(u)[0] with the STE: dS/du = m (inside), dS/dB = c_B * clip."""

    @staticmethod
    def forward(ctx, u, bits, qmin, qmax, firing, factor):
        q, inside, clip = int_codes(u, qmin, qmax, firing)
        ctx.save_for_backward(inside.to(u.dtype), clip.to(u.dtype))
        ctx.factor = factor
        return q

    @staticmethod
    def backward(ctx, grad):
        inside, clip = ctx.saved_tensors
        return grad * inside, (grad * clip).sum() * ctx.factor, None, None, None, None


def _scaled(p, g):
    """p in value, g * dL/dp in gradient (LSQ's gradient scale)."""
    return p * g + (p - p * g).detach()


def ste_neuron(x: torch.Tensor, n: SpikingNeuron, firing: str | None = None) -> torch.Tensor:
    """Oracle.  The squeezed neuron with autograd through an STE code function:
    r = (1/T_ste) sum_t A_p * Code(v_t / Vth1_p), A = Vth1 or alpha, the gradient scale g on
    Vth1, alpha and Bs, the reset Vth1 S detached."""
    T, firing = int(n.T), firing or n.firing
    v = out = torch.zeros_like(x)
    total = 0
    for t in range(T):
        p = t if n.per_step else 0
        b = int(n.bits[p])
        qmin, qmax = qrange(b, n.signed)
        g = grad_scale(x.numel(), qmax)
        vth = _scaled(n.step[p], g)
        amp = _scaled(n.alpha[p], g) if n.amplitude else vth
        v = (v / n.tau - out).detach() + x
        s = _Code.apply(v / vth, _scaled(n.bits[p](), g), qmin, qmax, firing,
                        bit_grad_factor(b, qmax))
        out = n.step[p].detach() * s
        total = total + amp * s
    return total / n.T()


def lsq_time_neuron(n: TemporalNeuron, x: torch.Tensor) -> torch.Tensor:
    """Oracle.  The time-preserving neuron as one lsq_quantize call per step on
    v_t = (v_{t-1}/tau - out_{t-1}) detached + x_t: returns [T, ...] outputs Vth1 S_t."""
    outs, v, out = [], None, None
    for t in range(x.shape[0]):
        p = t if n.per_step else 0
        v = x[t] if t == 0 else (v / n.tau - out).detach() + x[t]
        out = lsq_quantize(v, n.step[p:p + 1], n.bits[p](), signed=n.signed, mode=n.firing)
        outs.append(out)
    return torch.stack(outs)
