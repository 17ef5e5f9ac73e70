"""Projection of learned bit widths onto the target: a remedy for runs that miss their budget.

The bit loss pulls every layer's latent B_hat with a force proportional to the layer's share of
the weighted mean (its weights for Bw, its input features for Bs and T).  In a network of many
layers the small ones hardly move in a short training, and the mean stops short of its target.
After ``project_at`` epochs the training loop replaces, per kind (Bw, Bs, T), the layers' bits by
the integers closest to what they learned whose weighted mean lands on the target:

    minimise  sum_l (B_l - clip(B_hat_l, low_l, high_l))^2
    over      integers B_l in [low_l, high_l]
    such that |sum_l n_l B_l / sum_l n_l - target| <= tol            (n_l: the layer's share)

(when no allocation is that close, the closest mean is taken), then freezes them; the steps of the
layers whose bits changed are renewed at once and training goes on at the new bits.  The learned
allocation survives as the order of the B_hat: a layer that kept more bits keeps more.

The search is exact up to a grid: dynamic programming over the layers on the weighted sum, kept on
a grid of ``resolution`` (a fraction of one bit of the mean), keeping the cheapest allocation in
each cell.
"""

from __future__ import annotations

import math

#: a projected mean lands within this of its target whenever whole bits allow it
PROJECTION_TOL = 0.05


def project(latents, shares, bounds, target: float, tol: float = PROJECTION_TOL,
            resolution: float = 1e-3) -> list[int]:
    """Integer bits, one per layer, nearest (squared distance) to ``latents`` with their
    ``shares``-weighted mean within ``tol`` of ``target`` (or as close to it as the ``bounds``,
    a (low, high) pair per layer, allow)."""
    if not (len(latents) == len(shares) == len(bounds)) or not latents:
        raise ValueError("project needs one latent, share and bound pair per layer")
    if any(s <= 0 for s in shares):
        raise ValueError("shares must be positive")
    total = float(sum(shares))
    cell = resolution * total  # grid cell of the weighted sum
    # state: grid cell of the weighted sum -> (cost, exact weighted sum, choices)
    states = {0: (0.0, 0.0, ())}
    for b_hat, n, (low, high) in zip(latents, shares, bounds):
        b_hat = min(max(float(b_hat), low), high)
        nxt: dict[int, tuple] = {}
        for cost, wsum, picks in states.values():
            for b in range(int(low), int(high) + 1):
                s = wsum + n * b
                c = cost + (b - b_hat) ** 2
                key = int(math.floor(s / cell))
                if key not in nxt or c < nxt[key][0]:
                    nxt[key] = (c, s, picks + (b,))
        states = nxt
    finals = [(abs(s / total - target), c, picks) for c, s, picks in states.values()]
    inside = [f for f in finals if f[0] <= tol + 1e-12]
    best = min(inside, key=lambda f: (f[1], f[0])) if inside else min(finals)
    return list(best[2])


def weighted_mean(bits, shares) -> float:
    return sum(b * s for b, s in zip(bits, shares)) / sum(shares)


def project_model(model, target: tuple[float, float, float], tol: float = PROJECTION_TOL) -> dict:
    """Project the learned Bw, Bs and T of ``model``'s learned layers onto ``target`` (W, S, T)
    and freeze them (see the module docstring); the weighted means are those of ``loss.bit_stats``
    (Bw by weight count, Bs and T by input features, known after one forward pass).  Kinds whose
    bits are not learned are left as they are.  Returns the projected per-layer bits by kind."""
    from .layers import quant_layers

    layers = [m for _, m in quant_layers(model)]
    if any(len(m.neuron.bits) != 1 for m in layers):
        raise ValueError("projection needs one Bs per layer (per_step false)")
    weights = [m.weight.numel() for m in layers]
    features = [math.prod(m.in_shape) for m in layers]
    kinds = {"W": ([m.wq.bits[0] for m in layers], weights),
             "S": ([m.neuron.bits[0] for m in layers], features),
             "T": ([m.neuron.T for m in layers], features)}
    done = {}
    for (kind, (ints, shares)), goal in zip(kinds.items(), target):
        if not any(b.learnable for b in ints):
            continue
        bits = project([b.latent.item() for b in ints], shares, [(b.low, b.high) for b in ints],
                       goal, tol)
        for b, value in zip(ints, bits):
            b.set_(value)
            b.freeze_()
        done[kind] = bits
    return done


def freeze_all(model) -> None:
    """Freeze every learned bit width and T at its current value (a resumed projected run)."""
    from .layers import quant_layers

    for _, m in quant_layers(model):
        for b in (*m.wq.bits, *m.neuron.bits, m.neuron.T):
            if b.learnable:
                b.freeze_()
