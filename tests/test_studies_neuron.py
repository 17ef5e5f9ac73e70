"""adabit_lite.studies.neuron: the computations of chapter 3, checked against hand-worked cases,
closed forms and independent recomputations (exact fractions, scipy, autograd hooks)."""

from __future__ import annotations

import copy
import math
from fractions import Fraction

import numpy as np
import pandas as pd
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


# ================================================================ the chapter's tables, figures and sentences
def test_recorded_parameters_drop_run_settings_and_list_sequences():
    from adabit_lite import params

    values = {**params.defaults(study.PARAMETERS), "bits_list": (1, 2), "grad_T": range(1, 3)}
    rec = study.recorded_parameters(values)
    assert list(rec)[:4] == ["seed", "dataset", "bits_list", "T_list"] and len(rec) == 18
    assert not {"device", "fig_dir", "record_path"} & set(rec)
    assert rec["bits_list"] == [1, 2] and rec["grad_T"] == [1, 2] and rec["n_points"] == 4001


def test_neuron_source_shows_both_package_functions():
    text = study.neuron_source()
    assert text.startswith("```python\ndef membrane_update") and text.endswith("```")
    assert "\ndef neuron_step" in text


# hand-worked with Vth1 = 1, Bs = 2, T = 4 (v_t = v_{t-1}/tau - S_{t-1} + x):
#   refined x = 0.31: v = 0.31, 0.62, -0.07, 0.24 -> S = 0 1 0 0, r = 0.25
#   refined x = 1.47: v = 1.47, 1.94, 1.41, 1.88 -> S = 1 2 1 2, r = 1.5
#   old     x = 0.31: v = 0.31, 0.465, 0.5425, 0.58125 -> S = 0 0 0 0
#   old     x = 1.47: v = 1.47, 1.205, 1.0725, 1.00625 -> S = 1 1 1 1
HAND_TRACES = {"refined (tau=1, round)|0.31": [0, 1, 0, 0], "refined (tau=1, round)|1.47": [1, 2, 1, 2],
               "old (tau=2, floor)|0.31": [0, 0, 0, 0], "old (tau=2, floor)|1.47": [1, 1, 1, 1]}


@pytest.mark.parametrize("vth", [1.0, 0.5])
def test_membrane_traces_by_hand(vth):
    traces, table = study.membrane_traces(vth, 2, 4, x=(0.31, 1.47))
    assert study.trace_counts(table) == HAND_TRACES  # x in units of Vth1: the counts do not depend on Vth1
    assert table["r / Vth1"].tolist() == [0.25, 1.5, 0.0, 1.0]
    assert table["|r - x| / Vth1"].tolist() == pytest.approx([0.06, 0.03, 0.31, 0.47])
    v = traces["refined (tau=1, round)"][0][:, 0] / vth
    assert v.tolist() == pytest.approx([0.31, 0.62, -0.07, 0.24])


def test_trace_report_lines():
    _, table = study.membrane_traces(1.0, 2, 4, x=(0.31, 1.47))
    lines = study.trace_report(table).splitlines()
    assert lines[0] == "refined (tau=1, round)   x = 0.31: S = 0100  r = 0.2500  |r - x| = 0.0600"
    assert lines[3] == "old (tau=2, floor)       x = 1.47: S = 1111  r = 1.0000  |r - x| = 0.4700"


def test_plot_traces_draws_potentials_and_thresholds():
    traces, _ = study.membrane_traces(1.0, 2, 4, x=(0.31, 1.47))
    fig = study.plot_traces(traces, 2, x=(0.31, 1.47))
    axes = fig.axes
    assert len(axes) == 4  # 2 x 2, row-major: potentials of both neurons, then running means
    assert axes[0].lines[0].get_ydata().tolist() == pytest.approx([0.31, 0.62, -0.07, 0.24])
    dashed = lambda ax: sorted(l.get_ydata()[0] for l in ax.lines if l.get_linestyle() == "--")
    assert dashed(axes[0]) == [0.5, 1.5, 2.5] and dashed(axes[1]) == [1.0, 2.0, 3.0]
    # running mean of the refined neuron for x = 1.47 (lines: step and dotted x per input): 1, 3/2, 4/3, 6/4
    assert list(axes[2].lines[2].get_ydata()) == pytest.approx([1, 1.5, 4 / 3, 1.5])


