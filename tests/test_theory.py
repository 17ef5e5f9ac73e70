"""Tests for adabit_lite.theory: closed forms against independent computations and Monte Carlo."""

import math

import numpy as np
import pytest
from scipy import integrate

from adabit_lite import theory as th
from oracles import neuron_codes

N_MC = 10**6
Z = 5.0  # tolerance in standard errors


def phi_erf(z):
    """Standard normal cdf computed independently of the module (math.erf)."""
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


PAIRS = [(2, 1), (3, 1), (3, 2), (4, 2), (4, 1), (8, 4)]


# ---------------------------------------------------------------- distributions, lemma
def test_halfnormal_cdf_sf_against_erf():
    for sigma in (0.5, 1.0, 2.3):
        for x in (0.0, 0.1, 1.0, 1.5, 4.0):
            want = 2.0 * phi_erf(x / sigma) - 1.0
            assert th.halfnormal_cdf(x, sigma) == pytest.approx(want, abs=1e-14)
            assert th.halfnormal_sf(x, sigma) == pytest.approx(1.0 - want, abs=1e-14)
    assert th.halfnormal_cdf(-1.0) == 0.0 and th.halfnormal_sf(-1.0) == 1.0


def test_lemma_bound_value():
    want = 2.0 * (1.0 - phi_erf(1.5))
    assert abs(th.lemma_bound() - want) < 1e-12
    assert abs(th.lemma_bound() - 0.13361440253771617) < 1e-12


def test_paper_step_and_quantizer():
    assert th.paper_step(1) == 3.0
    assert th.paper_step(4, 2.0) == pytest.approx(6.0 / 15.0)
    x = np.array([0.0, 0.24, 0.25, 0.74, 0.76, 10.0])
    # step 0.5, 2 bits: codes floor(x/0.5 + 0.5) clipped to 3 (0.25 is a midpoint: rounds up)
    np.testing.assert_allclose(th.quantize(x, 0.5, 2), [0.0, 0.0, 0.5, 0.5, 1.0, 1.5])


def test_clip_ratio_below_half():
    table = th.clip_ratio_table(12)
    assert len(table) == sum(b - 1 for b in range(2, 13))
    assert all(r < 0.5 for _, _, r in table)
    for b in range(2, 13):
        assert th.max_clip_ratio(b) == max(r for bb, _, r in table if bb == b)
        assert th.max_clip_ratio(b) == pytest.approx(0.5 - 0.5 / (2**b - 1), abs=1e-15)
    assert th.clip_ratio(4, 2) == 3 / 15


@pytest.mark.parametrize("b,b_new", PAIRS)
def test_theorem_and_exact_probability_vs_monte_carlo(b, b_new):
    p_thm = th.theorem_probability(b, b_new)
    p_ex = th.exact_error_increase_probability(b, b_new)
    # closed forms against an independent erf evaluation
    assert p_thm == pytest.approx(2 * (1 - phi_erf(3 * (2**b_new - 1) / (2**b - 1))), abs=1e-12)
    assert p_ex == pytest.approx(2 * (1 - phi_erf(3 * (2**b_new - 0.5) / (2**b - 1))), abs=1e-12)
    mc_thm, se_thm = th.mc_probability(b, b_new, n=N_MC, seed=10 + b, event="theorem")
    mc_ex, se_ex = th.mc_probability(b, b_new, n=N_MC, seed=20 + b, event="exact")
    assert abs(mc_thm - p_thm) < Z * math.sqrt(p_thm * (1 - p_thm) / N_MC)
    # "exact" MC runs both quantizers, so this also checks the midpoint derivation
    assert abs(mc_ex - p_ex) < Z * math.sqrt(p_ex * (1 - p_ex) / N_MC)
    # the paper's event is strictly more likely than the real error increase
    assert p_thm > p_ex + 10 * se_ex
    # the lemma bounds the paper's event
    assert p_thm > th.lemma_bound()


def test_lemma_for_all_pairs_and_exact_event_equality():
    for b in range(2, 11):
        for b_new in range(1, b):
            assert th.theorem_probability(b, b_new) > th.lemma_bound()
            p_ex = th.exact_error_increase_probability(b, b_new)
            if b_new == b - 1:
                # threshold (2^(b-1) - 1/2) * 3 / (2^b - 1) = 1.5 exactly
                assert p_ex == pytest.approx(th.lemma_bound(), abs=1e-14)
            else:
                assert p_ex > th.lemma_bound() + 1e-3
    # sigma does not matter
    assert th.theorem_probability(4, 2, 3.7) == pytest.approx(th.theorem_probability(4, 2), abs=1e-14)


