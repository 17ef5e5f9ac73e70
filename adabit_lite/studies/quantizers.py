"""Chapter 4, learnable quantizers: the computations the chapter shows (book/method.md#method-quantizers,
#method-bit-gradient, #method-algorithm-1).

The gradient formulas below are written out again from the method, apart from ``quant.py`` and
``neuron.py`` on purpose, so that the chapter can check the package's autograd against them; the
neuron's potentials they are evaluated at are the package's own (``neuron.neuron_trace``).
With u = x / s and (qmin, qmax) the integer range of B bits (weights signed, spikes unsigned):

    d x_q / d s = round(u) - u        where qmin <= round(u) <= qmax      (LSQ, STE through round)
                = qmax or qmin        where clipped above or below
    d x_q / d B = +- s c_B            where clipped above (+) or below (-, weights only), else 0
    c_B = (qmax + 1) ln 2 for B > 1,  qmax ln 2 at B = 1
    both times LSQ's gradient scale g = 1 / sqrt(N qmax), N = elements quantized.

Binary weights (B = 1): x_q = s sign(u), sign(0) = -1; "inside" is |u| <= 1, where
d x_q / d s = sign(u) - u.  Renewal (Algorithm 1): c_k = k R / K, R = max - min, step c_k / qmax,
score mean |Q(x) - x|^p.  Everything else here (the chapter model, its short warm-up, the hooks that
collect real layer inputs, the bit-drop and reference-code experiments) only calls the package;
so do the chapter's tables, the sentences that state its findings, and its figures, at the end.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from .. import data as data_mod
from .. import quant
from ..layers import clamp_, quant_layers
from ..loss import BitTarget, bit_loss, bit_stats
from ..neuron import SpikingNeuron, neuron_trace
from ..train import TrainConfig, build
from . import json_rows

LN2 = math.log(2.0)
#: the bit drops the chapter evaluates (b -> b')
DROPS = ((4, 3), (4, 2), (4, 1), (3, 2), (3, 1), (2, 1))


# ============================================================================ formulas (numpy)
def int_range(bits: int, signed: bool) -> tuple[int, int]:
    """(qmin, qmax): signed qmax = max(2^(B-1) - 1, 1), qmin = -qmax; unsigned 0 .. 2^B - 1."""
    if signed:
        qmax = max(2 ** (bits - 1) - 1, 1)
        return -qmax, qmax
    return 0, 2 ** bits - 1


def round_codes(u: np.ndarray, signed: bool) -> np.ndarray:
    """round(u) before clipping: half away from zero (signed), floor(u + 1/2) (unsigned)."""
    return np.sign(u) * np.floor(np.abs(u) + 0.5) if signed else np.floor(u + 0.5)


def lsq_scale(numel: int, bits: int, signed: bool) -> float:
    """g = 1 / sqrt(N qmax)."""
    return 1.0 / math.sqrt(numel * int_range(bits, signed)[1])


def bit_factor(bits: int, signed: bool) -> float:
    """c_B = (qmax + 1) ln 2 for B > 1, qmax ln 2 at B = 1."""
    qmax = int_range(bits, signed)[1]
    return (qmax if bits == 1 else qmax + 1) * LN2


def step_grad(x, step: float, bits: int, signed: bool) -> np.ndarray:
    """d x_q / d s per element, before g:  round(u) - u inside, qmax / qmin where clipped;
    binary weights: sign(u) - u for |u| <= 1, sign(u) outside."""
    u = np.asarray(x, dtype=np.float64) / step
    qmin, qmax = int_range(bits, signed)
    if signed and bits == 1:
        sgn = np.where(u > 0, 1.0, -1.0)
        return np.where(np.abs(u) <= 1, sgn - u, sgn)
    r = round_codes(u, signed)
    return np.where(r > qmax, float(qmax), np.where(r < qmin, float(qmin), r - u))


def clip_side(x, step: float, bits: int, signed: bool) -> np.ndarray:
    """+1 where x is clipped at the top, -1 where clipped at the bottom (signed only), else 0."""
    u = np.asarray(x, dtype=np.float64) / step
    qmin, qmax = int_range(bits, signed)
    if signed and bits == 1:
        return (u > 1).astype(float) - (u < -1).astype(float)
    r = round_codes(u, signed)
    above = (r > qmax).astype(float)
    return above - (r < qmin).astype(float) if signed else above


def bit_grad(x, step: float, bits: int, signed: bool) -> np.ndarray:
    """d x_q / d B per element, before g:  s c_B times clip_side (spikes: the upper tail only,
    since their lower clip level 0 does not move with B)."""
    return clip_side(x, step, bits, signed) * step * bit_factor(bits, signed)


def quantize(x: torch.Tensor, step: float, bits: int, signed: bool) -> torch.Tensor:
    """s * clip(round(x / s), qmin, qmax) (s * sign(x) for binary weights), in torch."""
    qmin, qmax = int_range(bits, signed)
    u = x / step
    if signed and bits == 1:
        return torch.where(u > 0, 1.0, -1.0).to(x.dtype) * step
    r = torch.sign(u) * torch.floor(u.abs() + 0.5) if signed else torch.floor(u + 0.5)
    return r.clamp(qmin, qmax) * step


def quant_errors(x: torch.Tensor, step: float, bits: int, signed: bool, p: float = 2.4) -> tuple[float, float]:
    """(mean (Q(x) - x)^2, mean |Q(x) - x|^p): elementwise in x's dtype, summed in float64."""
    e = (quantize(x.detach(), float(step), bits, signed) - x.detach()).abs()
    n = e.numel()
    return float(e.square().double().sum()) / n, float(e.pow(p).double().sum()) / n


def lsq_init_step(x: torch.Tensor, bits: int, signed: bool) -> float:
    """LSQ's initial step 2 mean|x| / sqrt(qmax)."""
    return float(2 * x.detach().double().abs().mean() / math.sqrt(int_range(bits, signed)[1]))


def range_ratio_step(old_step: float, old_bits: int, new_bits: int, signed: bool = True) -> float:
    """The reference code's conv-weight renewal (book/definitions.md#def-renewal-range; kept here only as a documented
    flaw): step_new = step_old (qmax' - qmin') / (qmax - qmin), the ratio of the new to the old
    integer range.  A bit drop shrinks the step and so shrinks the clip level s qmax twice over."""
    lo0, hi0 = int_range(old_bits, signed)
    lo1, hi1 = int_range(new_bits, signed)
    return old_step * (hi1 - lo1) / (hi0 - lo0)


def lp_scores(x: torch.Tensor, bits: int, signed: bool, K: int = 100, p: float = 2.4):
    """Algorithm 1 written out: c_k = k R / K (k = 1..K), R = max(x) - min(x), step_k = c_k / qmax,
    score_k = mean |Q(x; step_k) - x|^p (elementwise in x's dtype, summed in float64).
    Returns (c, score) as numpy arrays."""
    x = x.detach().flatten()
    qmax = int_range(bits, signed)[1]
    R = float(x.max() - x.min())
    c = R * np.arange(1, K + 1) / K
    scores = np.array([float((quantize(x, ck / qmax, bits, signed) - x).abs().pow(p).double().sum())
                       for ck in c]) / x.numel()
    return c, scores


# ============================================================================ the package's autograd
def package_elementwise_grads(x, step: float, bits: int, signed: bool):
    """Per-element d x_q/d s and d x_q/d B from ``quant.lsq_quantize``'s backward pass (one
    backward per element, float64), divided by its gradient scale g = 1/sqrt(N qmax)."""
    xt = torch.as_tensor(np.asarray(x), dtype=torch.float64)
    s = torch.tensor([float(step)], dtype=torch.float64, requires_grad=True)
    b = torch.tensor(float(bits), dtype=torch.float64, requires_grad=True)
    xq = quant.lsq_quantize(xt, s, b, signed)
    g = lsq_scale(xt.numel(), bits, signed)
    ds, db = np.empty(len(xt)), np.empty(len(xt))
    for i in range(len(xt)):
        gs, gb = torch.autograd.grad(xq[i], (s, b), retain_graph=True)
        ds[i], db[i] = float(gs.sum()) / g, float(gb) / g
    return ds, db


def neuron_potentials(x: torch.Tensor, vth: float, bits: int, T: int) -> list[torch.Tensor]:
    """v_t of the package's neuron (``neuron.neuron_trace``: tau = 1, round firing, unsigned),
    v_0 = x, v_t = v_{t-1} - Vth1 S_{t-1} + x, S_t = clip(floor(v_t / Vth1 + 1/2), 0, 2^Bs - 1),
    in x's dtype: the potentials at which the formulas below are evaluated."""
    return list(neuron_trace(x, vth, bits, T)[0])


def neuron_grads_formula(x: torch.Tensor, vth: float, bits: int, T: int, grad_r: torch.Tensor):
    """(dL/dVth1, dL/dBs) of r = (1/T) sum_t Vth1 S_t from the per-step formulas:
    g sum_j (dL/dr_j / T) sum_t f(v_t,j), f = step_grad or bit_grad, g = 1/sqrt(x.numel() qmax)."""
    G = grad_r.detach().double().cpu().numpy().ravel() / T
    fs = fb = 0.0
    for v in neuron_potentials(x.detach(), vth, bits, T):
        vv = v.cpu().numpy().ravel()
        fs = fs + step_grad(vv, vth, bits, False)
        fb = fb + bit_grad(vv, vth, bits, False)
    g = lsq_scale(x.numel(), bits, False)
    return g * float(G @ fs), g * float(G @ fb)


