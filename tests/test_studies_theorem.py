"""adabit_lite.studies.theorem (chapter 2's tables, figures and verdicts).

Closed forms are checked against formulas worked out by hand for the 1-bit quantizer on
x = |N(0, 1)|; the findings and verdict lines against small tables made up here.
"""

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch
from scipy import optimize

from adabit_lite import theory
from adabit_lite.studies import theorem as th

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py
N = 20_000


def phi(z):
    return math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)


def tail(t):
    """P(|N(0, 1)| > t)."""
    return math.erfc(t / math.sqrt(2))


def mse_1bit(s):
    """E[(Q_1(x; s) - x)^2] for x = |N(0, 1)|: code 0 below s/2, code 1 above.  With
    E[x; x > t] = 2 phi(t) and E[x^2] = 1 this is 1 + s^2 P(x > s/2) - 4 s phi(s/2)."""
    return 1 + s * s * tail(s / 2) - 4 * s * phi(s / 2)


def test_pairs_keys_and_seeds():
    assert th.drop_pairs(3) == [(2, 1), (3, 1), (3, 2)]
    assert len(th.drop_pairs(6)) == 15
    assert th.pair_key(np.int64(3), 2) == "3,2"
    assert th.mc_seed(5, 2, 3, 1) == 2036
    assert th.t_step_pairs(2) == [(2, 1)] and th.t_step_pairs(6) == [(2, 1), (6, 4)]


def test_by_pair_and_by_bits():
    table = pd.DataFrame({"b": [2, 3], "b'": [1, 2], "x": [0.5, 0.25], "se": [0.1, 0.2]})
    assert th.by_pair(table, "x") == {"2,1": 0.5, "3,2": 0.25}
    assert th.by_pair(table, "x", "se") == {"2,1": [0.5, 0.1], "3,2": [0.25, 0.2]}
    assert th.by_bits(table, "se") == {"2": 0.1, "3": 0.2}
    assert type(th.by_bits(table, "x")["2"]) is float


def test_lemma_text():
    assert th.lemma_text(0.133614, {"2": 1 / 3}) == (
        "lemma bound 2 (1 - Phi(1.5)) = 0.1336\n"
        "b = 2: largest clip ratio (2^(b-1) - 1) / (2^b - 1) = 0.3333 < 0.5")


def test_probability_table_one_pair_and_its_record():
    prob = th.probability_table(b_max=2, sigma=2.0, n=N, seed=0)  # (2, 1): s_2 = sigma
    assert len(prob) == 1
    r = prob.iloc[0]
    assert r["paper threshold/sigma"] == pytest.approx(1.0) and r["exact threshold/sigma"] == pytest.approx(1.5)
    assert r["P paper"] == pytest.approx(tail(1.0), abs=1e-12)
    assert r["P exact"] == pytest.approx(tail(1.5), abs=1e-12)
    for ev in ("paper", "exact"):
        p, mc = r[f"P {ev}"], r[f"MC {ev}"]
        assert r[f"SE {ev}"] == pytest.approx(math.sqrt(mc * (1 - mc) / N))
        assert r[f"z {ev}"] == pytest.approx((mc - p) / math.sqrt(p * (1 - p) / N))
        assert abs(r[f"z {ev}"]) < 5
    rec = th.probability_record(prob)
    assert rec["theorem_probability"] == {"2,1": pytest.approx(tail(1.0))}
    assert rec["mc_exact_probability"]["2,1"] == [r["MC exact"], r["SE exact"]]


def test_probability_findings():
    lemma = 0.1336
    prob = pd.DataFrame({"b": [2, 3], "b'": [1, 1], "P paper": [0.3, 0.6], "P exact": [lemma, 0.5],
                         "z paper": [0.0, 6.0], "z exact": [1.0, -1.0]})
    lines = th.probability_findings(prob, lemma).splitlines()
    assert lines[0] == "b=2 b'=1: paper 0.3000  exact 0.1336"
    assert lines[2] == "paper's event above the lemma bound for every pair: True"
    assert lines[4] == "exact event equal to the bound (1e-12) exactly where b' = b - 1: True"
    assert lines[5] == "exact below the paper's probability for every pair: True"
    assert lines[6] == "Monte Carlo within 5 SE of the closed form: paper False, exact True"
    prob.loc[1, "P exact"] = lemma  # equal to the bound where b' = b - 2: the check says so
    assert "b' = b - 1: False" in th.probability_findings(prob, lemma)