# ---------------------------------------------------------------- T steps
def test_t_step_probability():
    p = 0.1336
    assert th.t_step_probability(p, 1) == pytest.approx(p, abs=1e-15)
    assert th.t_step_probability(p, 0) == 0.0
    vals = th.t_step_probability(p, np.arange(1, 20))
    assert np.all(np.diff(vals) > 0)
    assert th.t_step_probability(p, 3) == pytest.approx(1 - (1 - p) ** 3, abs=1e-15)
    # explicit Monte Carlo of independent Bernoulli trials
    rng = np.random.default_rng(5)
    n, T = 200_000, 4
    hits = (rng.random((n, T)) < p).any(axis=1).mean()
    q = th.t_step_probability(p, T)
    assert abs(hits - q) < Z * math.sqrt(q * (1 - q) / n)


# ---------------------------------------------------------------- expected squared error
def _quad_error(step, b, sigma):
    """Independent check: numerical quadrature cell by cell (tests only)."""
    L = 2**b - 1
    f = lambda x: 2.0 / sigma * math.exp(-0.5 * (x / sigma) ** 2) / math.sqrt(2 * math.pi)
    tot = 0.0
    for k in range(L + 1):
        lo = max((k - 0.5) * step, 0.0)
        hi = (k + 0.5) * step if k < L else np.inf
        tot += integrate.quad(lambda x: (k * step - x) ** 2 * f(x), lo, hi, epsabs=1e-13)[0]
    return tot


@pytest.mark.parametrize(
    "step,b,sigma",
    [(3.0, 1, 1.0), (1.0, 2, 1.0), (0.7, 3, 2.0), (0.2, 4, 1.0), (0.05, 5, 0.8), (1.3, 1, 1.0)],
)
def test_expected_sq_error_vs_quadrature_and_mc(step, b, sigma):
    e = th.expected_sq_error(step, b, sigma)
    assert e == pytest.approx(_quad_error(step, b, sigma), rel=1e-8)
    m, se = th.mc_expected_sq_error(step, b, sigma, n=N_MC, seed=b * 7 + 1)
    assert abs(m - e) < Z * se


def test_expected_sq_error_everything_rounds_to_zero():
    sigma = 1.7
    e = th.expected_sq_error(100.0 * sigma, 2, sigma)
    assert e == pytest.approx(sigma**2, rel=1e-12)  # E[x^2] of the half-normal
    m, se = th.mc_expected_sq_error(100.0 * sigma, 2, sigma, n=N_MC, seed=3)
    assert abs(m - sigma**2) < Z * se


def test_expected_sq_error_tiny_step_is_uniform_noise():
    step, b = 0.02, 8  # range 255 * 0.02 = 5.1 sigma: almost no clipping
    e = th.expected_sq_error(step, b)
    assert e == pytest.approx(step**2 / 12, rel=2e-3)  # found: 3.33555e-5 vs 3.33333e-5
    m, se = th.mc_expected_sq_error(step, b, n=N_MC, seed=4)
    assert abs(m - e) < Z * se


def test_mc_is_seeded_and_chunk_invariant():
    a = th.mc_expected_sq_error(0.3, 3, n=300_001, seed=9, chunk=1 << 16)
    b = th.mc_expected_sq_error(0.3, 3, n=300_001, seed=9, chunk=1 << 16)
    assert a == b
    p1 = th.mc_probability(4, 2, n=300_001, seed=9, chunk=1 << 20)
    p2 = th.mc_probability(4, 2, n=300_001, seed=9, chunk=1 << 20)
    assert p1 == p2


# ---------------------------------------------------------------- optimal step
# Values found (sigma = 1): b: optimal step vs paper step 3/(2^b - 1)
#   1: 1.224006 vs 3.000000 (paper 145 % larger)   E 0.190174 vs 0.648318
#   2: 0.650770 vs 1.000000 (+53.7 %)              E 0.046860 vs 0.083570
#   3: 0.353411 vs 0.428571 (+21.3 %)              E 0.012889 vs 0.015674
#   4: 0.193249 vs 0.200000 (+3.5 %)               E 0.003693 vs 0.003731
#   5: 0.105488 vs 0.096774 (paper smaller from here on)
OPT = {1: 1.224006, 2: 0.650770, 3: 0.353411, 4: 0.193249}