def weight_grads_formula(w: torch.Tensor, step: float, bits: int, grad_wq: torch.Tensor):
    """(dL/dS_q, dL/dBw) = g sum_i dL/dw_q,i (step_grad(w_i), bit_grad(w_i)), g = 1/sqrt(N qmax)."""
    G = grad_wq.detach().double().cpu().numpy().ravel()
    ww = w.detach().cpu().numpy().ravel()
    g = lsq_scale(w.numel(), bits, True)
    return g * float(G @ step_grad(ww, step, bits, True)), g * float(G @ bit_grad(ww, step, bits, True))


def neuron_clip_fraction(x: torch.Tensor, vth: float, bits: int, T: int) -> float:
    """Fraction of the T * numel spike codes that hit the top code (clipped) in the written-out neuron."""
    qmax = int_range(bits, False)[1]
    n = sum(int((torch.floor(v / vth + 0.5) > qmax).sum()) for v in neuron_potentials(x, vth, bits, T))
    return n / (x.numel() * T)


# ============================================================================ the chapter model
def chapter_data(seed: int = 0):
    """The default data set of the book (``TrainConfig().dataset``), split with ``seed``."""
    cfg = TrainConfig(split_seed=seed).validated()
    return data_mod.make_dataset(cfg.dataset, seed=cfg.split_seed, **cfg.dataset_options())


def fresh_model(bundle, seed: int = 0):
    """The default chapter model (``train.build`` with ``TrainConfig()``, init 4/4/2, bits learnable)."""
    cfg = TrainConfig(seed=seed).validated()
    spec = {"num_classes": bundle.num_classes, "in_channels": bundle.in_channels}
    return build(cfg, spec), cfg


def batches(n: int, batch_size: int, count: int, seed: int) -> list[torch.Tensor]:
    """``count`` index batches from seeded shuffles of range(n)."""
    g = torch.Generator().manual_seed(seed)
    out = []
    while len(out) < count:
        out += list(torch.randperm(n, generator=g).split(batch_size))
        out = [b for b in out if len(b) == batch_size]
    return out[:count]


def _steps(model) -> dict:
    """{(layer, "weight" | "spike"): step} of the learned layers."""
    out = {}
    for name, layer in learned_layers(model):
        out[(name, "weight")] = float(layer.wq.step.detach()[0])
        out[(name, "spike")] = float(layer.neuron.step.detach()[0])
    return out


def warmup(bundle, steps: int = 150, batch_size: int = 32, lr: float = 0.05, seed: int = 0):
    """A short warm-up: ``steps`` SGD steps (momentum 0.9, weight decay 5e-4 on the weights, learning
    rate decayed linearly to 0) on the task loss only, with every bit width and T held at 4/4/2 (bit
    and T latents are not optimised), so that the layer inputs are those of a working 4-bit network.
    Steps are initialised on the first batch (LSQ) and learned at the same learning rate.  Runs on
    one thread, so the result does not depend on the machine's thread count.
    Returns (model, config, info) with info = accuracy (test %, eval mode), init_steps, steps."""
    model, cfg = fresh_model(bundle, seed)
    x, y = bundle.train.tensors
    step_params, frozen = [], set()
    for m in model.modules():
        if isinstance(m, quant.StepQuantizer):
            step_params.append(m.step)
            frozen |= {id(b.latent) for b in m.bits}
        if isinstance(m, SpikingNeuron):
            frozen.add(id(m.T.latent))
    taken = {id(p) for p in step_params} | frozen
    weights = [p for p in model.parameters() if p.requires_grad and id(p) not in taken]
    opt = torch.optim.SGD([{"params": weights, "weight_decay": 5e-4}, {"params": step_params}],
                          lr=lr, momentum=0.9)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 1.0 - i / steps)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    init_steps = None
    try:
        model.train()
        for idx in batches(len(y), batch_size, steps, seed):
            loss = F.cross_entropy(model(x[idx]), y[idx])
            if init_steps is None:
                init_steps = _steps(model)  # LSQ init from this first batch
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            clamp_(model)
        acc = test_accuracy(model, bundle)
    finally:
        torch.set_num_threads(threads)
    return model, cfg, {"accuracy": acc, "init_steps": init_steps, "steps": _steps(model)}


@torch.no_grad()
def test_accuracy(model, bundle) -> float:
    model.eval()
    x, y = bundle.test.tensors
    correct = sum(int((model(xb).argmax(1) == yb).sum()) for xb, yb in zip(x.split(500), y.split(500)))
    return 100.0 * correct / len(y)


def learned_layers(model) -> list[tuple[str, object]]:
    """(label, layer) of the learned quantized layers (the stem excluded).  The label is the
    module's own name when it is not a number (``fc``), else ``convN`` counting the stem as conv1."""
    out, n_conv = [], 0
    for name, layer in quant_layers(model, include_stem=True):
        n_conv += layer.kind == "conv"
        if layer.stem:
            continue
        last = name.rsplit(".", 1)[-1]
        out.append((f"conv{n_conv}" if last.isdigit() and layer.kind == "conv" else
                    (name if last.isdigit() else last), layer))
    return out


