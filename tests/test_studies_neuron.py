"""adabit_lite.studies.neuron: the computations of chapter 3, checked against hand-worked cases,
closed forms and independent recomputations (exact fractions, scipy, autograd hooks)."""

from __future__ import annotations

import copy
import math
from fractions import Fraction

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.stats import binomtest

from adabit_lite.layers import quant_layers
from adabit_lite.neuron import SpikingNeuron, neuron_trace
from adabit_lite.studies import neuron as study


def exact_counts(x: Fraction, vth: Fraction, bits: int, T: int, tau: int, firing: str) -> list[int]:
    """The neuron of book/method.md#method-neuron in exact rational arithmetic (independent of the package)."""
    v, out, counts = Fraction(0), Fraction(0), []
    for _ in range(T):
        v = v / tau - out + x
        u = v / vth
        s = math.floor(u + Fraction(1, 2)) if firing == "round" else math.floor(u)
        s = min(max(s, 0), 2**bits - 1)
        counts.append(s)
        out = vth * s
    return counts


# ---------------------------------------------------------------- hand-worked traces and the rate
def test_hand_worked_traces():
    # x = 0.3, Vth1 = 1, Bs = 2, T = 4.  Refined: v = 0.3 (0), 0.6 (1), -0.1 (0), 0.2 (0) -> r = 1/4.
    x = torch.tensor([0.3], dtype=torch.float64)
    assert neuron_trace(x, 1.0, 2, 4)[1][:, 0].tolist() == [0, 1, 0, 0]
    assert study.rate(x, 1.0, 2, 4).item() == pytest.approx(0.25)
    # Old neuron (tau = 2, floor): v = 0.3, 0.45, 0.525, 0.5625, never reaches 1 -> r = 0.
    assert study.rate(x, 1.0, 2, 4, tau=2.0, firing="floor").item() == 0.0
    # x = 1.45 refined: v = 1.45 (1), 1.9 (2), 1.35 (1), 1.8 (2) -> r = 1.5
    assert study.rate(torch.tensor([1.45], dtype=torch.float64), 1.0, 2, 4).item() == pytest.approx(1.5)


@pytest.mark.parametrize("tau,firing", [(1, "round"), (1, "floor"), (2, "round"), (2, "floor")])
def test_rate_matches_exact_arithmetic(tau, firing):
    vth, bits, T = Fraction(3, 4), 3, 7
    xs = [Fraction(k, 37) for k in range(0, 37 * 6, 5)]  # x up to ~ 6 Vth1 (beyond the range too)
    x = torch.tensor([float(v) for v in xs], dtype=torch.float64)
    S = neuron_trace(x, float(vth), bits, T, tau=tau, firing=firing)[1]
    for i, xv in enumerate(xs):
        assert S[:, i].int().tolist() == exact_counts(xv, vth, bits, T, tau, firing)


def test_refined_neuron_is_a_uniform_quantizer_with_step_vth_over_T():
    g = torch.Generator().manual_seed(2)
    for bits in (1, 2, 4):
        for T in (1, 2, 3, 5, 8):
            x = torch.rand(2000, generator=g, dtype=torch.float64) * (2**bits - 1) * 0.7
            r = study.rate(x, 0.7, bits, T)
            grid = 0.7 / T
            np.testing.assert_allclose(r, torch.round(x / grid) * grid, atol=1e-12)  # nearest grid point
            r_floor = study.rate(x, 0.7, bits, T, firing="floor")
            np.testing.assert_allclose(r_floor, torch.floor(x / grid) * grid, atol=1e-12)  # rounded down


def test_rate_errors_table():
    df = study.rate_errors([1, 2], [1, 2, 4], n_points=801)
    assert len(df) == 4 * 2 * 3
    ref = df[df["variant"] == "tau=1, round (refined)"]
    assert (ref["max |r-x|"] <= ref["bound 1/(2T)"] + 1e-12).all()
    # symmetric grid: no bias, except +1/(2T) / n from each input exactly on a rounding tie
    # (at most T (2^Bs - 1) of them, rounded up)
    assert (ref["bias"].abs() <= (2 ** ref["Bs"] - 1) / (2 * 801) + 1e-15).all()
    assert (ref[ref["T"] == 2]["bias"].abs() < 1e-12).all()  # 801 odd: no input on a tie at T = 2
    fl = df[df["variant"] == "tau=1, floor"]
    np.testing.assert_allclose(fl["bias"], -1 / (2 * fl["T"]), atol=2e-3)
    # the rmse of the refined neuron: uniform rounding error on the midpoint grid, recomputed in numpy
    for _, row in ref.iterrows():
        top = 2 ** row["Bs"] - 1
        x = (np.arange(801) + 0.5) / 801 * top
        r = np.round(x * row["T"]) / row["T"]
        assert row["rmse"] == pytest.approx(np.sqrt(np.mean((r - x) ** 2)), abs=1e-12)
    # at T = 1 the decay never acts: tau = 2 equals tau = 1 for the same firing rule
    for firing in ("round", "floor"):
        a = df[(df["firing"] == firing) & (df["T"] == 1)].groupby("tau")["rmse"].apply(list)
        assert a[1.0] == pytest.approx(a[2.0])
    old = df[(df["variant"] == "tau=2, floor (old)") & (df["T"] > 1)]
    assert (old["bias"] < -0.2).all()


