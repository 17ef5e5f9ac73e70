"""The stability section of the allocation chapter (nb/05b_stability.ipynb), run by papermill on tiny settings that train
their runs into a temporary results folder, and the stored stability sweep it shows."""

import json
from pathlib import Path

import pytest
from nbrun import assert_saved, assert_stops_on_bad_parameter, run_chapter

from adabit_lite import sweeps
from adabit_lite.results import find_result
from adabit_lite.studies import allocation as al

ROOT = Path(__file__).resolve().parent.parent
TINY = dict(dataset="digits", data_options="size=8", width=8, epochs=2)
FIGURES = ["trace_bits_per_batch", "fig3_bits_per_epoch_2-2-1", "fig4_layer_bits",
           "accuracy_vs_bit_budget"]


@pytest.fixture(scope="module")
def chapter(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("nb05")
    rec, figs = run_chapter("05b_stability", tmp, results_dir=str(tmp / "results"),
                            targets=["2/2/1"], seeds=[0, 1], train_missing=True, trace_epochs=1,
                            **TINY)
    return rec, figs, tmp / "results"


def test_every_wanted_run_is_trained_stored_and_shown(chapter):
    rec, figs, results = chapter
    wanted = sum(len(v) for v in sweeps.bit_stability_groups(
        results, targets=["2/2/1"], seeds=[0, 1], **TINY)["2/2/1"].values())
    assert rec["runs_found"] == rec["runs_wanted"] == wanted == 2 * (len(sweeps.REMEDIES) + 2 + 1)
    assert_saved(figs, "05b_stability", FIGURES,
                 ("stability_2-2-1", "allocation_vs_baselines", "paper_vs_book", "trace_flips"))


def test_the_stability_table_is_recomputed_from_the_stored_runs(chapter):
    rec, _, results = chapter
    groups = sweeps.bit_stability_groups(results, targets=["2/2/1"], seeds=[0, 1], **TINY)["2/2/1"]
    table = {row["method"]: row for row in rec["stability"]["2/2/1"]}
    assert list(table) == list(groups)
    for method, cfgs in groups.items():
        sweep = "bit-stability-control" if method == "control" else "bit-stability"
        runs = [find_result(results / sweep, c) for c in cfgs]
        # every row is judged against the chapter's target (2/2/1), the control's too
        on = [all(abs(r["metrics"][k] - t) <= 0.3 for k, t in zip("WST", (2, 2, 1)))
              for r in runs]
        assert table[method]["within target"] == pytest.approx(sum(on) / len(on))
        acc = [r["metrics"]["accuracy"] for r in runs]
        assert table[method]["accuracy"] == pytest.approx(sum(acc) / len(acc))
        flips = [sum(layer["w_flips"] for layer in r["metrics"]["renewals"].values()) for r in runs]
        assert table[method]["Bw flips"] == pytest.approx(sum(flips) / len(flips))
    # U-quant is exactly uniform, so always on its own target and never flipping
    assert table["U-quant 2/2/1"]["W"] == 2.0 and table["U-quant 2/2/1"]["Bw flips"] == 0


def test_the_control_has_the_learned_bits_and_the_verdict_follows_the_table(chapter):
    rec, _, results = chapter
    groups = sweeps.bit_stability_groups(results, targets=["2/2/1"], seeds=[0, 1], **TINY)["2/2/1"]
    for learned_cfg, control_cfg in zip(groups[sweeps.CHOSEN_REMEDY], groups["control"]):
        learned = find_result(results / "bit-stability", learned_cfg)["metrics"]["layers"]
        fixed = find_result(results / "bit-stability-control", control_cfg)["metrics"]["layers"]
        assert [(x["Bw"], x["Bs"], x["T"]) for x in fixed] == [(x["Bw"], x["Bs"], x["T"]) for x in learned]
    table = {row["method"]: row for row in rec["stability"]["2/2/1"]}
    for method, by_target in rec["verdict"].items():
        row = table[method]
        if by_target["2/2/1"]:
            assert row["within target"] >= 0.9 and row["runs with a drop > 5"] == 0
    assert rec["trace"]["paper"]["flips"] >= 0 and set(rec["trace"]) == {"paper", sweeps.CHOSEN_REMEDY}


def test_the_shared_allocation_record_follows_the_stored_runs(chapter):
    rec, _, results = chapter
    cfgs = sweeps.bit_stability_groups(results, targets=["2/2/1"], seeds=[0, 1], **TINY)["2/2/1"]
    runs = [find_result(results / "bit-stability", c) for c in cfgs[sweeps.CHOSEN_REMEDY]]
    # one target: no pair of targets to share an allocation
    assert rec["shared_allocation"] == al.shared_allocations(
        {"2/2/1": {sweeps.CHOSEN_REMEDY: runs}}, sweeps.CHOSEN_REMEDY) == []


def test_bad_parameter_stops_with_one_line(tmp_path):
    assert_stops_on_bad_parameter("05b_stability", tmp_path, "targets", ["2/2"], "W/S/T")


# ---------------------------------------------------------------- the stored sweep (results/)
STORED = ROOT / "results"


def _group(target, method):
    cfgs = sweeps.bit_stability_groups(STORED)[target][method]
    sweep = "bit-stability-control" if method == "control" else "bit-stability"
    return [find_result(STORED / sweep, c) for c in cfgs]


def test_sweep_reproduces_the_flip_flop_of_the_paper_rule_at_2_2_1():
    runs = _group("2/2/1", "paper")
    assert len(runs) == 5 and all(runs)
    flips = [al.flip_totals(r) for r in runs]
    # every run flips its bit widths many times: the L1 loss on rounded means never settles
    assert min(f["w_flips"] + f["s_flips"] for f in flips) >= 50


def test_sweep_shows_hysteresis_bounding_the_flips():
    for target in sweeps.STABILITY_TARGETS:
        paper = [al.flip_totals(r) for r in _group(target, "paper")]
        for method in (m for m in sweeps.REMEDIES if "hysteresis" in m):
            runs = [al.flip_totals(r) for r in _group(target, method)]
            assert max(f["w_flips"] + f["s_flips"] for f in runs) < min(
                f["w_flips"] + f["s_flips"] for f in paper)


def test_reachable_means_of_whole_bits():
    # two layers of 1 and 3 elements: (B1 + 3 B2) / 4 for B in 1..2
    assert al.reachable_means([1, 3], 1, 2).tolist() == [1.0, 1.25, 1.75, 2.0]
    assert al.nearest_reachable([1, 3], 1.5, k=1, low=1, high=2) == [1.25, 1.75]
