"""adabit_lite.studies.budgets without the notebook: chapter 7's tables, printed summaries,
findings and figures on small hand-made runs whose numbers are worked out by hand here."""

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from adabit_lite import studies
from adabit_lite.studies import budgets as bg
from adabit_lite.train import TrainConfig

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py

BUDGETS = {4: ["1/4/1", "1/1/4", "4/1/1"]}
# Welch's test of [90, 92] against [80, 82]: t = 10 / sqrt(2/2 + 2/2) = sqrt(50) with 2 degrees of
# freedom, whose two-sided p is 1 - t / sqrt(2 + t^2) = 1 - sqrt(50 / 52)
P_10_POINTS = 1 - math.sqrt(50 / 52)  # 0.0194


def run(acc, train=99.0, s_ace_g=0.021, size_mbit=0.058, device="cpu", curve=None):
    """A stored result as training writes it, with only what the chapter reads."""
    curve = curve or [acc]
    return {"metrics": {"accuracy": acc, "s_ace_g": s_ace_g, "size_mbit": size_mbit},
            "history": [{"epoch": e, "test_accuracy": a, "train_accuracy": train}
                        for e, a in enumerate(curve)],
            "run": {"device_type": device}}


def cost(stem_s_ace, size, stem="8/8/1"):
    """A ``split_costs`` row: 21 M S-ACE (learned convention) for every split."""
    return {"MACs (M)": 5.25, "S-ACE (M)": 21.0, "stem MACs (M)": 0.25, "stem W/S/T": stem,
            "stem S-ACE (M)": stem_s_ace, "S-ACE + stem (M)": 21.0 + stem_s_ace,
            "uniform S-ACE (M)": 22.0, "size (kbit)": size}


COSTS = {"1/4/1": cost(14.0, 58.0), "1/1/4": cost(56.0, 58.0, "8/8/4"), "4/1/1": cost(14.0, 232.0)}


@pytest.fixture
def groups():
    """1/4/1 at 90 and 92 %, 1/1/4 at 80 and 82 %, 4/1/1 not run."""
    return {4: {"1/4/1": [run(90.0, curve=[50.0, 90.0]), run(92.0, curve=[60.0, 92.0])],
                "1/1/4": [run(80.0), run(82.0, device="cuda")], "4/1/1": []}}


@pytest.fixture
def table(groups):
    return bg.split_table(groups, {4: dict.fromkeys(BUDGETS[4], 2)}, COSTS)


@pytest.fixture
def comparisons(groups):
    return bg.comparison_table(groups, BUDGETS)


def comparison_rows(rows):
    """A ``comparison_table`` written by hand: (kind, a, b, a - b, p, p Holm) per row."""
    return pd.DataFrame([{"budget": 4, "comparison": k, "a": a, "b": b, "a - b": d, "p": p,
                          "p (Holm)": h} for k, a, b, d, p, h in rows])


SHEN = pd.DataFrame([
    {"method": "Quantized Spikformer", "wst": "1/4/1", "cifar10": 95.0, "cifar100": 76.5, "s_ace_g": 3.0},
    {"method": "Quantized Spikformer", "wst": "1/1/4", "cifar10": 94.0, "cifar100": 74.25, "s_ace_g": 3.5},
    {"method": "Quantized Spikformer", "wst": "4/1/1", "cifar10": 96.0, "cifar100": 74.0, "s_ace_g": 3.0},
    {"method": "Spikformer", "wst": "32/1/4", "cifar10": 97.0, "cifar100": 80.0, "s_ace_g": 9.0},
])


# ---------------------------------------------------------------- section 1: what a split buys
def test_cost_columns_are_what_split_costs_meters():
    cfg = TrainConfig(target="1/4/1", dataset="digits", data_options="size=8", width=8).uquant()
    spec = {"num_classes": 10, "in_channels": 1, "image_size": [8, 8]}
    assert tuple(bg.split_costs(cfg, spec)) == bg.COST_COLUMNS


def test_cost_table_adds_the_levels_of_each_split():
    t = bg.cost_table({4: ["1/4/1", "4/1/1"]}, COSTS)
    assert t[["budget", "split", "spike levels", "weight levels"]].values.tolist() == [
        [4, "1/4/1", 16, 2], [4, "4/1/1", 2, 15]]  # 1 (2^4 - 1) + 1; 2 (2^3 - 1) + 1
    assert t["size (kbit)"].tolist() == [58.0, 232.0]
    assert list(t.columns[4:]) == list(bg.COST_COLUMNS)