def _error_frame():
    """A hand-made rate_errors-like table: 4 variants x Bs 1 x T 1, 2; the T = 2 rows differ."""
    rows = []
    numbers = {"tau=2, floor (old)": (0.4, -0.2, 0.3, 0.2, 0.8), "tau=2, round": (0.3, -0.1, 0.2, 0.15, 0.9),
               "tau=1, floor": (0.5, -0.25, 0.29, 0.29, 1.0), "tau=1, round (refined)": (0.25, 0.0, 0.1, 0.1, 1.0)}
    for name, (mx, bias, rmse, best, amp) in numbers.items():
        for T in (1, 2):
            k = 1.0 if T == 2 else 2.0  # the T = 1 rows are off by a factor, so a wrong row shows
            rows.append({"variant": name, "Bs": 1, "T": T, "max |r-x|": mx * k, "bias": bias * k, "rmse": rmse * k,
                         "rmse best amplitude": best * k, "best amplitude / Vth1": amp, "bound 1/(2T)": 1 / (2 * T)})
    return pd.DataFrame(rows)


def test_rate_error_report():
    lines = study.rate_error_report(_error_frame(), n_points=100).splitlines()
    assert lines[:2] == ["tau=2, floor (old)", "  Bs=1: max |r-x| 0.800 0.400 | bias -0.400 -0.200  (T = 1, 2)"]
    # refined at T = 1: max 0.5 = bound 1/2, at T = 2: 0.25 = bound 1/4; bias 0
    assert lines[-2:] == ["refined neuron within Vth1/(2T) everywhere: True",
                          "refined neuron unbiased (|bias| at most the (2^Bs - 1)/(2 n_points) that inputs on an "
                          "exact rounding tie add): True"]
    worse = _error_frame()
    worse.loc[worse["variant"] == "tau=1, round (refined)", "bias"] = 0.006  # > 1/200
    assert study.rate_error_report(worse, n_points=100).splitlines()[-1].endswith(": False")
    assert study.rate_error_report(worse, n_points=50).splitlines()[-1].endswith(": True")  # 0.006 < 1/100


def test_rate_error_sentence_uses_the_largest_Bs_and_T():
    text = study.rate_error_sentence(_error_frame())
    assert text.startswith("At $B_s = 1$, $T = 2$ the refined neuron's rms error is 0.1000 $V_{th1}$ "
                           "(largest 0.2500, the bound $1/(2T)$ = 0.2500)")
    assert "doubles the worst case to 0.5000 and adds a bias of -0.2500" in text
    assert "round firing has bias -0.1000" in text and "an rms error 3 times" in text  # 0.3 / 0.1
    assert "(factor 0.80) brings its rms error down to 0.2000, still 2.0 times" in text  # 0.2 / 0.1


def test_plot_rate_errors():
    errors = study.rate_errors([1, 2], [1, 4], n_points=51)
    fig = study.plot_rate_errors(errors)
    ax0, ax1 = fig.axes
    assert ax0.get_title() == "Bs = 2, T = 4"
    refined = [l for l in ax0.lines if l.get_label() == "tau=1, round (refined)"][0]
    x = np.asarray(refined.get_xdata())
    assert np.allclose(refined.get_ydata(), np.round(x * 4) / 4)  # the grid Vth1/T nearest to x
    assert len(ax0.lines) == 5 and (x.min(), x.max()) == pytest.approx((1.25e-3, 3 - 1.25e-3))
    # right panel: 4 variants x 2 Bs measured curves, the reference 1/(T sqrt 12), 2 legend stubs
    assert len(ax1.lines) == 4 * 2 + 1 + 2
    assert ax1.lines[8].get_ydata() == pytest.approx([1 / math.sqrt(12), 1 / (4 * math.sqrt(12))])
    old_b1 = errors[(errors["variant"] == "tau=2, floor (old)") & (errors["Bs"] == 1)]["rmse"]
    assert list(ax1.lines[0].get_ydata()) == old_b1.tolist()
    assert study.plot_rate_errors(study.rate_errors([1], [2], n_points=11)).axes[0].get_title() == "Bs = 1, T = 2"


