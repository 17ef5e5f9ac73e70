"""Unit tests of adabit_lite.studies.quantizers (the computations of chapter 4).

Hand-computed cases for the written-out gradients and Algorithm 1, the package's autograd
against those formulas (quantizer and fused neuron), and the two reference-code renewal flaws.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from adabit_lite import paper, plotting, quant
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


# ============================================================================ the chapter's tables
def test_records_are_plain_json_values():
    df = pd.DataFrame({"n": np.array([3, 4], dtype=np.int64), "x": [0.5, float("nan")], "ok": [True, None]})
    rows = qs.records(df)
    assert rows == [{"n": 3, "x": 0.5, "ok": True}, {"n": 4, "x": None, "ok": None}]
    assert type(rows[0]["n"]) is int and type(rows[0]["x"]) is float
    json.dumps(rows)  # a numpy int64 would fail here


def test_span_and_rel_diff():
    assert qs.span([2.25, 0.5, 1.0]) == "0.5 to 2.2"  # 2.25 rounds half to even
    assert qs.span(pd.Series([1.0, 3.14159]), ".3f") == "1.000 to 3.142"
    assert qs.rel_diff(1.1, 1.0) == pytest.approx(0.1)
    assert qs.rel_diff(-2.0, 2.0) == pytest.approx(2.0)
    assert qs.rel_diff(0.0, 0.0) == 0.0 and qs.rel_diff(1e-3, 0.0) == 1.0  # formula 0: exact or wrong


def test_elementwise_table_on_hand_points():
    # weights B = 2 (qmax 1): -4.2 and 2.2 clip; d x_q/ds = qmin, 0 - (-0.3), 1 - 0.6, qmax
    # spikes B = 2 (qmax 3): 5.0123 rounds to 5 and clips, 3.4 rounds to 3 (inside)
    u = {"weight": np.array([-4.2, -0.3, 0.6, 2.2]), "spike": np.array([0.3, 3.4, 5.0123])}
    elem, curves = qs.elementwise_table(u, bits_list=(1, 2))
    rows = {(r["quantizer"], r["B"]): r for r in elem.to_dict("records")}
    assert (rows[("weight", 2)]["qmin"], rows[("weight", 2)]["qmax"]) == (-1, 1)
    assert (rows[("spike", 2)]["qmin"], rows[("spike", 2)]["qmax"]) == (0, 3)
    assert rows[("weight", 2)]["clipped points"] == 2 and rows[("spike", 2)]["clipped points"] == 1
    assert rows[("spike", 1)]["clipped points"] == 2  # qmax 1: 3.4 and 5.0123 clip
    assert rows[("weight", 2)]["points"] == 4 and rows[("spike", 1)]["points"] == 3
    np.testing.assert_allclose(curves[("weight", 2)][0], [-1, 0.3, 0.4, 1], atol=1e-12)
    np.testing.assert_allclose(curves[("spike", 2)][1], [0, 0, 4 * LN2], atol=1e-12)
    assert rows[("weight", 1)]["inside in [-1/2, 1/2]"] is None  # binary weights: sign(u) - u
    assert rows[("spike", 2)]["inside in [-1/2, 1/2]"] is True
    assert all(r["max |ds autograd - formula|"] < 1e-12 and r["max |dB autograd - formula|"] < 1e-12
               and r["bit gradient only where clipped"] for r in rows.values())


def test_negative_spike_check_finds_the_lower_tail():
    # the package gives -s c_B = -4 ln 2 (B = 2, s = 1) below u = -1/2; the method gives 0 there
    neg = qs.negative_spike_check(np.array([-2.0, -0.7, -0.3, 0.2]), bits=2)
    assert neg["negative_spike_points"] == 4 and neg["negative_spike_bit_mismatch"] == 2
    assert neg["negative_spike_mismatch_max_u"] == pytest.approx(-0.7)
    assert neg["negative_spike_package_value"] == pytest.approx(-4 * LN2)
    none = qs.negative_spike_check(np.array([0.1, 0.3]), bits=2)
    assert none["negative_spike_bit_mismatch"] == 0 and none["negative_spike_mismatch_max_u"] is None


def test_layer_table_min_potential_and_step_changes():
    inputs = {"a": torch.tensor([[0.0, 1.0, 3.0]]), "b": torch.tensor([-0.3])}
    weights = {"a": torch.zeros(5), "b": torch.zeros(2)}
    warm = {"init_steps": {("a", "spike"): 1.0, ("a", "weight"): 0.1, ("b", "spike"): 2.0, ("b", "weight"): 0.2},
            "steps": {("a", "spike"): 0.95, ("a", "weight"): 0.12, ("b", "spike"): 2.0, ("b", "weight"): 0.19}}
    lay = qs.layer_table(inputs, weights, warm)
    a = lay.iloc[0]
    assert (a["layer"], a["input shape"], a["input elements"], a["weights"]) == ("a", (1, 3), 3, 5)
    assert plotting.format_cell(a["input shape"]) == "1x3"  # shown as a shape, as in chapter 3
    assert (a["input min"], a["input max"]) == (0.0, 3.0)
    assert a["input mean"] == pytest.approx(4 / 3) and a["zero fraction"] == pytest.approx(1 / 3)
    assert (a["Vth1 init"], a["Vth1 trained"], a["S_q init"], a["S_q trained"]) == (1.0, 0.95, 0.1, 0.12)
    sq, vth = qs.step_changes(lay)
    assert list(sq) == pytest.approx([20.0, 5.0]) and list(vth) == pytest.approx([5.0, 0.0])
    # v_0 = x, v_1 = v_0 - Vth1 S_0 + x:  a = 0.7: 0.7, 0.4 (Vth1 1);  b = -0.3: -0.3, -0.6 (Vth1 0.5)
    steps = {("a", "spike"): 1.0, ("b", "spike"): 0.5}
    x = {"a": torch.tensor([0.7]), "b": torch.tensor([-0.3])}
    assert qs.min_potential_ratio(x, steps, 2, 2) == pytest.approx(-1.2)
    assert qs.min_potential_ratio({"a": x["a"]}, steps, 2, 2) == pytest.approx(0.4)


@pytest.fixture(scope="module")
def chapter_bundle():
    return qs.chapter_data(0)


def test_layer_tensors_are_those_of_the_chosen_images(chapter_bundle):
    model, _ = qs.fresh_model(chapter_bundle, 0)
    xb, yb, inputs, weights = qs.layer_tensors(model, chapter_bundle, 6, seed=5)
    x, y = chapter_bundle.train.tensors
    idx = qs.batches(len(y), 6, 1, 5)[0]
    assert torch.equal(xb, x[idx]) and torch.equal(yb, y[idx])
    assert list(inputs) == ["conv2", "conv3", "fc"] == list(weights)
    assert inputs["conv2"].shape == (6, 32, 14, 14) and inputs["fc"].shape == (6, 256)
    assert weights["conv3"].numel() == 64 * 64 * 9 and weights["fc"].numel() == 256 * 10


def test_scale_at_init_adds_qmax_and_balances_the_bit_loss(chapter_bundle):
    _, cfg = qs.fresh_model(chapter_bundle, 0)
    df = qs.scale_at_init(chapter_bundle, cfg, 1, model_seed=0, batch_seed=2)
    assert list(df["qmax"]) == [7, 15] * 3  # 4-bit weights (signed) and spikes (unsigned)
    w = df[df["quantizer"] == "weight"]
    assert list(w["N"]) == [32 * 64 * 9, 64 * 64 * 9, 256 * 10]
    np.testing.assert_allclose(df["g"], 1 / np.sqrt(df["N"] * df["qmax"]), rtol=1e-12)
    n_w = 32 * 64 * 9 + 64 * 64 * 9 + 256 * 10
    assert w["lambda * share"].iloc[0] == pytest.approx(0.04 * 32 * 64 * 9 / n_w)
    assert (df["clipped"] < 1e-3).all()


def test_bit_gradient_sweep_sets_stale_and_renewed_steps(chapter_bundle):
    model, cfg = qs.fresh_model(chapter_bundle, 0)
    with torch.no_grad():  # the first batch initialises the steps (LSQ), as the warm-up's does
        model.train()
        model(chapter_bundle.train.tensors[0][:64])
    names = ["conv2", "conv3", "fc"]
    trained = {(n, k): 1e-6 for n in names for k in qs.KINDS}  # tiny steps: everything clips
    grid_step = {(n, k, 1): 1e3 for n in names for k in qs.KINDS}  # huge steps: nothing clips
    sweep = qs.bit_gradient_sweep(model, chapter_bundle, cfg, trained, grid_step, 1, seed=3, bits_list=(1,))
    assert len(sweep) == 2 * 6 and set(sweep["B"]) == {1}
    stale, renewed = sweep[sweep["steps"] == "stale"], sweep[sweep["steps"] == "renewed"]
    assert (stale[stale["quantizer"] == "weight"]["clipped"] > 0.99).all()
    assert (renewed["clipped"] == 0).all() and (renewed["task dL/dB mean"] == 0).all()
    np.testing.assert_allclose(sweep["task / bit loss"], -sweep["task dL/dB mean"] / sweep["lambda * share"])


def test_grid_table_hand_cases():
    # spikes [0, 2, 2, 4], B = 1, K = 4, p = 2: c* = 3 (see above), LSQ init 2 mean|x| = 4
    # weights [-3, -1, 1, 3], B = 2 (qmax 1), K = 4: c = 1.5, 3, 4.5, 6 -> MSE 1.25, 0.5, 1.625, 5: c* = 3
    #   binary (B = 1, x_q = c sign(x)): MSE 1.25, 2, 7.25, 17: c* = 1.5;  LSQ init 2 mean|w| / 1 = 4
    grid, curves = qs.grid_table({"a": torch.tensor([0.0, 2.0, 2.0, 4.0])},
                                 {"a": torch.tensor([-3.0, -1.0, 1.0, 3.0])}, (1, 2), K=4, p=2.0)
    rows = {(r["quantizer"], r["B"]): r for r in grid.to_dict("records")}
    for key, c_star, ratio in ((("spike", 1), 3.0, 0.75), (("weight", 2), 3.0, 0.75), (("weight", 1), 1.5, 0.375)):
        assert rows[key]["c*"] == pytest.approx(c_star) and rows[key]["grid step"] == pytest.approx(c_star)
        assert rows[key]["LSQ init step"] == pytest.approx(4.0)
        assert rows[key]["grid / LSQ init"] == pytest.approx(ratio)
    np.testing.assert_allclose(curves[("a", "weight", 2)][1], [1.25, 0.5, 1.625, 5.0])
    steps = qs.grid_steps(grid)
    assert steps[("a", "spike", 2)] == pytest.approx(4 / 3)  # qmax 3: c = 4 (MSE 2/9) beats c = 3 (1/4)
    assert steps[("a", "weight", 1)] == pytest.approx(1.5) and len(steps) == 4


def test_drop_table_hand_case():
    # spikes [0, 2, 2, 4], trained step 1 at 4 bits, drop to 1 bit (renewed step 3):
    #   stale: Q = [0, 1, 1, 1], MSE 11/4;  renewed: Q = [0, 3, 3, 3], MSE 3/4
    # weights [-3, -1, 1, 3], trained 1, drop 4 -> 1 (binary, renewed 1.5): stale MSE 2, renewed 1.25,
    #   range ratio step 1 * 2 / 14: MSE ((3 - 1/7)^2 + (1 - 1/7)^2) / 2
    x, w = torch.tensor([0.0, 2.0, 2.0, 4.0]), torch.tensor([-3.0, -1.0, 1.0, 3.0])
    trained = {("a", "spike"): 1.0, ("a", "weight"): 1.0}
    grid = {("a", "spike", 1): 3.0, ("a", "weight", 1): 1.5}
    drops = qs.drop_table({"a": x}, {"a": w}, trained, grid, drops=((4, 1),), p=2.0)
    sp, wt = drops.iloc[0], drops.iloc[1]
    assert (sp["quantizer"], sp["drop"], wt["quantizer"], wt["drop"]) == ("spike", "4->1", "weight", "4->1")
    assert sp["MSE stale"] == pytest.approx(2.75) and sp["MSE renewed"] == pytest.approx(0.75)
    assert sp["stale / renewed"] == pytest.approx(11 / 3)
    assert sp["neuron T=1 stale / renewed"] == pytest.approx(11 / 3)  # T = 1: the neuron is the quantizer
    assert wt["stale / renewed"] == pytest.approx(2 / 1.25)
    mse_ratio = ((3 - 1 / 7) ** 2 + (1 - 1 / 7) ** 2) / 2
    assert wt["step range ratio"] == pytest.approx(1 / 7)
    assert wt["range ratio / renewed"] == pytest.approx(mse_ratio / 1.25)
    assert math.isnan(sp["range ratio / renewed"]) and math.isnan(wt["neuron T=2 stale / renewed"])


def test_running_extrema_table_against_a_given_default():
    # default step 0.1 B at B bits; at B = 1 on [0, 0.25, 1]: Q = [0, 0.1, 0.1], MSE (0.15^2 + 0.9^2) / 3
    x = torch.tensor([0.0, 0.25, 1.0])
    grid_step = {("a", "spike", B): 0.1 * B for B in (1, 2, 3)}
    run = qs.running_extrema_table({"a": x}, {("a", "spike"): 0.05}, grid_step, K=20, p=2.4)
    assert list(run["sequence"]) == ["4->3->2->1"] * 3 + ["4->2->1->2->1"] * 4
    assert list(run["stage"]) == [1, 2, 3, 1, 2, 3, 4] and list(run["B"]) == [3, 2, 1, 2, 1, 2, 1]
    assert list(run["step default"]) == pytest.approx([0.3, 0.2, 0.1, 0.2, 0.1, 0.2, 0.1])
    assert list(run["clip level default"]) == pytest.approx([0.3 * 7, 0.2 * 3, 0.1, 0.2 * 3, 0.1, 0.2 * 3, 0.1])
    assert run["MSE default"].iloc[2] == pytest.approx((0.15**2 + 0.9**2) / 3, rel=1e-6)
    np.testing.assert_allclose(run["MSE ratio"], run["MSE running extrema"] / run["MSE default"])


def test_range_ratio_table_pivots_both_renewals():
    torch.manual_seed(6)
    w = torch.randn(3000) * 0.1
    ratio = qs.range_ratio_table({"a": w}, {("a", "weight"): 0.02}, K=50)
    assert list(ratio["B"]) == [3, 2, 1]
    s3 = 0.02 * 6 / 14
    assert list(ratio["step range ratio"]) == pytest.approx([s3, s3 * 2 / 6, s3 * 2 / 6])
    assert list(ratio["clip level range ratio"]) == pytest.approx([3 * s3, s3 * 2 / 6, s3 * 2 / 6])
    grid3 = float(quant.grid_search_step(w, 3, True, K=50, sync=False)[0])
    assert ratio["step grid search"].iloc[0] == pytest.approx(grid3, rel=1e-6)
    np.testing.assert_allclose(ratio["MSE ratio"], ratio["MSE range ratio"] / ratio["MSE grid search"])
    assert (ratio["MSE ratio"] > 1).all()


# ============================================================================ the chapter's findings
def hand_tables() -> dict:
    """Small tables with hand-chosen numbers, shaped like the chapter's."""
    elem = pd.DataFrame([
        {"quantizer": "weight", "B": 1, "qmax": 1, "points": 10, "max |ds autograd - formula|": 0.0,
         "max |dB autograd - formula|": 0.0, "inside in [-1/2, 1/2]": None, "bit gradient only where clipped": True},
        {"quantizer": "spike", "B": 1, "qmax": 1, "points": 5, "max |ds autograd - formula|": 2e-12,
         "max |dB autograd - formula|": 0.0, "inside in [-1/2, 1/2]": True, "bit gradient only where clipped": True}])
    check = pd.DataFrame({"rel diff ds": [1e-5, 3e-5], "rel diff dB": [2e-4, 0.0],
                          "dL/dB autograd": [0.0, 0.5], "clipped": [0.0, 0.1]})
    lay = pd.DataFrame([
        {"layer": "c", "input min": 0.0, "zero fraction": 0.25, "S_q init": 0.1, "S_q trained": 0.15,
         "Vth1 init": 1.0, "Vth1 trained": 1.02},
        {"layer": "fc", "input min": 0.5, "zero fraction": 0.5, "S_q init": 0.2, "S_q trained": 0.19,
         "Vth1 init": 2.0, "Vth1 trained": 2.0}])
    init_bal = pd.DataFrame([
        {"layer": "c", "quantizer": "weight", "N": 100, "qmax": 7, "g": 1 / math.sqrt(700), "LSQ balance R": 0.5,
         "R without g": 13.2, "clipped": 0.0, "task |dL/dB| mean": 0.0, "bit-loss dL/dB": 0.0128,
         "lambda * share": 0.0128},
        {"layer": "c", "quantizer": "spike", "N": 6400, "qmax": 15, "g": 1 / math.sqrt(96000), "LSQ balance R": 0.002,
         "R without g": 0.6, "clipped": 0.0002, "task |dL/dB| mean": 0.0, "bit-loss dL/dB": 0.0272,
         "lambda * share": 0.0272},
        {"layer": "fc", "quantizer": "weight", "N": 20, "qmax": 7, "g": 1 / math.sqrt(140), "LSQ balance R": 0.9,
         "R without g": 10.6, "clipped": 0.0, "task |dL/dB| mean": 0.0, "bit-loss dL/dB": 0.02,
         "lambda * share": 0.02},
        {"layer": "fc", "quantizer": "spike", "N": 640, "qmax": 15, "g": 1 / math.sqrt(9600), "LSQ balance R": 0.004,
         "R without g": 0.4, "clipped": 0.0, "task |dL/dB| mean": 0.0, "bit-loss dL/dB": 0.004,
         "lambda * share": 0.004}])
    grid = pd.DataFrame([
        {"layer": "c", "quantizer": "spike", "B": 4, "R": 10.0, "k*": 30, "c*": 3.0, "grid clip fraction": 0.001,
         "grid / LSQ init": 1.1, "package score / min score": 1.0},
        {"layer": "c", "quantizer": "spike", "B": 1, "R": 10.0, "k*": 15, "c*": 1.5, "grid clip fraction": 0.2,
         "grid / LSQ init": 0.9, "package score / min score": 1.0},
        {"layer": "c", "quantizer": "weight", "B": 4, "R": 1.0, "k*": 40, "c*": 0.4, "grid clip fraction": 0.0,
         "grid / LSQ init": 1.2, "package score / min score": 1.0},
        {"layer": "c", "quantizer": "weight", "B": 1, "R": 1.0, "k*": 20, "c*": 0.2, "grid clip fraction": 0.3,
         "grid / LSQ init": 0.5, "package score / min score": 1.00001}])
    nan = float("nan")
    drops = pd.DataFrame([
        {"layer": "c", "quantizer": "spike", "b": 4, "b'": 3, "drop": "4->3", "MSE stale": 0.5,
         "neuron T=1 MSE stale": 0.5, "stale / renewed": 1.02, "LSQ init / renewed": 1.1,
         "neuron T=2 stale / renewed": 1.01, "score stale": 2.2, "score renewed": 2.0, "step stale": 0.3,
         "step range ratio": nan, "MSE range ratio": nan},
        {"layer": "c", "quantizer": "spike", "b": 4, "b'": 1, "drop": "4->1", "MSE stale": 0.9,
         "neuron T=1 MSE stale": 0.9, "stale / renewed": 4.0, "LSQ init / renewed": 1.3,
         "neuron T=2 stale / renewed": 3.0, "score stale": 9.0, "score renewed": 1.0, "step stale": 0.3,
         "step range ratio": nan, "MSE range ratio": nan},
        {"layer": "c", "quantizer": "weight", "b": 4, "b'": 1, "drop": "4->1", "MSE stale": 0.5,
         "neuron T=1 MSE stale": nan, "stale / renewed": 2.5, "LSQ init / renewed": 6.0,
         "neuron T=2 stale / renewed": nan, "score stale": 1.0, "score renewed": 0.5, "step stale": 0.1,
         "step range ratio": 0.1 / 7, "MSE range ratio": 0.9},
        {"layer": "c", "quantizer": "weight", "b": 2, "b'": 1, "drop": "2->1", "MSE stale": 0.3,
         "neuron T=1 MSE stale": nan, "stale / renewed": 1.5, "LSQ init / renewed": 3.0,
         "neuron T=2 stale / renewed": nan, "score stale": 1.0, "score renewed": 0.5, "step stale": 0.05,
         "step range ratio": 0.05, "MSE range ratio": 0.3}])
    sweep = pd.DataFrame(
        [{"layer": n, "quantizer": k, "steps": s, "B": B, "task / bit loss": v, "clipped": c}
         for n, k, s, B, v, c in (("c", "weight", "renewed", 1, 0.5, 0.3), ("c", "weight", "renewed", 4, 0.0, 0.0),
                                  ("fc", "weight", "renewed", 1, 2.0, 0.4), ("fc", "weight", "renewed", 4, 0.001, 0.0004),
                                  ("fc", "spike", "renewed", 1, 1.5, 0.2), ("fc", "spike", "renewed", 4, -0.002, 0.0),
                                  ("c", "weight", "stale", 1, 0.8, 0.5), ("c", "weight", "stale", 4, 0.0, 0.0),
                                  ("fc", "weight", "stale", 1, 0.9, 0.6), ("fc", "weight", "stale", 4, 0.0, 0.0))])
    running = pd.DataFrame(
        [{"layer": "c", "sequence": seq, "stage": i + 1, "B": B, "step running extrema": s_run, "step default": s_def,
          "clip level running extrema": clip, "MSE ratio": r}
         for seq, rows in (("4->3->2->1", ((3, 0.4, 0.4, 2.8, 1.0), (2, 0.9, 0.8, 2.8, 1.3), (1, 2.8, 1.3, 2.8, 2.5))),
                           ("4->2->1->2->1", ((2, 0.8, 0.8, 2.4, 1.0), (1, 2.4, 1.3, 2.4, 1.7), (2, 0.8, 0.8, 2.4, 1.0),
                                              (1, 2.4, 1.3, 2.4, 2.0))))
         for i, (B, s_run, s_def, clip, r) in enumerate(rows)])
    ratio = pd.DataFrame({"layer": ["c"] * 3, "B": [3, 2, 1], "MSE ratio": [11.0, 5.7, 2.9]})
    neg = {"negative_spike_points": 60, "negative_spike_bit_mismatch": 50, "negative_spike_mismatch_max_u": -0.5377,
           "negative_spike_package_value": -4 * LN2}
    return dict(elem=elem, check=check, lay=lay, init_bal=init_bal, grid=grid, drops=drops, sweep=sweep,
                running=running, ratio=ratio, neg=neg)