def test_cost_lines():
    t = bg.cost_table({4: ["1/1/4"]}, COSTS)
    assert bg.cost_lines(t, "digits", (8, 8)) == [
        "data digits 8x8, learned layers 5.2500 M MACs, stem 0.2500 M MACs per sample",
        "BB 4 1/1/4: levels spikes 5, weights 2; S-ACE 21.00 M + stem 8/8/4 56.00 M = 77.00 M; "
        "uniform 22.00 M; size 58.00 kbit"]


# ---------------------------------------------------------------- section 2: stored runs
def test_load_runs_groups_and_counts(monkeypatch, tmp_path):
    stored = {"a0": run(90.0), "a1": run(91.0), "b1": run(80.0)}
    calls = []

    def fake(sweep_dir, cfg, train_missing=False):
        calls.append((sweep_dir, train_missing))
        return stored.get(cfg)

    monkeypatch.setattr(studies, "stored_result", fake)
    groups, wanted, found, n_wanted = bg.load_runs(
        {4: {"1/4/1": ["a0", "a1"], "1/1/4": ["b0", "b1", "b2"]}}, tmp_path, True)
    assert groups == {4: {"1/4/1": [stored["a0"], stored["a1"]], "1/1/4": [stored["b1"]]}}
    assert wanted == {4: {"1/4/1": 2, "1/1/4": 3}}
    assert (found, n_wanted) == (3, 5)
    assert set(calls) == {(tmp_path, True)} and len(calls) == 5


def test_devices(groups):
    assert bg.devices(groups) == ["cpu", "cuda"]
    assert bg.devices({4: {"1/4/1": [{"metrics": {}}]}}) == []


def test_orderings_and_meter_matches(table):
    assert bg.orderings(table, BUDGETS) == {4: "1/4/1 (91.00) > 1/1/4 (81.00)"}
    assert bg.meter_matches(table)  # stored 0.021 G = 21 M, 0.058 Mbit = 58 kbit
    off = table.copy()
    off.loc[off["split"] == "1/1/4", "stored size (kbit)"] = 58.001
    assert not bg.meter_matches(off)
    off.loc[off["split"] != "4/1/1", "runs"] = 0  # nothing left to compare
    assert bg.meter_matches(off)


def test_accuracy_view_keeps_the_compared_costs_only_where_they_differ(table):
    assert bg.meter_matches(table)
    dropped = set(table.columns) - set(bg.accuracy_view(table).columns)
    assert dropped == {"W", "S", "T", "wanted", "MACs (M)", "stem MACs (M)", "stem W/S/T", "stem S-ACE (M)",
                       "S-ACE + stem (M)", "uniform S-ACE (M)", "S-ACE (M)", "size (kbit)"}
    assert {"stored S-ACE (M)", "stored size (kbit)", "accuracy", "split"} <= set(bg.accuracy_view(table))
    off = table.copy()
    off["stored S-ACE (M)"] = off["stored S-ACE (M)"] * 1.01
    assert {"S-ACE (M)", "size (kbit)", "stored S-ACE (M)"} <= set(bg.accuracy_view(off))


def test_split_lines(table):
    lines = bg.split_lines(table, bg.orderings(table, BUDGETS))
    assert lines[1:] == [
        "BB 4 1/4/1 (2 of 2): 91.00 +- 1.41, train 99.00, rank 1, best, S-ACE 21.00 M",
        "BB 4 1/1/4 (2 of 2): 81.00 +- 1.41, train 99.00, rank 2, p = 0.019, S-ACE 21.00 M",
        "BB 4 4/1/1 (0 of 2): missing",
        "stored S-ACE and size equal the meter's for every split shown: True",
        "BB 4 ordering: 1/4/1 (91.00) > 1/1/4 (81.00)"]
    empty = table.assign(runs=0)
    assert bg.split_lines(empty, {4: ""})[-2:] == [
        "stored S-ACE and size equal the meter's for every split shown: no runs to compare",
        "BB 4 ordering: no runs"]


# ---------------------------------------------------------------- section 3: the comparisons
def test_comparison_lines(comparisons):
    assert comparisons["p"].iloc[0] == pytest.approx(P_10_POINTS)
    assert bg.comparison_lines(comparisons) == [
        "BB 4 spike bits vs time steps (same W): 1/4/1 91.00 vs 1/1/4 81.00, a - b +10.00 "
        "(p = 0.019, Holm p = 0.019)",  # the only p-value: Holm leaves it as it is
        "BB 4 spike bits vs weight bits (same T): 1/4/1 vs 4/1/1: missing runs"]