def test_optimal_step_is_minimum_and_differs_from_paper():
    rel = {}
    for b in range(1, 5):
        s = th.optimal_step(b)
        e = th.expected_sq_error(s, b)
        assert th.expected_sq_error(0.95 * s, b) > e
        assert th.expected_sq_error(1.05 * s, b) > e
        assert th.expected_sq_error(th.paper_step(b), b) > e
        assert s == pytest.approx(OPT[b], abs=2e-6)
        rel[b] = abs(th.paper_step(b) - s) / s
    assert all(r > 0.01 for r in rel.values())
    assert rel[1] > rel[2] > rel[3] > rel[4]
    # scale equivariance
    assert th.optimal_step(3, 2.5) == pytest.approx(2.5 * th.optimal_step(3), rel=1e-7)
    assert th.optimal_step(5) > th.paper_step(5)


# ---------------------------------------------------------------- stale vs renewed
SMALL_PAIRS = [(b, bn) for b in range(2, 5) for bn in range(1, b)]


def test_stale_vs_renewed_direction():
    paper_not_better = []
    for b, bn in SMALL_PAIRS:
        r = th.stale_vs_renewed(b, bn)
        assert r.stale_error > r.renewed_optimal_error  # the theorem's direction
        assert r.stale_error > r.original_error
        assert r.ratio_stale_to_optimal > 1.09
        if r.stale_error <= r.renewed_paper_error:
            paper_not_better.append((b, bn))
    # renewing to the paper step does NOT help for b' = 1 at b = 2, 3 (3 sigma is a poor 1-bit step)
    assert paper_not_better == [(2, 1), (3, 1)]
    r = th.stale_vs_renewed(4, 2)
    assert r.ratio_stale_to_paper == pytest.approx(4.1595, abs=1e-3)
    assert r.ratio_stale_to_optimal == pytest.approx(7.418, abs=1e-3)
    assert th.stale_vs_renewed(2, 1).ratio_stale_to_paper == pytest.approx(0.3221, abs=1e-3)


@pytest.mark.parametrize("b,b_new", [(2, 1), (3, 2), (4, 1), (4, 3)])
def test_stale_vs_renewed_against_monte_carlo(b, b_new):
    r = th.stale_vs_renewed(b, b_new)
    n = 500_000
    for k, (step, bits, want) in enumerate([
        (r.stale_step, b_new, r.stale_error),
        (r.renewed_paper_step, b_new, r.renewed_paper_error),
        (r.renewed_optimal_step, b_new, r.renewed_optimal_error),
    ]):
        m, se = th.mc_expected_sq_error(step, bits, n=n, seed=100 * b + 10 * b_new + k)
        assert abs(m - want) < Z * se


# ---------------------------------------------------------------- the paper's drafted formula
def test_drafted_formula_is_mean_squared_change_of_quantized_value():
    for b in range(2, 9):
        for bn in range(1, b):
            d = th.paper_expected_error_formula(b, bn)
            assert d == pytest.approx(th.expected_sq_quantized_gap(b, bn), rel=1e-12, abs=1e-15)
            dec = th.drafted_formula_decomposition(b, bn)
            assert dec.increase == pytest.approx(dec.drafted + dec.cross_term, abs=1e-12)
    # hand-computed (b, b') = (2, 1): s = 1, codes 2, 3 vs 1 -> 1^2 P(1.5<x<2.5) + 2^2 P(x>2.5)
    p = lambda t: 2 * (1 - phi_erf(t))
    assert th.paper_expected_error_formula(2, 1) == pytest.approx(
        (p(1.5) - p(2.5)) + 4 * p(2.5), abs=1e-12)
    m, se = th.mc_expected_sq_quantized_gap(4, 2, n=N_MC, seed=42)
    assert abs(m - th.paper_expected_error_formula(4, 2)) < Z * se