def test_gradient_summaries():
    t = hand_tables()
    assert qs.elementwise_summary(t["elem"]).splitlines() == [
        "2 cases (weights and spikes, B = 1..4), 15 points",
        "step gradient: autograd equals the formula at every point (1e-12): False",  # 2e-12 on the spikes
        "inside the range the step gradient lies in [-1/2, 1/2]: True",
        "weights: clip levels qmax for B = 1..4: [1]",
        "spikes: clip levels qmax for B = 1..4: [1]"]
    assert qs.bit_gradient_summary(t["elem"], t["neg"]).splitlines() == [
        "bit gradient: autograd equals the formula at every point (1e-12): True",
        "bit gradient non-zero exactly at the clipped points: True",
        "c_B (weights): [0.6931, 1.3863, 2.7726, 5.5452]; (spikes): [0.6931, 2.7726, 5.5452, 11.0904]",
        "spikes, u in [-3, 0), B = 2: the package returns a bit gradient at 50 of 60 points (all with u < -1/2: "
        "True), value -2.7726 = -c_B; the method has none there"]
    assert qs.gradient_check_summary(t["check"], -0.6).splitlines() == [
        "2 cases (3 layers x weights/spikes x B = 1, 2, 4)",
        "step gradients, autograd vs formula, relative difference below 1e-4: True",
        "bit gradients, autograd vs formula, relative difference below 1e-4: False",
        "bit gradient zero exactly where nothing is clipped: True",
        "smallest membrane potential above -Vth1/2: False"]