@torch.no_grad()
def layer_inputs(model, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The input of every learned layer's spiking neuron on images ``x`` (eval mode), collected
    with forward pre-hooks."""
    model.eval()
    got, handles = {}, []
    for name, layer in learned_layers(model):
        handles.append(layer.neuron.register_forward_pre_hook(
            lambda mod, inp, name=name: got.__setitem__(name, inp[0].detach().clone())))
    try:
        model(x)
    finally:
        for h in handles:
            h.remove()
    return got


def set_bits(model, w_bits: int | None = None, s_bits: int | None = None) -> None:
    """Set every learned layer's rounded Bw and/or Bs (their latents) without touching the steps."""
    for _, layer in learned_layers(model):
        if w_bits is not None:
            layer.wq.bits[0].set_(w_bits)
        if s_bits is not None:
            for b in layer.neuron.bits:
                b.set_(s_bits)


# ============================================================================ gradients on real data
def _run_with_hooks(model, xb, yb, loss_fn=None):
    """Forward + backward of the task loss; returns per layer the neuron input x, its output r and
    dL/dr, the weight w and dL/dw_q (captured with forward hooks and retain_grad)."""
    store, handles = {}, []
    for name, layer in learned_layers(model):
        def hook_n(mod, inp, out, name=name):
            out.retain_grad()
            store.setdefault(name, {}).update(x=inp[0].detach(), r=out)

        def hook_w(mod, inp, out, name=name):
            out.retain_grad()
            store.setdefault(name, {}).update(w=inp[0].detach(), wq=out)
        handles += [layer.neuron.register_forward_hook(hook_n), layer.wq.register_forward_hook(hook_w)]
    try:
        logits = model(xb)
        loss = F.cross_entropy(logits, yb) if loss_fn is None else loss_fn(logits, yb)
        model.zero_grad(set_to_none=True)
        loss.backward()
    finally:
        for h in handles:
            h.remove()
    return store


def rel_diff(a: float, f: float) -> float:
    """|a - f| / |f| of an autograd value a against its formula f; where f = 0: 0 if a = 0, else 1."""
    return float(a != 0) if f == 0 else abs(a - f) / max(abs(f), 1e-30)


def gradient_check(model, xb, yb, bits_list=(1, 2, 4)) -> pd.DataFrame:
    """Autograd of the task loss against the written-out formulas on real data, per learned layer,
    for weights and spikes at each B in ``bits_list`` (every layer set to B, steps kept): dL/dS_q,
    dL/dVth1 (columns ds) and dL/dBw, dL/dBs (columns dB), with their ``rel_diff``."""
    rows = []
    for B in bits_list:
        m = copy.deepcopy(model)
        set_bits(m, B, B)
        m.eval()  # BN running statistics; no quantizer bookkeeping
        store = _run_with_hooks(m, xb, yb)
        for name, layer in learned_layers(m):
            st = store[name]
            T = int(layer.neuron.T)
            vth, sq = float(layer.neuron.step.detach()[0]), float(layer.wq.step.detach()[0])
            f_vth, f_bs = neuron_grads_formula(st["x"], vth, B, T, st["r"].grad)
            f_sq, f_bw = weight_grads_formula(st["w"], sq, B, st["wq"].grad)
            for kind, a_s, f_s, a_b, f_b, clip in (
                ("weight", layer.wq.step.grad[0], f_sq, layer.wq.bits[0].latent.grad, f_bw,
                 float(np.mean(clip_side(st["w"].numpy(), sq, B, True) != 0))),
                ("spike", layer.neuron.step.grad[0], f_vth, layer.neuron.bits[0].latent.grad, f_bs,
                 neuron_clip_fraction(st["x"], vth, B, T))):
                a_b = float(a_b) if a_b is not None else 0.0
                rows.append({"layer": name, "quantizer": kind, "B": B, "clipped": clip,
                             "dL/ds autograd": float(a_s), "dL/ds formula": f_s,
                             "dL/dB autograd": a_b, "dL/dB formula": f_b,
                             "rel diff ds": rel_diff(float(a_s), f_s), "rel diff dB": rel_diff(a_b, f_b)})
    return pd.DataFrame(rows)


def bit_gradient_balance(model, bundle, cfg, n_batches: int = 4, batch_size: int = 64, seed: int = 0,
                         initialise: bool = False, bits: int | None = None,
                         steps: dict | None = None) -> list[dict]:
    """Per learned layer and quantizer, over ``n_batches`` training batches (train mode, as in
    training): the fraction of clipped elements, the task loss's gradient on the bit latent, and
    the bit loss's gradient (autograd of ``loss.bit_loss`` and the formula lambda * share, share =
    the layer's weight count (Bw) or input feature count (Bs) over the learned layers' total).
    ``initialise``: the model is fresh; its first batch initialises the steps (LSQ) first.
    ``bits``: every learned Bw and Bs set to this value, with ``steps`` ({(layer, kind): step}) if given.
    Also the LSQ balance R = (|dL/ds| / s) / (||dL/dw|| / ||w||), with g and without it."""
    m = copy.deepcopy(model)
    m.train()
    for q in m.modules():  # measure only: no renewal when the bits are set below
        if isinstance(q, quant.StepQuantizer):
            q.renew_enabled.fill_(False)
    x, y = bundle.train.tensors
    idxs = batches(len(y), batch_size, n_batches + 1, seed)
    if initialise:
        with torch.no_grad():
            m(x[idxs[0]])
    idxs = idxs[1:]
    if bits is not None:
        set_bits(m, bits, bits)
    if steps is not None:
        with torch.no_grad():
            for name, layer in learned_layers(m):
                layer.wq.step.fill_(steps[(name, "weight")])
                layer.neuron.step.fill_(steps[(name, "spike")])
    target = BitTarget.parse(cfg.target, lam_w=cfg.lam_w, lam_s=cfg.lam_s, lam_T=cfg.lam_T)
    acc: dict = {}
    for idx in idxs:
        store = _run_with_hooks(m, x[idx], y[idx])
        for name, layer in learned_layers(m):
            st = store[name]
            T = int(layer.neuron.T)
            wnorm = float(layer.weight.detach().norm() / layer.weight.grad.norm())
            for kind, q, clip, N in (
                ("weight", layer.wq, float(np.mean(clip_side(
                    st["w"].numpy(), float(layer.wq.step.detach()[0]), int(layer.wq.bits[0]), True) != 0)),
                 st["w"].numel()),
                ("spike", layer.neuron, neuron_clip_fraction(
                    st["x"], float(layer.neuron.step.detach()[0]), int(layer.neuron.bits[0]), T),
                 st["x"].numel())):
                B, s = int(q.bits[0]), float(q.step.detach()[0])
                g = lsq_scale(N, B, kind == "weight")
                a = acc.setdefault((name, kind), {"clip": [], "dB": [], "R": [], "N": N, "B": B, "g": g})
                a["clip"].append(clip)
                a["dB"].append(float(q.bits[0].latent.grad))
                a["R"].append(abs(float(q.step.grad[0])) / s * wnorm)
    m.zero_grad(set_to_none=True)
    bit_loss(bit_stats(m), target).backward()
    layers = learned_layers(m)
    n_w = sum(layer.weight.numel() for _, layer in layers)
    n_x = sum(math.prod(layer.in_shape) for _, layer in layers)
    rows = []
    for name, layer in layers:
        for kind, q, lam, share in (("weight", layer.wq, cfg.lam_w, layer.weight.numel() / n_w),
                                    ("spike", layer.neuron, cfg.lam_s, math.prod(layer.in_shape) / n_x)):
            a = acc[(name, kind)]
            dB = np.array(a["dB"])
            rows.append({"layer": name, "quantizer": kind, "B": a["B"], "N": a["N"], "g": a["g"],
                         "clipped": float(np.mean(a["clip"])),
                         "task dL/dB mean": float(dB.mean()), "task |dL/dB| mean": float(np.abs(dB).mean()),
                         "bit-loss dL/dB": float(q.bits[0].latent.grad),
                         "lambda * share": lam * share,
                         "LSQ balance R": float(np.mean(a["R"])),
                         "R without g": float(np.mean(a["R"])) / a["g"]})
    return rows


# ============================================================================ renewal experiments
def neuron_output(x: torch.Tensor, vth: float, bits: int, T: int) -> torch.Tensor:
    """r = (1/T) sum_t Vth1 S_t from the package's SpikingNeuron (eval mode, bits and T fixed)."""
    n = SpikingNeuron(bits=bits, T=T, learnable_bits=False, learnable_T=False)
    n.eval()
    with torch.no_grad():
        n.step.fill_(vth)
        return n(x)


def neuron_mse(x: torch.Tensor, vth: float, bits: int, T: int) -> float:
    """mean (r - x)^2 of the neuron's squeezed output (summed in float64)."""
    return float((neuron_output(x, vth, bits, T) - x).square().double().sum()) / x.numel()


def grid_table(inputs: dict, weights: dict, bits_range=(1, 2, 3, 4), K: int = 100, p: float = 2.4):
    """For every learned layer, quantizer and B: the score curve of Algorithm 1 (study code), the
    step the package's ``quant.grid_search_step`` picks on the same tensor, and the LSQ init step
    (and the grid step over it).  Returns (table, curves) with curves[(layer, kind, B)] = (c, score)."""
    rows, curves = [], {}
    for name in inputs:
        for kind, t, signed in (("spike", inputs[name], False), ("weight", weights[name], True)):
            for B in bits_range:
                c, sc = lp_scores(t, B, signed, K, p)
                qmax = int_range(B, signed)[1]
                k = int(np.argmin(sc))
                pkg_step, pkg_c = quant.grid_search_step(t, B, signed, K=K, p=p, sync=False)
                pkg_score = float((quantize(t.double(), float(pkg_step), B, signed) - t.double())
                                  .abs().pow(p).mean())
                curves[(name, kind, B)] = (c, sc)
                rows.append({"layer": name, "quantizer": kind, "B": B, "R": c[-1], "k*": k + 1,
                             "c*": c[k], "grid step": c[k] / qmax, "package step": float(pkg_step),
                             "package score / min score": pkg_score / sc[k],
                             "LSQ init step": lsq_init_step(t, B, signed),
                             "grid clip fraction": float(np.mean(clip_side(t.numpy(), c[k] / qmax, B, signed) != 0))})
    grid = pd.DataFrame(rows)
    grid["grid / LSQ init"] = grid["grid step"] / grid["LSQ init step"]
    return grid, curves


def grid_steps(grid: pd.DataFrame) -> dict:
    """{(layer, kind, B): grid step} of a ``grid_table``."""
    return {(r["layer"], r["quantizer"], r["B"]): r["grid step"] for r in grid.to_dict("records")}


def drop_table(inputs: dict, weights: dict, trained: dict, grid: dict, init_bits: int = 4,
               drops=DROPS, T_list=(1, 2), p: float = 2.4) -> pd.DataFrame:
    """Errors after each bit drop b -> b', per learned layer and quantizer.  The old step at b is
    the trained step when b is the trained width, else the grid-search step for b bits (the step a
    renewal at b would have left).  Steps compared at b' bits: stale (the old step kept), renewed
    (grid search at b'), LSQ init formula at b', and for weights the reference code's range-ratio
    rescale.  Errors: MSE and mean |e|^p of Q(x), and for spikes the neuron's MSE at each T; then
    each step's MSE over the renewed one ("stale / renewed", ...; NaN where a step is not tried)."""
    rows = []
    for name in inputs:
        for kind, t, signed in (("spike", inputs[name], False), ("weight", weights[name], True)):
            for b, bn in drops:
                old = trained[(name, kind)] if b == init_bits else grid[(name, kind, b)]
                steps = {"stale": old, "renewed": grid[(name, kind, bn)],
                         "LSQ init": lsq_init_step(t, bn, signed)}
                if signed:
                    steps["range ratio"] = range_ratio_step(old, b, bn, True)
                before = quant_errors(t, old, b, signed, p)
                row = {"layer": name, "quantizer": kind, "b": b, "b'": bn,
                       "MSE before (b bits)": before[0]}
                for label, s in steps.items():
                    mse, lp = quant_errors(t, s, bn, signed, p)
                    row[f"step {label}"] = s
                    row[f"MSE {label}"] = mse
                    row[f"score {label}"] = lp
                    if not signed:
                        for T in T_list:
                            row[f"neuron T={T} MSE {label}"] = neuron_mse(t, s, bn, T)
                rows.append(row)
    df = pd.DataFrame(rows)
    df["drop"] = df["b"].astype(str) + "->" + df["b'"].astype(str)
    for col in ("stale", "LSQ init", "range ratio"):
        df[f"{col} / renewed"] = df[f"MSE {col}"] / df["MSE renewed"]
    sp = df["quantizer"] == "spike"
    for T in T_list:
        df.loc[sp, f"neuron T={T} stale / renewed"] = (df.loc[sp, f"neuron T={T} MSE stale"]
                                                       / df.loc[sp, f"neuron T={T} MSE renewed"])
    return df


def renewal_sequence(x: torch.Tensor, trained_step: float, sequence, running_extrema: bool,
                     init_bits: int = 4, T: int = 1, K: int = 100, p: float = 2.4) -> list[dict]:
    """Run the package's SpikingNeuron (train mode, renewal enabled) through the bit widths of
    ``sequence`` on the same tensor x, starting from the trained step at ``init_bits``: every
    change of B renews Vth1 by grid search, with the reference code's running extrema or without.
    Returns per stage B, the step, its clip level s qmax and the errors."""
    n = SpikingNeuron(bits=init_bits, T=T, learnable_T=False,
                      policy=quant.RenewalPolicy(K=K, p=p, running_extrema=running_extrema))
    n.train()
    with torch.no_grad():
        n(x)  # initialises the step (LSQ), then replace it by the trained one
        n.step.fill_(trained_step)
        n.renew_enabled.fill_(True)
    rows = []
    for B in sequence:
        n.bits[0].set_(B)
        with torch.no_grad():
            n(x)
        s = float(n.step.detach()[0])
        mse, lp = quant_errors(x, s, B, False, p)
        rows.append({"B": B, "step": s, "clip level": s * int_range(B, False)[1], "MSE": mse,
                     "score": lp})
    return rows


def weight_sequence(w: torch.Tensor, trained_step: float, sequence, init_bits: int = 4,
                    K: int = 100, p: float = 2.4) -> list[dict]:
    """Weights through the bit widths of ``sequence``: the reference code's range-ratio rescale
    applied at each change, against the default grid search on the same weights."""
    rows, s_ratio, b_old = [], trained_step, init_bits
    for B in sequence:
        s_ratio = range_ratio_step(s_ratio, b_old, B, True)
        s_grid = float(quant.grid_search_step(w, B, True, K=K, p=p, sync=False)[0])
        for label, s in (("range ratio", s_ratio), ("grid search", s_grid)):
            mse, lp = quant_errors(w, s, B, True, p)
            rows.append({"B": B, "renewal": label, "step": s,
                         "clip level": s * int_range(B, True)[1], "MSE": mse, "score": lp})
        b_old = B
    return rows


# ============================================================================ the chapter's tables
#: file names of the chapter's figures and tables start with this
PREFIX = "04_quantizers_"
KINDS = ("weight", "spike")
BITS = (1, 2, 3, 4)
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728")  # one per bit width, or per layer
#: u = x / s of the elementwise check, offset by 0.0123 so that no point is an exact rounding tie
U_GRID = {"weight": np.arange(-17.5, 17.5, 0.05) + 0.0123, "spike": np.arange(0.0, 17.5, 0.05) + 0.0123}
#: negative u of the spike quantizer, where the package has a lower-tail bit gradient
U_NEGATIVE = np.arange(-3.0, 0.0, 0.05) + 0.0123
#: the columns each table shows (the CSVs and records keep them all)
SCALE_COLUMNS = ["layer", "quantizer", "B", "N", "qmax", "g", "LSQ balance R", "R without g", "clipped",
                 "task dL/dB mean", "bit-loss dL/dB", "lambda * share"]
DROP_COLUMNS = ["layer", "drop", "MSE before (b bits)", "MSE stale", "MSE renewed", "MSE LSQ init", "stale / renewed",
                "LSQ init / renewed", "score stale", "score renewed"]
SPIKE_DROP_COLUMNS = DROP_COLUMNS + ["neuron T=1 MSE stale", "neuron T=1 MSE renewed", "neuron T=2 MSE stale",
                                     "neuron T=2 MSE renewed", "neuron T=2 MSE LSQ init", "neuron T=2 stale / renewed"]
WEIGHT_DROP_COLUMNS = DROP_COLUMNS + ["MSE range ratio", "range ratio / renewed"]
SWEEP_COLUMNS = ["steps", "B", "layer", "quantizer", "clipped", "task dL/dB mean", "lambda * share", "task / bit loss"]
#: the renewal sequences after the trained 4 bits: a steady fall and the flip-flop of a 2/2/1 target
SEQUENCES = ((3, 2, 1), (2, 1, 2, 1))


def records(df: pd.DataFrame) -> list[dict]:
    """The rows of ``df`` as JSON-ready dicts for ``results.record`` (``studies.json_rows``)."""
    return json_rows(df)


def span(values, fmt: str = ".1f") -> str:
    """"min to max" of ``values``, each formatted with ``fmt``."""
    return f"{min(values):{fmt}} to {max(values):{fmt}}"


def _layers(df: pd.DataFrame) -> list[str]:
    """The layers of a table, in their first order."""
    return list(dict.fromkeys(df["layer"]))


def elementwise_table(u_grid: dict = U_GRID, bits_list=BITS):
    """Per quantizer (weight: signed, spike: unsigned) and B at s = 1, on the points u of ``u_grid``:
    the largest |autograd - formula| of d x_q/ds and d x_q/dB (``package_elementwise_grads`` against
    ``step_grad``, ``bit_grad``), the clipped points, whether d x_q/ds stays in [-1/2, 1/2] inside the
    range (None for binary weights) and whether d x_q/dB is non-zero exactly where clipped.
    Returns (table, curves) with curves[(kind, B)] = (d x_q/ds, d x_q/dB) of the formulas."""
    rows, curves = [], {}
    for kind, u in u_grid.items():
        signed = kind == "weight"
        for B in bits_list:
            ds_pkg, db_pkg = package_elementwise_grads(u, 1.0, B, signed)
            ds_f, db_f = step_grad(u, 1.0, B, signed), bit_grad(u, 1.0, B, signed)
            clipped = clip_side(u, 1.0, B, signed) != 0
            curves[(kind, B)] = (ds_f, db_f)
            inside = None if signed and B == 1 else bool(np.all(np.abs(ds_f[~clipped]) <= 0.5 + 1e-12))
            rows.append({"quantizer": kind, "B": B, "qmin": int_range(B, signed)[0], "qmax": int_range(B, signed)[1],
                         "points": len(u), "clipped points": int(clipped.sum()),
                         "max |ds autograd - formula|": float(np.abs(ds_pkg - ds_f).max()),
                         "max |dB autograd - formula|": float(np.abs(db_pkg - db_f).max()),
                         "inside in [-1/2, 1/2]": inside,
                         "bit gradient only where clipped": bool(np.all((db_f != 0) == clipped))})
    return pd.DataFrame(rows), curves


def negative_spike_check(u=U_NEGATIVE, bits: int = 2) -> dict:
    """The spike quantizer (s = 1, ``bits``) at negative u: the points where the package's d x_q/dB
    differs from the method's (which is 0 there), the largest such u and the package's value there.
    Keys as the chapter records them."""
    _, db_pkg = package_elementwise_grads(u, 1.0, bits, False)
    mismatch = np.abs(db_pkg - bit_grad(u, 1.0, bits, False)) > 1e-12
    return {"negative_spike_points": len(u), "negative_spike_bit_mismatch": int(mismatch.sum()),
            "negative_spike_mismatch_max_u": float(u[mismatch].max()) if mismatch.any() else None,
            "negative_spike_package_value": float(db_pkg[mismatch][0]) if mismatch.any() else 0.0}


def layer_tensors(model, bundle, n_images: int, seed: int):
    """``n_images`` training images (one batch of a shuffle seeded with ``seed``), their labels, the
    input of every learned layer's neuron on them (``layer_inputs``) and every learned layer's weights.
    Returns (x, y, inputs, weights)."""
    x, y = bundle.train.tensors
    idx = batches(len(y), n_images, 1, seed)[0]
    weights = {name: layer.weight.detach().clone() for name, layer in learned_layers(model)}
    return x[idx], y[idx], layer_inputs(model, x[idx]), weights


def min_potential_ratio(inputs: dict, steps: dict, bits: int, T: int) -> float:
    """The smallest v_t / Vth1 of the written-out neuron (``neuron_potentials``) over the layers,
    elements and T steps, with Vth1 = steps[(layer, "spike")]."""
    return min(float(min(v.min() for v in neuron_potentials(inputs[n], steps[(n, "spike")], bits, T))
                     / steps[(n, "spike")]) for n in inputs)


def layer_table(inputs: dict, weights: dict, warm: dict) -> pd.DataFrame:
    """Per learned layer: its neuron's input (shape, size, min, mean, max, share of exact zeros), its
    weight count, and Vth1 and S_q at LSQ init and after the warm-up (``warmup``'s info)."""
    rows = []
    for name, x in inputs.items():
        rows.append({"layer": name, "input shape": tuple(x.shape), "input elements": x.numel(),
                     "input min": float(x.min()), "input mean": float(x.mean()), "input max": float(x.max()),
                     "zero fraction": float((x == 0).float().mean()), "weights": weights[name].numel(),
                     "Vth1 init": warm["init_steps"][(name, "spike")], "Vth1 trained": warm["steps"][(name, "spike")],
                     "S_q init": warm["init_steps"][(name, "weight")], "S_q trained": warm["steps"][(name, "weight")]})
    return pd.DataFrame(rows)


def step_changes(lay: pd.DataFrame):
    """|trained / init - 1| in % of S_q and of Vth1, per layer of a ``layer_table``: (S_q, Vth1)."""
    return ((lay["S_q trained"] / lay["S_q init"] - 1).abs() * 100,
            (lay["Vth1 trained"] / lay["Vth1 init"] - 1).abs() * 100)


def scale_at_init(bundle, cfg, n_batches: int, model_seed: int, batch_seed: int) -> pd.DataFrame:
    """``bit_gradient_balance`` of a fresh model (``fresh_model`` with ``model_seed``) whose first
    batch initialises the steps, over ``n_batches`` batches of ``cfg.batch_size`` drawn with
    ``batch_seed``; with each quantizer's qmax."""
    fresh, _ = fresh_model(bundle, model_seed)
    df = pd.DataFrame(bit_gradient_balance(fresh, bundle, cfg, n_batches=n_batches, batch_size=cfg.batch_size,
                                           seed=batch_seed, initialise=True))
    df["qmax"] = [int_range(B, k == "weight")[1] for B, k in zip(df["B"], df["quantizer"])]
    return df


def bit_gradient_sweep(model, bundle, cfg, trained: dict, grid_step: dict, n_batches: int, seed: int,
                       bits_list=BITS) -> pd.DataFrame:
    """``bit_gradient_balance`` of ``model`` with every learned Bw and Bs at each B of ``bits_list``,
    once with the ``trained`` steps ("stale") and once with the grid steps for B ("renewed"), and
    the task loss's pull over the bit loss's: -dL_task/dB / (lambda * share)."""
    rows = []
    for B in bits_list:
        for label in ("stale", "renewed"):
            steps = {k: (trained[k] if label == "stale" else grid_step[(k[0], k[1], B)]) for k in trained}
            for r in bit_gradient_balance(model, bundle, cfg, n_batches=n_batches, batch_size=cfg.batch_size,
                                          seed=seed, bits=B, steps=steps):
                rows.append({"steps": label, **r})
    sweep = pd.DataFrame(rows)
    sweep["task / bit loss"] = -sweep["task dL/dB mean"] / sweep["lambda * share"]
    return sweep


def running_extrema_table(inputs: dict, trained: dict, grid_step: dict, sequences=SEQUENCES, K: int = 100,
                          p: float = 2.4) -> pd.DataFrame:
    """Per layer and renewal sequence after the trained 4 bits: ``renewal_sequence`` with running
    extrema against the default renewal (the grid step for each B): steps, clip levels s qmax, MSE
    and their ratio (running extrema / default)."""
    rows = []
    for name, x in inputs.items():
        for seq in sequences:
            label = "4->" + "->".join(map(str, seq))
            for stage, r in enumerate(renewal_sequence(x, trained[(name, "spike")], seq, running_extrema=True,
                                                       init_bits=4, K=K, p=p)):
                default = grid_step[(name, "spike", r["B"])]
                mse_d, _ = quant_errors(x, default, r["B"], False, p)
                rows.append({"layer": name, "sequence": label, "stage": stage + 1, "B": r["B"],
                             "step running extrema": r["step"], "step default": default,
                             "clip level running extrema": r["clip level"],
                             "clip level default": default * int_range(r["B"], False)[1],
                             "MSE running extrema": r["MSE"], "MSE default": mse_d, "MSE ratio": r["MSE"] / mse_d})
    return pd.DataFrame(rows)


def range_ratio_table(weights: dict, trained: dict, sequence=(3, 2, 1), K: int = 100, p: float = 2.4) -> pd.DataFrame:
    """Per layer and B of ``sequence`` after the trained 4 bits: ``weight_sequence`` side by side, the
    range-ratio rescale against the grid search (step, clip level, MSE), and their MSE ratio."""
    rows = [{"layer": name, **r} for name, w in weights.items()
            for r in weight_sequence(w, trained[(name, "weight")], sequence, init_bits=4, K=K, p=p)]
    ratio = pd.DataFrame(rows).pivot_table(index=["layer", "B"], columns="renewal", values=["step", "clip level", "MSE"],
                                           sort=False)
    ratio.columns = [f"{a} {b}" for a, b in ratio.columns]
    ratio = ratio.reset_index()
    ratio["MSE ratio"] = ratio["MSE range ratio"] / ratio["MSE grid search"]
    return ratio


# ============================================================================ the chapter's findings
def elementwise_summary(elem: pd.DataFrame) -> str:
    """The step-gradient check of an ``elementwise_table`` in a few lines: cases, points, whether
    autograd equals the formula (1e-12) and stays in [-1/2, 1/2] inside, and the clip levels qmax."""
    lines = [f"{len(elem)} cases (weights and spikes, B = 1..4), {int(elem['points'].sum())} points",
             f"step gradient: autograd equals the formula at every point (1e-12): "
             f"{bool((elem['max |ds autograd - formula|'] < 1e-12).all())}",
             f"inside the range the step gradient lies in [-1/2, 1/2]: "
             f"{bool(elem['inside in [-1/2, 1/2]'].dropna().all())}"]
    lines += [f"{kind}s: clip levels qmax for B = 1..4: {elem[elem['quantizer'] == kind]['qmax'].tolist()}"
              for kind in KINDS]
    return "\n".join(lines)


def bit_gradient_summary(elem: pd.DataFrame, neg: dict, bits_list=BITS) -> str:
    """The bit-gradient check of an ``elementwise_table`` and a ``negative_spike_check`` in a few
    lines, with c_B for weights and spikes."""
    below = neg["negative_spike_mismatch_max_u"] is None or neg["negative_spike_mismatch_max_u"] < -0.5
    return "\n".join([
        f"bit gradient: autograd equals the formula at every point (1e-12): "
        f"{bool((elem['max |dB autograd - formula|'] < 1e-12).all())}",
        f"bit gradient non-zero exactly at the clipped points: {bool(elem['bit gradient only where clipped'].all())}",
        f"c_B (weights): {[round(bit_factor(B, True), 4) for B in bits_list]}; "
        f"(spikes): {[round(bit_factor(B, False), 4) for B in bits_list]}",
        f"spikes, u in [-3, 0), B = 2: the package returns a bit gradient at {neg['negative_spike_bit_mismatch']} of "
        f"{neg['negative_spike_points']} points (all with u < -1/2: {below}), "
        f"value {neg['negative_spike_package_value']:.4f} = -c_B; the method has none there"])


def warmup_sentence(lay: pd.DataFrame, accuracy: float, steps: int, T: int, min_ratio: float) -> str:
    """What the warm-up left: test accuracy, the layer inputs' sign and zeros, the smallest v_t / Vth1
    against -1/2, and how far S_q and Vth1 moved from LSQ's initial values."""
    sq_change, vth_change = step_changes(lay)
    return (f"After {steps} steps the network classifies {accuracy:.1f} % of the 1,000 test images "
            f"correctly. Every layer input is non-negative (smallest value {lay['input min'].min():g}; "
            f"{lay['zero fraction'].min() * 100:.0f} to {lay['zero fraction'].max() * 100:.0f} % exact zeros), and the "
            f"smallest membrane potential of the neuron over its {T} steps is {min_ratio:.3f} $V_{{th1}}$, above "
            f"$-1/2$: the package's extra lower-tail bit gradient of section 2 is never reached here. During the "
            f"warm-up the weight steps moved by {sq_change.min():.0f} to {sq_change.max():.0f} % from their LSQ "
            f"initial values and the spike steps $V_{{th1}}$ by {vth_change.min():.1f} to {vth_change.max():.1f} %, "
            f"at the same learning rate; section 4 shows why.")


def gradient_check_summary(check: pd.DataFrame, min_ratio: float) -> str:
    """The real-layer check of a ``gradient_check`` in a few lines: autograd within 1e-4 of the
    formulas, dL/dB zero exactly where nothing clips, and the smallest v_t / Vth1 above -1/2."""
    return "\n".join([
        f"{len(check)} cases (3 layers x weights/spikes x B = 1, 2, 4)",
        f"step gradients, autograd vs formula, relative difference below 1e-4: {bool((check['rel diff ds'] < 1e-4).all())}",
        f"bit gradients, autograd vs formula, relative difference below 1e-4: {bool((check['rel diff dB'] < 1e-4).all())}",
        f"bit gradient zero exactly where nothing is clipped: "
        f"{bool(((check['dL/dB autograd'] == 0) == (check['clipped'] == 0)).all())}",
        f"smallest membrane potential above -Vth1/2: {min_ratio > -0.5}"])


def _by_kind(df: pd.DataFrame):
    """(weight rows, spike rows) of a table."""
    return df[df["quantizer"] == "weight"], df[df["quantizer"] == "spike"]


def scale_sentence(init_bal: pd.DataFrame) -> str:
    """What g does at initialisation (a ``scale_at_init``): the LSQ balance R of the weight and
    spike steps with and without g, and the task loss's bit gradient against the bit loss's."""
    w_rows, s_rows = _by_kind(init_bal)
    return (
        f"With $g$ the weight steps get $R$ = {w_rows['LSQ balance R'].min():.2g} to {w_rows['LSQ balance R'].max():.2g}, "
        f"near LSQ's aim (without $g$: {w_rows['R without g'].min():.0f} to {w_rows['R without g'].max():.0f}). "
        f"The spike steps get $R$ = {s_rows['LSQ balance R'].min():.1e} to {s_rows['LSQ balance R'].max():.1e}: "
        f"because their $N$ counts every element of the batch ({s_rows['N'].min():,} to {s_rows['N'].max():,}), "
        f"$g$ = {s_rows['g'].min():.1e} to {s_rows['g'].max():.1e}, and even without $g$ the ratio is only "
        f"{s_rows['R without g'].min():.2g} to {s_rows['R without g'].max():.2g}. At one shared learning rate "
        f"$V_{{th1}}$ therefore hardly moves from its LSQ initial value, which is what the warm-up above shows.\n\n"
        f"Nothing is clipped at initialisation: the largest clipped fraction over all layers and both quantizers is "
        f"{init_bal['clipped'].max():.1g}. The LSQ initial step puts the weights' clip level at "
        f"$7.5 \\cdot 2\\,\\mathrm{{mean}}|w|/\\sqrt{{7}} \\approx 5.7\\,\\mathrm{{mean}}|w|$, beyond every weight of PyTorch's "
        f"uniform initialisation (at most $2\\,\\mathrm{{mean}}|w|$), and the spikes' at "
        f"$15.5 \\cdot 2\\,\\mathrm{{mean}}|x|/\\sqrt{{15}} = 8\\,\\mathrm{{mean}}|x|$. So the task loss's gradient on every bit latent "
        f"is exactly {init_bal['task |dL/dB| mean'].max():g}, and the bit widths start to fall under the bit loss alone, "
        f"each at the rate $\\lambda \\cdot$ share = {init_bal['lambda * share'].min():.4f} to "
        f"{init_bal['lambda * share'].max():.4f} per unit of learning rate. The task loss can push back only once "
        f"enough values clip (section 7).")


def scale_summary(init_bal: pd.DataFrame) -> str:
    """A ``scale_at_init`` row by row (N, qmax, g, lambda * share, clipped), then whether g = 1/sqrt(N
    qmax), the task loss's bit gradient is exactly 0 and the bit loss's equals lambda * share (1e-6)."""
    lines = [f"{r['layer']:>13} {r['quantizer']:>6}: N = {r['N']:>7,}  qmax = {r['qmax']:>2}  g = {r['g']:.3e}  "
             f"lambda*share = {r['lambda * share']:.5f}  clipped = {r['clipped']:.1g}"
             for r in init_bal.to_dict("records")]
    return "\n".join(lines + [
        f"g = 1/sqrt(N qmax) in every row: "
        f"{bool(np.allclose(init_bal['g'], 1 / np.sqrt(init_bal['N'] * init_bal['qmax']), rtol=1e-12))}",
        f"task-loss bit gradient at initialisation exactly zero: {bool((init_bal['task |dL/dB| mean'] == 0).all())}",
        f"bit-loss gradient equals lambda * share (1e-6): "
        f"{bool(np.allclose(init_bal['bit-loss dL/dB'], init_bal['lambda * share'], rtol=1e-6))}"])


def grid_summary(grid: pd.DataFrame, K: int, p: float) -> str:
    """The grid-search check of a ``grid_table``: the package's choice has the smallest of the K
    scores (1e-4) and the chosen clipping range is c* = k* R / K."""
    return "\n".join([
        f"{len(grid)} searches (3 layers x weights/spikes x B = 1..4), K = {K}, p = {p:g}",
        f"the package's choice has the smallest score of the study's K scores (1e-4): "
        f"{bool((grid['package score / min score'] < 1 + 1e-4).all())}",
        f"chosen step = c* / qmax on the grid c_k = k R / K: "
        f"{bool(np.allclose(grid['c*'], grid['k*'] * grid['R'] / K, rtol=1e-9))}"])


def grid_sentence(grid: pd.DataFrame) -> str:
    """What the grid search chose (a ``grid_table``): the spikes' c* at 4 and 1 bits, the clipped
    share at 1 bit, and the grid step over LSQ's initial formula for spikes and weights."""
    gw_, gs_ = _by_kind(grid)
    return (
        f"Every score curve has one clear minimum, and fewer bits choose a narrower clipping range: for the spikes "
        f"$c^*$ falls from {gs_[gs_['B'] == 4]['c*'].min():.2f}-{gs_[gs_['B'] == 4]['c*'].max():.2f} at 4 bits to "
        f"{gs_[gs_['B'] == 1]['c*'].min():.2f}-{gs_[gs_['B'] == 1]['c*'].max():.2f} at 1 bit "
        f"({gs_[gs_['B'] == 1]['grid clip fraction'].min() * 100:.0f}-{gs_[gs_['B'] == 1]['grid clip fraction'].max() * 100:.0f} % "
        f"of the values clipped), while the step itself grows. LSQ's initial formula lands near the grid search for "
        f"spikes (grid / LSQ init = {gs_['grid / LSQ init'].min():.2f} to {gs_['grid / LSQ init'].max():.2f}) but not for "
        f"weights ({gw_['grid / LSQ init'].min():.2f} to {gw_['grid / LSQ init'].max():.2f}): at $B_w$ = 1 and 2 the signed "
        f"range has $q_{{\\max}} = 1$ and the formula gives $2\\,\\mathrm{{mean}}|w|$, about twice the searched step.")


def _spike_drop(drops: pd.DataFrame, drop: str) -> pd.DataFrame:
    """The spike rows of one bit drop ("4->1") of a ``drop_table``."""
    return drops[(drops["quantizer"] == "spike") & (drops["drop"] == drop)]


def drop_summary(drops: pd.DataFrame) -> str:
    """The bit-drop check of a ``drop_table``: the neuron at T = 1 equals the quantizer, and
    renewal lowers the MSE for spike drops of 2+ bits (quantizer and neuron at T = 2) and for
    weight drops from the trained 4 bits."""
    sp, big = drops["quantizer"] == "spike", drops["b"] - drops["b'"] >= 2
    return "\n".join([
        f"{len(drops)} cases: 3 layers x weights/spikes x drops {', '.join(dict.fromkeys(drops['drop']))}",
        f"neuron at T = 1 equals the quantizer (MSE, 1e-5 relative): "
        f"{bool(np.allclose(drops.loc[sp, 'neuron T=1 MSE stale'], drops.loc[sp, 'MSE stale'], rtol=1e-5))}",
        f"spikes, drops of 2 or more bits: renewal lowers the MSE in every case: "
        f"{bool((drops[sp & big]['stale / renewed'] > 1).all())}",
        f"spikes, drops of 2 or more bits, neuron at T = 2: renewal lowers the MSE in every case: "
        f"{bool((drops[sp & big]['neuron T=2 stale / renewed'] > 1).all())}",
        f"weights, drops from the trained 4-bit step: renewal lowers the MSE in every case: "
        f"{bool((drops[~sp & (drops['b'] == 4)]['stale / renewed'] > 1).all())}"])


def drop_sentence(drops: pd.DataFrame, p: float) -> str:
    """What renewal does after a bit drop (a ``drop_table``): stale / renewed MSE of the spikes after
    4 -> 1 (quantizer, neuron at T = 2) and 4 -> 3 (with the score ratio), LSQ's formula against the
    renewal, and the weights' stale / renewed (LSQ's formula at 1 bit)."""
    d43, d41 = _spike_drop(drops, "4->3"), _spike_drop(drops, "4->1")
    dw, sp = drops[drops["quantizer"] == "weight"], drops[drops["quantizer"] == "spike"]
    dw1 = dw[dw["b'"] == 1]
    return (
        f"For the spikes, renewal matters in proportion to the drop. After 4 -> 1 the stale step gives "
        f"{span(d41['stale / renewed'])} times the renewed error (through the neuron at T = 2: "
        f"{span(d41['neuron T=2 stale / renewed'])} times). After 4 -> 3 it hardly matters: stale / renewed = "
        f"{span(d43['stale / renewed'], '.2f')} in mean squared error (the renewed step minimises the $p$ = {p:g} score, "
        f"not the squared error: score ratio {span(d43['score stale'] / d43['score renewed'], '.2f')}), because the "
        f"trained 4-bit step times $q_{{\\max}} = 7$ already lies near the 3-bit optimum. LSQ's initial formula, which "
        f"needs no search, gives {span(sp['LSQ init / renewed'], '.2f')} times the renewed error for the spikes. For the "
        f"weights the stale error is {span(dw['stale / renewed'])} times the renewed one; the LSQ formula is poor at "
        f"1 bit ({span(dw1['LSQ init / renewed'])} times).")


def crossings(sweep: pd.DataFrame, label: str) -> str:
    """Where the task loss outweighs the bit loss (task / bit loss > 1) in a ``bit_gradient_sweep``
    with ``label`` steps: "the <layer> <kind>s at B = ..." joined by "; ", or "no layer"."""
    piv = sweep.pivot_table(index=["layer", "quantizer", "steps"], columns="B", values="task / bit loss", sort=False)
    out = [f"the {layer} {kind}s at B = {', '.join(str(B) for B in sorted(piv.columns) if r[B] > 1)}"
           for (layer, kind, steps), r in piv.iterrows() if steps == label and (r > 1).any()]
    return "; ".join(out) if out else "no layer"


def balance_sentence(sweep: pd.DataFrame, init_bal: pd.DataFrame, lam: float = 0.04) -> str:
    """The task loss's pull on B against the bit loss's as the bits fall (a ``bit_gradient_sweep``):
    clipping and the largest ratio at B = 4, the ``crossings``, the largest ratio in the inner layers,
    and, where that stays below 1, the last layer's share (``scale_at_init``'s lambda * share / lam)."""
    last = _layers(sweep)[-1]
    inner = sweep[sweep["layer"] != last]
    share_last = init_bal[init_bal["layer"] == last].set_index("quantizer")["lambda * share"] / lam
    b4 = sweep[sweep["B"] == 4]
    text = (f"At $B = 4$ at most {b4['clipped'].max() * 100:.2g} % of any tensor clips and the task "
            f"loss's pull is at most {b4['task / bit loss'].abs().max():.2g} of the bit loss's. Lower down, "
            f"with renewed steps the task loss outweighs the bit loss for {crossings(sweep, 'renewed')}; with the 4-bit "
            f"steps kept, for {crossings(sweep, 'stale')}. In the other layers the ratio never exceeds "
            f"{inner['task / bit loss'].max():.2g}. ")
    if inner["task / bit loss"].max() < 1:
        text += (f"So, early in training, the bit loss alone decides how far the bits of the inner layers fall, and "
                 f"only the last layer, which holds {share_last['weight'] * 100:.1f} % of the weights and "
                 f"{share_last['spike'] * 100:.1f} % of the input features, can hold its bits up through the task loss. "
                 f"Since the bit loss pulls each layer in proportion to its share, layers with many weights or features "
                 f"are pushed hardest. Both match what the paper reports for the learned allocation (the last layer keeps "
                 f"more bits, large layers get fewer) and what the small-scale prototype described in the book's "
                 f"definitions found (the fc layer keeping 2-3 bits at target 1/1/1). ")
    return text + ("A kept step does not simply mean more task pressure: with both tails clipping and the bit gradient "
                   "proportional to the step, a small stale step at 1 bit can give less pull than a renewed one.")


def flaws_summary(running: pd.DataFrame, ratio: pd.DataFrame) -> str:
    """The two reference-code flaws in a few lines: with running extrema the first renewal is the
    default, the clip level never shrinks and the MSE is never below the default's; the range-ratio
    multipliers and whether its MSE exceeds the grid search's everywhere."""
    first = running[running["stage"] == 1]
    grows = all((g_["clip level running extrema"].diff().dropna() >= -1e-6).all()
                for _, g_ in running.groupby(["layer", "sequence"]))
    return "\n".join([
        f"running extrema, first renewal identical to the default (1e-6): "
        f"{bool(np.allclose(first['step running extrema'], first['step default'], rtol=1e-6))}",
        f"running extrema, the clip level never shrinks: {grows}",
        f"running extrema, MSE at least the default's at every stage (1e-6): {bool((running['MSE ratio'] >= 1 - 1e-6).all())}",
        f"range ratio, step multipliers 4->3, 3->2, 2->1: "
        f"{[round(range_ratio_step(1.0, b, bn), 4) for b, bn in ((4, 3), (3, 2), (2, 1))]}",
        f"range ratio, MSE above the grid search's at every stage: {bool((ratio['MSE ratio'] > 1).all())}"])


def _at_one_bit(running: pd.DataFrame, sequence: str) -> pd.Series:
    """MSE ratio (running extrema / default) at B = 1 along ``sequence``."""
    return running[(running["B"] == 1) & (running["sequence"] == sequence)]["MSE ratio"]


def flaws_sentence(running: pd.DataFrame, ratio: pd.DataFrame, drops: pd.DataFrame) -> str:
    """What the two flaws cost: the MSE ratio at 1 bit of both running-extrema sequences, that of the
    range-ratio rescale, and in how many single weight drops (of a ``drop_table``) where it moves the
    step it does worse than the stale step."""
    dw = drops[drops["quantizer"] == "weight"]
    moved = dw[dw["step range ratio"] != dw["step stale"]]
    return (
        f"With running extrema the first renewal is the default one, but every later one keeps the widest range "
        f"seen: at 1 bit the clip level stays at the 3-bit or 2-bit optimum and the error is "
        f"{span(_at_one_bit(running, '4->3->2->1'))} times the default's after 4 -> 3 -> 2 -> 1 and "
        f"{span(_at_one_bit(running, '4->2->1->2->1'))} times in the flip-flop 4 -> 2 -> 1 -> 2 -> 1. The range-ratio "
        f"rescale, applied here to all three layers' weights (the reference code uses it for the convolutions), gives "
        f"{span(ratio['MSE ratio'])} times the grid search's error over the same drops. In the single drops "
        f"of section 6 it is worse than keeping the old step in {int((moved['MSE range ratio'] > moved['MSE stale']).sum())} "
        f"of the {len(moved)} drops where it changes the step at all (2 -> 1 leaves it alone, $q_{{\\max}} = 1$ at both): "
        f"it moves the step the wrong way.")


def paper_vs_book(params: dict, accuracy: float, min_ratio: float, *, elem, check, lay, init_bal, grid, drops,
                  sweep, running, ratio, ablation: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per claim of the paper's method section (and of the reference code) on the learnable
    quantizers and renewal: the paper's words, what the chapter's tables show, and the setting.
    ``params``: the chapter's parameters; ``ablation``: the paper's ablation table (default
    ``paper.paper_table("yao_ablation")``), quoted at 1/1/1."""
    from .. import paper

    a111 = (paper.paper_table("yao_ablation") if ablation is None else ablation).set_index("target").loc["1/1/1"]
    setting = (f"default chapter model (small CNN, mnist5k-noisy, 4/4/2) after {params['warmup_steps']} SGD steps "
               f"({accuracy:.1f} % test); layer inputs of {params['n_images']} images; seed {params['seed']}")
    w_rows, s_rows = _by_kind(init_bal)
    d41, d43 = _spike_drop(drops, "4->1"), _spike_drop(drops, "4->3")
    rows = [
        ("LSQ step gradient (the paper defers it to its appendix, as in LSQ)",
         "round(u) - u inside, clip level outside, times g",
         f"autograd equals the formula at every point of {int(elem['points'].sum())} (max difference "
         f"{elem['max |ds autograd - formula|'].max():.0e}) and on real layers (max relative difference "
         f"{check['rel diff ds'].max():.0e})",
         "B = 1..4, weights and spikes; real layers at B = 1, 2, 4"),
        ("bit-width gradient: non-zero only where clipped, (qmax + 1) ln 2, times g", "STE through the clip range",
         f"autograd equals the formula (max relative difference on real layers {check['rel diff dB'].max():.0e}); "
         f"the package also gives spikes a lower-tail term -s c_B for u < -1/2, never reached with "
         f"non-negative inputs (smallest v/Vth1 here {min_ratio:.2f})",
         "as above"),
        ("gradient scale 1/sqrt(N qmax)", "avoids gradient explosion",
         f"balances the weight steps (R = {w_rows['LSQ balance R'].min():.2g}-{w_rows['LSQ balance R'].max():.2g}) "
         f"but, with N counting the batch, leaves the spike steps R = {s_rows['LSQ balance R'].max():.0e} "
         f"or less: Vth1 moved {step_changes(lay)[1].max():.1f} % or less in the warm-up",
         f"fresh model, first batch initialises the steps, {params['n_batches']} batches of 64"),
        ("bit widths learn from the task loss", "the bit latents obtain the task loss signal directly",
         f"at initialisation nothing is clipped, so the task loss's bit gradient is exactly 0: bits fall under "
         f"the bit loss alone (lambda * share {init_bal['lambda * share'].min():.4f}-"
         f"{init_bal['lambda * share'].max():.4f}); lower down the task loss outweighs the bit loss only for "
         f"{crossings(sweep, 'renewed')} (renewed steps)",
         setting),
        ("a kept step after a bit drop raises the error; renewal corrects it",
         "step-size mismatch is harmful; renewal applies an optimal step",
         f"holds for drops of 2+ bits (spikes 4->1: stale {span(d41['stale / renewed'])} x the renewed MSE); "
         f"for 4->3 the gain is nil ({span(d43['stale / renewed'], '.2f')} x); LSQ's formula without search "
         f"gives {span(drops[drops['quantizer'] == 'spike']['LSQ init / renewed'], '.2f')} x the renewed spike MSE",
         setting),
        ("Algorithm 1 (K = 100, p = 2.4)", "grid search over c_k = kR/K",
         f"the package's search matches the study's K scores in all {len(grid)} cases; fewer bits choose a "
         f"narrower range",
         f"K = {params['K']}, p = {params['p']:g}"),
        ("running extrema of the clipping range (paper's renewal text, reference code)",
         "V_r_max = max(V'_max, V_r_max); S = (V_r_max - V_r_min)/(qmax - qmin)",
         f"the range never shrinks: at 1 bit after 4->3->2->1 the MSE is "
         f"{span(_at_one_bit(running, '4->3->2->1'))} x the default renewal's",
         "package SpikingNeuron, running_extrema=True"),
        ("reference conv-weight renewal by the integer-range ratio", "(not in the paper; reference code)",
         f"shrinks the step when bits drop: MSE {span(ratio['MSE ratio'])} x the grid search's "
         f"over 4->3->2->1. The paper's weight-only renewal row at 1/1/1 is {a111['weight_renew']:.2f} % "
         f"against {a111['lbw']:.2f} % without renewal and {a111['act_renew']:.2f} % with activation-only "
         f"renewal: tested in the ablation chapter",
         "trained conv and fc weights; paper: ResNet20, CIFAR-10"),
    ]
    return pd.DataFrame(rows, columns=["claim", "paper", "this book", "setting"])


# ============================================================================ the chapter's figures
def plot_elementwise(curves: dict, which: str = "step", u_grid: dict = U_GRID):
    """d x_q/ds (``which="step"``) or d x_q/dB (``"bit"``) of the formulas (``elementwise_table``'s
    curves) against u = x / s: one panel per quantizer, one line per B."""
    from .. import plotting

    col, lw = (0, 1) if which == "step" else (1, 1.2)
    fig, axes = plotting.figure(ncols=2, figsize=(8.0, 3.2), layout="constrained")
    for ax, kind in zip(axes, KINDS):
        for B, color in zip([B for k, B in curves if k == kind], COLORS):
            ax.plot(u_grid[kind], curves[(kind, B)][col], color=color, lw=lw, label=f"B = {B}")
        ax.set_xlim(-9.5 if kind == "weight" else 0, 9.5 if kind == "weight" else 17.5)
        ax.set_xlabel("u = x / s")
        sign = f" ({'signed' if kind == 'weight' else 'unsigned'})" if which == "step" else ""
        ax.set_title(f"{kind}s{sign}", fontsize=9)
    axes[0].set_ylabel(r"$\partial x_q / \partial s$ (before $g$)" if which == "step"
                       else r"$\partial x_q / \partial B$ (before $g$, s = 1)")
    axes[1].legend(fontsize=8)
    return fig


def plot_grid_scores(grid: pd.DataFrame, curves: dict, p: float):
    """Algorithm 1's score curves of the spikes (``grid_table``), one panel per layer, one line per Bs,
    the chosen c* dotted on each and LSQ's initial clip level as a dotted vertical line."""
    from .. import plotting

    layers = _layers(grid)
    init = grid.set_index(["layer", "quantizer", "B"])["LSQ init step"]
    fig, axes = plotting.figure(ncols=len(layers), figsize=(3.0 * len(layers), 3.0), layout="constrained",
                                squeeze=False)
    for ax, name in zip(axes[0], layers):
        for B, color in zip(BITS, COLORS):
            c, sc = curves[(name, "spike", B)]
            ax.plot(c, sc, color=color, lw=1.2, label=f"$B_s$ = {B}")
            k = int(np.argmin(sc))
            ax.plot(c[k], sc[k], "o", color=color, ms=4)
            ax.axvline(init.loc[(name, "spike", B)] * int_range(B, False)[1], color=color, ls=":", lw=1)
        ax.set_yscale("log")
        ax.set_xlabel("clipping range $c_k$")
        ax.set_title(name, fontsize=9)
    axes[0][0].set_ylabel(f"mean $|Q(x) - x|^{{{p:g}}}$")
    plotting.legend_below(fig, fontsize=7, title="dots: the chosen $c^*$; dotted lines: LSQ's initial clip level")
    return fig


def plot_grid_steps(grid: pd.DataFrame, trained: dict):
    """The grid step and LSQ's initial step against B (``grid_table``), per quantizer and layer, with
    the ``trained`` 4-bit step as a star."""
    from .. import plotting

    fig, axes = plotting.figure(ncols=2, figsize=(8.0, 3.2), layout="constrained")
    for ax, kind in zip(axes, KINDS):
        for name, color in zip(_layers(grid), COLORS):
            g_ = grid[(grid["layer"] == name) & (grid["quantizer"] == kind)]
            ax.plot(g_["B"], g_["grid step"], "o-", color=color, label=f"{name}: grid search")
            ax.plot(g_["B"], g_["LSQ init step"], "x--", color=color, label=f"{name}: LSQ init formula")
            ax.plot([4], [trained[(name, kind)]], "*", color=color, ms=10)
        ax.set_yscale("log")
        ax.set_xticks(BITS)
        ax.set_xlabel("bit width B")
        ax.set_title(f"{kind} step ({'$S_q$' if kind == 'weight' else '$V_{th1}$'}); star: trained at 4 bits", fontsize=9)
    axes[0].set_ylabel("step")
    plotting.legend_below(fig, fontsize=7)
    return fig


def plot_drops(drops: pd.DataFrame):
    """MSE over the renewed step's after each bit drop (``drop_table``), per quantizer: the stale
    step, LSQ's formula, and the neuron at T = 2 (spikes) or the range-ratio rescale (weights)."""
    import matplotlib.lines

    from .. import plotting

    fig, axes = plotting.figure(ncols=2, figsize=(8.4, 3.6), layout="constrained")
    layers, drop_names = _layers(drops), list(dict.fromkeys(drops["drop"]))
    xpos = np.arange(len(drop_names))
    markers = {"stale / renewed": ("o", "full", "stale step"), "LSQ init / renewed": ("x", "full", "LSQ init formula"),
               "neuron T=2 stale / renewed": ("^", "none", "stale step, neuron at T = 2"),
               "range ratio / renewed": ("s", "none", "range-ratio rescale (reference code)")}
    for ax, kind in zip(axes, KINDS):
        d = drops[drops["quantizer"] == kind]
        cols = ["stale / renewed", "LSQ init / renewed",
                "neuron T=2 stale / renewed" if kind == "spike" else "range ratio / renewed"]
        for j, (name, color) in enumerate(zip(layers, COLORS)):
            dl = d[d["layer"] == name].set_index("drop").loc[drop_names]
            for col in cols:
                m, fill, _ = markers[col]
                ax.plot(xpos + (j - 1) * 0.22, dl[col], m, color=color, mfc=color if fill == "full" else "none")
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set_yscale("log")
        ax.set_xticks(xpos, drop_names)
        ax.set_xlabel("bit drop b -> b'")
        ax.set_title(f"{kind}s", fontsize=9)
    axes[0].set_ylabel("MSE / MSE with the renewed step")
    handles = [matplotlib.lines.Line2D([], [], color=c, marker="o", ls="none", label=n) for n, c in zip(layers, COLORS)]
    handles += [matplotlib.lines.Line2D([], [], color="gray", marker=m, mfc="gray" if f == "full" else "none",
                                        ls="none", label=lab) for m, f, lab in markers.values()]
    fig.legend(handles=handles, loc="outside lower center", ncol=4, fontsize=7)
    return fig


def plot_bit_gradient_balance(sweep: pd.DataFrame):
    """-dL_task/dB / (lambda * share) against B (``bit_gradient_sweep``), per quantizer and layer, with
    renewed and stale steps; the line at 1 is where the task loss balances the bit loss."""
    from .. import plotting

    fig, axes = plotting.figure(ncols=2, figsize=(8.0, 3.3), layout="constrained")
    for ax, kind in zip(axes, KINDS):
        for name, color in zip(_layers(sweep), COLORS):
            for label, style in (("renewed", "o-"), ("stale", "x--")):
                s_ = sweep[(sweep["layer"] == name) & (sweep["quantizer"] == kind) & (sweep["steps"] == label)]
                ax.plot(s_["B"], s_["task / bit loss"], style, color=color, label=f"{name}, {label}")
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set_yscale("symlog", linthresh=1e-3)
        ax.set_xticks(BITS)
        ax.set_xlabel("bit width B (every learned layer)")
        ax.set_title(f"{kind}s", fontsize=9)
    axes[0].set_ylabel(r"$-\partial L_{task}/\partial B\ /\ (\lambda \cdot$ share$)$")
    plotting.legend_below(fig, fontsize=7)
    return fig


def plot_reference_flaws(running: pd.DataFrame, ratio: pd.DataFrame):
    """The MSE through renewals 4 -> 3 -> 2 -> 1: spikes with running extrema against the default
    (``running_extrema_table``), weights with the range-ratio rescale against the grid search
    (``range_ratio_table``)."""
    from .. import plotting

    fig, axes = plotting.figure(ncols=2, figsize=(8.0, 3.3), layout="constrained")
    for name, color in zip(_layers(running), COLORS):
        r_ = running[(running["layer"] == name) & (running["sequence"] == "4->3->2->1")]
        axes[0].plot(r_["B"], r_["MSE running extrema"], "s--", color=color, mfc="none", label=f"{name}: running extrema")
        axes[0].plot(r_["B"], r_["MSE default"], "o-", color=color, label=f"{name}: default")
        w_ = ratio[ratio["layer"] == name]
        axes[1].plot(w_["B"], w_["MSE range ratio"], "s--", color=color, mfc="none", label=f"{name}: range ratio")
        axes[1].plot(w_["B"], w_["MSE grid search"], "o-", color=color, label=f"{name}: grid search")
    for ax, title in zip(axes, ("spikes, renewals 4 -> 3 -> 2 -> 1", "weights, renewals 4 -> 3 -> 2 -> 1")):
        ax.set_yscale("log")
        ax.invert_xaxis()
        ax.set_xticks((3, 2, 1))
        ax.set_xlabel("bit width after the renewal")
        ax.set_title(title, fontsize=9)
    axes[0].set_ylabel("quantization MSE")
    for ax in axes:  # each panel's own entries, under it
        plotting.legend_below(ax, fontsize=7)
    return fig


# ============================================================================ the chapter's parameters
from .. import params as _p  # noqa: E402

# nb/04_quantizers.ipynb's parameters (its validation cell: ``params.check(PARAMETERS, globals())``)
PARAMETERS = _p.declare(
    _p.seed("seed of the data split, the model initialisation and the batch order"),
    _p.Param("warmup_steps", "int", 150, "SGD steps of the short warm-up at W/S/T = 4/4/2 (task loss only)",
             low=1, high=10**5),
    _p.Param("warmup_batch", "int", 32, "batch size of the warm-up", low=2, high=4000),
    _p.Param("n_images", "int", 32, "training images whose layer inputs are collected (half a training "
             "batch of the book)", low=1, high=4000),
    _p.Param("n_batches", "int", 2, "training batches (of 64) averaged for each bit-gradient measurement",
             low=1, high=62),
    _p.Param("K", "int", 100, "clipping ranges scored by the grid search", low=2, high=10_000),
    _p.Param("p", "float", 2.4, "exponent of the grid-search score mean |Q(x) - x|^p", low=1, high=8),
    _p.fig_dir(),
    _p.record_path("04_quantizers"),
)