def test_error_table_against_the_one_bit_formula():
    errs = th.error_table(b_max=2, sigma=1.0, n=N, seed=1)
    r = errs.iloc[0]
    assert r["stale"] == pytest.approx(mse_1bit(1.0), rel=1e-9)  # s_2 = 1 kept for 1 bit
    assert r["renewed paper"] == pytest.approx(mse_1bit(3.0), rel=1e-9)  # s_1 = 3
    best = optimize.minimize_scalar(mse_1bit, bounds=(0.5, 2.5), method="bounded", options={"xatol": 1e-10})
    assert r["renewed optimal"] == pytest.approx(best.fun, rel=1e-9)
    assert r["stale/paper"] == pytest.approx(mse_1bit(1.0) / mse_1bit(3.0))
    for name in th.ERROR_KINDS:
        assert r[f"z {name}"] == pytest.approx((r[f"MC {name}"] - r[name]) / r[f"SE {name}"])
        assert abs(r[f"z {name}"]) < 5
    rec = th.error_record(errs)
    assert rec["paper_renewal_not_better"] == [[2, 1]]
    assert rec["mc_stale_error"]["2,1"] == [r["MC stale"], r["SE stale"]]
    assert rec["original_error"]["2,1"] == r["before (b bits)"]


def test_paper_renewal_not_better_and_error_findings():
    errs = pd.DataFrame({"b": np.array([2, 3, 4]), "b'": np.array([1, 1, 1]), "stale": [0.2, 0.4, 0.7],
                         "renewed paper": [0.6, 0.4, 0.6], "renewed optimal": [0.1, 0.1, 0.1],
                         "stale/paper": [1 / 3, 1.0, 7 / 6], "stale/optimal": [2.0, 4.0, 7.0],
                         "z stale": [0.0, 0.0, 0.0], "z renewed paper": [1.0, 0.0, 0.0],
                         "z renewed optimal": [0.0, -5.5, 0.0]})
    pairs = th.paper_renewal_not_better(errs)
    assert pairs == [[2, 1], [3, 1]] and type(pairs[0][0]) is int
    lines = th.error_findings(errs).splitlines()
    assert lines[0] == ("b=2 b'=1: stale 0.200000  renewed paper 0.600000  renewed optimal 0.100000"
                        "  stale/paper 0.3333  stale/optimal 2.0000")
    assert lines[3:] == ["pairs where renewing to the paper's step is worse than keeping the stale step: "
                         "(b, b') = (2, 1) and (3, 1)", "smallest stale/optimal ratio: 2.0000",
                         "Monte Carlo within 5 SE of the closed form: False"]


def test_error_details_fold_the_whole_table():
    errs = pd.DataFrame({"b": [2], "b'": [1], "stale": [0.2]})
    folded = th.error_details(errs, 1000)
    assert folded.html.startswith('<details class="adabit-folded"><summary>')
    assert "(MC, 1,000 samples)" in folded.html and "(3 columns)" in folded.html


def test_drafted_table_for_two_to_one_bits():
    dec = th.drafted_table(b_max=2, sigma=1.0, n=N, seed=2)
    r = dec.iloc[0]
    # s = 1: codes 2 and 3 of the 2-bit quantizer become 1 -> 1^2 P(1.5 < x < 2.5) + 2^2 P(x > 2.5)
    assert r["drafted formula"] == pytest.approx(tail(1.5) - tail(2.5) + 4 * tail(2.5), abs=1e-12)
    assert r[th.GAP] == pytest.approx(r["drafted formula"], abs=1e-12)
    assert r["stale error"] == pytest.approx(mse_1bit(1.0), rel=1e-9)
    assert r["increase"] == pytest.approx(r["drafted formula"] + r["cross term"], abs=1e-12)
    assert r["drafted - increase"] == pytest.approx(-r["cross term"], abs=1e-12)
    assert r["cross term"] == pytest.approx(-0.045629, abs=2e-6)
    assert r["z"] == pytest.approx((r[f"MC {th.GAP}"] - r[th.GAP]) / r["SE"]) and abs(r["z"]) < 5
    rec = th.drafted_record(dec)
    assert rec["drafted_max_abs_gap"] == th.drafted_max_gap(dec) < 1e-12
    assert set(rec) == {"drafted_formula", "quantized_gap", "mc_quantized_gap", "cross_term", "drafted_max_abs_gap"}