def test_warmup_and_scale_findings():
    t = hand_tables()
    text = qs.warmup_sentence(t["lay"], 91.234, 150, 2, -0.1234)
    assert text.startswith("After 150 steps the network classifies 91.2 % of the 1,000 test images correctly.")
    assert "(smallest value 0; 25 to 50 % exact zeros)" in text and "over its 2 steps is -0.123 $V_{th1}$" in text
    assert "weight steps moved by 5 to 50 %" in text and "$V_{th1}$ by 0.0 to 2.0 %" in text
    lines = qs.scale_summary(t["init_bal"]).splitlines()
    assert lines[0] == "            c weight: N =     100  qmax =  7  g = 3.780e-02  lambda*share = 0.01280  clipped = 0"
    assert lines[1] == ("            c  spike: N =   6,400  qmax = 15  g = 3.227e-03  lambda*share = 0.02720  "
                        "clipped = 0.0002")
    assert lines[4:] == ["g = 1/sqrt(N qmax) in every row: True",
                         "task-loss bit gradient at initialisation exactly zero: True",
                         "bit-loss gradient equals lambda * share (1e-6): True"]
    off = t["init_bal"].assign(**{"bit-loss dL/dB": [0.0128, 0.0271, 0.02, 0.004]})
    assert qs.scale_summary(off).endswith("bit-loss gradient equals lambda * share (1e-6): False")
    text = qs.scale_sentence(t["init_bal"])
    assert "the weight steps get $R$ = 0.5 to 0.9, near LSQ's aim (without $g$: 11 to 13)" in text
    assert "The spike steps get $R$ = 2.0e-03 to 4.0e-03" in text and "(640 to 6,400)" in text
    assert "$g$ = 3.2e-03 to 1.0e-02" in text and "the ratio is only 0.4 to 0.6" in text
    assert "both quantizers is 0.0002." in text and "is exactly 0, and" in text
    assert "share = 0.0040 to 0.0272 per unit" in text