def test_paper_ablation_view():
    abl = pd.DataFrame({"target": ["1/1/1"], "tau2_floor_no_renew": [1.0], "tau2_floor_renew": [2.0],
                        "tau2_round_renew": [3.0], "tau1_round_renew": [4.0], "notes": ["n"], "extra": [9]})
    view = study.paper_ablation_view(abl)
    assert list(view.columns) == list(study.NEURON_COLUMNS.values())
    assert view.iloc[0].tolist() == ["1/1/1", 1.0, 2.0, 3.0, 4.0, "n"]


def test_bit_serial_report_and_plot():
    serial = study.bit_serial_table([1, 2, 3], n_points=2001)
    lines = study.bit_serial_report(serial).splitlines()
    # T = 2: 3 levels, log2(3) = 1.58 bits, rmse (1/2)/sqrt(12) = 0.1443; 4 levels, (1/3)/sqrt(12) = 0.0962
    assert lines[1] == "T=2: neuron 3 levels (1.58 bits), rmse 0.1443; T-bit 4 levels, rmse 0.0962; ratio 1.50"
    assert lines[-2:] == ["levels = T + 1 (neuron) and 2^T (T-bit) for every T: True",
                          "Bs = 2 neuron levels = 3T + 1 for every T: True"]
    bad = serial.assign(**{"formula 2^T": [2, 4, 9]})
    assert study.bit_serial_report(bad).splitlines()[-2].endswith(": False")
    ax0, ax1 = study.plot_bit_serial(serial).axes
    assert [list(l.get_ydata()) for l in ax0.lines] == [[2, 3, 4], [4, 7, 10], [2, 4, 8]]
    assert list(ax1.lines[1].get_ydata()) == serial["T-bit rmse"].tolist()


def test_snntorch_table_and_report():
    snn = study.snntorch_table(50, 4, seed=3)
    assert snn["inputs"].tolist() == ["random"] * 3 + ["grid k Vth1/4"] * 3
    assert snn["elements"].tolist() == [50] * 3 + [13] * 3
    mism = snn["elements with a mismatch"].tolist()
    assert mism[:2] == [0, 0] and mism[3] > 0  # x = Vth1 on the grid fires at once in ours only
    g = torch.Generator().manual_seed(3)
    x = torch.rand(50, generator=g, dtype=torch.float64) * 1.125  # the same draws, [0, 1.5 Vth1)
    assert snn["spike rate ours"].iloc[0] == float(neuron_trace(x, 0.75, 1, 4, firing="floor")[1].mean())
    line = study.snntorch_report(snn.iloc[:1])
    assert line == (f"random         Bs=1, tau=1, floor   vs {'snntorch threshold Vth1, mem0 = 0':<40}: "
                    f"mismatched steps 0.0000, elements with a mismatch 0 of 50")


def test_chapter_model_record_and_summary():
    losses = [3.0, 2.0] + [1.0] * 9 + [2.0]  # the last 10: nine 1.0 and one 2.0 -> mean 1.1
    m = study.ChapterModel(None, torch.zeros(7, 1), None, losses, 55.55, 4, "some data")
    assert m.record() == {"train_loss_first": 3.0, "train_loss_last": pytest.approx(1.1),
                          "test_accuracy": 55.55, "T_bound": 4}
    assert m.summary() == ("some data\n12 Adam steps: training loss 3.000 -> 1.100 (mean of the last 10); "
                           "test accuracy 55.5 % on 7 images; T bound 4")