def test_drafted_findings():
    dec = pd.DataFrame({"b": [2, 3], "b'": [1, 1], "drafted formula": [0.11, 0.17], th.GAP: [0.11, 0.17],
                        "increase": [0.1, 0.2], "cross term": [-0.01, 0.03], "stale error": [0.2, 0.3],
                        "drafted - increase": [0.01, -0.03], "z": [0.0, 0.0]})
    lines = th.drafted_findings(dec).splitlines()
    assert lines[:3] == ["drafted formula equals E[(Q_b - Q_b')^2] for every pair (max |difference| < 1e-12): True",
                         "stale - before = drafted + cross term for every pair (< 1e-12): True",
                         "Monte Carlo of E[(Q_b - Q_b')^2] within 5 SE: True"]
    assert lines[4] == "b=3 b'=1: drafted 0.170000  increase 0.200000  stale 0.300000  cross +0.030000"
    assert lines[-1] == "largest |drafted - increase|: 0.030000 at (b, b') = (3, 1), relative to the increase 0.1500"
    dec.loc[0, "cross term"] = 0.0  # the identity broken on one pair
    assert "(< 1e-12): False" in th.drafted_findings(dec)


def test_optimal_step_table_one_bit():
    opt = th.optimal_step_table(b_max=1, sigma=1.0, n=N, seed=0)
    r = opt.iloc[0]
    best = optimize.minimize_scalar(mse_1bit, bounds=(0.5, 2.5), method="bounded", options={"xatol": 1e-10})
    assert r["optimal step"] == pytest.approx(best.x, abs=1e-6)
    assert r["optimal top level/sigma"] == r["optimal step"]  # one level above zero
    assert r["paper step"] == 3.0 and r["MSE paper"] == pytest.approx(mse_1bit(3.0), rel=1e-9)
    assert r["paper excess %"] == pytest.approx(100 * (mse_1bit(3.0) / best.fun - 1), rel=1e-6)
    assert th.optimal_record(opt)["paper_step"] == {"1": 3.0}
    lines = th.optimal_findings(opt, 1.0).splitlines()
    assert lines[0] == ("b=1: optimal step 1.2240 sigma  paper 3.0000 sigma  MSE optimal 0.190174"
                        "  paper 0.648318 sigma^2  (paper +240.9 %)")
    assert lines[1] == "Monte Carlo MSE at the optimum within 5 SE: True"


def curves_by_hand():
    return {"2,1": {"paper formula": np.array([0.3, 0.51]),
                    "neuron original": np.array([0.13, 0.13]), "neuron original SE": np.array([0.01, 0.01]),
                    "independent original": np.array([0.13, 0.2431]),
                    "neuron paper": np.array([0.05, 0.2]), "neuron paper SE": np.array([0.02, 0.03]),
                    "independent paper": np.array([0.05, 0.0975])}}


def test_t_step_table_record_and_findings():
    curves = curves_by_hand()
    table = th.t_step_table(curves)
    assert len(table) == 4 and list(table["T"]) == [1, 2, 1, 2]
    row = table.iloc[3]
    assert (row["b"], row["b'"], row["reference"]) == (2, 1, th.REFERENCES["paper"])
    assert (row["neuron (MC)"], row["SE"], row["paper 1-(1-p)^T"]) == (0.2, 0.03, 0.51)
    assert th.t_step_record(curves)["2,1"]["neuron paper"] == [0.05, 0.2]
    assert th.t_step_findings(curves).splitlines() == [
        "(b, b') = (2,1), T = 1 .. 2:",
        "  paper 1-(1-p)^T at T = 2: 0.5100",
        "  neuron stale vs b bits, step s_b (before the drop): T=1 0.13, T=2 0.13 (independent steps would "
        "give 0.24); unchanged over T: True",
        "  neuron stale vs b' bits renewed to s_b': T=1 0.05, T=2 0.20 (independent steps would give 0.10);"
        " unchanged over T: False"]


def test_t_step_curves_with_the_real_neuron():
    curves = th.t_step_curves(b_max=2, T_max=3, sigma=1.0, n=N, seed=0)
    assert list(curves) == ["2,1"]
    c = curves["2,1"]
    Ts = np.arange(1, 4)
    np.testing.assert_allclose(c["paper formula"], 1 - (1 - tail(1.0)) ** Ts, atol=1e-12)
    p = c["neuron original"]  # against the b-bit neuron: the exact event, decided at the first step
    assert np.all(p == p[0]) and abs(p[0] - tail(1.5)) < 5 * math.sqrt(tail(1.5) * (1 - tail(1.5)) / N)
    np.testing.assert_allclose(c["independent paper"], 1 - (1 - c["neuron paper"][0]) ** Ts, atol=1e-12)
    np.testing.assert_allclose(c["neuron paper SE"], np.sqrt(c["neuron paper"] * (1 - c["neuron paper"]) / N))