def test_grid_findings():
    t = hand_tables()
    assert qs.grid_summary(t["grid"], 100, 2.4).splitlines() == [
        "4 searches (3 layers x weights/spikes x B = 1..4), K = 100, p = 2.4",
        "the package's choice has the smallest score of the study's K scores (1e-4): True",
        "chosen step = c* / qmax on the grid c_k = k R / K: True"]
    assert qs.grid_summary(t["grid"], 50, 2.4).endswith("k R / K: False")  # c* = k* R / 100, not / 50
    text = qs.grid_sentence(t["grid"])
    assert "$c^*$ falls from 3.00-3.00 at 4 bits to 1.50-1.50 at 1 bit (20-20 % of the values clipped)" in text
    assert "spikes (grid / LSQ init = 0.90 to 1.10) but not for weights (0.50 to 1.20)" in text


def test_drop_findings():
    t = hand_tables()
    assert qs.drop_summary(t["drops"]).splitlines() == [
        "4 cases: 3 layers x weights/spikes x drops 4->3, 4->1, 2->1",
        "neuron at T = 1 equals the quantizer (MSE, 1e-5 relative): True",
        "spikes, drops of 2 or more bits: renewal lowers the MSE in every case: True",
        "spikes, drops of 2 or more bits, neuron at T = 2: renewal lowers the MSE in every case: True",
        "weights, drops from the trained 4-bit step: renewal lowers the MSE in every case: True"]
    worse = t["drops"].assign(**{"stale / renewed": [1.02, 0.9, 2.5, 1.5]})  # spikes 4 -> 1: stale wins
    assert "spikes, drops of 2 or more bits: renewal lowers the MSE in every case: False" in qs.drop_summary(worse)
    text = qs.drop_sentence(t["drops"], 2.4)
    assert "After 4 -> 1 the stale step gives 4.0 to 4.0 times the renewed error (through the neuron at T = 2: " \
           "3.0 to 3.0 times)" in text
    assert "stale / renewed = 1.02 to 1.02 in mean squared error (the renewed step minimises the $p$ = 2.4 score" in text
    assert "score ratio 1.10 to 1.10)" in text and "gives 1.10 to 1.30 times the renewed error for the spikes" in text
    assert "the stale error is 1.5 to 2.5 times the renewed one" in text and "1 bit (3.0 to 6.0 times)" in text


