"""The Fashion-MNIST stage of chapter 5 (nb/05_fashion.ipynb), run by papermill on quick settings
that train their runs into a temporary results folder, and its study functions."""

import pytest
from nbrun import assert_saved, assert_stops_on_bad_parameter, run_chapter

from adabit_lite import sweeps
from adabit_lite.results import find_result
from adabit_lite.studies import fashion as fa

QUICK = {"dataset": "digits", "data_options": "size=8", "width": 8, "epochs": 2, "train_limit": None}
FIGURES = ["fig3_bits_per_epoch", "fig4_layer_bits"]


@pytest.fixture(scope="module")
def chapter(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("nb05f")
    rec, figs = run_chapter("05_fashion", tmp, results_dir=str(tmp / "results"), targets=["1/1/1"],
                            seeds=[0, 1], quick=QUICK, train_missing=True)
    return rec, figs, tmp / "results"


def _groups(results):
    base = {**sweeps.fashion_base(*sweeps.FASHION_CANDIDATES[0]), **QUICK}
    return sweeps.fashion_groups(results, ["1/1/1"], {"1/1/1": [0, 1]}, base)["1/1/1"]


def test_every_wanted_run_is_trained_stored_and_shown(chapter):
    rec, figs, results = chapter
    groups = _groups(results)
    assert rec["runs_found"] == rec["runs_wanted"] == sum(len(v) for v in groups.values())
    assert rec["runs_found"] == 2 * len(sweeps.FASHION_METHODS["1/1/1"]) + 2 * 2  # + 2 controls
    assert_saved(figs, "05_fashion", FIGURES)


def test_the_landing_table_is_recomputed_from_the_stored_runs(chapter):
    rec, _, results = chapter
    table = {row["method"]: row for row in rec["landing"]["1/1/1"]}
    for method, cfgs in _groups(results).items():
        sweep = fa.CONTROL_SWEEP if method.startswith("control of") else fa.SWEEP
        runs = [find_result(results / sweep, c) for c in cfgs]
        acc = [r["metrics"]["accuracy"] for r in runs]
        assert table[method]["accuracy"] == pytest.approx(sum(acc) / len(acc))
        if method != "full precision":
            fine = [all(abs(r["metrics"][k] - 1.0) <= 0.1 for k in "WST") for r in runs]
            assert table[method]["within 0.1"] == pytest.approx(sum(fine) / len(fine))
    # the projection lands exactly: its final bits are on a reachable allocation at 1/1/1
    assert table["LBW + renewal + projection"]["within 0.1"] == 1.0


def test_the_differences_and_paper_rows_follow_the_runs(chapter):
    rec, _, results = chapter
    first = rec["differences"]["1/1/1"][0]
    t = {row["method"]: row for row in rec["landing"]["1/1/1"]}
    assert first["a"] == "LBW + renewal" and first["b"] == "U-quant"
    assert first["difference"] == pytest.approx(t["LBW + renewal"]["accuracy"] - t["U-quant"]["accuracy"])
    row = rec["paper_vs_book"][0]
    assert row["paper: U-quant"] == 74.82 and row["paper: LBW + renewal"] == 96.15  # the data file
    assert row["Fashion stage: gain"] == pytest.approx(first["difference"])
    # the remedies are judged at 2/2/1 and 1.5/1.5/1 only: with 1/1/1 alone, no row
    assert set(rec["remedy"]) == {"LBW + renewal", "LBW + renewal + projection",
                                  f"{sweeps.CHOSEN_REMEDY} + projection"}
    assert all(rows == [] for rows in rec["remedy"].values())


def test_a_bad_parameter_stops_the_chapter_in_one_line(tmp_path):
    assert_stops_on_bad_parameter("05_fashion", tmp_path, "targets", ["9/9/9"], "1/1/1")


def test_the_figure4_pattern_reads_the_layers():
    import pandas as pd
    layers = pd.DataFrame({"weights": [100, 1000, 10000, 50], "in_features": [400, 300, 200, 10],
                           "Bw": [3.0, 2.0, 1.0, 4.0], "Bs": [1.0, 2.0, 3.0, 4.0]})
    p = fa.layer_pattern(layers)
    assert p["rho weights-Bw"] == pytest.approx(-1.0)
    assert p["first Bw - inner"] == pytest.approx(1.5) and p["last Bw - inner"] == pytest.approx(2.5)
    assert "larger layers get fewer weight bits, as in the paper" in fa.figure4_verdict(p)