@pytest.mark.parametrize("grad_T,bound", [([1], 3), ([1, 4], 5)])
def test_train_chapter_model(grad_T, bound):
    run = study.train_chapter_model("digits", 0, 4, 2, 32, 1e-2, grad_T)
    assert run.T_bound == bound and len(run.losses) == 2 and len(run.x_test) == 360  # digits: 360 test images
    for name, layer in quant_layers(run.model, include_stem=True):
        assert int(layer.neuron.T) == 2 and layer.neuron.T.high == bound
        assert int(layer.neuron.bits[0]) == (8 if name == "features.0.0" else 4)
    hits = int((run.model(run.x_test).argmax(1) == run.y_test).sum())
    assert run.test_accuracy == pytest.approx(100 * hits / 360)


def test_wide_layer():
    x, w, w_step, vth = study.wide_layer(2, 6, seed=5)
    assert x.shape == (2, 6, 32, 32) and w.shape == (6, 6, 3, 3) and bool((x >= 0).all())
    codes = w / w_step
    assert torch.allclose(codes, torch.round(codes), atol=1e-9) and codes.min() >= -8 and codes.max() <= 7
    assert vth == pytest.approx(2 * float(x.mean()) / math.sqrt(15))


def test_squeeze_table(small_model):
    model = small_model[0]
    table = study.squeeze_table(model, small_model[1][:8], [1, 4], wide_batch=1, wide_channels=8, seed=0)
    assert table["T"].tolist() == [2, 4, 4] and table["Bs"].tolist() == [3, 3, 4]
    assert table["layer"].tolist() == ["small CNN features.1.0 (real input)"] * 2 + ["wide ResNet-20 layer (8 ch, 32x32)"]
    assert [tuple(s) for s in table["input shape"]] == [(8, 4, 8, 8), (8, 4, 8, 8), (1, 8, 32, 32)]
    assert (table["max diff integer codes"] == 0).all()
    assert table["rel diff float32"].tolist() == (table["max diff float32"] / table["max |y|"]).tolist()
    assert study.squeeze_table(model, small_model[1][:8], [2], 1, 8, 0)["T"].tolist() == [2, 2]


def test_squeeze_report_and_sentence():
    df = pd.DataFrame([{"layer": "small CNN a (real input)", "spikes shape": (2, 8, 4, 8, 8), "T": 2,
                        "rel diff float64": 1e-17, "rel diff float32": 2e-8, "max diff integer codes": 0.0,
                        "convolutions per step": 2},
                       {"layer": "wide b (8 ch)", "spikes shape": (4, 1, 8, 32, 32), "T": 4,
                        "rel diff float64": 3e-16, "rel diff float32": 2e-5, "max diff integer codes": 0.0,
                        "convolutions per step": 4}])
    assert study.squeeze_report(df).splitlines() == [
        "small CNN a, spikes [2, 8, 4]..., T = 2: float64 rel. diff < 1e-13: True; float32 rel. diff < 1e-5: True; "
        "integer codes identical: True",
        "wide b, spikes [4, 1, 8]..., T = 4: float64 rel. diff < 1e-13: True; float32 rel. diff < 1e-5: False; "
        "integer codes identical: True"]
    assert study.squeeze_sentence(df) == (
        "Largest differences relative to the largest output: float64 3.0e-16, float32 2.0e-05; on the integer "
        "codes the two sides are identical (largest difference 0). The squeezed layer ran 1 convolution where "
        "the per-step form ran 4.")


def test_mixed_T_effect(small_model):
    model, x, y, _ = small_model
    acc, changed = study.mixed_T_effect(model, x, y, {"fc": 2})  # the model's own T: nothing changes
    hits = int((model(x).argmax(1) == y).sum())
    assert changed == 0 and acc == pytest.approx(100 * hits / len(x))
    acc, changed = study.mixed_T_effect(model, x, y, {"features.2.0": 1, "fc": 4})
    assert all(int(layer.neuron.T) == 2 for _, layer in quant_layers(model, include_stem=True))  # restored
    with torch.no_grad():
        before = model(x).argmax(1)
        other = copy.deepcopy(model)
        layers = dict(quant_layers(other, include_stem=True))
        layers["features.2.0"].neuron.T.set_(1)
        layers["fc"].neuron.T.set_(4)
        after = other(x).argmax(1)
    assert changed == int((after != before).sum())
    assert acc == pytest.approx(100 * int((after == y).sum()) / len(x))