def test_bit_gradient_balance_findings():
    t = hand_tables()
    assert qs.crossings(t["sweep"], "renewed") == "the fc weights at B = 1; the fc spikes at B = 1"
    assert qs.crossings(t["sweep"], "stale") == "no layer"
    text = qs.balance_sentence(t["sweep"], t["init_bal"])
    assert text.startswith("At $B = 4$ at most 0.04 % of any tensor clips and the task loss's pull is at most "
                           "0.002 of the bit loss's.")
    assert "In the other layers the ratio never exceeds 0.8. So, early" in text
    assert "holds 50.0 % of the weights and 10.0 % of the input features" in text  # 0.02 / 0.04, 0.004 / 0.04
    assert text.endswith("can give less pull than a renewed one.")
    inner_wins = t["sweep"].assign(**{"task / bit loss": [0.5, 0.0, 2.0, 0.001, 1.5, -0.002, 1.2, 0.0, 0.9, 0.0]})
    text = qs.balance_sentence(inner_wins, t["init_bal"])
    assert "never exceeds 1.2. A kept step" in text and "So, early" not in text
    assert "with the 4-bit steps kept, for the c weights at B = 1." in text


def test_reference_flaw_findings():
    t = hand_tables()
    assert qs.flaws_summary(t["running"], t["ratio"]).splitlines() == [
        "running extrema, first renewal identical to the default (1e-6): True",
        "running extrema, the clip level never shrinks: True",
        "running extrema, MSE at least the default's at every stage (1e-6): True",
        "range ratio, step multipliers 4->3, 3->2, 2->1: [0.4286, 0.3333, 1.0]",
        "range ratio, MSE above the grid search's at every stage: True"]
    shrinks = t["running"].assign(**{"clip level running extrema": [2.8, 2.8, 2.7, 2.4, 2.4, 2.4, 2.4]})
    assert "the clip level never shrinks: False" in qs.flaws_summary(shrinks, t["ratio"])
    text = qs.flaws_sentence(t["running"], t["ratio"], t["drops"])
    assert "the error is 2.5 to 2.5 times the default's after 4 -> 3 -> 2 -> 1 and 1.7 to 2.0 times in the flip-flop" in text
    assert "gives 2.9 to 11.0 times the grid search's error" in text
    assert "worse than keeping the old step in 1 of the 1 drops where it changes the step" in text  # 2->1 left alone