def test_budget_sentence(table):
    assert bg.budget_sentence(table, 4, "X > Y") == (
        "**Bit Budget 4**, 4 runs: ordering by mean accuracy X > Y; best minus worst 10.00 points; "
        "not stored: 4/1/1.")
    one = table[table["split"] != "1/1/4"]
    assert bg.budget_sentence(one, 4, "") == (
        "**Bit Budget 4**, 2 runs: ordering by mean accuracy (none); not stored: 4/1/1.")


def test_steps_paragraph_says_who_wins(table, comparisons):
    text = bg.steps_paragraph(table, comparisons, "SETTING")
    assert text.startswith(
        "**Spike bits vs time steps.** 1/4/1 (16 spike levels) vs 1/1/4 (5 levels, stem S-ACE "
        "56.0 M against 14.0 M): +10.00 points, p = 0.019, Holm p = 0.019. ")
    assert text.endswith("Spike bits win where the difference is significant (1/4/1 vs 1/1/4), "
                         "as Shen et al. found on CIFAR.")
    steps = bg.SPIKES_VS_STEPS
    b_wins = comparison_rows([(steps, "1/4/1", "1/1/4", -3.0, 0.01, 0.02)])
    assert "Here the time steps win (1/4/1 vs 1/1/4)" in bg.steps_paragraph(table, b_wins, "S")
    mixed = comparison_rows([(steps, "1/4/1", "1/1/4", -3.0, 0.01, 0.02),
                             (steps, "1/4/1", "4/1/1", 3.0, 0.01, 0.02),
                             (steps, "1/1/4", "4/1/1", 1.0, 0.3, 0.6)])
    text = bg.steps_paragraph(table, mixed, "S")
    assert ("The direction is mixed: spike bits win in 1/4/1 vs 4/1/1, time steps in 1/4/1 vs 1/1/4. "
            "Not significant: 1/1/4 vs 4/1/1.") in text
    none = comparison_rows([(steps, "1/4/1", "1/1/4", 1.0, 0.2, 0.4),
                            (steps, "1/4/1", "4/1/1", 1.0, math.nan, math.nan)])
    text = bg.steps_paragraph(table, none, "SETTING")
    assert "No difference is significant after the Holm adjustment: in this setting (SETTING)" in text
    assert text.endswith(" No Welch test is possible for 1/4/1 vs 4/1/1 (fewer than two runs a side, "
                         "or no spread); their means are shown, nothing is claimed.")
    assert bg.steps_paragraph(table, comparison_rows(
        [(steps, "1/4/1", "1/1/4", math.nan, math.nan, math.nan)]), "S") == ""


def test_weights_paragraph(table):
    w = bg.SPIKES_VS_WEIGHTS
    rows = comparison_rows([(w, "1/4/1", "4/1/1", 2.0, 0.0004, 0.002),
                            (w, "1/4/1", "1/1/4", -0.5, 0.4, 0.4),
                            (w, "1/1/4", "4/1/1", 1.0, math.nan, math.nan)])
    assert bg.weights_paragraph(table, rows) == (
        "**Spike bits vs weight bits.** 1/4/1 vs 4/1/1 (weight levels 2 vs 15, size 58 vs 232 kbit): "
        "+2.00 points, p < 0.001, Holm p = 0.002; 1/4/1 vs 1/1/4 (weight levels 2 vs 2, size 58 vs 58 "
        "kbit): -0.50 points, p = 0.400, Holm p = 0.400; 1/1/4 vs 4/1/1 (weight levels 2 vs 15, size 58 "
        "vs 232 kbit): +1.00 points, p = n/a, Holm p = n/a. Spike bits win in 1/4/1 vs 4/1/1. Not "
        "significant: 1/4/1 vs "
        "1/1/4. No Welch test possible: 1/1/4 vs 4/1/1.")
    lost = comparison_rows([(w, "1/4/1", "4/1/1", -2.0, 0.001, 0.002)])
    assert bg.weights_paragraph(table, lost).endswith("Weight bits win in 1/4/1 vs 4/1/1. ")
    assert bg.weights_paragraph(table, comparison_rows(
        [(bg.SPIKES_VS_STEPS, "1/4/1", "1/1/4", 1.0, 0.2, 0.2)])) == ""


