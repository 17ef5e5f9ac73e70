"""Chapter 3 (nb/03_neuron.ipynb): the refined spiking neuron, measured.

Notation (book/method.md#method-neuron): constant input x, threshold = step = amplitude Vth1, spike bits Bs,
T steps, decay tau, firing 'round' (floor(u + 1/2)) or 'floor'.  With v = 0 and out = 0 before the
first step, for t = 0 .. T-1

    v_t = v_{t-1} / tau - out_{t-1} + x,   S_t = clip(fire(v_t / Vth1), 0, 2^Bs - 1),   out_t = Vth1 S_t
    r   = (1/T) sum_t out_t                                                    (temporal squeezing)

Every function here only calls the package's neuron (``neuron.neuron_trace``, ``SpikingNeuron``)
and layers; none re-implements the update.  The exception is the snntorch comparison, which runs
snntorch's own ``Leaky`` neuron beside ours.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from ..layers import QuantConfig, clamp_, quant_layers
from ..models import build_model
from ..neuron import neuron_trace
from ..quant import fake_quant

#: the neuron variants of the paper's ablation (plus tau = 1 with floor): name -> (tau, firing)
VARIANTS = {
    "tau=2, floor (old)": (2.0, "floor"),
    "tau=2, round": (2.0, "round"),
    "tau=1, floor": (1.0, "floor"),
    "tau=1, round (refined)": (1.0, "round"),
}


# ============================================================================ rate and its error
def rate(x: torch.Tensor, vth: float, bits: int, T: int, tau: float = 1.0,
         firing: str = "round") -> torch.Tensor:
    """The squeezed output r = (Vth1 / T) sum_{t<T} S_t of ``neuron_trace`` (same shape as x)."""
    _, S = neuron_trace(x, vth, bits, T, tau=tau, firing=firing)
    return vth * S.mean(0)


def input_grid(bits: int, n_points: int, vth: float = 1.0, dtype=torch.float64) -> torch.Tensor:
    """n_points inputs evenly spread over the neuron's range [0, (2^Bs - 1) Vth1]: cell midpoints
    x_i = (i + 1/2) / n * range, so that few land exactly on a rounding boundary."""
    top = (2**bits - 1) * vth
    return (torch.arange(n_points, dtype=dtype) + 0.5) / n_points * top


def rate_errors(bits_list, T_list, n_points: int = 4001, vth: float = 1.0,
                variants: dict | None = None) -> pd.DataFrame:
    """Error of r against x over ``input_grid`` for every (variant, Bs, T); errors in units of Vth1.

    Columns: mean |r - x|, max |r - x|, bias mean(r - x), rmse; ``rmse best amplitude``: the rmse
    of a r with the amplitude alpha rescaled by the least-squares factor
    c = <x, r> / <r, r> (what a learned amplitude, as in the old neuron, could at best correct);
    ``bound 1/(2T)``: the refined neuron's worst case Vth1 / (2T) inside the range.
    """
    variants = VARIANTS if variants is None else variants
    rows = []
    for name, (tau, firing) in variants.items():
        for bits in bits_list:
            x = input_grid(bits, n_points, vth)
            for T in T_list:
                r = rate(x, vth, bits, T, tau, firing)
                e = (r - x) / vth
                c = float((x * r).sum() / (r * r).sum()) if float((r * r).sum()) > 0 else 0.0
                rows.append({
                    "variant": name, "tau": tau, "firing": firing, "Bs": bits, "T": T,
                    "mean |r-x|": float(e.abs().mean()), "max |r-x|": float(e.abs().max()),
                    "bias": float(e.mean()), "rmse": float(e.pow(2).mean().sqrt()),
                    "rmse best amplitude": float(((c * r - x) / vth).pow(2).mean().sqrt()),
                    "best amplitude / Vth1": c, "bound 1/(2T)": 1.0 / (2 * T),
                })
    return pd.DataFrame(rows)


# ============================================================================ bit-serial view
def count_levels(values: torch.Tensor, decimals: int = 9) -> int:
    """Number of distinct values (after rounding to ``decimals``, to merge float noise)."""
    return int(torch.unique(torch.round(values, decimals=decimals)).numel())


def bit_serial_table(T_list, n_points: int = 20001, vth: float = 1.0) -> pd.DataFrame:
    """A T-step neuron with 1-bit spikes against a T-bit quantized activation, on x ~ U[0, Vth1].

    Neuron (tau = 1, round, Bs = 1): r takes the values k Vth1 / T, k = 0..T: T + 1 levels,
    log2(T + 1) bits of resolution, step Vth1 / T.  T-bit activation (one step): Vth1 / (2^T - 1)
    times clip(round(x / step), 0, 2^T - 1): 2^T levels.  Both have the same per-synapse bit budget
    T * Bs (Shen et al.).  The levels are counted on a dense grid; the rmse is measured on it
    and set beside the uniform-quantizer value step / sqrt(12).  For comparison, the neuron with
    Bs = 2 spikes reaches T (2^2 - 1) + 1 levels.
    """
    x = input_grid(1, n_points, vth)
    x_all = torch.cat([x, torch.tensor([0.0, vth], dtype=x.dtype)])  # include both ends
    rows = []
    for T in T_list:
        r = rate(x_all, vth, 1, T)
        q = fake_quant(x_all, vth / (2**T - 1), T, signed=False)
        x2 = input_grid(2, n_points, vth)
        r2 = rate(torch.cat([x2, torch.tensor([0.0, 3 * vth], dtype=x.dtype)]), vth, 2, T)
        rmse_n = float((rate(x, vth, 1, T) - x).pow(2).mean().sqrt() / vth)
        rmse_q = float((fake_quant(x, vth / (2**T - 1), T, signed=False) - x).pow(2).mean().sqrt() / vth)
        lv_n, lv_q = count_levels(r), count_levels(q)
        rows.append({
            "T = bit budget": T, "neuron levels": lv_n, "formula T+1": T + 1,
            "neuron bits log2(levels)": math.log2(lv_n),
            "T-bit levels": lv_q, "formula 2^T": 2**T,
            "neuron rmse": rmse_n, "neuron (1/T)/sqrt(12)": 1 / T / math.sqrt(12),
            "T-bit rmse": rmse_q, "T-bit (1/(2^T-1))/sqrt(12)": 1 / (2**T - 1) / math.sqrt(12),
            "rmse ratio neuron / T-bit": rmse_n / rmse_q,
            "neuron Bs=2 levels": count_levels(r2), "formula 3T+1": 3 * T + 1,
        })
    return pd.DataFrame(rows)


# ============================================================================ temporal squeezing
def squeeze_check(x: torch.Tensor, weight: torch.Tensor, vth: float, bits: int, T: int,
                  w_step: float | None = None, padding: int = 1, stride: int = 1) -> dict:
    """conv(mean_t s_t) against mean_t conv(s_t), s_t = Vth1 S_t the neuron's spikes for input x.

    The spikes are computed once (float64); the two sides are then evaluated in float64 and in
    float32 (spikes and weights cast), and once more on integers in float64: sum_t S_t and the
    integer weight codes round(w / w_step) (``w_step``: the weight quantizer's step S_q; without it
    the codes of 4-bit weights with step max|w| / 7), where every product and sum is an integer
    below 2^53 and so exact.  Returns max |difference| for each, the largest |output| for scale, and
    the shapes.
    """
    x64, w64 = x.detach().to(torch.float64), weight.detach().to(torch.float64)
    _, S = neuron_trace(x64, vth, bits, T)
    s = vth * S  # [T, B, C, H, W]

    def both(spikes, w, mean=True):
        once = F.conv2d(spikes.sum(0), w, stride=stride, padding=padding)
        steps = F.conv2d(spikes.flatten(0, 1), w, stride=stride, padding=padding)
        per_step = steps.unflatten(0, spikes.shape[:2]).sum(0)
        return (once / T, per_step / T) if mean else (once, per_step)

    out = {"input shape": tuple(x.shape), "spikes shape": tuple(s.shape),
           "weight shape": tuple(weight.shape), "T": T, "Bs": bits}
    once, per = both(s, w64)
    out["max |y|"] = float(once.abs().max())
    out["max diff float64"] = float((once - per).abs().max())
    once32, per32 = both(s.float(), w64.float())
    out["max diff float32"] = float((once32 - per32).abs().max())
    out["max diff float32 vs float64"] = float((once32.double() - once).abs().max())
    if w_step is None:
        w_step = float(w64.abs().max()) / 7
    once_i, per_i = both(S, torch.round(w64 / w_step), mean=False)
    out["max diff integer codes"] = float((once_i - per_i).abs().max())
    out["convolutions squeezed"], out["convolutions per step"] = 1, T
    return out


# ============================================================================ the chapter model
def build_chapter_model(spec: dict, bits: tuple[int, int] = (4, 4), T: int = 2,
                        T_bound: int = 4, seed: int = 0, width: int = 32) -> nn.Module:
    """The chapter's small CNN (models.small) with Bw/Bs fixed at ``bits`` and every layer's T
    (stem included) at ``T``, learnable (so that dL/dT_hat exists) within [1, T_bound].

    ``adabit_lite.train.build`` would give the same network but with the default bound T + 1; the
    gradient check needs T + 1 reachable from every T it tests, so the bound is set here.
    """
    w, s = bits
    cfg = QuantConfig(w_bits=w, s_bits=s, T=T, T_bound=T_bound, learn_w=False, learn_s=False,
                      learn_T=True)
    torch.manual_seed(seed)
    return build_model("small-cnn", num_classes=spec["num_classes"],
                       in_channels=spec["in_channels"], cfg=cfg, width=width,
                       stem_cfg=QuantConfig.stem(T=T, T_bound=T_bound))


def fit(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, batch_size: int = 64,
        lr: float = 2e-3, seed: int = 0) -> list[float]:
    """``steps`` Adam steps on cross-entropy (weights, biases and the steps S_q, Vth1; the bit and
    T latents are not trained), batches drawn without replacement epoch by epoch from ``seed``.
    The quantizer steps initialise on the first batch; ``layers.clamp_`` after each step.
    Returns the training loss of every step."""
    latents = {id(p) for m in model.modules() if hasattr(m, "latent") for p in [m.latent]}
    params = [p for p in model.parameters() if p.requires_grad and id(p) not in latents]
    opt = torch.optim.Adam(params, lr=lr)
    g = torch.Generator().manual_seed(seed)
    order, pos, losses = torch.randperm(len(x), generator=g), 0, []
    model.train()
    for _ in range(steps):
        if pos + batch_size > len(x):
            order, pos = torch.randperm(len(x), generator=g), 0
        idx = order[pos:pos + batch_size]
        pos += batch_size
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        clamp_(model)
        losses.append(loss.item())
    model.eval()
    return losses


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 500) -> float:
    """Test accuracy in percent (eval mode)."""
    model.eval()
    hits = sum(int((model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum()) for i in range(0, len(x), batch))
    return 100.0 * hits / len(x)


def set_T(model: nn.Module, T: int | dict) -> None:
    """Set every quantized layer's T (an int, or {layer name: T}) through ``LearnableInt.set_``,
    which refuses values outside the layer's bounds."""
    for name, layer in quant_layers(model, include_stem=True):
        value = T if isinstance(T, int) else T.get(name)
        if value is not None:
            layer.neuron.T.set_(value)