def test_paper_vs_book_rows():
    t = hand_tables()
    params = {"seed": 3, "warmup_steps": 150, "n_images": 32, "n_batches": 2, "K": 100, "p": 2.4}
    ablation = pd.DataFrame({"target": ["2/2/2", "1/1/1"], "weight_renew": [0.0, 50.0], "lbw": [0.0, 40.0],
                             "act_renew": [0.0, 60.0]})
    df = qs.paper_vs_book(params, 91.234, -0.1234, ablation=ablation, **{k: v for k, v in t.items() if k != "neg"})
    assert list(df.columns) == ["claim", "paper", "this book", "setting"] and len(df) == 8
    book, setting = list(df["this book"]), list(df["setting"])
    assert "every point of 15 (max difference 2e-12) and on real layers (max relative difference 3e-05)" in book[0]
    assert "real layers 2e-04" in book[1] and "(smallest v/Vth1 here -0.12)" in book[1]
    assert "(R = 0.5-0.9)" in book[2] and "spike steps R = 4e-03 or less: Vth1 moved 2.0 % or less" in book[2]
    assert setting[2] == "fresh model, first batch initialises the steps, 2 batches of 64"
    assert "(lambda * share 0.0040-0.0272)" in book[3] and book[3].endswith(
        "only for the fc weights at B = 1; the fc spikes at B = 1 (renewed steps)")
    assert setting[3] == setting[4] == ("default chapter model (small CNN, mnist5k-noisy, 4/4/2) after 150 SGD steps "
                                        "(91.2 % test); layer inputs of 32 images; seed 3")
    assert "stale 4.0 to 4.0 x" in book[4] and "(1.02 to 1.02 x)" in book[4] and "gives 1.10 to 1.30 x" in book[4]
    assert "in all 4 cases" in book[5] and setting[5] == "K = 100, p = 2.4"
    assert "the MSE is 2.5 to 2.5 x the default renewal's" in book[6]
    assert "MSE 2.9 to 11.0 x" in book[7] and "50.00 % against 40.00 % without renewal and 60.00 % with" in book[7]
    a111 = paper.paper_table("yao_ablation").set_index("target").loc["1/1/1"]
    df = qs.paper_vs_book(params, 91.234, -0.1234, **{k: v for k, v in t.items() if k != "neg"})
    assert f"1/1/1 is {a111['weight_renew']:.2f} % against {a111['lbw']:.2f} %" in df["this book"].iloc[7]


