"""The allocation chapter's comparison (nb/05a_allocation.ipynb), run by papermill on tiny settings
that train their runs into a temporary results folder; its numbers are recomputed from those files."""

import numpy as np
import pandas as pd
import pytest
from nbrun import assert_saved, assert_stops_on_bad_parameter, run_chapter
from scipy import stats

from adabit_lite import sweeps
from adabit_lite.results import find_result, result_key
from adabit_lite.studies import allocation as al

# one target keeps the test short; the chapter runs the same code for every target
TARGETS, SEEDS = ["1/1/1"], [0, 1]
TINY = dict(dataset="digits", data_options="size=8", width=8, epochs=1)
SEED_SETS = {t: SEEDS for t in TARGETS}
FIGURES = ["accuracy_by_seed", "fig3_bits_per_epoch", "fig4_layer_bits", "accuracy_vs_bit_budget"]


@pytest.fixture(scope="module")
def chapter(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("nb05a")
    rec, figs = run_chapter("05a_allocation", tmp, results_dir=str(tmp / "results"),
                            targets=TARGETS, seeds_111=SEEDS, seeds=SEEDS, train_missing=True,
                            **TINY)
    return rec, figs, tmp / "results"


def stored_groups(results):
    groups = sweeps.allocation_groups(results, TARGETS, SEED_SETS, **TINY)
    return {t: {m: [find_result(results / ("allocation-control" if m == "control" else "allocation"), c)
                    for c in cfgs] for m, cfgs in methods.items()} for t, methods in groups.items()}


def test_every_wanted_run_is_trained_stored_and_shown(chapter):
    rec, figs, results = chapter
    groups = sweeps.allocation_groups(results, TARGETS, SEED_SETS, **TINY)
    keys = {result_key(c) for methods in groups.values() for cfgs in methods.values() for c in cfgs}
    # 3 methods x 2 seeds, 2 full-precision runs, and a control per LBW + renewal run (two
    # controls that fix the same bits are one run)
    assert 8 < len(keys) <= 10
    assert rec["runs_found"] == rec["runs_wanted"] == len(keys)
    assert all(len(methods["control"]) == len(SEEDS) for methods in groups.values())
    assert_saved(figs, "05a_allocation", FIGURES, ("comparison_1-1-1", "differences", "paper_vs_book"))


def test_the_comparison_table_is_recomputed_from_the_stored_runs(chapter):
    rec, _, results = chapter
    for target, methods in stored_groups(results).items():
        table = {row["method"]: row for row in rec["comparison"][target]}
        assert list(table) == list(methods)
        uquant = [r["metrics"]["accuracy"] for r in methods["U-quant"]]
        goal = [float(v) for v in target.split("/")]
        for method, runs in methods.items():
            row = table[method]
            acc = np.array([r["metrics"]["accuracy"] for r in runs])
            assert row["runs"] == len(runs) == len(SEEDS)
            assert row["accuracy"] == pytest.approx(acc.mean())
            assert row["std"] == pytest.approx(acc.std(ddof=1))
            if method != "U-quant" and acc.std() + np.std(uquant) > 0:
                p = stats.ttest_ind(acc, uquant, equal_var=False).pvalue
                assert row["p vs U-quant"] == pytest.approx(p)
            if method == "full precision":  # no bits: no cost columns
                assert row["bit budget"] is None or np.isnan(row["bit budget"])
                continue
            assert row["bit budget"] == pytest.approx(np.mean([r["metrics"]["bit_budget"] for r in runs]))
            assert row["S-ACE (M)"] == pytest.approx(1000 * np.mean([r["metrics"]["s_ace_g"] for r in runs]))
            # on target is judged against the chapter's target, for U-quant and the control too
            on = [all(abs(r["metrics"][k] - t) <= 0.3 for k, t in zip("WST", goal)) for r in runs]
            assert row["within target"] == pytest.approx(np.mean(on))
        assert table["U-quant"]["W"] == goal[0] and table["U-quant"]["S"] == goal[1]


def test_the_differences_and_the_control_follow_the_stored_runs(chapter):
    rec, _, results = chapter
    groups = stored_groups(results)
    diffs = {(d["target"], d["comparison"]): d for d in rec["differences"]}
    for target, methods in groups.items():
        mean = {m: np.mean([r["metrics"]["accuracy"] for r in rs]) for m, rs in methods.items()}
        d = diffs[(target, "LBW + renewal - U-quant")]
        assert d["difference"] == pytest.approx(mean["LBW + renewal"] - mean["U-quant"])
        assert d["significant"] == (d["p"] < 0.05)
        # the control of each seed has exactly the per-layer bits its LBW + renewal run learned
        for lbw, control in zip(methods["LBW + renewal"], methods["control"]):
            learned = {l["name"]: (l["Bw"], l["Bs"], l["T"]) for l in lbw["metrics"]["layers"]}
            fixed = {l["name"]: (l["Bw"], l["Bs"], l["T"]) for l in control["metrics"]["layers"]}
            assert fixed == learned and lbw["parameters"]["seed"] == control["parameters"]["seed"]
            assert not control["parameters"]["learn_w"]


def test_the_per_layer_record_matches_the_stored_bits(chapter):
    rec, _, results = chapter
    for target, methods in stored_groups(results).items():
        layers = rec["layer_bits"][target]["layers"]
        for entry in layers:
            bw = [l["Bw"] for r in methods["LBW + renewal"] for l in r["metrics"]["layers"]
                  if l["name"] == entry["layer"]]
            assert entry["Bw"] == pytest.approx(np.mean(bw))
            assert entry["Bw_min"] == min(bw) and entry["Bw_max"] == max(bw)


def test_the_figure3_verdict_follows_the_settling_record(chapter):
    rec, _, _ = chapter
    settle = pd.DataFrame(rec["settle"]).astype({"settled": int, "runs": int, "median epoch": float})
    assert rec["fig3_verdict"] == al.settling_verdict(settle, TINY["epochs"])
    assert rec["fig3_verdict"].startswith("Against Figure 3")


def test_a_bad_parameter_stops_the_chapter(tmp_path):
    assert_stops_on_bad_parameter("05a_allocation", tmp_path, "targets", ["2/2"], "W/S/T")