def test_drafted_formula_differs_from_exact_stale_error():
    b, bn = 4, 2
    dec = th.drafted_formula_decomposition(b, bn)
    s = th.paper_step(b)
    # paired Monte Carlo of (stale error) - (drafted integrand): mean = original error + cross term
    rng = np.random.default_rng(7)
    x = np.abs(rng.standard_normal(N_MC))
    qb, qn = th.quantize(x, s, b), th.quantize(x, s, bn)
    diff = (qn - x) ** 2 - (qb - qn) ** 2
    m, se = diff.mean(), diff.std(ddof=1) / math.sqrt(N_MC)
    want = dec.stale_error - dec.drafted
    assert want == pytest.approx(dec.original_error + dec.cross_term, abs=1e-12)
    assert abs(m - want) < Z * se
    assert m > 20 * se  # the formula is measurably below the exact stale error
    # numbers found: formula 0.343909, increase 0.343874, stale 0.347605
    assert dec.drafted == pytest.approx(0.343909, abs=2e-6)
    assert dec.stale_error == pytest.approx(0.347605, abs=2e-6)
    assert dec.increase == pytest.approx(0.343874, abs=2e-6)
    # elsewhere it is far from the increase: (2, 1) 0.170872 vs 0.125244
    d21 = th.drafted_formula_decomposition(2, 1)
    assert d21.drafted - d21.increase == pytest.approx(0.045629, abs=2e-6)
    assert th.drafted_formula_decomposition(4, 3).cross_term > 0  # either sign


# ---------------------------------------------------------------- the actual neuron
def test_neuron_codes_soft_reset_properties():
    """The Monte Carlo's neuron is the package's (neuron.neuron_trace): the numpy oracle's codes,
    and the properties the argument uses."""
    rng = np.random.default_rng(1)
    s, b, T = 0.2, 4, 6
    x = rng.uniform(0.0, 2.8, 10_000)  # below the clip level 3.0 - s/2: never saturates
    codes = th._neuron_codes(x, s, b, T)
    np.testing.assert_array_equal(codes, neuron_codes(x, s, b, T))
    np.testing.assert_array_equal(codes[0] * s, th.quantize(x, s, b))
    # soft reset with rounding: cumulative emission tracks t * x within half a step
    resid = (np.arange(1, T + 1)[:, None] * x) - s * np.cumsum(codes, axis=0)
    assert np.all(resid >= -0.5 * s - 1e-12) and np.all(resid < 0.5 * s + 1e-12)
    # saturating input emits the top code every step
    assert np.all(th._neuron_codes(np.array([5.0]), s, b, T) == 15)


def test_neuron_t_step_against_original_stays_at_p():
    b, bn, T = 4, 2, 8
    p_ex = th.exact_error_increase_probability(b, bn)
    p, se = th.mc_neuron_t_step_probability(b, bn, T, n=N_MC, seed=11, reference="original")
    assert abs(p[0] - p_ex) < Z * math.sqrt(p_ex * (1 - p_ex) / N_MC)
    # with the same x every step the event does not spread over time: still p at T = 8 ...
    assert abs(p[-1] - p_ex) < Z * math.sqrt(p_ex * (1 - p_ex) / N_MC)
    # ... far below the independent-steps formula (0.995)
    assert th.t_step_probability(p_ex, T) > p[-1] + 0.4
    assert np.all(np.diff(p) >= 0)


def test_neuron_t_step_against_paper_renewal():
    b, bn, T = 2, 1, 4
    p, se = th.mc_neuron_t_step_probability(b, bn, T, n=N_MC, seed=12, reference="paper")
    # T = 1: stale (step 1, emits 1 when x > 0.5) vs renewed (step 3, emits 3 when x > 1.5):
    # the stale error is larger exactly when x > 2
    p1 = 2 * (1 - phi_erf(2.0))
    assert abs(p[0] - p1) < Z * math.sqrt(p1 * (1 - p1) / N_MC)
    assert np.all(np.diff(p) >= 0)
    # dependence works the other way here: at T = 2 the neuron exceeds 1 - (1 - p)^2
    # (found: 0.231 vs 0.089)
    assert p[1] > th.t_step_probability(p[0], 2) + 0.1
    # reference choice is validated
    with pytest.raises(ValueError):
        th.mc_neuron_t_step_probability(b, bn, 2, n=10, reference="nope")


def test_mc_tail_probability():
    sigma, t = 2.0, 3.0
    want = 2 * (1 - phi_erf(t / sigma))
    p, se = th.mc_tail_probability(t, sigma, n=N_MC, seed=8, chunk=1 << 18)
    assert abs(p - want) < Z * math.sqrt(want * (1 - want) / N_MC)
    assert se == pytest.approx(math.sqrt(p * (1 - p) / N_MC))