# ============================================================================ the chapter's figures
def test_plots_draw_the_given_numbers():
    import matplotlib.pyplot as plt

    t = hand_tables()
    u = {"weight": np.array([-1.0, 0.0, 1.0]), "spike": np.array([0.0, 1.0])}
    curves = {("weight", 1): (np.array([1.0, 2.0, 3.0]), np.array([4.0, 5.0, 6.0])),
              ("spike", 1): (np.array([7.0, 8.0]), np.array([9.0, 10.0]))}
    for which, col, title in (("step", 0, "weights (signed)"), ("bit", 1, "weights")):
        fig = qs.plot_elementwise(curves, which, u)
        ax = fig.axes[0]
        np.testing.assert_array_equal(ax.lines[0].get_ydata(), curves[("weight", 1)][col])
        np.testing.assert_array_equal(fig.axes[1].lines[0].get_xdata(), u["spike"])
        assert ax.get_title() == title
        plt.close(fig)
    grid = pd.DataFrame([{"layer": "c", "quantizer": k, "B": B, "grid step": 0.1 * B, "LSQ init step": 0.2 * B}
                         for k in qs.KINDS for B in qs.BITS])
    sc = {("c", "spike", B): (np.array([1.0, 2.0, 3.0]), np.array([3.0, 1.0, 2.0])) for B in qs.BITS}
    fig = qs.plot_grid_scores(grid, sc, 2.4)
    ax = fig.axes[0]
    assert list(ax.lines[1].get_xdata()) == [2.0] and list(ax.lines[1].get_ydata()) == [1.0]  # the chosen c*
    assert list(ax.lines[2].get_xdata()) == pytest.approx([0.2, 0.2])  # LSQ init 0.2 times qmax 1, at B = 1
    assert list(ax.lines[-1].get_xdata()) == pytest.approx([0.8 * 15] * 2)  # B = 4: 0.8 times qmax 15
    plt.close(fig)
    fig = qs.plot_grid_steps(grid, {("c", "weight"): 0.5, ("c", "spike"): 0.7})
    assert list(fig.axes[0].lines[2].get_ydata()) == [0.5] and list(fig.axes[1].lines[2].get_ydata()) == [0.7]
    np.testing.assert_allclose(fig.axes[1].lines[0].get_ydata(), [0.1, 0.2, 0.3, 0.4])
    plt.close(fig)
    drops = t["drops"].assign(**{"range ratio / renewed": [float("nan"), float("nan"), 4.5, 1.0]})
    fig = qs.plot_drops(drops[drops["drop"] == "4->1"])  # every kind needs the same drops
    assert list(fig.axes[0].lines[0].get_ydata()) == [2.5]  # weights, stale / renewed
    assert list(fig.axes[0].lines[2].get_ydata()) == [4.5]  # weights, range ratio / renewed
    assert list(fig.axes[1].lines[2].get_ydata()) == [3.0]  # spikes, neuron T = 2
    plt.close(fig)
    fig = qs.plot_bit_gradient_balance(t["sweep"])
    assert list(fig.axes[0].lines[0].get_ydata()) == [0.5, 0.0]  # c weights, renewed, B = 1 and 4
    plt.close(fig)
    ratio = t["ratio"].assign(**{"MSE range ratio": [1.0, 2.0, 3.0], "MSE grid search": [0.1, 0.2, 0.3]})
    running = t["running"].assign(**{"MSE running extrema": range(7), "MSE default": range(10, 17)})
    fig = qs.plot_reference_flaws(running, ratio)
    assert list(fig.axes[0].lines[0].get_ydata()) == [0, 1, 2] and list(fig.axes[1].lines[1].get_ydata()) == [0.1, 0.2, 0.3]
    plt.close(fig)