# ============================================================================ different T connected
@torch.no_grad()
def neuron_io(model: nn.Module, x: torch.Tensor) -> dict:
    """{layer name: (neuron input, neuron output r)} of one eval-mode forward pass of ``model``."""
    seen, handles = {}, []
    for name, layer in quant_layers(model, include_stem=True):
        handles.append(layer.neuron.register_forward_hook(
            lambda module, inputs, output, name=name: seen.__setitem__(name, (inputs[0], output))))
    try:
        model.eval()
        model(x)
    finally:
        for h in handles:
            h.remove()
    return seen


@torch.no_grad()
def mixed_T_forward(model: nn.Module, x: torch.Tensor, T_by_layer: dict) -> tuple[dict, list[dict]]:
    """Run ``model`` (eval) with per-layer T and record what each neuron receives and sends.

    For every layer: its T, the shapes of the neuron's input x and output r (neither has a time
    axis), and how far r / (Vth1 / T) is from an integer (r lies on the grid Vth1 / T, since
    r = (Vth1 / T) sum_t S_t), the number of distinct values of r and the most a layer with these
    Bs and T can take, T (2^Bs - 1) + 1 (unsigned neurons).  Returns ({name: (input, r)}, rows);
    the T values are restored afterwards.
    """
    layers = dict(quant_layers(model, include_stem=True))
    before = {name: int(layer.neuron.T) for name, layer in layers.items()}
    try:
        set_T(model, T_by_layer)
        io = neuron_io(model, x)
        rows = []
        for name, (inp, r) in io.items():
            n = layers[name].neuron
            vth, T, bits = float(n.step[0]), int(n.T), int(n.bits[0])
            k = r.double() / (vth / T)
            rows.append({"layer": name, "T": T, "Bs": bits, "signed": n.signed,
                         "neuron input shape": tuple(inp.shape), "neuron output shape": tuple(r.shape),
                         "Vth1": vth, "max |r T/Vth1 - round(.)|": float((k - torch.round(k)).abs().max()),
                         "distinct r values": count_levels(k, 3),
                         "most values T(2^Bs-1)+1": None if n.signed else T * (2**bits - 1) + 1})
    finally:
        set_T(model, before)
    return io, rows


