"""The fused neuron's step loop compiled by torch.compile: a prototype kept out of the package.

The package's ``adabit_lite.neuron._SqueezedNeuron`` runs the T steps in its own compiled C pass
on a CPU (``adabit_lite.fused``) and eagerly on reused scratch buffers elsewhere.  Here the same
step loop is written as plain tensor expressions (the package's formulas) and handed to
torch.compile: inductor fuses the T unrolled steps into one loop that reads x once
and writes the four per-element sums, so the forward pass costs about one pass over memory whatever
T is.  The backward pass is the package's (``_SqueezedNeuron.backward`` on the sums stored with
``_SqueezedNeuron.save_sums``).  The kernel is specialised on (shape, T, range, firing): each new
combination compiles once (tens of seconds on a CPU), which is why this is an opt-in benchmark
column, not the package's default.

Covered: the shared-parameter neuron (``per_step=False``), unsigned range, no amplitude, no spike
counting; ``compiled_forward`` falls back to the package otherwise.  ``compiled_forward(neuron, x)``
is a drop-in for ``neuron(x)``; bench_compiled checks that they agree.
"""

from __future__ import annotations

import torch

from adabit_lite.neuron import SpikingNeuron, _SqueezedNeuron
from adabit_lite.quant import bit_grad_factor, grad_scale, qrange


def _steps(x, vth, T: int, qmin: float, qmax: float, tau: float, rounding: bool):
    v = out = x
    total = n_in = d_vth = n_clip = None
    for t in range(T):
        v = x if t == 0 else (v if tau == 1 else v / tau) - out + x
        u = v / vth
        r = torch.floor(u + 0.5) if rounding else torch.floor(u)
        s = r.clamp(qmin, qmax)
        inside = (r == s).to(x.dtype)
        out = vth * s
        d = s - u * inside
        c = torch.sign(r - s)
        if t == 0:
            total, n_in, d_vth, n_clip = out, inside, d, c
        else:
            total, n_in, d_vth, n_clip = total + out, n_in + inside, d_vth + d, n_clip + c
    return total, n_in, d_vth, n_clip


_compiled_steps = None


def compiled_steps():
    global _compiled_steps
    if _compiled_steps is None:
        _compiled_steps = torch.compile(_steps, dynamic=False, fullgraph=True)
    return _compiled_steps


class _CompiledSqueezedNeuron(_SqueezedNeuron):
    """The package's function with the forward loop compiled (same inputs, outputs, backward)."""

    @staticmethod
    def forward(ctx, x, vth, alpha, bits, T_hat, T, ranges, tau, firing, gscales, factors, count,
                grad=True):
        qmin, qmax = ranges[0]
        total, n_inside, d_vth, n_clip = compiled_steps()(x, vth[0], T, float(qmin), float(qmax),
                                                          float(tau), firing == "round")
        r = total / T
        nonzero = torch.zeros((), dtype=torch.float64, device=x.device)
        ctx.mark_non_differentiable(nonzero)
        _SqueezedNeuron.save_sums(ctx, vth, None, bits, n_inside, d_vth, n_clip, r, T, gscales,
                                  factors)
        return r, nonzero


def supported(neuron: SpikingNeuron) -> bool:
    return not (neuron.per_step or neuron.signed or neuron.track_rate or neuron.amplitude)


def compiled_forward(neuron: SpikingNeuron, x: torch.Tensor) -> torch.Tensor:
    """``neuron(x)`` through the torch.compile prototype (the package where not covered)."""
    if not supported(neuron):
        return neuron(x)
    T = int(neuron.T)
    if neuron.training:
        neuron.observe(x, 1)
    b = int(neuron.bits[0])
    qmin, qmax = qrange(b, False)
    return _CompiledSqueezedNeuron.apply(
        x, neuron.step[:1], None, neuron.bits[0].latent, neuron.T.latent, T, [(qmin, qmax)],
        neuron.tau, neuron.firing, [grad_scale(x.numel(), qmax)], [bit_grad_factor(b, qmax)],
        False)[0]
