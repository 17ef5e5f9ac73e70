"""The fixed-budget chapter (nb/07_budgets.ipynb), run by papermill on tiny settings that train
their runs into a temporary results folder; its table is checked against the stored run files and
its costs against hand counts of the small CNN."""

import math
import os
import warnings

import numpy as np
import pytest
import torch
from nbrun import assert_stops_on_bad_parameter, run_chapter
from scipy import stats

from adabit_lite import neuron, paper, sweeps
from adabit_lite.results import find_result
from adabit_lite.studies import budgets as bg

pytestmark = pytest.mark.usefixtures("one_thread")

SEEDS = [0, 1]
BUDGETS = {4: ["1/4/1", "1/1/4", "4/1/1"]}
TINY = dict(dataset="digits", data_options="size=8", width=8, epochs=1)
FIGURES = ["accuracy_vs_split", "accuracy_vs_s_ace", "accuracy_per_epoch", "paper_vs_book"]
TABLES = ["costs", "splits", "comparisons", "paper_vs_book", "paper_comparisons"]
# The small CNN of width 8 on 8x8 digits, counted by hand (per sample): stem conv 1->8 at 8x8;
# conv 8->16 at 4x4, conv 16->16 at 2x2, fc 64->10 (models/small.py).
STEM_MACS = 8 * 8 * 9 * 1 * 8
LEARNED_MACS = 4 * 4 * 9 * 8 * 16 + 2 * 2 * 9 * 16 * 16 + 64 * 10
LEARNED_WEIGHTS = 9 * 8 * 16 + 9 * 16 * 16 + 64 * 10