def test_mixed_T_report_and_sentence():
    rows = [{"layer": "fc", "T": 1, "neuron input shape": (8, 32), "neuron output shape": (8, 32),
             "max |r T/Vth1 - round(.)|": 0.002}]
    assert study.mixed_T_report(rows) == "fc            T = 1: receives [32] per sample, sends [32]; on the grid Vth1/T: False"
    assert study.mixed_T_sentence(81.25, 90.0, 7, 360) == (
        "With these $T$ values the model's test accuracy is 81.2 % against 90.0 % with $T = 2$ everywhere (the "
        "model was trained at $T = 2$); the predicted class changed on 7 of 360 test images.")


def test_layer_encoding_matches_exact_arithmetic(small_model):
    model, x, _, _ = small_model
    io = study.neuron_io(model, x[:16])
    table = study.layer_encoding(model, io, "features.2.0", 3, quantiles=(0.2, 0.5, 0.9))
    layer = dict(quant_layers(model, include_stem=True))["features.2.0"]
    vth, bits = float(layer.neuron.step.detach()[0]), int(layer.neuron.bits[0])
    inputs = io["features.2.0"][0].flatten().double()
    positive = np.sort(inputs[inputs > 0].numpy())
    assert table["x / Vth1"].tolist() == pytest.approx((np.quantile(positive, [0.2, 0.5, 0.9]) / vth).tolist())
    for r in table.to_dict("records"):
        counts = exact_counts(Fraction(r["x / Vth1"] * vth), Fraction(vth), bits, 3, 1, "round")
        assert [r["S_0"], r["S_1"], r["S_2"]] == counts and r["r / Vth1"] == pytest.approx(sum(counts) / 3)


def test_batches_of():
    x, y = torch.arange(10), torch.arange(10) * 10
    batches = study.batches_of(x, y, 3, 5)
    assert [b[0].tolist() for b in batches] == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    assert batches[1][1].tolist() == [30, 40, 50] and len(study.batches_of(x, y, 3, 2)) == 2


def _tg_frame():
    return pd.DataFrame({"T": [1, 1, 2, 2], "batch": [0, 1, 0, 1], "layer": ["a", "b", "a", "b"],
                         "dL/dT_hat": [1.0, -1.0, 2.0, 0.5], "L(T+1)-L(T)": [0.1, 0.2, -0.3, 0.0],
                         "tie": [False, False, False, True], "agree": [True, False, False, False]})


def test_agreement_tables_record_and_setting():
    overall, by_T, by_layer = study.agreement_tables(_tg_frame())
    assert len(overall) == 1 and by_T["agree"].tolist() == [1, 0] and by_layer["layer"].tolist() == ["a", "b"]
    assert by_layer["agree"].tolist() == [1, 0] and by_layer["n"].tolist() == [2, 2]
    rec = study.t_gradient_record(_tg_frame())
    ci = binomtest(1, 4).proportion_ci(confidence_level=0.95, method="wilson")
    assert (rec["n"], rec["agree"], rec["ties"], rec["batches"]) == (4, 1, 1, 2)
    assert rec["fraction"] == rec["loss_falls"] == rec["surrogate_says_more_T"] == 0.25
    assert rec["ci"] == pytest.approx([ci.low, ci.high])
    assert rec["rows"][2] == {"T": 2, "batch": 0, "layer": "a", "dL/dT_hat": 2.0, "L(T+1)-L(T)": -0.3, "agree": False}
    assert study.t_gradient_setting(_tg_frame(), 32) == "2 test batches of 32, T in [1, 2], 2 layers: 4 comparisons"


