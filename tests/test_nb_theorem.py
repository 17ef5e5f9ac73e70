"""Chapter 2 (nb/02_theorem.ipynb) run through papermill with small parameters.

The assertions read the JSON the notebook records and recompute what they can without the
notebook: closed forms from math.erf, the lemma's constant, minima by numerical quadrature, the
T-step formula by hand. A wrong notebook or a wrong adabit_lite.theory makes them fail.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import integrate

import papermill  # noqa: E402

from nbrun import assert_stops_on_bad_parameter, run_chapter  # noqa: E402

from adabit_lite import theory as th  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NB = ROOT / "nb" / "02_theorem.ipynb"
SMALL = dict(sigma=1.0, b_max=3, n=200_000, n_grid=20_000, seed=3, T_max=4)
PAIRS = [(2, 1), (3, 1), (3, 2)]
Z = 5.0  # Monte Carlo tolerance in standard errors
FIGURES = ["probabilities", "stale_vs_renewed_heatmap", "error_vs_bit_drop", "drafted_formula",
           "optimal_step", "t_steps", "grid_search"]
TABLES = ["probabilities", "expected_errors", "drafted_formula", "optimal_step", "t_steps",
          "grid_search", "paper_vs_book"]


def phi(z: float) -> float:
    """Standard normal cdf via math.erf (independent of the package)."""
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def tail(t: float) -> float:
    """P(|N(0, 1)| > t)."""
    return 2.0 * (1.0 - phi(t))


def quad_mse(step: float, b: int) -> float:
    """E[(Q_b(x; step) - x)^2] for x = |N(0, 1)| by quadrature over the rounding cells."""
    L = 2**b - 1
    f = lambda x: 2.0 * math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)  # noqa: E731
    total = 0.0
    for k in range(L + 1):
        lo = max((k - 0.5) * step, 0.0)
        hi = (k + 0.5) * step if k < L else np.inf
        total += integrate.quad(lambda x: (k * step - x) ** 2 * f(x), lo, hi, epsabs=1e-14)[0]
    return total


@pytest.fixture(scope="module")
def chapter(tmp_path_factory):
    return run_chapter("02_theorem", tmp_path_factory.mktemp("nb02"), **SMALL)


def test_parameters_and_lemma(chapter):
    rec, _ = chapter
    assert rec["parameters"] == SMALL
    assert rec["lemma_bound"] == pytest.approx(tail(1.5), abs=1e-12)
    assert round(rec["lemma_bound"], 4) == 0.1336
    for b, ratio in rec["max_clip_ratio"].items():
        b = int(b)
        assert ratio == pytest.approx((2 ** (b - 1) - 1) / (2**b - 1), abs=1e-15) and ratio < 0.5


def test_theorem_and_exact_probabilities(chapter):
    rec, _ = chapter
    assert set(rec["theorem_probability"]) == {f"{b},{bn}" for b, bn in PAIRS}
    bound = tail(1.5)
    for b, bn in PAIRS:
        key = f"{b},{bn}"
        p_thm, p_ex = rec["theorem_probability"][key], rec["exact_probability"][key]
        assert p_thm == pytest.approx(th.theorem_probability(b, bn), abs=1e-14)
        assert p_thm == pytest.approx(tail(3 * (2**bn - 1) / (2**b - 1)), abs=1e-12)
        assert p_ex == pytest.approx(tail(3 * (2**bn - 0.5) / (2**b - 1)), abs=1e-12)
        assert p_thm > bound and p_ex < p_thm
        if bn == b - 1:
            assert p_ex == pytest.approx(bound, abs=1e-12)  # the lemma is tight for the exact event
        else:
            assert p_ex > bound + 1e-3
        for mc_key, p in (("mc_theorem_probability", p_thm), ("mc_exact_probability", p_ex)):
            mc, se = rec[mc_key][key]
            assert se == pytest.approx(math.sqrt(mc * (1 - mc) / SMALL["n"]), rel=1e-9)
            assert abs(mc - p) < Z * math.sqrt(p * (1 - p) / SMALL["n"])


def test_expected_errors_and_renewal(chapter):
    rec, _ = chapter
    for b, bn in PAIRS:
        key = f"{b},{bn}"
        stale = rec["stale_error"][key]
        assert stale == pytest.approx(quad_mse(3.0 / (2**b - 1), bn), rel=1e-8)
        assert rec["renewed_paper_error"][key] == pytest.approx(quad_mse(3.0 / (2**bn - 1), bn), rel=1e-8)
        assert rec["original_error"][key] == pytest.approx(quad_mse(3.0 / (2**b - 1), b), rel=1e-8)
        assert stale > rec["renewed_optimal_error"][key]
        mc, se = rec["mc_stale_error"][key]
        assert abs(mc - stale) < Z * se
    assert rec["paper_renewal_not_better"] == [[2, 1], [3, 1]]


def test_drafted_formula_is_mean_squared_change(chapter):
    rec, _ = chapter
    # (b, b') = (2, 1): s = 1, codes 2 and 3 become 1 -> 1^2 P(1.5 < x < 2.5) + 2^2 P(x > 2.5)
    assert rec["drafted_formula"]["2,1"] == pytest.approx((tail(1.5) - tail(2.5)) + 4 * tail(2.5), abs=1e-12)
    assert rec["drafted_max_abs_gap"] < 1e-12
    for b, bn in PAIRS:
        key = f"{b},{bn}"
        drafted = rec["drafted_formula"][key]
        assert drafted == pytest.approx(rec["quantized_gap"][key], abs=1e-12)
        increase = rec["stale_error"][key] - rec["original_error"][key]
        assert increase == pytest.approx(drafted + rec["cross_term"][key], abs=1e-12)
        assert abs(drafted - rec["stale_error"][key]) > 1e-4  # not the stale error
        mc, se = rec["mc_quantized_gap"][key]
        assert abs(mc - drafted) < Z * se
    assert rec["cross_term"]["2,1"] == pytest.approx(-0.045629, abs=2e-6)


def test_optimal_steps_are_minima(chapter):
    rec, _ = chapter
    assert sorted(rec["optimal_step"], key=int) == [str(b) for b in range(1, SMALL["b_max"] + 1)]
    for b, s in rec["optimal_step"].items():
        b = int(b)
        assert rec["paper_step"][str(b)] == pytest.approx(3.0 / (2**b - 1), abs=1e-15)
        e = quad_mse(s, b)
        assert rec["optimal_mse"][str(b)] == pytest.approx(e, rel=1e-8)
        assert quad_mse(0.97 * s, b) > e and quad_mse(1.03 * s, b) > e
        assert quad_mse(3.0 / (2**b - 1), b) > e
    assert rec["optimal_step"]["1"] == pytest.approx(1.224006, abs=2e-6)


def test_t_step_accumulation(chapter):
    rec, _ = chapter
    T = SMALL["T_max"]
    Ts = np.arange(1, T + 1)
    assert set(rec["t_steps"]) == {"2,1", "3,1"}
    for key, c in rec["t_steps"].items():
        b, bn = map(int, key.split(","))
        p_thm = tail(3 * (2**bn - 1) / (2**b - 1))
        np.testing.assert_allclose(c["paper formula"], 1 - (1 - p_thm) ** Ts, atol=1e-12)
        for ref in ("original", "paper"):
            p = np.asarray(c[f"neuron {ref}"])
            assert p.shape == (T,) and np.all(np.diff(p) >= 0)
            np.testing.assert_allclose(c[f"independent {ref}"], 1 - (1 - p[0]) ** Ts, atol=1e-12)
        # against the b-bit neuron the event is fixed by x: p_exact at T = 1 and no growth over T
        p = np.asarray(c["neuron original"])
        p_ex = tail(3 * (2**bn - 0.5) / (2**b - 1))
        assert abs(p[0] - p_ex) < Z * math.sqrt(p_ex * (1 - p_ex) / SMALL["n"])
        assert np.all(p == p[0])
    # (2, 1) against the renewed paper step: dependence raises the T = 2 probability above independence
    c = rec["t_steps"]["2,1"]
    assert c["neuron paper"][1] > c["independent paper"][1] + 0.1


def test_grid_search_renewal(chapter):
    rec, _ = chapter
    R = rec["grid_search_range"]
    for b in range(1, SMALL["b_max"] + 1):
        L = 2**b - 1
        for key in ("grid_step_p24", "grid_step_p2"):
            k = rec[key][str(b)] * L * 100 / R  # the chosen step is one of the K candidates c_k / L
            assert abs(k - round(k)) < 1e-3 and 1 <= round(k) <= 100
        assert rec["grid_mse_p24"][str(b)] >= rec["optimal_mse"][str(b)]
        assert rec["grid_mse_p24"][str(b)] == pytest.approx(quad_mse(rec["grid_step_p24"][str(b)], b), rel=1e-8)
        # p = 2.4 weighs large errors more: a wider range than the MSE optimum
        assert rec["grid_step_p24"][str(b)] > rec["optimal_step"][str(b)]
    assert rec["grid_mse_p24"]["1"] < 1.05 * rec["optimal_mse"]["1"] < rec["paper_mse"]["1"]


def test_figures_and_tables_written(chapter):
    rec, fig_dir = chapter
    assert sorted(Path(p).name for p in rec["figures"]) == sorted(f"02_theorem_{f}.png" for f in FIGURES)
    for name in FIGURES:
        data = (fig_dir / f"02_theorem_{name}.png").read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    for name in TABLES:
        text = (fig_dir / f"02_theorem_{name}.csv").read_text()
        assert len(text.splitlines()) >= 2


@pytest.mark.parametrize("name,value,words", [("sigma", -1.0, "positive"), ("b_max", 1, "2 to 8")])
def test_bad_parameter_stops_with_one_line(tmp_path, name, value, words):
    assert_stops_on_bad_parameter("02_theorem", tmp_path, name, value, words)


def test_the_expected_error_table_is_shown_once_folded_under_its_heatmap():
    """The committed chapter shows the stale-vs-renewed ratios as the heatmap; the 17-column table
    of the same errors is folded (a <details> block) right under it, not shown beside it."""
    nb = json.loads(NB.read_text())
    cells = nb["cells"]
    shown = [(i, "".join(o["data"]["text/html"])) for i, c in enumerate(cells) if c["cell_type"] == "code"
             for o in c.get("outputs", []) if "text/html" in o.get("data", {})]
    with_errors = [(i, h) for i, h in shown if "MC renewed optimal" in h]
    assert len(with_errors) == 1
    i, html = with_errors[0]
    assert html.startswith('<details class="adabit-folded"><summary>')
    heatmap = next(j for j, c in enumerate(cells) if "02_theorem_stale_vs_renewed_heatmap" in "".join(c["source"]))
    assert i == heatmap + 1
    assert any("image/png" in o.get("data", {}) for o in cells[heatmap]["outputs"])
