"""Unit tests of adabit_lite.studies.quantizers (the computations of chapter 4).

Hand-computed cases for the written-out gradients and Algorithm 1, the package's autograd
against those formulas (quantizer and fused neuron), and the two reference-code renewal flaws.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from adabit_lite import quant
from adabit_lite.neuron import SpikingNeuron
from adabit_lite.studies import quantizers as qs

LN2 = math.log(2.0)


def test_int_range_and_factors():
    assert [qs.int_range(b, True) for b in (1, 2, 3, 4)] == [(-1, 1), (-1, 1), (-3, 3), (-7, 7)]
    assert [qs.int_range(b, False) for b in (1, 2, 3, 4)] == [(0, 1), (0, 3), (0, 7), (0, 15)]
    # c_B = (qmax + 1) ln 2, but qmax ln 2 at B = 1
    assert qs.bit_factor(1, True) == pytest.approx(LN2)
    assert qs.bit_factor(2, True) == pytest.approx(2 * LN2)
    assert qs.bit_factor(4, True) == pytest.approx(8 * LN2)
    assert qs.bit_factor(1, False) == pytest.approx(LN2)
    assert qs.bit_factor(3, False) == pytest.approx(8 * LN2)
    assert qs.lsq_scale(100, 4, False) == pytest.approx(1 / math.sqrt(1500))


def test_step_gradient_hand_values():
    # B = 3 signed, s = 0.5: qmax = 3; u = x / s
    x = np.array([0.1, 0.4, -0.4, 1.3, 2.0, -2.0])  # u = 0.2, 0.8, -0.8, 2.6, 4 (clip), -4 (clip)
    np.testing.assert_allclose(qs.step_grad(x, 0.5, 3, True), [-0.2, 0.2, -0.2, 0.4, 3, -3], atol=1e-12)
    # binary weights: sign(u) - u for |u| <= 1, sign(u) outside, sign(0) = -1
    np.testing.assert_allclose(qs.step_grad(np.array([0.5, -0.25, 0.0, 3.0, -3.0]), 1.0, 1, True),
                               [0.5, -0.75, -1.0, 1.0, -1.0], atol=1e-12)
    # spikes, B = 2: round = floor(u + 1/2); 3.4 -> 3 (inside), 3.6 -> 4 (clipped: qmax = 3)
    np.testing.assert_allclose(qs.step_grad(np.array([0.5, 3.4, 3.6]), 1.0, 2, False), [0.5, -0.4, 3.0],
                               atol=1e-12)


def test_bit_gradient_hand_values():
    s = 0.25
    # weights B = 3 (qmax 3, c = 4 ln 2): both tails
    x = np.array([0.5, 0.9, -0.9, 0.8])  # u = 2, 3.6, -3.6, 3.2 (rounds to 3: inside)
    np.testing.assert_allclose(qs.bit_grad(x, s, 3, True), [0, s * 4 * LN2, -s * 4 * LN2, 0], atol=1e-12)
    # binary: clipped where |u| > 1, c = 1 * ln 2
    np.testing.assert_allclose(qs.bit_grad(np.array([0.2, 0.3, -0.3]), s, 1, True),
                               [0, s * LN2, -s * LN2], atol=1e-12)
    # spikes: upper tail only
    np.testing.assert_allclose(qs.bit_grad(np.array([4.0, -4.0, 0.5]), 1.0, 2, False),
                               [4 * LN2, 0, 0], atol=1e-12)


@pytest.mark.parametrize("signed", [True, False])
@pytest.mark.parametrize("bits", [1, 2, 3, 4])
def test_package_autograd_matches_formulas(signed, bits):
    rng = np.random.default_rng(bits + 10 * signed)
    qmax = qs.int_range(bits, signed)[1]
    x = rng.uniform(-(qmax + 3) if signed else 0.0, qmax + 3, 300) * 0.7
    ds, db = qs.package_elementwise_grads(x, 0.7, bits, signed)
    np.testing.assert_allclose(ds, qs.step_grad(x, 0.7, bits, signed), atol=1e-9)
    np.testing.assert_allclose(db, qs.bit_grad(x, 0.7, bits, signed), atol=1e-9)
    assert np.count_nonzero(db) > 0  # the range was left on at least one side


def test_quantize_matches_package():
    torch.manual_seed(0)
    x = torch.randn(1000) * 3
    for bits in (1, 2, 3, 4):
        torch.testing.assert_close(qs.quantize(x, 0.4, bits, True), quant.fake_quant(x, 0.4, bits, True))
        xr = x.relu()
        torch.testing.assert_close(qs.quantize(xr, 0.4, bits, False), quant.fake_quant(xr, 0.4, bits, False))


@pytest.mark.parametrize("T,bits", [(1, 2), (3, 2), (2, 4)])
def test_neuron_gradient_formula_matches_the_package_neuron(T, bits):
    torch.manual_seed(T)
    x = torch.randn(8, 4, 5, 5).relu() * 2
    vth = 0.3
    n = SpikingNeuron(bits=bits, T=T, learnable_T=False)
    n.eval()
    with torch.no_grad():
        n.step.fill_(vth)
    r = n(x)
    G = torch.randn_like(r)
    (r * G).sum().backward()
    f_vth, f_bits = qs.neuron_grads_formula(x, vth, bits, T, G)
    assert float(n.step.grad[0]) == pytest.approx(f_vth, rel=1e-4)
    assert float(n.bits[0].latent.grad) == pytest.approx(f_bits, rel=1e-4)
    assert f_bits != 0  # some potentials clip at the top code
    assert 0 < qs.neuron_clip_fraction(x, vth, bits, T) < 1


def test_weight_gradient_formula_matches_lsq_quantize():
    torch.manual_seed(1)
    w = torch.randn(64, 9) * 0.1
    step = torch.tensor([0.03], requires_grad=True)
    b = torch.tensor(3.0, requires_grad=True)
    wq = quant.lsq_quantize(w, step, b, signed=True)
    G = torch.randn_like(wq)
    (wq * G).sum().backward()
    f_s, f_b = qs.weight_grads_formula(w, 0.03, 3, G)
    assert float(step.grad[0]) == pytest.approx(f_s, rel=1e-4)
    assert float(b.grad) == pytest.approx(f_b, rel=1e-4)


def test_grid_search_hand_case_unsigned():
    # x = [0, 2, 2, 4], B = 1 (qmax 1), K = 4: c = 1, 2, 3, 4 with step = c
    #   c = 1: Q = [0, 1, 1, 1], |e| = [0, 1, 1, 3]      p = 2: 11/4
    #   c = 2: Q = [0, 2, 2, 2], |e| = [0, 0, 0, 2]      p = 2: 4/4
    #   c = 3: Q = [0, 3, 3, 3], |e| = [0, 1, 1, 1]      p = 2: 3/4   <- minimum
    #   c = 4: Q = [0, 4, 4, 4], |e| = [0, 2, 2, 0]      p = 2: 8/4   (2/4 = 0.5 rounds up)
    x = torch.tensor([0.0, 2.0, 2.0, 4.0])
    c, sc = qs.lp_scores(x, 1, False, K=4, p=2.0)
    np.testing.assert_allclose(c, [1, 2, 3, 4])
    np.testing.assert_allclose(sc, [2.75, 1.0, 0.75, 2.0])
    c, sc = qs.lp_scores(x, 1, False, K=4, p=2.4)
    np.testing.assert_allclose(sc, [(2 + 3**2.4) / 4, 2**2.4 / 4, 0.75, 2 * 2**2.4 / 4], rtol=1e-6)
    step, best = quant.grid_search_step(x, 1, False, K=4, p=2.4, sync=False)
    assert float(best) == pytest.approx(3.0) and float(step) == pytest.approx(3.0)


def test_grid_search_hand_case_signed():
    # x = [-3, -1, 1, 3], B = 2 signed (qmax 1: levels -c, 0, c), R = 6, K = 6 -> c = 1..6
    # mean squared errors: c = 1: 2, c = 2: 1, c = 3: 0.5, c = 4: 1, c = 5: 2.5, c = 6: 5
    x = torch.tensor([-3.0, -1.0, 1.0, 3.0])
    c, sc = qs.lp_scores(x, 2, True, K=6, p=2.0)
    np.testing.assert_allclose(c, [1, 2, 3, 4, 5, 6])
    np.testing.assert_allclose(sc, [2, 1, 0.5, 1, 2.5, 5])
    step, best = quant.grid_search_step(x, 2, True, K=6, p=2.0, sync=False)
    assert float(step) == pytest.approx(3.0)


def test_quant_errors_and_lsq_init():
    x = torch.tensor([0.0, 1.0, 2.0, 5.0])
    mse, lp = qs.quant_errors(x, 1.0, 2, False, p=3.0)  # Q = [0, 1, 2, 3]
    assert mse == pytest.approx(4 / 4) and lp == pytest.approx(8 / 4)
    assert qs.lsq_init_step(x, 2, False) == pytest.approx(2 * 2.0 / math.sqrt(3))
    assert qs.lsq_init_step(-x, 2, True) == pytest.approx(2 * 2.0 / 1.0)  # signed 2 bits: qmax 1


def test_range_ratio_rescale_goes_the_wrong_way():
    # the reference code's conv-weight renewal: step * (new integer range) / (old integer range)
    assert qs.range_ratio_step(1.0, 4, 3) == pytest.approx(6 / 14)
    assert qs.range_ratio_step(1.0, 3, 2) == pytest.approx(2 / 6)
    assert qs.range_ratio_step(1.0, 2, 1) == pytest.approx(1.0)  # qmax = 1 at both
    assert qs.range_ratio_step(0.1, 3, 4) == pytest.approx(0.1 * 14 / 6)  # grows when bits rise
    torch.manual_seed(2)
    w = torch.randn(20000) * 0.05
    s4 = float(quant.grid_search_step(w, 4, True, sync=False)[0])
    for b_new in (3, 2):
        s_ratio = qs.range_ratio_step(s4, 4, b_new)
        s_grid = float(quant.grid_search_step(w, b_new, True, sync=False)[0])
        assert s_ratio < s4 < s_grid  # the search widens the step, the ratio shrinks it
        mse_ratio = qs.quant_errors(w, s_ratio, b_new, True)[0]
        mse_stale = qs.quant_errors(w, s4, b_new, True)[0]
        mse_grid = qs.quant_errors(w, s_grid, b_new, True)[0]
        assert mse_ratio > mse_stale > mse_grid


def test_running_extrema_never_lets_the_range_shrink():
    torch.manual_seed(3)
    x = torch.randn(4, 8, 10, 10).abs()
    seq = (3, 2, 1)
    default = qs.renewal_sequence(x, 0.2, seq, running_extrema=False)
    running = qs.renewal_sequence(x, 0.2, seq, running_extrema=True)
    for r, B in zip(default, seq):  # the default renewal is the package's grid search at each B
        assert r["step"] == pytest.approx(float(quant.grid_search_step(x, B, False, sync=False)[0]), rel=1e-6)
    assert running[0]["step"] == pytest.approx(default[0]["step"], rel=1e-6)
    clips = [r["clip level"] for r in running]
    assert all(b >= a * (1 - 1e-6) for a, b in zip(clips, clips[1:]))
    assert running[-1]["clip level"] == pytest.approx(default[0]["clip level"], rel=1e-5)  # stuck at 3 bits
    assert running[-1]["MSE"] > 1.5 * default[-1]["MSE"]
    assert default[-1]["clip level"] < default[0]["clip level"]  # fewer bits want a narrower range


def test_neuron_output_at_one_step_is_the_quantizer():
    torch.manual_seed(4)
    x = torch.rand(1000) * 3
    torch.testing.assert_close(qs.neuron_output(x, 0.4, 2, 1), qs.quantize(x, 0.4, 2, False))
    # T = 2 resolves half steps: r in multiples of Vth1 / 2, error no larger on average
    assert qs.neuron_mse(x, 0.4, 3, 2) < qs.neuron_mse(x, 0.4, 3, 1)


def test_weight_sequence_compares_rescale_with_search():
    torch.manual_seed(5)
    w = torch.randn(5000) * 0.1
    rows = qs.weight_sequence(w, 0.02, (3, 2, 1), K=50)
    ratio = [r for r in rows if r["renewal"] == "range ratio"]
    s3 = 0.02 * 6 / 14
    assert [r["step"] for r in ratio] == pytest.approx([s3, s3 * 2 / 6, s3 * 2 / 6])
    grid = [r for r in rows if r["renewal"] == "grid search"]
    assert all(a["MSE"] > b["MSE"] for a, b in zip(ratio, grid))