def test_bit_serial_table():
    df = study.bit_serial_table(range(1, 7), n_points=3001)
    assert df["neuron levels"].tolist() == [T + 1 for T in range(1, 7)]
    assert df["T-bit levels"].tolist() == [2**T for T in range(1, 7)]
    assert df["neuron Bs=2 levels"].tolist() == [3 * T + 1 for T in range(1, 7)]
    np.testing.assert_allclose(df["neuron rmse"], df["neuron (1/T)/sqrt(12)"], rtol=1e-3)
    np.testing.assert_allclose(df["T-bit rmse"], df["T-bit (1/(2^T-1))/sqrt(12)"], rtol=1e-2)


def test_module_sends_the_mean_of_the_trace():
    """The layer's neuron module sends exactly the average of the spikes that neuron_trace shows."""
    n = SpikingNeuron(bits=3, T=5).double().eval()
    with torch.no_grad():
        n.step.fill_(0.4)
    x = torch.rand(200, dtype=torch.float64) * 3
    S = neuron_trace(x, 0.4, 3, 5)[1]
    np.testing.assert_allclose(n(x).detach(), 0.4 * S.mean(0), atol=1e-12)


# ---------------------------------------------------------------- squeezing
def test_squeeze_check_equivalence():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 5, 9, 9, generator=g) * 2
    w = torch.randn(4, 5, 3, 3, generator=g)
    out = study.squeeze_check(x, w, vth=0.5, bits=2, T=4)
    assert out["spikes shape"] == (4, 3, 5, 9, 9)
    assert out["max diff float64"] <= 1e-12 * out["max |y|"]
    assert out["max diff float32"] <= 1e-5 * out["max |y|"]
    assert out["max diff integer codes"] == 0
    # the squeezed output is the conv of the module's output: r = mean_t Vth1 S_t
    r = 0.5 * neuron_trace(x.double(), 0.5, 2, 4)[1].mean(0)
    y = F.conv2d(r, w.double(), padding=1)
    assert float(y.abs().max()) == pytest.approx(out["max |y|"], rel=1e-12)
    # and the per-step side, step by step: T separate convolutions of Vth1 S_t, averaged
    S = neuron_trace(x.double(), 0.5, 2, 4)[1]
    per_step = sum(F.conv2d(0.5 * S[t], w.double(), padding=1) for t in range(4)) / 4
    assert float((y - per_step).abs().max()) <= 1e-12 * out["max |y|"]
    # the integer check uses the weight codes: with a step that makes them integers, the float64
    # conv of the integer counts is exact, so squeezing and per-step sums agree to the last bit
    w_int = torch.randint(-7, 8, (4, 5, 3, 3), generator=g).double()
    assert study.squeeze_check(x, w_int * 0.125, vth=0.5, bits=2, T=4, w_step=0.125)["max diff integer codes"] == 0


# ---------------------------------------------------------------- snntorch
def test_snntorch_match_and_boundary():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(3000, generator=g, dtype=torch.float64) * 1.2
    df = study.snntorch_comparison(x, 0.75, 12)
    assert df["elements with a mismatch"].tolist()[:2] == [0, 0]
    assert df["elements with a mismatch"].iloc[2] > 100  # a plain half threshold is another neuron
    # exactly at the threshold: ours fires (v >= Vth1), snntorch does not (mem > threshold)
    at = torch.tensor([0.75], dtype=torch.float64)
    assert neuron_trace(at, 0.75, 1, 1, firing="floor")[1].item() == 1
    assert study.snntorch_leaky_spikes(at, 0.75, 1).item() == 0


# ---------------------------------------------------------------- the chapter model and the T gradient
@pytest.fixture(scope="module")
def small_model():
    torch.manual_seed(0)
    spec = {"num_classes": 3, "in_channels": 1}
    model = study.build_chapter_model(spec, bits=(3, 3), T=2, T_bound=4, seed=0, width=4)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(96, 1, 16, 16, generator=g)
    y = (x.mean((1, 2, 3)) > 0).long() + (x[:, :, :8].mean((1, 2, 3)) > 0.1).long()
    losses = study.fit(model, x, y, steps=25, batch_size=32, lr=1e-2, seed=0)
    return model, x, y, losses