# ============================================================================ the T surrogate gradient
def wilson_interval(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval for a binomial fraction k / n (95 % by default)."""
    if n == 0:
        return (float("nan"), float("nan"))
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - half, centre + half)


def t_gradient_vs_difference(model: nn.Module, batches, T_values) -> pd.DataFrame:
    """For each T0 in ``T_values`` (every layer set to T0), each batch and each quantized layer l
    (the stem included): the surrogate g = dL/dT_hat_l and the discrete change
    dL = L(T_l = T0 + 1) - L(T_l = T0), other layers left at T0.

    L is the mean cross-entropy of the batch, model in eval mode (BatchNorm running statistics, so
    only T changes between the two evaluations).  The surrogate comes from autograd through
    1/T coded as 1/(T + T_hat - stopgrad(T_hat)) in ``SpikingNeuron.forward``: g = -<dL/dr, r>/T.
    ``agree`` is sign(g) == sign(dL) (a zero on either side counts as no agreement; ``tie`` marks
    dL == 0).  T values are restored afterwards.
    """
    layers = quant_layers(model, include_stem=True)
    before = {name: int(layer.neuron.T) for name, layer in layers}
    model.eval()
    rows = []
    try:
        for T0 in T_values:
            set_T(model, T0)
            for b, (xb, yb) in enumerate(batches):
                model.zero_grad(set_to_none=True)
                loss = F.cross_entropy(model(xb), yb)
                loss.backward()
                grads = {name: float(layer.neuron.T.latent.grad) for name, layer in layers}
                with torch.no_grad():
                    for name, layer in layers:
                        layer.neuron.T.set_(T0 + 1)
                        up = float(F.cross_entropy(model(xb), yb))
                        layer.neuron.T.set_(T0)
                        d = up - float(loss)
                        g = grads[name]
                        rows.append({"T": T0, "batch": b, "layer": name, "L(T)": float(loss),
                                     "L(T+1)-L(T)": d, "dL/dT_hat": g, "tie": d == 0.0,
                                     "agree": bool(np.sign(g) == np.sign(d) and d != 0.0)})
    finally:
        model.zero_grad(set_to_none=True)
        set_T(model, before)
    return pd.DataFrame(rows)


def agreement_summary(df: pd.DataFrame, by=None) -> pd.DataFrame:
    """Fraction of sign agreements with its 95 % Wilson interval, overall or grouped ``by``;
    beside it the fraction of cases where L(T+1) < L(T) (the success rate of the constant guess
    'more steps lower the loss', a baseline the surrogate has to beat), the fraction where the
    surrogate predicts that (g < 0), and the Spearman rank correlation of g with the change."""
    from scipy.stats import spearmanr

    col = "group" if by is None else by
    groups = [("all", df)] if by is None else list(df.groupby(by, sort=False))
    rows = []
    for key, g in groups:
        n, k = len(g), int(g["agree"].sum())
        lo, hi = wilson_interval(k, n)
        rho = spearmanr(g["dL/dT_hat"], g["L(T+1)-L(T)"]).statistic if n > 2 else float("nan")
        rows.append({col: key, "n": n, "agree": k, "fraction": k / n, "CI low": lo, "CI high": hi,
                     "ties": int(g["tie"].sum()),
                     "P(L(T+1) < L(T))": float((g["L(T+1)-L(T)"] < 0).mean()),
                     "surrogate says T helps (g < 0)": float((g["dL/dT_hat"] < 0).mean()),
                     "spearman": float(rho)})
    return pd.DataFrame(rows)


# ============================================================================ snntorch
def snntorch_leaky_spikes(x: torch.Tensor, threshold: float, T: int, mem0: float = 0.0) -> torch.Tensor:
    """Spikes [T, *x.shape] of ``snntorch.Leaky(beta=1, threshold, reset_mechanism='subtract')``
    fed the constant x for T steps, membrane initialised to ``mem0`` (a fresh neuron per call,
    state passed explicitly: snntorch 1.0.0 keeps a class-level list of instances).
    snntorch's rule: mem_t = beta mem_{t-1} + x - threshold * [mem_{t-1} > threshold],
    spike_t = [mem_t > threshold] (strict)."""
    import snntorch

    lif = snntorch.Leaky(beta=1.0, threshold=threshold, reset_mechanism="subtract")
    mem = torch.full_like(x, mem0)
    spikes = []
    for _ in range(T):
        spk, mem = lif(x, mem)
        spikes.append(spk.to(x.dtype))
    return torch.stack(spikes)


def snntorch_comparison(x: torch.Tensor, vth: float, T: int) -> pd.DataFrame:
    """Our Bs = 1, tau = 1 neuron against snntorch.Leaky(beta = 1, subtract reset), spike for spike.

    Rows: (floor, threshold Vth1, mem0 = 0): the binary IF neuron; (round, threshold Vth1,
    mem0 = Vth1/2): round firing is floor(v/Vth1 + 1/2), i.e. floor firing on v + Vth1/2; and
    (round, threshold Vth1/2, mem0 = 0): a plain half threshold, whose subtract reset removes only
    Vth1/2.  Columns: the fraction of (element, step) pairs whose spikes differ, and of elements
    with any difference.  ``vth`` should be exact in float32 (snntorch stores the threshold as a
    float32 buffer).
    """
    cases = [("floor", "snntorch threshold Vth1, mem0 = 0", vth, 0.0),
             ("round", "snntorch threshold Vth1, mem0 = Vth1/2", vth, vth / 2),
             ("round", "snntorch threshold Vth1/2, mem0 = 0", vth / 2, 0.0)]
    rows = []
    for firing, name, thr, mem0 in cases:
        _, S = neuron_trace(x, vth, 1, T, tau=1.0, firing=firing)
        spk = snntorch_leaky_spikes(x, thr, T, mem0)
        diff = S != spk
        rows.append({"ours": f"Bs=1, tau=1, {firing}", "snntorch": name, "T": T,
                     "elements": x.numel(), "step mismatch fraction": float(diff.float().mean()),
                     "elements with a mismatch": int(diff.any(0).sum()),
                     "spike rate ours": float(S.mean()), "spike rate snntorch": float(spk.mean())})
    return pd.DataFrame(rows)


# ============================================================================ the chapter's pages
# What nb/03_neuron.ipynb shows: its tables, figures, printed checks and generated sentences, built
# from the measurements above.  The figures are drawn with ``plotting.figure`` (the book's style).

def recorded_parameters(values: dict) -> dict:
    """The chapter's parameter values as it records them: every declared parameter except where
    things run or go (device, fig_dir, record_path), sequences as lists, in declaration order."""
    skip = {"device", "fig_dir", "record_path"}
    return {p.name: list(values[p.name]) if p.many else values[p.name]
            for p in PARAMETERS if p.name not in skip}


def neuron_source() -> str:
    """The package's membrane update and neuron step (``adabit_lite.neuron``) as a Markdown code block."""
    import inspect

    from .. import neuron

    return ("```python\n" + inspect.getsource(neuron.membrane_update) + "\n"
            + inspect.getsource(neuron.neuron_step) + "```")


#: inputs of the membrane traces, in units of Vth1, and the two neurons traced: name -> (tau, firing)
TRACE_X = (0.31, 1.47, 2.62)
TRACE_VARIANTS = {"refined (tau=1, round)": (1.0, "round"), "old (tau=2, floor)": (2.0, "floor")}


def membrane_traces(vth: float, bits: int, T: int, x=TRACE_X,
                    variants: dict | None = None) -> tuple[dict, pd.DataFrame]:
    """The inputs x Vth1 (``x`` in units of Vth1) through each neuron of ``variants`` for T steps
    with Bs = ``bits``: ({name: (v [T, n], S [T, n])}, one row per (neuron, x) with the counts
    S_0 .. S_{T-1}, r / Vth1 = mean_t S_t and |r - x| / Vth1)."""
    variants = TRACE_VARIANTS if variants is None else variants
    x_in = torch.tensor(x, dtype=torch.float64) * vth
    traces, rows = {}, []
    for name, (tau, firing) in variants.items():
        v, S = neuron_trace(x_in, vth, bits, T, tau=tau, firing=firing)
        traces[name] = (v, S)
        for i, xi in enumerate(x):
            r = float(S[:, i].mean())
            rows.append({"neuron": name, "x / Vth1": xi, **{f"S_{t}": int(S[t, i]) for t in range(T)},
                         "r / Vth1": r, "|r - x| / Vth1": abs(r - xi)})
    return traces, pd.DataFrame(rows)


def _count_columns(table: pd.DataFrame) -> list[str]:
    return [c for c in table.columns if c.startswith("S_")]


def trace_counts(table: pd.DataFrame) -> dict:
    """{"neuron|x": [S_0, ..., S_{T-1}]} of a ``membrane_traces`` table (what the chapter records)."""
    cols = _count_columns(table)
    return {f"{r['neuron']}|{r['x / Vth1']:g}": [int(r[c]) for c in cols] for r in table.to_dict("records")}


def trace_report(table: pd.DataFrame) -> str:
    """One line per traced (neuron, x): the counts S_t, r and |r - x| (4 decimals, units of Vth1)."""
    cols = _count_columns(table)
    return "\n".join(
        f"{r['neuron']:<24} x = {r['x / Vth1']:.2f}: S = {''.join(str(int(r[c])) for c in cols)}  "
        f"r = {r['r / Vth1']:.4f}  |r - x| = {r['|r - x| / Vth1']:.4f}" for r in table.to_dict("records"))


def plot_traces(traces: dict, bits: int, vth: float = 1.0, x=TRACE_X):
    """Top row: the potential v_t / Vth1 of each traced input, the thresholds where the count steps
    up dashed ((k + 1/2) for round firing, k + 1 for floor); bottom row: the running mean of S_t,
    which ends at r / Vth1, with x dotted.  One column per neuron of ``traces``."""
    from .. import plotting

    T = next(iter(traces.values()))[1].shape[0]
    fig, axes = plotting.figure(ncols=len(traces), nrows=2, figsize=(7.6, 5.0), sharex=True,
                                layout="constrained", squeeze=False)
    steps = np.arange(T)
    colors = [plotting.COLORS["lbw"], plotting.COLORS["lbw_renew"], plotting.COLORS["uquant"]]
    for j, (name, (v, S)) in enumerate(traces.items()):
        for i, xi in enumerate(x):
            axes[0, j].plot(steps, v[:, i] / vth, "o-", ms=3, color=colors[i % 3], label=f"x = {xi:g}")
            axes[1, j].step(steps, torch.cumsum(S[:, i], 0) / torch.arange(1, T + 1), where="post",
                            color=colors[i % 3])
            axes[1, j].axhline(xi, color=colors[i % 3], ls=":", lw=1)
        for k in range(2**bits - 1):
            axes[0, j].axhline(k + (0.5 if "round" in name else 1.0), color="0.7", lw=0.6, ls="--")
        axes[0, j].set_title(name, fontsize=9)
        axes[1, j].set_xlabel("time step t")
    axes[0, 0].set_ylabel("potential v_t / Vth1")
    axes[1, 0].set_ylabel("running mean of Vth1 S / Vth1")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, [f"{lab} Vth1 (dotted: x)" for lab in labels], loc="upper center",
               bbox_to_anchor=(0.5, 0.0), ncol=len(labels), fontsize=8)
    return fig