def test_run_setting():
    assert bg.run_setting("digits", 1, 1) == "small CNN, digits, 1 epoch, 1 seed per split"
    assert bg.run_setting("mnist", 10, 5) == "small CNN, mnist, 10 epochs, 5 seeds per split"


def test_findings(table, comparisons):
    orders = bg.orderings(table, BUDGETS)
    parts = bg.findings(table, comparisons, orders, "S").split("\n\n")
    assert parts == [bg.budget_sentence(table, 4, orders[4]),
                     bg.steps_paragraph(table, comparisons, "S"), bg.WHAT_T_BUYS]
    assert bg.findings(table.assign(runs=0), comparisons, orders, "S").startswith(
        "No stored runs yet for these parameters")


# ---------------------------------------------------------------- the paper
def test_paper_orderings_and_lines():
    orders = bg.paper_orderings(SHEN, {4: ["1/4/1", "1/1/4", "2/2/1"]})
    assert orders == {"4 CIFAR-10": "1/4/1 (95.00) > 1/1/4 (94.00)",
                      "4 CIFAR-100": "1/4/1 (76.50) > 1/1/4 (74.25)"}
    assert bg.paper_orderings(SHEN, {4: ["2/2/1"]}) == {"4 CIFAR-10": "", "4 CIFAR-100": ""}
    pairs = pd.DataFrame([{"budget": 4, "a": "1/4/1", "b": "1/1/4", "a - b": 1.5, "p": 0.0124,
                           "paper CIFAR-10 a - b": 1.0, "paper CIFAR-100 a - b": -2.25},
                          {"budget": 4, "a": "1/4/1", "b": "2/2/1", "a - b": math.nan, "p": math.nan,
                           "paper CIFAR-10 a - b": math.nan, "paper CIFAR-100 a - b": math.nan}])
    assert bg.paper_lines({"4 CIFAR-10": "A", "4 CIFAR-100": ""}, {4: ""}, pairs, "digits") == [
        "BB 4 Shen et al. CIFAR-10: A", "BB 4 Shen et al. CIFAR-100: not reported",
        "BB 4 this book (digits): no runs",
        "BB 4 1/4/1 - 1/1/4: Shen CIFAR-10 +1.00, CIFAR-100 -2.25; ours +1.50 (p = 0.012)",
        "BB 4 1/4/1 - 2/2/1: Shen CIFAR-10 +nan, CIFAR-100 +nan; ours missing"]


def test_paper_claims(table):
    steps = bg.SPIKES_VS_STEPS
    pairs = comparison_rows([(steps, "1/4/1", "1/1/4", 2.0, 0.01, 0.01),
                             (steps, "1/4/1", "1/2/2", -1.0, 0.01, 0.03),
                             (steps, "1/4/1", "2/1/2", math.nan, math.nan, math.nan),
                             (bg.SPIKES_VS_WEIGHTS, "1/4/1", "4/1/1", 5.0, 0.01, 0.01)])
    pairs["paper CIFAR-10 a - b"] = [1.0, -1.0, 2.0, 0.0]
    pairs["paper CIFAR-100 a - b"] = [1.0, 1.0, math.nan, 0.0]
    assert bg.paper_claims(pairs, table, SHEN).split("\n\n") == [
        "**Shen et al.** In their rows the split with more spike bits beats the one with more time "
        "steps in 2 of 3 of these pairs on CIFAR-10 and 2 of 3 on CIFAR-100 (single runs, no spread "
        "reported).",
        "**This book.** The mean of the spike-bit split is higher in 1 of 2 pairs; it is significantly "
        "higher (Holm p < 0.05) in 1 and significantly lower in 1.",
        "**Cost.** In Shen et al.'s rows at Bit Budget 4, the splits 1/4/1 and 4/1/1 print the same "
        "S-ACE (3.00 G) and only 1/1/4 (3.50 G) more. Our 8-bit stem makes each added time step cost "
        "more (section 1)."]
    assert bg.paper_claims(pairs.iloc[3:], table[~table["split"].isin(["1/1/4", "4/1/1"])], SHEN) == ""
    calm = pairs.assign(**{"p (Holm)": 0.5})
    assert "higher in 1 of 2 pairs; no difference is significant (Holm p < 0.05)." in bg.paper_claims(calm, table, SHEN)


