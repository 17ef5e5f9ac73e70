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
collect real layer inputs, the bit-drop and reference-code experiments) only calls the package.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
import torch.nn.functional as F

from .. import data as data_mod
from .. import quant
from ..layers import clamp_, quant_layers
from ..loss import BitTarget, bit_loss, bit_stats
from ..neuron import SpikingNeuron, neuron_trace
from ..train import TrainConfig, build

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


def gradient_check(model, xb, yb, bits_list=(1, 2, 4)) -> list[dict]:
    """Autograd of the task loss against the written-out formulas on real data, per learned layer,
    for weights and spikes at each B in ``bits_list`` (every layer set to B, steps kept)."""
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
                rows.append({"layer": name, "quantizer": kind, "B": B, "clipped": clip,
                             "dL/ds autograd": float(a_s), "dL/ds formula": f_s,
                             "dL/dB autograd": float(a_b) if a_b is not None else 0.0,
                             "dL/dB formula": f_b})
    return rows


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
    step the package's ``quant.grid_search_step`` picks on the same tensor, and the LSQ init step.
    Returns (rows, curves) with curves[(layer, kind, B)] = (c, score)."""
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
    return rows, curves


def drop_table(inputs: dict, weights: dict, trained: dict, grid: dict, init_bits: int = 4,
               drops=DROPS, T_list=(1, 2), p: float = 2.4) -> list[dict]:
    """Errors after each bit drop b -> b', per learned layer and quantizer.  The old step at b is
    the trained step when b is the trained width, else the grid-search step for b bits (the step a
    renewal at b would have left).  Steps compared at b' bits: stale (the old step kept), renewed
    (grid search at b'), LSQ init formula at b', and for weights the reference code's range-ratio
    rescale.  Errors: MSE and mean |e|^p of Q(x), and for spikes the neuron's MSE at each T."""
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
    return rows


def renewal_sequence(x: torch.Tensor, trained_step: float, sequence, running_extrema: bool,
                     init_bits: int = 4, T: int = 1, K: int = 100, p: float = 2.4) -> list[dict]:
    """Run the package's SpikingNeuron (train mode, renewal enabled) through the bit widths of
    ``sequence`` on the same tensor x, starting from the trained step at ``init_bits``: every
    change of B renews Vth1 by grid search, with the reference code's running extrema or without.
    Returns per stage B, the step, its clip level s qmax and the errors."""
    n = SpikingNeuron(bits=init_bits, T=T, learnable_T=False)
    n.running_extrema, n.K, n.p = running_extrema, K, p
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