def _error_row(errors: pd.DataFrame, variant: str, bits: int, T: int) -> pd.Series:
    return errors[(errors["variant"] == variant) & (errors["Bs"] == bits) & (errors["T"] == T)].iloc[0]


def _levels(errors: pd.DataFrame) -> tuple[list[int], list[int]]:
    """The Bs and T values of a ``rate_errors`` table, in the order they were asked for."""
    return [int(b) for b in errors["Bs"].unique()], [int(t) for t in errors["T"].unique()]


def plot_rate_errors(errors: pd.DataFrame, vth: float = 1.0):
    """Left: r against x for every variant at Bs = 2 and T = 4 (or the first Bs and the largest T
    the table has); right: the rmse of r / Vth1 against T for every variant and Bs (log-log), with
    the uniform quantizer's Vth1 / (T sqrt 12)."""
    from .. import plotting

    bits_list, T_list = _levels(errors)
    bits_fig = 2 if 2 in bits_list else bits_list[0]
    T_fig = 4 if 4 in T_list else max(T_list)
    variants = list(dict.fromkeys(errors["variant"]))
    fig, (ax0, ax1) = plotting.figure(ncols=2, figsize=(7.6, 3.4), layout="constrained")
    x = input_grid(bits_fig, 1200, vth)
    colors = dict(zip(variants, [plotting.COLORS[k] for k in ("uquant", "control", "lbw", "lbw_renew")]))
    ax0.plot(x, x, color="k", lw=0.8, ls=":", label="r = x")
    for name in variants:
        tau, firing = VARIANTS[name]
        ax0.plot(x, rate(x, vth, bits_fig, T_fig, tau, firing), color=colors[name], lw=1.2, label=name)
    ax0.set_xlabel("input x / Vth1")
    ax0.set_ylabel("output r / Vth1")
    ax0.set_title(f"Bs = {bits_fig}, T = {T_fig}", fontsize=9)
    ax0.legend(fontsize=7)
    styles = dict(zip(bits_list, ["-", "--", ":", "-.", (0, (1, 3)), (0, (5, 1)), (0, (3, 1, 1, 1)), (0, (1, 1))]))
    for name in variants:
        for b in bits_list:
            e = errors[(errors["variant"] == name) & (errors["Bs"] == b)]
            ax1.plot(e["T"], e["rmse"], marker="o", ms=3, ls=styles[b], color=colors[name])
    ax1.plot(T_list, [1 / (t * math.sqrt(12)) for t in T_list], color="k", lw=0.8, label="Vth1/(T sqrt 12)")
    for b in bits_list:
        ax1.plot([], [], color="0.4", ls=styles[b], label=f"Bs = {b}")
    ax1.set_xscale("log", base=2)
    ax1.set_yscale("log")
    ax1.set_xlabel("time steps T")
    ax1.set_ylabel("rmse of r / Vth1")
    ax1.legend(fontsize=7)
    return fig


def rate_error_report(errors: pd.DataFrame, n_points: int) -> str:
    """Per variant and Bs the largest |r - x| and the bias at every T (3 decimals, units of Vth1),
    then whether the refined neuron stays within Vth1/(2T) and is unbiased: |bias| at most
    (2^Bs - 1)/(2 n_points), what inputs lying exactly on a rounding tie can add."""
    bits_list, T_list = _levels(errors)
    lines = []
    for name in dict.fromkeys(errors["variant"]):
        lines.append(name)
        for b in bits_list:
            e = errors[(errors["variant"] == name) & (errors["Bs"] == b)]
            lines.append(f"  Bs={b}: max |r-x| " + " ".join(f"{m:.3f}" for m in e["max |r-x|"])
                         + " | bias " + " ".join(f"{m:+.3f}" for m in e["bias"])
                         + f"  (T = {', '.join(map(str, T_list))})")
    refined = errors[errors["variant"] == "tau=1, round (refined)"]
    within = bool((refined["max |r-x|"] <= refined["bound 1/(2T)"] + 1e-12).all())
    unbiased = bool((refined["bias"].abs() <= (2 ** refined["Bs"] - 1) / (2 * n_points) + 1e-15).all())
    lines.append(f"refined neuron within Vth1/(2T) everywhere: {within}")
    lines.append("refined neuron unbiased (|bias| at most the (2^Bs - 1)/(2 n_points) that inputs on an "
                 f"exact rounding tie add): {unbiased}")
    return "\n".join(lines)