def _legend_under(fig, legend, axes) -> list[str]:
    """The legend's entries, after checking it lies under every panel of ``axes`` (with their tick
    and axis labels), where it covers no curve."""
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    box = legend.get_window_extent(r)
    assert all(box.y1 <= ax.get_tightbbox(r, bbox_extra_artists=[]).y0 + 0.5 for ax in axes)
    return [t.get_text() for t in legend.get_texts()]


def test_legends_sit_under_the_panels():
    import matplotlib.pyplot as plt

    t = hand_tables()
    grid = pd.DataFrame([{"layer": n, "quantizer": k, "B": B, "grid step": 0.1 * B, "LSQ init step": 0.2 * B}
                         for n in ("c", "fc") for k in qs.KINDS for B in qs.BITS])
    sc = {(n, "spike", B): (np.array([1.0, 2.0, 3.0]), np.array([3.0, 1.0, 2.0])) for n in ("c", "fc") for B in qs.BITS}
    fig = qs.plot_grid_scores(grid, sc, 2.4)  # the legend sat in the fc panel, over its curves
    assert all(ax.get_legend() is None for ax in fig.axes) and len(fig.legends) == 1
    assert _legend_under(fig, fig.legends[0], fig.axes) == [f"$B_s$ = {B}" for B in qs.BITS]
    assert "chosen" in fig.legends[0].get_title().get_text()
    plt.close(fig)
    fig = qs.plot_grid_steps(grid, {(n, k): 0.5 for n in ("c", "fc") for k in qs.KINDS})
    assert _legend_under(fig, fig.legends[0], fig.axes) == [
        "c: grid search", "c: LSQ init formula", "fc: grid search", "fc: LSQ init formula"]
    plt.close(fig)
    fig = qs.plot_bit_gradient_balance(t["sweep"])
    assert len(fig.legends) == 1 and all(ax.get_legend() is None for ax in fig.axes)
    _legend_under(fig, fig.legends[0], fig.axes)
    plt.close(fig)
    ratio = t["ratio"].assign(**{"MSE range ratio": [1.0, 2.0, 3.0], "MSE grid search": [0.1, 0.2, 0.3]})
    running = t["running"].assign(**{"MSE running extrema": range(7), "MSE default": range(10, 17)})
    fig = qs.plot_reference_flaws(running, ratio)  # different entries per panel: one legend under each
    spikes, weights = fig.axes
    assert fig.legends == []
    assert all(": running extrema" in e or ": default" in e for e in _legend_under(fig, spikes.get_legend(), [spikes]))
    assert all(": range ratio" in e or ": grid search" in e for e in _legend_under(fig, weights.get_legend(), [weights]))
    plt.close(fig)
