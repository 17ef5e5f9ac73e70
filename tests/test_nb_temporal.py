"""The temporal-data chapter (nb/08_temporal.ipynb), run by papermill on tiny settings that train
their runs into a temporary results folder; its numbers are checked against the stored run files."""

import math

import numpy as np
import pytest
from nbrun import assert_saved, assert_stops_on_bad_parameter, run_chapter

from adabit_lite import sweeps
from adabit_lite.results import find_result

SEEDS, BINS = [0, 1], [4, 1]
TINY = dict(num_samples=40, width=4, epochs=1)
# what the notebook passes to sweeps.temporal_groups for these parameters (its other defaults)
DATA = "num_samples=40,turns=2,canvas=16,digit_size=8"
BASE = dict(width=4, epochs=1, batch_size=32, lr_bits=0.4)
FIGURES = ["event_bins", "accuracy_vs_T", "learned_bits_per_epoch"]
TABLES = ["order_demo", "pairs_identical_after_binning", "temporal_budget", "paper_vs_book"]


@pytest.fixture(scope="module")
def chapter(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("nb08")
    rec, figs = run_chapter("08_temporal", tmp, results_dir=str(tmp / "results"), seeds=SEEDS,
                            bins=BINS, train_missing=True, live_samples=40, live_epochs=1,
                            **TINY)
    return rec, figs, tmp / "results" / "temporal-budget"


def stored_groups(results):
    groups = sweeps.temporal_groups(SEEDS, bins=tuple(BINS), data=DATA, **BASE)
    return {T: {m: [find_result(results, c) for c in cfgs] for m, cfgs in methods.items()}
            for T, methods in groups.items()}


def test_every_wanted_run_is_trained_stored_and_shown(chapter):
    rec, figs, results = chapter
    runs = sweeps.temporal_budget(SEEDS, bins=tuple(BINS), data=DATA, **BASE)
    # per T: fixed, learned, full precision; plus the control at the largest T
    assert rec["runs_found"] == rec["runs_wanted"] == len(runs) == 2 * (2 * 3) + 2
    assert all(find_result(results, c) is not None for c in runs)
    assert_saved(figs, "08_temporal", FIGURES, TABLES)


def test_the_table_is_recomputed_from_the_stored_runs(chapter):
    rec, _, results = chapter
    table = {(row["T"], row["method"]): row for row in rec["table"]}
    groups = stored_groups(results)
    assert set(table) == {(T, m) for T, ms in groups.items() for m in ms}
    for T, methods in groups.items():
        for method, runs in methods.items():
            row = table[(T, method)]
            acc = np.array([r["metrics"]["accuracy"] for r in runs])
            assert row["runs"] == len(runs) == len(SEEDS)
            assert row["accuracy"] == pytest.approx(acc.mean())
            assert row["std"] == pytest.approx(acc.std(ddof=1))
            assert row["at chance"] == int((acc == 50.0).sum())
            if method == "full precision" or method == "time average":
                assert row["split"] == "full precision" and math.isnan(row["W"])
            else:
                assert row["W"] == pytest.approx(np.mean([r["metrics"]["W"] for r in runs]))
                assert row["S"] == pytest.approx(np.mean([r["metrics"]["S"] for r in runs]))
                assert row["bit budget"] == pytest.approx(
                    np.mean([r["metrics"]["bit_budget"] for r in runs]))
    # the comparison lines follow the table
    for c in rec["comparison"]:
        assert c["fixed"] == table[(c["T"], "fixed")]["accuracy"]
        assert c["learned - fixed"] == pytest.approx(c["learned"] - c["fixed"])


def test_fixed_splits_have_exactly_their_bits_and_one_budget(chapter):
    _, _, results = chapter
    budgets = set()
    for T, methods in stored_groups(results).items():
        for r in methods["fixed"]:
            m = r["metrics"]
            assert (m["W"], m["S"], m["T"]) == (1.0, 8 / T, T)
            assert all(layer["Bw"] == 1 and layer["Bs"] == [8 // T] and layer["T"] == T
                       for layer in m["layers"])
            assert r["parameters"]["target"] == sweeps.temporal_split(T)
            budgets.add(m["bit_budget"])
        # the learned runs aim at the same split and keep T = the bins
        for r in methods["learned"]:
            assert r["parameters"]["target"] == sweeps.temporal_split(T)
            assert r["metrics"]["T"] == T and r["parameters"]["learn_w"]
    assert budgets == {8.0}


def test_the_time_average_and_one_bin_are_exactly_at_chance(chapter):
    rec, _, results = chapter
    groups = stored_groups(results)
    control = groups[max(BINS)]["time average"]
    assert all(r["parameters"]["time_average_input"] and r["parameters"]["full_precision"]
               for r in control)
    assert [r["metrics"]["accuracy"] for r in control] == [50.0] * len(SEEDS)
    assert rec["control_at_chance"] == [True] * len(SEEDS)
    assert "time average" not in groups[min(BINS)]
    # one bin is T times the time average: every method, every seed, exactly 50 %
    assert {r["metrics"]["accuracy"] for runs in groups[1].values() for r in runs} == {50.0}
    assert rec["live"]["fed the time average"]["test accuracy"] == 50.0
    demo = {row["quantity"]: row for row in rec["demo"]}
    assert demo["input, mean over time"]["max |difference|"] == 0.0
    assert demo["logits, fed the time average"]["max |difference|"] == 0.0
    assert demo["stem output y_t (time-preserving)"]["entries that differ"] > 0.05
    # binning: one bin hides every pair, four bins none (one turn and two turns alike)
    for row in rec["blindness"]:
        assert row["T = 1"] == 1.0 and row["T = 4"] == 0.0
    assert {row["turns"] for row in rec["blindness"]} == {1, 2}


def test_paper_vs_book_reads_the_papers_rows(chapter):
    rec, _, _ = chapter
    from adabit_lite import paper

    shen = paper.paper_table("shen_table3").set_index("wst")["cifar10_dvs"]
    rows = {str(r["T"]): r for r in rec["paper_vs_book"]}
    assert set(rows) == {"origin", "16", "4", "1"}  # the chapter's bins, and Shen's most time steps
    assert rows["16"]["paper: fixed split (Shen)"] == f"1/1/16: {shen['1/1/16']:.1f}"
    assert rows["16"]["ours: fixed split"] == "not run"
    assert rows["4"]["paper: fixed split (Shen)"] == f"1/4/4: {shen['1/4/4']:.1f}"
    assert rows["1"]["paper: fixed split (Shen)"] == f"1/16/1: {shen['1/16/1']:.1f}"
    assert rows["origin"]["paper: fixed split (Shen)"].startswith(f"16/1/16: {shen['16/1/16']:.1f}")


def test_bad_parameter_stops_with_one_line(tmp_path):
    assert_stops_on_bad_parameter("08_temporal", tmp_path, "bins", [3], "8, 4, 2, 1")