def test_grid_search_table_picks_grid_steps():
    opt = th.optimal_step_table(b_max=2, sigma=1.0, n=1000, seed=0)
    threads = torch.get_num_threads()
    gs, R = th.grid_search_table(opt, sigma=1.0, n_grid=5000, seed=4)
    assert torch.get_num_threads() == threads
    x = theory.sample_halfnormal(np.random.default_rng(4 + 9000), 5000, 1.0).astype(np.float32)
    assert R == pytest.approx(float(x.max() - x.min()), rel=1e-6)
    for r in gs.to_dict("records"):
        L = 2 ** r["b"] - 1
        assert r["grid spacing"] == pytest.approx(R / 100 / L)
        for col in ("grid step p=2.4", "grid step p=2"):
            k = r[col] * L * 100 / R  # the chosen step is one of the K candidates c_k / L
            assert abs(k - round(k)) < 1e-3 and 1 <= round(k) <= 100
        assert r["excess grid p=2 %"] == pytest.approx(100 * (r["MSE grid p=2"] / r["MSE optimal"] - 1))
        assert r["MSE grid p=2.4"] >= r["MSE optimal"]
    assert gs.loc[0, "MSE grid p=2"] == pytest.approx(mse_1bit(gs.loc[0, "grid step p=2"]), rel=1e-9)
    rec = th.grid_record(gs, R)
    assert rec["grid_search_range"] == R and set(rec["grid_step_p2"]) == {"1", "2"}
    first = th.grid_findings(gs, 2 * R, 2.0).splitlines()[0]
    assert first == f"sample range R = {R:.2f} sigma, K = 100 candidates"


def made_up_tables(paper_steps=(3.0, 1.0, 0.45)):
    prob = pd.DataFrame({"b": [2, 3, 3], "b'": [1, 1, 2], "P paper": [0.32, 0.67, 0.2],
                         "P exact": [0.13, 0.52, 0.13]})
    errs = pd.DataFrame({"b": [2, 3, 3], "b'": [1, 1, 2], "stale/paper": [0.3, 1.2, 1.1],
                         "stale/optimal": [1.1, 2.5, 1.9]})
    dec = pd.DataFrame({"drafted formula": [0.1, 0.2, 0.3], th.GAP: [0.1, 0.2, 0.3 + 3e-13],
                        "cross term": [-0.05, 0.01, 0.02]})
    opt = pd.DataFrame({"b": [1, 2, 3], "paper step": list(paper_steps), "optimal step": [1.224, 0.65, 0.35],
                        "paper excess %": [240.9, 78.3, 21.6]})
    curves = {"2,1": {"paper formula": [0.3, 0.5], "neuron original": [0.13, 0.13],
                      "independent original": [0.13, 0.24]},
              "3,1": {"paper formula": [0.6, 0.8], "neuron original": [0.5, 0.5],
                      "independent original": [0.5, 0.75]}}
    gs = pd.DataFrame({"excess grid p=2.4 %": [0.9, 5.74], "excess paper %": [240.9, 78.3]})
    return prob, errs, dec, opt, curves, gs


