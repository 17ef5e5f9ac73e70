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