def rate_error_sentence(errors: pd.DataFrame) -> str:
    """The four variants at the largest Bs and T of the table, in words: the refined neuron's rms
    and largest error against the bound 1/(2T), what floor firing and tau = 2 add, and how far the
    best rescaling (``rmse best amplitude``) brings the old neuron."""
    T_hi, b_hi = int(errors["T"].max()), int(errors["Bs"].max())
    old, new = _error_row(errors, "tau=2, floor (old)", b_hi, T_hi), _error_row(errors, "tau=1, round (refined)", b_hi, T_hi)
    floor1, t2r = _error_row(errors, "tau=1, floor", b_hi, T_hi), _error_row(errors, "tau=2, round", b_hi, T_hi)
    return (
        f"At $B_s = {b_hi}$, $T = {T_hi}$ the refined neuron's rms error is {new['rmse']:.4f} $V_{{th1}}$ "
        f"(largest {new['max |r-x|']:.4f}, the bound $1/(2T)$ = {1 / (2 * T_hi):.4f}); floor firing with "
        f"$\\tau = 1$ doubles the worst case to {floor1['max |r-x|']:.4f} and adds a bias of {floor1['bias']:+.4f}; "
        f"$\\tau = 2$ with round firing has bias {t2r['bias']:+.4f}, and the old neuron ($\\tau = 2$, floor) "
        f"{old['bias']:+.4f}, an rms error {old['rmse'] / new['rmse']:.0f} times the refined one's. The best "
        f"rescaling of the old neuron's output (factor {old['best amplitude / Vth1']:.2f}) brings its rms error "
        f"down to {old['rmse best amplitude']:.4f}, still {old['rmse best amplitude'] / new['rmse']:.1f} times the refined one's.")


#: the columns of the paper's neuron ablation table (``paper.paper_table("yao_neuron_ablation")``) as shown
NEURON_COLUMNS = {"target": "target W/S/T",
                  "tau2_floor_no_renew": "old neuron (tau 2, floor), no renewal (%)",
                  "tau2_floor_renew": "old neuron (tau 2, floor), renewal (%)",
                  "tau2_round_renew": "tau 2, round, renewal (%)",
                  "tau1_round_renew": "refined neuron (tau 1, round), renewal (%)",
                  "notes": "notes"}


def paper_ablation_view(ablation: pd.DataFrame) -> pd.DataFrame:
    """The paper's neuron ablation (accuracy in % per target W/S/T and neuron variant) with the
    columns of ``NEURON_COLUMNS``, renamed for the page."""
    return ablation[list(NEURON_COLUMNS)].rename(columns=NEURON_COLUMNS)


def plot_bit_serial(serial: pd.DataFrame):
    """Left: distinct output levels against T (log2 axis) for the T-step neuron with Bs = 1 and 2
    and the T-bit activation; right: their rms errors on x ~ U[0, Vth1]."""
    from .. import plotting

    fig, (ax0, ax1) = plotting.figure(ncols=2, figsize=(7.6, 3.2), layout="constrained")
    Ts = serial["T = bit budget"]
    ax0.plot(Ts, serial["neuron levels"], "o-", color=plotting.COLORS["lbw"], label="T-step neuron, Bs = 1")
    ax0.plot(Ts, serial["neuron Bs=2 levels"], "s--", color=plotting.COLORS["lbw_renew"],
             label="T-step neuron, Bs = 2 (bit budget 2T)")
    ax0.plot(Ts, serial["T-bit levels"], "x-", color=plotting.COLORS["uquant"], label="T-bit activation, 1 step")
    ax0.set_yscale("log", base=2)
    ax0.set_xlabel("T (bit budget T x Bs for Bs = 1)")
    ax0.set_ylabel("distinct output levels")
    ax0.legend(fontsize=7)
    ax1.plot(Ts, serial["neuron rmse"], "o-", color=plotting.COLORS["lbw"], label="T-step neuron, Bs = 1")
    ax1.plot(Ts, serial["T-bit rmse"], "x-", color=plotting.COLORS["uquant"], label="T-bit activation")
    ax1.set_yscale("log")
    ax1.set_xlabel("T")
    ax1.set_ylabel("rms error / Vth1, x ~ U[0, Vth1]")
    ax1.legend(fontsize=7)
    return fig


def bit_serial_report(serial: pd.DataFrame) -> str:
    """Per T of a ``bit_serial_table``: levels, bits and rmse of the neuron and the T-bit
    activation and their ratio; then whether the counts are T + 1, 2^T and 3T + 1 at every T."""
    lines = [f"T={r['T = bit budget']}: neuron {r['neuron levels']} levels ({r['neuron bits log2(levels)']:.2f} bits), "
             f"rmse {r['neuron rmse']:.4f}; T-bit {r['T-bit levels']} levels, rmse {r['T-bit rmse']:.4f}; "
             f"ratio {r['rmse ratio neuron / T-bit']:.2f}" for r in serial.to_dict("records")]
    counts = bool((serial["neuron levels"] == serial["formula T+1"]).all()
                  and (serial["T-bit levels"] == serial["formula 2^T"]).all())
    lines.append(f"levels = T + 1 (neuron) and 2^T (T-bit) for every T: {counts}")
    lines.append(f"Bs = 2 neuron levels = 3T + 1 for every T: "
                 f"{bool((serial['neuron Bs=2 levels'] == serial['formula 3T+1']).all())}")
    return "\n".join(lines)


#: Vth1 of the snntorch comparison: exact in float32, where snntorch keeps its threshold
SNN_VTH = 0.75


def snntorch_table(n: int, T: int, seed: int, vth: float = SNN_VTH) -> pd.DataFrame:
    """``snntorch_comparison`` on n random float64 inputs in [0, 1.5 Vth1) (generator seeded with
    ``seed``; column inputs = "random"), then on the 13 grid inputs k Vth1 / 4, k = 0..12, where
    potentials land exactly on the threshold (inputs = "grid k Vth1/4")."""
    gen = torch.Generator().manual_seed(seed)
    x_rand = torch.rand(n, generator=gen, dtype=torch.float64) * 1.5 * vth
    x_grid = torch.arange(0, 13, dtype=torch.float64) * vth / 4
    return pd.concat([snntorch_comparison(x_rand, vth, T).assign(inputs="random"),
                      snntorch_comparison(x_grid, vth, T).assign(inputs="grid k Vth1/4")], ignore_index=True)


def snntorch_report(snn: pd.DataFrame) -> str:
    """One line per row of ``snntorch_table``: the share of mismatched steps and the elements with a mismatch."""
    return "\n".join(f"{r['inputs']:<14} {r['ours']:<20} vs {r['snntorch']:<40}: mismatched steps "
                     f"{r['step mismatch fraction']:.4f}, elements with a mismatch {r['elements with a mismatch']} "
                     f"of {r['elements']}" for r in snn.to_dict("records"))


@dataclasses.dataclass
class ChapterModel:
    """The chapter's trained small CNN with its test data and what its training gave."""
    model: nn.Module
    x_test: torch.Tensor
    y_test: torch.Tensor
    losses: list
    test_accuracy: float
    T_bound: int
    description: str

    def record(self) -> dict:
        """The key numbers the chapter records: first training loss, mean of the last 10, test accuracy, T bound."""
        return dict(train_loss_first=self.losses[0], train_loss_last=float(np.mean(self.losses[-10:])),
                    test_accuracy=self.test_accuracy, T_bound=self.T_bound)

    def summary(self) -> str:
        """The data set's description and one line on the training."""
        return (f"{self.description}\n{len(self.losses)} Adam steps: training loss {self.losses[0]:.3f} -> "
                f"{np.mean(self.losses[-10:]):.3f} (mean of the last 10); test accuracy {self.test_accuracy:.1f} % "
                f"on {len(self.x_test)} images; T bound {self.T_bound}")