def test_fit_learns_and_leaves_T_alone(small_model):
    model, x, y, losses = small_model
    assert np.mean(losses[-5:]) < losses[0]
    for _, layer in quant_layers(model, include_stem=True):
        assert int(layer.neuron.T) == 2 and layer.neuron.T.latent.item() == 2.0
        assert layer.neuron.T.high == 4 and bool(layer.neuron.initialized)


def test_set_T_respects_bounds(small_model):
    model = small_model[0]
    with pytest.raises(ValueError, match="outside the bounds"):
        study.set_T(model, 5)
    study.set_T(model, 2)


def test_t_gradient_against_hooks_and_hand_differences(small_model):
    model, x, y, _ = small_model
    batches = [(x[:32], y[:32]), (x[32:64], y[32:64])]
    df = study.t_gradient_vs_difference(model, batches, [1, 3])
    layers = quant_layers(model, include_stem=True)
    assert len(df) == 2 * 2 * len(layers)
    assert all(int(layer.neuron.T) == 2 for _, layer in layers)  # restored
    # independent surrogate: dL/dT_hat = -<dL/dr, r> / T from the neuron outputs' gradients
    T0, (xb, yb) = 3, batches[1]
    ref = copy.deepcopy(model).eval()
    study.set_T(ref, T0)
    outs = {}
    for name, layer in quant_layers(ref, include_stem=True):
        def keep(module, inputs, output, name=name):
            output.retain_grad()
            outs[name] = output
        layer.neuron.register_forward_hook(keep)
    F.cross_entropy(ref(xb), yb).backward()
    for name, layer in quant_layers(ref, include_stem=True):
        row = df[(df["T"] == T0) & (df["batch"] == 1) & (df["layer"] == name)].iloc[0]
        surrogate = -float((outs[name].grad * outs[name]).sum().detach()) / T0
        assert row["dL/dT_hat"] == pytest.approx(surrogate, rel=1e-5, abs=1e-9)
        # the discrete change, by hand on a copy
        other = copy.deepcopy(model).eval()
        study.set_T(other, T0)
        with torch.no_grad():
            base = float(F.cross_entropy(other(xb), yb))
            dict(quant_layers(other, include_stem=True))[name].neuron.T.set_(T0 + 1)
            up = float(F.cross_entropy(other(xb), yb))
        assert row["L(T+1)-L(T)"] == pytest.approx(up - base, abs=1e-9)
        assert row["agree"] == (np.sign(row["dL/dT_hat"]) == np.sign(up - base) and up != base)


def test_agreement_summary_and_wilson():
    for k, n in [(0, 10), (7, 10), (90, 180), (180, 180)]:
        lo, hi = study.wilson_interval(k, n)
        ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        assert lo == pytest.approx(ci.low, abs=1e-9) and hi == pytest.approx(ci.high, abs=1e-9)
    import pandas as pd

    df = pd.DataFrame({"T": [1, 1, 2, 2], "layer": ["a", "b", "a", "b"],
                       "dL/dT_hat": [1.0, -1.0, 2.0, 0.5], "L(T+1)-L(T)": [0.1, 0.2, -0.3, 0.0],
                       "tie": [False, False, False, True], "agree": [True, False, False, False]})
    s = study.agreement_summary(df).iloc[0]
    assert (s["n"], s["agree"], s["ties"]) == (4, 1, 1)
    assert s["P(L(T+1) < L(T))"] == 0.25 and s["surrogate says T helps (g < 0)"] == 0.25
    by = study.agreement_summary(df, "T")
    assert by["T"].tolist() == [1, 2] and by["agree"].tolist() == [1, 0]


def test_mixed_T_forward(small_model):
    model, x, _, _ = small_model
    T_by = {"features.0.0": 2, "features.1.0": 1, "features.2.0": 3, "fc": 4}
    io, rows = study.mixed_T_forward(model, x[:8], T_by)
    assert [r["T"] for r in rows] == list(T_by.values())
    for r in rows:
        assert r["neuron input shape"] == r["neuron output shape"] and r["neuron input shape"][0] == 8
        assert r["max |r T/Vth1 - round(.)|"] < 1e-4
        if not r["signed"]:
            assert r["distinct r values"] <= r["most values T(2^Bs-1)+1"]
    assert all(int(layer.neuron.T) == 2 for _, layer in quant_layers(model, include_stem=True))