def test_verdicts_and_best_constant_guess():
    assert study.best_constant_guess(0.3) == pytest.approx(0.7) and study.best_constant_guess(0.8) == 0.8
    assert study.agreement_verdict(0.4, 0.6) == "indistinguishable from a coin flip"
    assert study.agreement_verdict(0.55, 0.7) == "better than chance"
    assert study.agreement_verdict(0.2, 0.45).startswith("worse than chance")
    ci = binomtest(1, 4).proportion_ci(confidence_level=0.95, method="wilson")
    text = study.t_gradient_sentence(_tg_frame())
    assert text.startswith(f"Over 4 comparisons the surrogate's sign agreed with the discrete change in 1 (25.0%, "
                           f"95 % interval {ci.low:.1%} to {ci.high:.1%}): indistinguishable from a coin flip.")
    assert "best constant guess is right 75.0% of the time" in text
    assert "more steps help in 25.0% of them" in text


def test_plot_t_gradient():
    tg = _tg_frame()
    fig = study.plot_t_gradient(tg, study.agreement_tables(tg))
    ax0, ax1 = fig.axes
    assert len(ax0.collections) == 2  # one scatter per layer
    assert ax0.collections[0].get_offsets().tolist() == [[1.0, 0.1], [2.0, -0.3]]
    # rows: all, T = 1, T = 2, a, b (top to bottom); fractions 1/4, 1/2, 0, 1/2, 0
    marker = [line for line in ax1.lines if line.get_marker() == "x"][0]
    assert list(marker.get_ydata()) == [4, 3, 2, 1, 0]
    # P(L(T+1) < L(T)): all 1/4, T=1 0, T=2 1/2, a 1/2, b 0 -> best guess 3/4, 1, 1/2, 1/2, 1
    assert list(marker.get_xdata()) == [0.75, 1.0, 0.5, 0.5, 1.0]
    assert [t.get_text() for t in ax1.get_yticklabels()] == ["all", "T = 1", "T = 2", "a", "b"]


def test_paper_vs_book():
    errors = _error_frame()
    abl = pd.DataFrame({"target": ["2/2/1", "1/1/1"], "tau1_round_renew": [0.0, 91.234],
                        "tau2_floor_renew": [0.0, 89.5]})
    serial = pd.DataFrame({"rmse ratio neuron / T-bit": [1.0, 12.34]})
    snn = pd.DataFrame({"inputs": ["grid k Vth1/4", "random"], "elements with a mismatch": [5, 0]})
    squeeze = pd.DataFrame({"max diff integer codes": [0.0, 0.0], "rel diff float64": [1e-17, 3e-16],
                            "rel diff float32": [2e-8, 4e-7]})
    p = dict(n_points=100, bits_list=[1], T_list=[1, 2], wide_batch=2, train_steps=150, dataset="digits",
             grad_T=[1, 2], T_serial_max=2, snn_n=50, snn_T=8)
    table = study.paper_vs_book(errors, abl, serial, snn, squeeze, _tg_frame(), 81.25, 90.0, p)
    assert len(table) == 8 and list(table.columns) == ["claim", "paper", "this book", "setting"]
    book = table["this book"].tolist()
    assert "1/1/1: 91.23 % vs 89.50 %" in table["paper"].iloc[0]
    assert book[0].startswith("encoding error of r at Bs = 1, T = 2: rms 0.1000 vs 0.3000 Vth1 (old neuron's bias -0.200)")
    assert "(best rescaling 0.80); even rescaled its rms error is 2.0x" in book[2]
    assert book[3] == "exact on integer codes (difference 0); float64 rel. diff <= 3e-16, float32 <= 4e-07"
    assert book[4].startswith("runs with T = [2, 2, 3, 1]:") and book[4].endswith("81.2 % (vs 90.0 % at T = 2)")
    assert book[5].startswith("sign agrees with L(T+1) - L(T) in 25.0% of 4 cases") and book[5].endswith("best constant guess 75.0%")
    assert table["setting"].iloc[5] == "same model, eval mode, T in [1, 2], 2 test batches, all 2 layers"
    assert "at T = 2 the neuron's rms error is 12.3x" in book[6]
    assert "on 50 random inputs (0 mismatches)" in book[7]