@pytest.fixture(scope="module")
def chapter(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("nb07")
    before = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = "1"  # the kernel trains tiny models: one thread, as one_thread
    try:
        rec, figs = run_chapter("07_budgets", tmp, results_dir=str(tmp / "results"), seeds=SEEDS,
                                budgets=BUDGETS, train_missing=True, **TINY)
    finally:
        if before is None:
            os.environ.pop("OMP_NUM_THREADS")
        else:
            os.environ["OMP_NUM_THREADS"] = before
    return rec, figs, tmp / "results" / "fixed-budget"


def welch_p(a, b) -> float:
    """scipy's two-sided Welch p-value; NaN when neither group has any spread (the book's rule:
    no test is possible), and quiet about a group without spread."""
    if np.std(a) == 0 and np.std(b) == 0:
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def stored_runs(results):
    groups = sweeps.fixed_budget_groups(SEEDS, budgets=BUDGETS, **TINY)
    return {split: [find_result(results, c) for c in cfgs] for split, cfgs in groups[4].items()}


def test_every_wanted_run_is_trained_stored_and_shown(chapter):
    rec, figs, results = chapter
    runs = stored_runs(results)
    assert rec["runs_found"] == rec["runs_wanted"] == len(SEEDS) * len(BUDGETS[4]) == 6
    assert all(r is not None for rs in runs.values() for r in rs)
    assert rec["parameters"]["budgets"] == {"4": BUDGETS[4]}
    for name in FIGURES:
        assert (figs / f"07_budgets_{name}.png").stat().st_size > 5_000
    for name in TABLES:
        assert (figs / f"07_budgets_{name}.csv").exists()


def test_the_table_is_recomputed_from_the_stored_runs(chapter):
    rec, _, results = chapter
    table = {row["split"]: row for row in rec["table"]}
    assert list(table) == BUDGETS[4]
    runs = stored_runs(results)
    means = {s: np.mean([r["metrics"]["accuracy"] for r in rs]) for s, rs in runs.items()}
    best = max(means, key=means.get)
    for split, rs in runs.items():
        row = table[split]
        acc = np.array([r["metrics"]["accuracy"] for r in rs])
        assert row["budget"] == 4 and row["runs"] == row["wanted"] == len(SEEDS)
        assert row["accuracy"] == pytest.approx(acc.mean())
        assert row["std"] == pytest.approx(acc.std(ddof=1))
        assert row["train accuracy"] == pytest.approx(
            np.mean([r["history"][-1]["train_accuracy"] for r in rs]))
        assert row["rank"] == 1 + sum(m > means[split] for m in means.values())
        if split == best:
            assert math.isnan(row["p vs best"])
        else:
            b = [r["metrics"]["accuracy"] for r in runs[best]]
            p = welch_p(b, acc)
            assert row["p vs best"] == pytest.approx(p) or (math.isnan(p) and math.isnan(row["p vs best"]))
        assert row["stored S-ACE (M)"] == pytest.approx(
            1e3 * np.mean([r["metrics"]["s_ace_g"] for r in rs]))
        assert row["stored size (kbit)"] == pytest.approx(
            1e3 * np.mean([r["metrics"]["size_mbit"] for r in rs]))
    order = sorted(means, key=means.get, reverse=True)
    assert rec["orderings"]["4"] == " > ".join(f"{s} ({means[s]:.2f})" for s in order)
    assert rec["meter_matches_stored"] is True


def test_splits_have_exactly_their_bits_and_the_meter_counts_them(chapter):
    rec, _, results = chapter
    costs = {row["split"]: row for row in rec["costs"]}
    for split, rs in stored_runs(results).items():
        w, s, t = (int(v) for v in split.split("/"))
        for r in rs:
            m = r["metrics"]
            assert r["parameters"]["target"] == r["parameters"]["init"] == split
            assert not (r["parameters"]["learn_w"] or r["parameters"]["learn_s"]
                        or r["parameters"]["learn_T"])
            assert all(layer["Bw"] == w and layer["Bs"] == [s] and layer["T"] == t
                       for layer in m["layers"])
            assert (m["W"], m["S"], m["T"], m["bit_budget"]) == (w, s, t, 4)
            # learned convention: the stem left out, so S-ACE = MACs of the learned layers * BB
            assert m["macs_g"] * 1e9 == pytest.approx(LEARNED_MACS)
            assert m["s_ace_g"] * 1e9 == pytest.approx(LEARNED_MACS * 4)
            assert m["size_mbit"] * 1e6 == pytest.approx(LEARNED_WEIGHTS * w)
        c = costs[split]
        assert c["MACs (M)"] * 1e6 == pytest.approx(LEARNED_MACS)
        assert c["S-ACE (M)"] * 1e6 == pytest.approx(LEARNED_MACS * 4)
        assert c["stem MACs (M)"] * 1e6 == pytest.approx(STEM_MACS)
        assert c["stem W/S/T"] == f"8/8/{t}"
        assert c["stem S-ACE (M)"] * 1e6 == pytest.approx(STEM_MACS * 64 * t)
        assert c["S-ACE + stem (M)"] * 1e6 == pytest.approx(LEARNED_MACS * 4 + STEM_MACS * 64 * t)
        assert c["uniform S-ACE (M)"] * 1e6 == pytest.approx((LEARNED_MACS + STEM_MACS) * 4)
        assert c["size (kbit)"] * 1e3 == pytest.approx(LEARNED_WEIGHTS * w)
        assert (c["spike levels"], c["weight levels"]) == {
            "1/4/1": (16, 2), "1/1/4": (5, 2), "4/1/1": (2, 15)}[split]


def test_the_comparisons_are_the_claimed_pairs_with_welch_and_holm(chapter):
    rec, _, results = chapter
    runs = stored_runs(results)
    rows = rec["comparisons"]
    assert [(r["comparison"], r["a"], r["b"]) for r in rows] == [
        (bg.SPIKES_VS_STEPS, "1/4/1", "1/1/4"), (bg.SPIKES_VS_WEIGHTS, "1/4/1", "4/1/1")]
    ps = []
    for r in rows:
        a = [x["metrics"]["accuracy"] for x in runs[r["a"]]]
        b = [x["metrics"]["accuracy"] for x in runs[r["b"]]]
        assert r["a - b"] == pytest.approx(np.mean(a) - np.mean(b))
        p = welch_p(a, b)
        assert r["p"] == pytest.approx(p) or (math.isnan(p) and math.isnan(r["p"]))
        ps.append(r["p"])
    finite = sorted(p for p in ps if not math.isnan(p))
    if len(finite) == 2:  # Holm over two: min p doubled, the larger kept at least as large
        lo, hi = min(1, 2 * finite[0]), min(1, max(2 * finite[0], finite[1]))
        assert sorted(r["p (Holm)"] for r in rows) == pytest.approx([lo, hi])
    for kind, v in rec["verdicts"].items():
        names = {f"{r['a']} vs {r['b']}" for r in rows if r["comparison"] == kind}
        assert set(sum(v.values(), [])) == names


def test_paper_vs_book_reads_shen_et_al(chapter):
    rec, _, _ = chapter
    shen = paper.paper_table("shen_table2")
    q = shen[shen["method"] == "Quantized Spikformer"].set_index("wst")
    rows = {r["split"]: r for r in rec["paper_vs_book"]}
    assert set(rows) == set(BUDGETS[4])
    for split, r in rows.items():
        assert r["paper CIFAR-10"] == q.loc[split, "cifar10"]
        assert r["paper CIFAR-100"] == q.loc[split, "cifar100"]
        assert r["paper S-ACE (G)"] == q.loc[split, "s_ace_g"]
    ranks = q.loc[BUDGETS[4], "cifar10"].rank(ascending=False)
    assert {s: rows[s]["paper CIFAR-10 rank"] for s in rows} == {s: int(ranks[s]) for s in rows}
    for r in rec["paper_comparisons"]:
        assert r["paper CIFAR-10 a - b"] == pytest.approx(q.loc[r["a"], "cifar10"] - q.loc[r["b"], "cifar10"])
        assert r["paper CIFAR-100 a - b"] == pytest.approx(q.loc[r["a"], "cifar100"] - q.loc[r["b"], "cifar100"])
    order = sorted(BUDGETS[4], key=lambda s: -q.loc[s, "cifar100"])
    assert rec["paper_orderings"]["4 CIFAR-100"] == " > ".join(f"{s} ({q.loc[s, 'cifar100']:.2f})" for s in order)


def test_bad_parameter_stops_with_one_line(tmp_path):
    assert_stops_on_bad_parameter("07_budgets", tmp_path, "budgets", {4: ["1/2/1"]}, "W * S * T")


# ---------------------------------------------------------------- the module, without the notebook
@pytest.mark.parametrize("S,T", [(1, 1), (1, 4), (2, 2), (4, 1), (2, 3)])
def test_spike_levels_are_what_the_neuron_sends_on(S, T):
    """T steps of the refined neuron on a static input: count the distinct averages it sends on
    for a dense ramp over (and beyond) its range."""
    x = torch.linspace(-0.5, (2 ** S - 1) + 1.0, 20001, dtype=torch.float64)
    _, spikes = neuron.neuron_trace(x, 1.0, S, T)
    averages = torch.unique(torch.round(spikes.mean(0) * T))
    assert len(averages) == bg.spike_levels(S, T)


def test_budget_parameter_checks_and_normalisation():
    known = {4: ("1/4/1", "2/2/1")}
    assert bg.budget_problem({4: ["1/4/1"], "16": ["4/4/1"]}) is None
    assert bg.normalize_budgets({"4": ["1/4/1"]}) == {4: ["1/4/1"]}
    assert bg.normalize_budgets([4], known) == {4: ["1/4/1", "2/2/1"]}
    assert "W * S * T = 2" in bg.budget_problem({4: ["1/2/1"]})
    assert bg.budget_problem({4: ["1/4/1", "1/4/1"]}) is not None
    assert bg.budget_problem({4: ["1/4"]}) is not None
    assert bg.budget_problem({"x": ["1/4/1"]}) is not None
    assert bg.budget_problem([16], known) is not None
    assert bg.budget_problem([]) is not None


def test_holm_and_claim_pairs():
    assert bg.holm([0.01, 0.04, math.nan, 0.03]) == pytest.approx([0.03, 0.06, math.nan, 0.06],
                                                                  nan_ok=True)
    pairs = bg.claim_pairs(["1/4/1", "1/2/2", "1/1/4", "2/2/1", "2/1/2", "4/1/1"])
    assert pairs == [(bg.SPIKES_VS_STEPS, "1/4/1", "1/2/2"), (bg.SPIKES_VS_STEPS, "1/4/1", "1/1/4"),
                     (bg.SPIKES_VS_STEPS, "2/2/1", "2/1/2"),
                     (bg.SPIKES_VS_WEIGHTS, "1/4/1", "2/2/1"), (bg.SPIKES_VS_WEIGHTS, "1/4/1", "4/1/1"),
                     (bg.SPIKES_VS_WEIGHTS, "1/2/2", "2/1/2")]