def test_the_papers_printed_cost_says_which_splits_print_more():
    shen = pd.DataFrame([
        {"method": "Quantized Spikformer", "wst": "1/4/1", "s_ace_g": 3.08, "notes": None},
        {"method": "Quantized Spikformer", "wst": "1/2/2", "s_ace_g": 3.09, "notes": None},
        {"method": "Quantized Spikformer", "wst": "1/1/4", "s_ace_g": 3.69, "notes": "attention apart"},
        {"method": "Quantized Spikformer", "wst": "4/4/1", "s_ace_g": 12.0, "notes": None},
        {"method": "Quantized Spikformer", "wst": "4/1/4", "s_ace_g": 14.0, "notes": None}])
    splits = pd.DataFrame({"split": ["1/4/1", "1/2/2", "1/1/4", "4/4/1", "4/1/4"]})
    assert bg.paper_cost_text(shen, splits) == (
        "**Cost.** In Shen et al.'s rows at Bit Budget 4, the splits 1/4/1 and 1/2/2 print the same S-ACE "
        "(3.08 to 3.09 G) and only 1/1/4 (3.69 G) more (the data file notes \"attention apart\"); at Bit "
        "Budget 16, 4/4/1 prints 12.00 G and 4/1/4 (14.00 G) more. Their printed cost, then, does not rise "
        "with every added time step; our 8-bit stem makes each one cost more (section 1).")
    assert bg.paper_cost_text(shen, splits.iloc[:1]) == ""  # one split of a budget: nothing to compare


# ---------------------------------------------------------------- figures
def test_plot_accuracy_vs_split(groups):
    fig = bg.plot_accuracy_vs_split(groups, BUDGETS)
    ax = fig.axes[0]
    assert len(fig.axes) == 1
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1/4/1\n16 lv", "1/1/4\n5 lv", "4/1/1\n2 lv"]
    assert "not run" in [t.get_text() for t in ax.texts]
    seeds = np.concatenate([c.get_offsets()[:, 1] for c in ax.collections if len(c.get_offsets()) == 2])
    assert sorted(seeds) == [80.0, 82.0, 90.0, 92.0]
    means = [line.get_ydata()[0] for line in ax.lines if line.get_marker() == "o"]
    assert means == [91.0, 81.0]
    bars = [c.lines[2][0].get_segments()[0][:, 1] for c in ax.containers]  # mean -+ std (ddof 1)
    np.testing.assert_allclose(bars, [[91 - math.sqrt(2), 91 + math.sqrt(2)],
                                      [81 - math.sqrt(2), 81 + math.sqrt(2)]])
    plt.close(fig)


def test_plot_accuracy_vs_s_ace(table):
    fig = bg.plot_accuracy_vs_s_ace(table, BUDGETS)
    left, right = fig.axes
    assert left.collections[0].get_offsets()[:, 0].tolist() == [21.0, 21.0]
    assert right.collections[0].get_offsets()[:, 0].tolist() == [35.0, 77.0]  # 21 + stem
    assert left.get_xscale() == right.get_xscale() == "linear"  # 77 / 35 < 3
    far = table.copy()
    far.loc[far["split"] == "1/1/4", "S-ACE + stem (M)"] = 200.0
    fig2 = bg.plot_accuracy_vs_s_ace(far, BUDGETS)
    assert fig2.axes[1].get_xscale() == "log"
    plt.close(fig)
    plt.close(fig2)


def test_plot_accuracy_per_epoch(groups):
    fig = bg.plot_accuracy_per_epoch(groups, BUDGETS)
    lines = {line.get_label(): line for line in fig.axes[0].lines}
    assert set(lines) == {"1/4/1", "1/1/4"}  # 4/1/1 has no runs
    assert lines["1/4/1"].get_xdata().tolist() == [1, 2]
    assert lines["1/4/1"].get_ydata().tolist() == [55.0, 91.0]
    plt.close(fig)


def test_plot_paper_vs_book(table):
    fig = bg.plot_paper_vs_book(table, SHEN, BUDGETS)
    lines = {line.get_label(): line.get_ydata() for line in fig.axes[0].lines}
    np.testing.assert_allclose(lines["this book"], [0.0, -10.0, np.nan])
    np.testing.assert_allclose(lines["Shen et al. CIFAR-10"], [-1.0, -2.0, 0.0])
    np.testing.assert_allclose(lines["Shen et al. CIFAR-100"], [0.0, -2.25, -2.5])
    plt.close(fig)
