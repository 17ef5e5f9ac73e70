"""Chapter 7's figures (adabit_lite.studies.budgets): their legends sit under the panels, clear of
every point and line, on small hand-made runs.  (The tables and the rest of the figures' content:
tests/test_studies_budgets.py.)"""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from adabit_lite.studies import budgets as bg  # noqa: E402
from figures import legend_under  # noqa: E402

BUDGETS = {4: ["1/4/1", "1/1/4"], 8: ["1/8/1", "2/2/2"]}


def run(acc, curve):
    return {"metrics": {"accuracy": acc},
            "history": [{"epoch": e, "test_accuracy": a} for e, a in enumerate(curve)]}


GROUPS = {4: {"1/4/1": [run(90.0, [50.0, 90.0]), run(92.0, [60.0, 92.0])], "1/1/4": [run(80.0, [70.0, 80.0])]},
          8: {"1/8/1": [run(95.0, [80.0, 95.0])], "2/2/2": []}}
# the accuracies sit at the top right of the panels, where a legend inside them would go
TABLE = pd.DataFrame([
    {"budget": 4, "split": "1/4/1", "runs": 2, "accuracy": 91.0, "S-ACE (M)": 21.0, "S-ACE + stem (M)": 35.0},
    {"budget": 4, "split": "1/1/4", "runs": 1, "accuracy": 80.0, "S-ACE (M)": 21.0, "S-ACE + stem (M)": 77.0},
    {"budget": 8, "split": "1/8/1", "runs": 1, "accuracy": 95.0, "S-ACE (M)": 42.0, "S-ACE + stem (M)": 56.0},
    {"budget": 8, "split": "2/2/2", "runs": 0, "accuracy": float("nan"), "S-ACE (M)": 42.0,
     "S-ACE + stem (M)": 70.0},
])
SHEN = pd.DataFrame([
    {"method": "Quantized Spikformer", "wst": "1/4/1", "cifar10": 95.0, "cifar100": 76.5, "s_ace_g": 3.0},
    {"method": "Quantized Spikformer", "wst": "1/1/4", "cifar10": 94.0, "cifar100": 74.25, "s_ace_g": 3.5},
])


def test_one_legend_under_the_panels_for_shared_entries():
    fig = bg.plot_accuracy_vs_s_ace(TABLE, BUDGETS)
    assert all(ax.get_legend() is None for ax in fig.axes) and len(fig.legends) == 1
    assert legend_under(fig, fig.legends[0], fig.axes) == ["Bit Budget 4", "Bit Budget 8"]
    plt.close(fig)

    fig = bg.plot_accuracy_vs_split(GROUPS, BUDGETS)
    assert all(ax.get_legend() is None for ax in fig.axes) and len(fig.legends) == 1
    assert legend_under(fig, fig.legends[0], fig.axes) == ["seeds", "mean +- std"]
    plt.close(fig)

    fig = bg.plot_paper_vs_book(TABLE, SHEN, {4: BUDGETS[4]})
    assert legend_under(fig, fig.legends[0], fig.axes) == [
        "this book", "Shen et al. CIFAR-10", "Shen et al. CIFAR-100"]
    plt.close(fig)


def test_each_panel_of_the_epoch_curves_has_its_splits_under_it():
    fig = bg.plot_accuracy_per_epoch(GROUPS, BUDGETS)
    left, right = fig.axes
    assert fig.legends == []
    assert legend_under(fig, left.get_legend(), [left]) == ["1/4/1", "1/1/4"]
    assert legend_under(fig, right.get_legend(), [right]) == ["1/8/1"]  # 2/2/2 has no runs
    plt.close(fig)


@pytest.mark.parametrize("plot", ["split", "s_ace"])
def test_no_legend_without_runs(plot):
    empty = {4: {"1/4/1": [], "1/1/4": []}}
    fig = (bg.plot_accuracy_vs_split(empty, {4: BUDGETS[4]}) if plot == "split"
           else bg.plot_accuracy_vs_s_ace(TABLE.assign(runs=0), {4: BUDGETS[4]}))
    assert fig.legends == [] and all(ax.get_legend() is None for ax in fig.axes)
    plt.close(fig)