def test_paper_vs_book_verdicts():
    summary = th.paper_vs_book(*made_up_tables(), sigma=1.0, b_max=3, n=1000, seed=7, n_grid=500)
    book = dict(zip(summary["claim"], summary["this book"]))
    assert len(summary) == 7
    assert summary["setting"].iloc[0] == "half-normal, sigma = 1; 1 <= b' < b <= 3; Monte Carlo n = 1,000, seed 7"
    assert book["error grows with probability P(x > (2^b'-1)/(2^b-1) 3 sigma)"].endswith("higher by 0.0700 to 0.1900")
    assert book["lemma: P > 2(1 - Phi(1.5))"].endswith("(smallest 0.2000); for the exact event it holds with "
                                                       "equality at b' = b - 1 (2 pairs)")
    assert summary["paper"].iloc[1] == "holds for b' <= b - 1 (0.1336)"
    assert book["over T steps: 1 - (1 - p)^T"] == ("the neuron re-adds the same x: at (b, b') = (3,1), T = 2, "
                                                    "stale vs b-bit neuron gives 0.50 against 0.75 for independent steps")
    assert "(max difference 3.0e-13)" in book["drafted E(Err') with the stale step"]
    assert book["drafted E(Err') with the stale step"].endswith("cross term up to 0.0500")
    assert book["3 sigma / (2^b - 1) is the statistically optimal step"] == (
        "not MSE-optimal: at b = 1 the optimum is 1.2240 sigma, not 3 sigma (paper step MSE +241 %); "
        "the paper step is above the optimum for every b <= 3")
    assert book["renewing the step after a bit drop lowers the error"].endswith(
        "(stale/optimal >= 1.10); renewing to the paper's step is worse than keeping the stale step at (b, b') = (2, 1)")
    assert book["grid-search renewal (K = 100, p = 2.4)"] == ("MSE within 5.7 % of the optimum for b = 1 .. 3 "
                                                               "(paper step: up to 241 %)")
    assert summary["setting"].iloc[-1] == "500 half-normal samples, float32"
    below = th.paper_vs_book(*made_up_tables(paper_steps=(3.0, 0.5, 0.3)), sigma=1.0, b_max=3, n=1000, seed=7,
                             n_grid=500)
    assert below["this book"].iloc[4].endswith("the paper step is below the optimum from b = 2 on")


def test_figures_draw_the_tables():
    prob = pd.DataFrame({"b": [2, 3], "b'": [1, 2], "P paper": [0.3, 0.2], "MC paper": [0.3, 0.2],
                         "SE paper": [0.01, 0.01], "P exact": [0.13, 0.13], "MC exact": [0.13, 0.13],
                         "SE exact": [0.01, 0.01]})
    fig = th.plot_probabilities(prob, 0.1336)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["2,1", "3,2"]
    plt.close(fig)
    errs = pd.DataFrame({"b": [2, 3, 3], "b'": [1, 1, 2], "stale/paper": [0.5, 2.0, 4.0],
                         "stale/optimal": [1.5, 3.0, 8.0], "stale": [0.2, 0.5, 0.09],
                         "renewed paper": [0.6, 0.6, 0.08], "renewed optimal": [0.19, 0.19, 0.05],
                         "MC stale": [0.2, 0.5, 0.09], "SE stale": [0.001] * 3, "before (b bits)": [0.08, 0.02, 0.02]})
    fig = th.plot_error_heatmap(errs, 3)
    assert len(fig.axes) == 3  # two heatmaps and their colour bar
    assert {t.get_text() for t in fig.axes[1].texts} == {"1.50", "3.00", "8.00"}
    plt.close(fig)
    fig = th.plot_error_vs_drop(errs, 3)
    assert list(fig.axes[0].lines[0].get_ydata()) == [0.5, 0.09]  # the stale error for b' = 1, 2
    plt.close(fig)
    fig = th.plot_t_steps(curves_by_hand())
    assert fig.axes[0].get_title() == "b = 2 -> b' = 1"
    plt.close(fig)


def test_pairs_text_reads_as_words():
    assert th.pairs_text([]) == "no pair"
    assert th.pairs_text([[2, 1]]) == "(b, b') = (2, 1)"
    assert th.pairs_text([[2, 1], [3, 1], [4, 2]]) == "(b, b') = (2, 1), (3, 1) and (4, 2)"


# ---------------------------------------------------------------- the tables as the book shows them
def test_show_fixes_the_decimals_of_probabilities_z_and_steps():
    import re

    table = pd.DataFrame([{"b": 2, "b'": 1, "paper threshold/sigma": 1.0, "P paper": 0.317311,
                           "MC paper": 0.3173, "SE paper": 0.00046542, "z paper": -0.026874,
                           "paper / optimal": 2.45097, "optimal step": 1.22403,
                           "excess grid p=2 %": 0.048}])
    assert th.column_decimals(table.columns) == {"paper threshold/sigma": 4, "P paper": 4, "MC paper": 4,
                                                 "z paper": 2, "optimal step": 4, "excess grid p=2 %": 2}
    cells = re.findall(r"<td[^>]*>(.*?)</td>", th.show(table)._repr_html_())
    # SE and the ratio: show_table's own format (SE below 1e-3: scientific, two significant
    # digits; the ratio: 2 decimals); no index column
    assert cells == ["2", "1", "1.0000", "0.3173", "0.3173", "4.7e-04", "-0.03", "2.45", "1.2240", "0.05"]