def train_chapter_model(dataset: str, seed: int, width: int, steps: int, batch_size: int, lr: float,
                        grad_T, device: str = "cpu") -> ChapterModel:
    """``build_chapter_model`` (Bw/Bs/T = 4/4/2, T bound max(max(grad_T) + 1, 3), so that T + 1 is
    reachable from every T the gradient check tests) trained by ``fit`` on ``dataset`` (split with
    seed 0), and its test accuracy."""
    from .. import data

    torch.manual_seed(seed)
    bundle = data.make_dataset(dataset, seed=0)
    x_train, y_train = (t.to(device) for t in bundle.train.tensors)
    x_test, y_test = (t.to(device) for t in bundle.test.tensors)
    spec = {"num_classes": bundle.num_classes, "in_channels": bundle.in_channels}
    T_bound = max(max(grad_T) + 1, 3)
    model = build_chapter_model(spec, bits=(4, 4), T=2, T_bound=T_bound, seed=seed, width=width).to(device)
    losses = fit(model, x_train, y_train, steps=steps, batch_size=batch_size, lr=lr, seed=seed)
    return ChapterModel(model, x_test, y_test, losses, accuracy(model, x_test, y_test), T_bound,
                        bundle.description)


def wide_layer(batch: int, channels: int, seed: int) -> tuple:
    """A wide ResNet-20 layer's stand-in (``channels`` channels, 32x32, 3x3): half-normal inputs,
    He-normal weights quantized to 4 bits with step 2 mean|w| / sqrt(7), and Vth1 = 2 mean(x) /
    sqrt(15) (the LSQ initial steps for 4 bits); returns (x, w_q, S_q, Vth1), float64."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, channels, 32, 32, generator=gen, dtype=torch.float64).abs()
    w = torch.randn(channels, channels, 3, 3, generator=gen, dtype=torch.float64) * math.sqrt(2 / (9 * channels))
    w_step = float(2 * w.abs().mean() / math.sqrt(7))
    return x, fake_quant(w, w_step, 4, signed=True), w_step, float(2 * x.mean() / math.sqrt(15))


def squeeze_table(model: nn.Module, x: torch.Tensor, T_list, wide_batch: int, wide_channels: int,
                  seed: int, layer: str = "features.1.0") -> pd.DataFrame:
    """``squeeze_check`` on two real shapes: ``layer`` of the trained model fed its actual inputs
    for the batch x, with its Vth1, Bs, quantized weights and step S_q, at its own T and at
    max(T_list); then ``wide_layer`` (seeded seed + 1) at max(T_list) with Bs = 4.  Adds the
    float64 and float32 differences relative to the largest output."""
    conv = dict(quant_layers(model, include_stem=True))[layer]
    x_real = neuron_io(model, x)[layer][0].cpu()
    with torch.no_grad():
        w_real = conv.wq(conv.weight).cpu()
    vth, bits, T_own = float(conv.neuron.step.detach()[0]), int(conv.neuron.bits[0]), int(conv.neuron.T)
    rows = [{"layer": f"small CNN {layer} (real input)",
             **squeeze_check(x_real, w_real, vth, bits, T, w_step=float(conv.wq.step.detach()[0]))}
            for T in sorted({T_own, max(T_list)})]
    x_wide, w_wide, w_step, vth_wide = wide_layer(wide_batch, wide_channels, seed + 1)
    rows.append({"layer": f"wide ResNet-20 layer ({wide_channels} ch, 32x32)",
                 **squeeze_check(x_wide, w_wide, vth_wide, 4, max(T_list), w_step=w_step)})
    squeeze = pd.DataFrame(rows)
    squeeze["rel diff float64"] = squeeze["max diff float64"] / squeeze["max |y|"]
    squeeze["rel diff float32"] = squeeze["max diff float32"] / squeeze["max |y|"]
    return squeeze


def squeeze_report(squeeze: pd.DataFrame) -> str:
    """Per row of ``squeeze_table``: whether float64 and float32 agree within 1e-13 and 1e-5 of the
    largest output, and whether the integer codes give identical results."""
    return "\n".join(
        f"{r['layer'].split(' (')[0]}, spikes {list(r['spikes shape'])[:3]}..., T = {r['T']}: "
        f"float64 rel. diff < 1e-13: {r['rel diff float64'] < 1e-13}; float32 rel. diff < 1e-5: "
        f"{r['rel diff float32'] < 1e-5}; integer codes identical: {r['max diff integer codes'] == 0}"
        for r in squeeze.to_dict("records"))


def squeeze_sentence(squeeze: pd.DataFrame) -> str:
    """The largest relative differences of ``squeeze_table`` and the convolutions saved, in words."""
    return (f"Largest differences relative to the largest output: float64 {squeeze['rel diff float64'].max():.1e}, "
            f"float32 {squeeze['rel diff float32'].max():.1e}; on the integer codes the two sides are identical "
            f"(largest difference {squeeze['max diff integer codes'].max():g}). The squeezed layer ran 1 convolution "
            f"where the per-step form ran {int(squeeze['convolutions per step'].max())}.")


#: the chapter model's T per layer in section 6: stem and second convolution 2, third 3, linear layer 1
MIXED_T = {"features.0.0": 2, "features.1.0": 2, "features.2.0": 3, "fc": 1}


@torch.no_grad()
def mixed_T_effect(model: nn.Module, x: torch.Tensor, y: torch.Tensor, T_by_layer: dict) -> tuple[float, int]:
    """Test accuracy (%) of ``model`` with the T values of ``T_by_layer`` and the number of
    inputs whose predicted class differs from the model's prediction at its own T values
    (restored afterwards)."""
    before = {name: int(layer.neuron.T) for name, layer in quant_layers(model, include_stem=True)}
    model.eval()
    pred = model(x).argmax(1)
    try:
        set_T(model, T_by_layer)
        acc = accuracy(model, x, y)
        changed = int((model(x).argmax(1) != pred).sum())
    finally:
        set_T(model, before)
    return acc, changed


def mixed_T_report(rows: list[dict]) -> str:
    """Per row of ``mixed_T_forward``: T, the per-sample shapes the neuron receives and sends, and
    whether its output lies on the grid Vth1/T (within 1e-3 of a step)."""
    return "\n".join(
        f"{r['layer']:<13} T = {r['T']}: receives {list(r['neuron input shape'])[1:]} per sample, "
        f"sends {list(r['neuron output shape'])[1:]}; on the grid Vth1/T: {r['max |r T/Vth1 - round(.)|'] < 1e-3}"
        for r in rows)


def layer_encoding(model: nn.Module, io: dict, name: str, T: int,
                   quantiles=(0.1, 0.3, 0.5, 0.7, 0.9, 0.99)) -> pd.DataFrame:
    """What layer ``name`` does with its input at T steps: the ``quantiles`` of its positive
    neuron inputs (from ``io``, a ``neuron_io`` result), their counts S_0 .. S_{T-1} from
    ``neuron_trace`` with the layer's Vth1 and Bs, and r / Vth1 = mean_t S_t."""
    layer = dict(quant_layers(model, include_stem=True))[name]
    x = io[name][0].flatten().cpu().double()
    pick = torch.quantile(x[x > 0], torch.tensor(quantiles, dtype=x.dtype))
    vth = float(layer.neuron.step.detach()[0])
    _, S = neuron_trace(pick, vth, int(layer.neuron.bits[0]), T)
    return pd.DataFrame({"x / Vth1": (pick / vth).numpy(), **{f"S_{t}": S[t].int().numpy() for t in range(T)},
                         "r / Vth1": S.mean(0).numpy()})


