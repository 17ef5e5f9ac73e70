"""A faster fused refined neuron: a prototype for adabit_lite/neuron.py, kept out of the package.

Same arithmetic as ``adabit_lite.neuron._SqueezedNeuron`` followed by ``total / self.T()`` (the
spikes are identical; gradients agree to float rounding), with four changes:

1. the 1/T of temporal squeezing is folded into the autograd function, so the autograd engine
   no longer runs ``DivBackward`` (which spends four full passes over the tensor on
   ``-grad * total / T**2`` for the T gradient): dL/dT_ste = -<dL/dr, r> / T is one ``torch.dot``;
2. no ``zeros_like`` accumulators: step 0 writes them, later steps add in place;
3. every per-step temporary lives in one of four scratch buffers reused across steps (no fresh
   allocation per step, hence no page faults on large CPU tensors);
4. the parameter gradients are reductions (``torch.dot``), not ``mul`` + ``sum``.

``compiled_forward`` (end of the file) is a second prototype: the same loop fused by torch.compile.

Only the shared-parameter neuron (``per_step=False``) with an unsigned range is covered; the
function falls back to the package otherwise.  ``fast_forward(neuron, x)`` is a drop-in for
``neuron(x)``; the benchmarks time both and check that they agree.
"""

from __future__ import annotations

import torch

from adabit_lite.neuron import SpikingNeuron
from adabit_lite.quant import bit_grad_factor, grad_scale, qrange


class _FastSqueezedNeuron(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, vth, bits, T_ste, T, qmin, qmax, tau, firing, gscale, factor):
        need_vth, need_bits, need_T = ctx.needs_input_grad[1:4]
        v = torch.empty_like(x)        # membrane potential v_t
        u = torch.empty_like(x)        # u_t = v_t / Vth1, then S_t - u_t inside_t
        a = torch.empty_like(x)        # r_t = round(u_t), then sign(r_t - S_t), then out_t
        s = torch.empty_like(x)        # S_t = clip(r_t, qmin, qmax)
        inside = torch.empty(x.shape, dtype=torch.bool, device=x.device)
        total = n_inside = d_vth = n_clip = None
        for t in range(T):
            if t == 0:
                v.copy_(x)
            else:                                           # v_t = v_{t-1} / tau - out_{t-1} + x
                if tau != 1:
                    v.div_(tau)
                v.sub_(a).add_(x)
            torch.div(v, vth, out=u)
            if firing == "round":
                torch.add(u, 0.5, out=a).floor_()
            else:
                torch.floor(u, out=a)
            torch.clamp(a, qmin, qmax, out=s)
            torch.eq(a, s, out=inside)
            if need_bits:
                torch.sub(a, s, out=a).sign_()
                n_clip = a.clone() if n_clip is None else n_clip.add_(a)
            torch.mul(s, vth, out=a)                        # out_t = Vth1 S_t
            total = a.clone() if total is None else total.add_(a)
            n_inside = inside.to(x.dtype) if n_inside is None else n_inside.add_(inside)
            if need_vth:
                u.mul_(inside)
                torch.sub(s, u, out=u)
                d_vth = u.clone() if d_vth is None else d_vth.add_(u)
        r = total.div_(T_ste)
        ctx.save_for_backward(vth, T_ste, n_inside, d_vth, n_clip, r if need_T else None)
        ctx.consts = (gscale, factor)
        return r

    @staticmethod
    def backward(ctx, grad):
        vth, T_ste, n_inside, d_vth, n_clip, r = ctx.saved_tensors
        gscale, factor = ctx.consts
        g = grad / T_ste                                    # dL/dtotal
        flat = g.reshape(-1)
        grad_x = grad_vth = grad_bits = grad_T = None
        if d_vth is not None:
            grad_vth = (torch.dot(flat, d_vth.reshape(-1)) * gscale).reshape(1)
        if n_clip is not None:
            grad_bits = (torch.dot(flat, n_clip.reshape(-1)) * gscale * factor * vth.detach()).reshape(1)
        if r is not None:
            grad_T = -torch.dot(grad.reshape(-1), r.reshape(-1)) / T_ste
        if ctx.needs_input_grad[0]:
            grad_x = g.mul_(n_inside)
        return grad_x, grad_vth, grad_bits, grad_T, None, None, None, None, None, None, None


def supported(neuron: SpikingNeuron) -> bool:
    return not neuron.per_step and not neuron.signed and not neuron.track_rate


def _run(function, neuron: SpikingNeuron, x: torch.Tensor) -> torch.Tensor:
    """``neuron(x)`` through the prototype autograd ``function`` (the package when not covered)."""
    if not supported(neuron):
        return neuron(x)
    T = int(neuron.T)
    if neuron.training:
        neuron.observe(x, 1)
    b = int(neuron.bits[0])
    qmin, qmax = qrange(b, False)
    return function.apply(
        x, neuron.step[:1], neuron.bits[0]().reshape(1), neuron.T(), T, qmin, qmax, neuron.tau,
        neuron.firing, grad_scale(x.numel(), qmax), bit_grad_factor(b, qmax))


def fast_forward(neuron: SpikingNeuron, x: torch.Tensor) -> torch.Tensor:
    """``neuron(x)`` through the eager prototype."""
    return _run(_FastSqueezedNeuron, neuron, x)


# ---------------------------------------------------------------------------------------------
# A second prototype: the same step loop as one fused kernel generated by torch.compile.
# Every step's arithmetic is written as plain tensor expressions (exactly the package's
# formulas); inductor fuses the T unrolled steps into one loop that reads x once and writes the
# four per-element sums, so the forward pass costs about one pass over memory whatever T is.
# The kernel is specialised on (shape, T, range, firing): each new combination compiles once
# (tens of seconds on a CPU), which is why this is an opt-in, not a default.

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


class _CompiledSqueezedNeuron(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, vth, bits, T_ste, T, qmin, qmax, tau, firing, gscale, factor):
        total, n_inside, d_vth, n_clip = compiled_steps()(x, vth, T, float(qmin), float(qmax),
                                                          float(tau), firing == "round")
        r = total / T_ste
        ctx.save_for_backward(vth, T_ste, n_inside, d_vth, n_clip, r)
        ctx.consts = (gscale, factor)
        return r

    backward = _FastSqueezedNeuron.backward


def compiled_forward(neuron: SpikingNeuron, x: torch.Tensor) -> torch.Tensor:
    """``neuron(x)`` through the torch.compile prototype."""
    return _run(_CompiledSqueezedNeuron, neuron, x)