def mixed_T_sentence(mixed_accuracy: float, test_accuracy: float, changed: int, n_test: int) -> str:
    """The mixed-T run against T = 2 everywhere, in words."""
    return (f"With these $T$ values the model's test accuracy is {mixed_accuracy:.1f} % against {test_accuracy:.1f} % "
            f"with $T = 2$ everywhere (the model was trained at $T = 2$); the predicted class changed on {changed} of "
            f"{n_test} test images.")


def batches_of(x: torch.Tensor, y: torch.Tensor, batch_size: int, n: int) -> list[tuple]:
    """The first min(n, len(x) // batch_size) consecutive full batches of (x, y)."""
    return [(x[i * batch_size:(i + 1) * batch_size], y[i * batch_size:(i + 1) * batch_size])
            for i in range(min(n, len(x) // batch_size))]


def agreement_tables(tg: pd.DataFrame) -> list[pd.DataFrame]:
    """``agreement_summary`` of a ``t_gradient_vs_difference`` table: overall, by T, by layer."""
    return [agreement_summary(tg), agreement_summary(tg, "T"), agreement_summary(tg, "layer")]


def best_constant_guess(p_falls):
    """How often the better constant guess ('more steps lower the loss' or its opposite) is right,
    given the fraction p of comparisons where L(T+1) < L(T): max(p, 1 - p)."""
    return np.maximum(p_falls, 1 - p_falls)


def t_gradient_record(tg: pd.DataFrame) -> dict:
    """The key numbers of the T-gradient check as the chapter records them: the overall agreement
    (count, fraction, Wilson interval, ties), the two baselines, Spearman's rho, the number of
    batches and the comparisons themselves."""
    o = agreement_summary(tg).iloc[0]
    return dict(n=int(o["n"]), agree=int(o["agree"]), fraction=float(o["fraction"]),
                ci=[float(o["CI low"]), float(o["CI high"])], ties=int(o["ties"]),
                loss_falls=float(o["P(L(T+1) < L(T))"]),
                surrogate_says_more_T=float(o["surrogate says T helps (g < 0)"]), spearman=float(o["spearman"]),
                batches=int(tg["batch"].nunique()),
                rows=tg[["T", "batch", "layer", "dL/dT_hat", "L(T+1)-L(T)", "agree"]].to_dict("records"))


def t_gradient_setting(tg: pd.DataFrame, batch_size: int) -> str:
    """How many batches, T values, layers and comparisons the check ran."""
    return (f"{tg['batch'].nunique()} test batches of {batch_size}, T in {[int(t) for t in tg['T'].unique()]}, "
            f"{tg['layer'].nunique()} layers: {len(tg)} comparisons")


def plot_t_gradient(tg: pd.DataFrame, tables: list[pd.DataFrame]):
    """Left: the surrogate dL/dT_hat against L(T+1) - L(T), one colour per layer (symlog axes);
    right: the sign agreement with its 95 % interval overall, by T and by layer (``tables``, from
    ``agreement_tables``), beside the best constant guess."""
    from .. import plotting

    overall, by_T, by_layer = tables
    fig, (ax0, ax1) = plotting.figure(ncols=2, figsize=(7.6, 3.4), layout="constrained")
    colors = dict(zip(tg["layer"].unique(), [plotting.COLORS[k] for k in ("fp", "lbw", "lbw_renew", "uquant")]))
    for name, g in tg.groupby("layer", sort=False):
        ax0.scatter(g["dL/dT_hat"], g["L(T+1)-L(T)"], s=10, alpha=0.7, color=colors.get(name), label=name)
    ax0.axhline(0, color="k", lw=0.6)
    ax0.axvline(0, color="k", lw=0.6)
    ax0.set_xscale("symlog", linthresh=1e-2)
    ax0.set_yscale("symlog", linthresh=1e-3)
    ax0.set_xlabel("surrogate dL/dT_hat")
    ax0.set_ylabel("L(T+1) - L(T)")
    ax0.legend(fontsize=7)
    rows = pd.concat([overall.assign(label="all"), by_T.assign(label=[f"T = {t}" for t in by_T["T"]]),
                      by_layer.assign(label=list(by_layer["layer"]))], ignore_index=True)
    ypos = np.arange(len(rows))[::-1]
    ax1.errorbar(rows["fraction"], ypos, xerr=[rows["fraction"] - rows["CI low"], rows["CI high"] - rows["fraction"]],
                 fmt="o", color=plotting.COLORS["lbw"], label="sign agreement (95 % CI)")
    ax1.plot(best_constant_guess(rows["P(L(T+1) < L(T))"]), ypos, "x", color=plotting.COLORS["uquant"],
             label="best constant guess")
    ax1.axvline(0.5, color="k", lw=0.6, ls=":")
    ax1.set_yticks(ypos, rows["label"], fontsize=7)
    ax1.set_xlim(0, 1)
    ax1.set_xlabel("fraction of comparisons")
    ax1.legend(fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1.0))
    return fig


def agreement_verdict(low: float, high: float) -> str:
    """Where the 95 % interval [low, high] of the sign agreement lies against a coin flip (0.5)."""
    if low <= 0.5 <= high:
        return "indistinguishable from a coin flip"
    return "better than chance" if low > 0.5 else \
        "worse than chance: the surrogate points the wrong way more often than not"


def t_gradient_sentence(tg: pd.DataFrame) -> str:
    """The overall sign agreement of the T gradient with its interval and verdict, the two
    baselines (how often the loss fell, how often the surrogate said so) and Spearman's rho."""
    o = agreement_summary(tg).iloc[0]
    lo, hi, falls = o["CI low"], o["CI high"], o["P(L(T+1) < L(T))"]
    return (f"Over {int(o['n'])} comparisons the surrogate's sign agreed with the discrete change in {int(o['agree'])} "
            f"({o['fraction']:.1%}, 95 % interval {lo:.1%} to {hi:.1%}): {agreement_verdict(lo, hi)}. The loss fell "
            f"when $T$ grew in {falls:.1%} of the comparisons, so the best constant guess is right "
            f"{best_constant_guess(falls):.1%} of the time; the surrogate predicted that more steps help in "
            f"{o['surrogate says T helps (g < 0)']:.1%} of them. The rank correlation between the surrogate and the "
            f"discrete change is {o['spearman']:+.2f}.")


def paper_vs_book(errors: pd.DataFrame, ablation: pd.DataFrame, serial: pd.DataFrame, snn: pd.DataFrame,
                  squeeze: pd.DataFrame, tg: pd.DataFrame, mixed_accuracy: float, test_accuracy: float,
                  p: dict, mixed_T: dict | None = None) -> pd.DataFrame:
    """One row per statement of the paper (or of Shen et al.) checked in the chapter: the claim,
    what the paper says, what the chapter measured and in which setting.  ``p``: the chapter's
    parameters (``recorded_parameters``); the tables are those of the sections above."""
    mixed_T = MIXED_T if mixed_T is None else mixed_T
    T_hi, b_hi = int(errors["T"].max()), int(errors["Bs"].max())
    b_row = errors[(errors["Bs"] == b_hi) & (errors["T"] == T_hi)].set_index("variant")
    old, new = b_row.loc["tau=2, floor (old)"], b_row.loc["tau=1, round (refined)"]
    abl = ablation[ablation["target"] == "1/1/1"].iloc[0]
    o = agreement_summary(tg).iloc[0]
    snn_rand = snn[snn["inputs"] == "random"]
    return pd.DataFrame([
        {"claim": "refined neuron (tau = 1, round) vs old (tau = 2, floor)",
         "paper": (f"better accuracy in training, e.g. ResNet-20 CIFAR-10 at 1/1/1: {abl['tau1_round_renew']:.2f} % "
                   f"vs {abl['tau2_floor_renew']:.2f} % (tau = 2, floor; both with renewal; the paper's neuron ablation table)"),
         "this book": (f"encoding error of r at Bs = {b_hi}, T = {T_hi}: rms {new['rmse']:.4f} vs {old['rmse']:.4f} Vth1 "
                       f"(old neuron's bias {old['bias']:+.3f}); training comparison: ablation chapter"),
         "setting": f"single neuron, {p['n_points']} inputs over its range, Bs in {list(p['bits_list'])}, T in {list(p['T_list'])}"},
        {"claim": "round firing (shift Vth2 = 0.5) instead of floor",
         "paper": "the refined neuron rounds the spike count instead of flooring it",
         "this book": ("with tau = 1 the error bound falls from Vth1/T to Vth1/(2T) and the bias from -Vth1/(2T) to 0; "
                       "the refined neuron is a uniform quantizer with step Vth1/T"),
         "setting": "single neuron, closed form and measurement"},
        {"claim": "no membrane decay (tau = 1)",
         "paper": "the refined neuron drops the membrane decay of the old one",
         "this book": (f"tau = 2 makes r fall short of x nearly in proportion (best rescaling "
                       f"{old['best amplitude / Vth1']:.2f}); even rescaled its rms error is "
                       f"{old['rmse best amplitude'] / new['rmse']:.1f}x the refined one's"),
         "setting": f"Bs = {b_hi}, T = {T_hi}"},
        {"claim": "temporal squeezing: conv(mean_t s_t) = mean_t conv(s_t)",
         "paper": "the convolution runs once instead of T times",
         "this book": (f"exact on integer codes (difference {squeeze['max diff integer codes'].max():g}); float64 rel. diff "
                       f"<= {squeeze['rel diff float64'].max():.0e}, float32 <= {squeeze['rel diff float32'].max():.0e}"),
         "setting": f"small CNN conv2 on real activations; wide ResNet-20 layer, batch {p['wide_batch']}"},
        {"claim": "layers with different T connect without padding",
         "paper": "each layer re-expands the average over its own T",
         "this book": (f"runs with T = {list(mixed_T.values())}: every neuron sends a tensor without time axis on its "
                       f"grid Vth1/T; test accuracy {mixed_accuracy:.1f} % (vs {test_accuracy:.1f} % at T = 2)"),
         "setting": f"small CNN, {p['train_steps']} Adam steps on {p['dataset']}"},
        {"claim": "T learned by the gradient through 1/T",
         "paper": "1/T coded as 1/(T + T_hat - stopgrad(T_hat))",
         "this book": (f"sign agrees with L(T+1) - L(T) in {o['fraction']:.1%} of {int(o['n'])} cases "
                       f"(95 % CI {o['CI low']:.1%}-{o['CI high']:.1%}); best constant guess "
                       f"{best_constant_guess(o['P(L(T+1) < L(T))']):.1%}"),
         "setting": (f"same model, eval mode, T in {list(p['grad_T'])}, {tg['batch'].nunique()} test batches, "
                     f"all {tg['layer'].nunique()} layers")},
        {"claim": "a T-step 1-bit SNN has log2(T+1) bits of resolution (Shen et al.)",
         "paper": "T + 1 levels vs 2^T for a T-bit activation at the same bit budget",
         "this book": (f"confirmed: T + 1 and 2^T levels for T = 1..{p['T_serial_max']}; at T = {p['T_serial_max']} the "
                       f"neuron's rms error is {serial.iloc[-1]['rmse ratio neuron / T-bit']:.1f}x the T-bit one's"),
         "setting": "x ~ U[0, Vth1], dense grid"},
        {"claim": "binary special case: Bs = 1, tau = 1",
         "paper": "not stated; the usual integrate-and-fire neuron with soft reset of SNN libraries",
         "this book": (f"floor firing = snntorch.Leaky(beta=1, threshold=Vth1, subtract) spike for spike on {p['snn_n']} random "
                       f"inputs ({int(snn_rand['elements with a mismatch'].iloc[0])} mismatches), up to >= vs >; round firing "
                       f"= the same with the membrane started at Vth1/2"),
         "setting": f"float64 inputs, T = {p['snn_T']}, snntorch 1.0.0"},
    ])


# ============================================================================ the chapter's parameters
from .. import params as _p  # noqa: E402

# nb/03_neuron.ipynb's parameters (its validation cell: ``params.check(PARAMETERS, globals())``)
PARAMETERS = _p.declare(
    _p.seed("seed of the model initialisation, the data order and the random inputs"),
    _p.dataset("data of the trained model (sections 5-7): digits, mnist5k, mnist5k-noisy",
               ("digits", "mnist5k", "mnist5k-noisy"), "mnist5k-noisy"),
    _p.Param("bits_list", "int", [1, 2, 4], "spike bit widths Bs of the error study (section 2)",
             low=1, high=8, many=True),
    _p.Param("T_list", "int", [1, 2, 4, 8], "time steps T of the error study and the squeezing check",
             low=1, high=32, many=True),
    _p.Param("n_points", "int", 4001, "inputs per (Bs, T) in the error study, evenly spread over the "
             "neuron's range", low=11, high=10**6),
    _p.Param("trace_bits", "int", 2, "Bs of the membrane traces (section 1)", low=1, high=4),
    _p.Param("trace_T", "int", 8, "steps of the membrane traces", low=2, high=32),
    _p.Param("T_serial_max", "int", 8, "bit-serial view: T from 1 to T_serial_max", low=2, high=16),
    _p.Param("snn_n", "int", 20000, "random inputs of the snntorch comparison", low=10, high=10**7),
    _p.Param("snn_T", "int", 16, "steps of the snntorch comparison", low=1, high=256),
    _p.Param("width", "int", 32, "base width of the chapter's small CNN (the default model of the training "
             "chapters)", low=4, high=256),
    _p.Param("train_steps", "int", 150, "Adam steps of the brief training (sections 5-7)", low=1, high=10**5),
    _p.Param("train_lr", "float", 5e-3, "Adam learning rate of that training", low=0, high=1, open_low=True),
    _p.Param("batch_size", "int", 64, "batch size of the training and of the gradient check", low=2, high=1024),
    _p.Param("grad_T", "int", [1, 2, 3], "T values at which the T gradient is checked (every layer at that T)",
             low=1, high=8, many=True),
    _p.Param("n_grad_batches", "int", 12, "test batches of the gradient check (capped by the test set)",
             low=1, high=1000),
    _p.Param("wide_batch", "int", 2, "batch of the wide ResNet-20 layer in the squeezing check", low=1, high=64),
    _p.Param("wide_channels", "int", 128, "channels of that layer (128 in the wide ResNet-20)", low=1, high=512),
    _p.Param("device", "device", "cpu", "where the model is trained and checked: cpu, cuda, cuda:N",
             available=True),
    _p.fig_dir(),
    _p.record_path("03_neuron"),
)
