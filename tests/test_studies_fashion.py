"""The Fashion stage's landing check for a remedy (studies.fashion.remedy_table / remedy_verdict),
on hand-made results whose answers are known."""

import pytest

from adabit_lite.studies import fashion as fa
from adabit_lite.train import accuracy_drops


def run(W, S, acc, curve=(80.0, 82.0, 84.0), target=None):
    history = [{"epoch": e, "test_accuracy": a} for e, a in enumerate(list(curve) + [acc])]
    return {"parameters": {"target": target or f"{W}/{S}/1"},
            "metrics": {"W": W, "S": S, "T": 1.0, "accuracy": acc, "accuracy_drops": accuracy_drops(history)},
            "history": history}


def stage(remedy_221, remedy_151, rule_acc=85.0, uquant_curve=(80.0, 82.0, 84.0)):
    rule = [run(2.3, 2.3, rule_acc), run(2.3, 2.3, rule_acc + 0.5)]
    return fa.Stage(groups={
        "2/2/1": {"U-quant": [run(2, 2, 86.0, uquant_curve)], fa.PAPER_RULE: rule, "R": remedy_221},
        "1.5/1.5/1": {"U-quant 1/1/1": [run(1, 1, 84.0)], fa.PAPER_RULE: rule, "R": remedy_151}})


ON_221 = [run(2.05, 1.95, 86.0), run(1.98, 2.02, 86.4)]
ON_151 = [run(1.45, 1.55, 85.5), run(1.52, 1.49, 85.9)]


def test_a_remedy_on_both_targets_lands():
    table = fa.remedy_table(stage(ON_221, ON_151), "R")
    assert list(table["target"]) == ["2/2/1", "1.5/1.5/1"]
    assert list(table["W and S within 0.1"]) == [1.0, 1.0]
    assert table["W"].tolist() == pytest.approx([2.015, 1.485])
    assert list(table["nearest target"]) == ["2/2/1", "1.5/1.5/1"]
    assert fa.remedy_verdict(table, "R").startswith(
        "**R lands exactly and meets the criterion** (100% of 2 runs within 0.1 at 2/2/1 (mean ")
    falling = [run(2.05, 1.95, 86.0, (80.0, 90.0, 80.0)), run(1.98, 2.02, 86.4)]
    verdict = fa.remedy_verdict(fa.remedy_table(stage(falling, ON_151), "R"), "R")
    assert verdict.startswith("**R lands exactly** (100% of 2 runs within 0.1 at 2/2/1")
    assert ("**but fails the rest of the criterion**: 1 of 4 runs have an epoch falling more than "
            "5 points (at epoch 3; U-quant, at fixed bits, falls too: 0 of 1 runs at 2/2/1; 0 of 1 "
            "runs at 1/1/1, no epoch).") in verdict


def test_each_criterion_that_fails_is_named_with_its_numbers():
    # 2/2/1: one run off by 0.15 in S (50 % within 0.1); 1.5/1.5/1: both runs at 1.8/1.8, which is
    # nearer 2/2/1 than 1.5/1.5/1 (and off target); one run falls 10 points in an epoch
    off = [run(2.0, 2.15, 86.0), run(2.0, 2.0, 86.0)]
    edge = [run(1.8, 1.8, 85.0, (80.0, 90.0, 80.0)), run(1.8, 1.8, 85.5)]
    table = fa.remedy_table(stage(off, edge), "R")
    assert list(table["W and S within 0.1"]) == [0.5, 0.0]
    assert list(table["nearest target"]) == ["2/2/1", "2/2/1"]
    assert list(table["runs with a drop > 5"]) == [0, 1]
    verdict = fa.remedy_verdict(table, "R")
    assert verdict.startswith("**R does not land exactly** (50% of 2 runs within 0.1 at 2/2/1")
    assert "0% of 2 runs within 0.1 at 1.5/1.5/1 (mean 1.80/1.80)" in verdict
    assert "fewer than 90% of its runs end within 0.1 in W and S" in verdict
    assert "the two targets end at allocations nearer the other target" in verdict
    assert "1 of 4 runs have an epoch falling more than 5 points (at epoch 3;" in verdict
    assert "0 of 1 runs at 2/2/1; 0 of 1 runs at 1/1/1, no epoch)" in verdict  # U-quant: no fall


def test_a_significantly_lower_accuracy_fails_and_a_noisy_one_does_not():
    low = [run(2.0, 2.0, 80.0), run(2.0, 2.0, 80.2)]  # the rule: 85.0 and 85.5
    table = fa.remedy_table(stage(low, ON_151), "R")
    assert list(table["lower"]) == [True, False]
    assert "significantly below the paper's rule at 2/2/1 (80.10 vs 85.25 %)" in \
        fa.remedy_verdict(table, "R")
    noisy = [run(2.0, 2.0, 78.0), run(2.0, 2.0, 92.0)]  # lower mean, but no significant gap
    assert not fa.remedy_table(stage(noisy, ON_151), "R")["lower"].any()


def test_a_remedy_without_runs_at_both_targets_is_not_judged():
    table = fa.remedy_table(stage(ON_221, []), "R")
    assert list(table["target"]) == ["2/2/1"]
    assert "not judged yet" in fa.remedy_verdict(table, "R")


def test_chance_from_is_the_epoch_the_accuracy_fell_to_stay():
    collapsed = {"failure": {"epoch": 10}, "history": [{"test_accuracy": a} for a in
                                                        (47.9, 66.4, 59.7, 81.4, 82.8, 10.0, 10.4, 10.0, 10.0, 10.0)]}
    assert fa.chance_from(collapsed) == 6
    dipped = {"failure": {"epoch": 5}, "history": [{"test_accuracy": a} for a in (10.0, 50.0, 10.5, 10.0, 10.0)]}
    assert fa.chance_from(dipped) == 3  # the first epoch at chance came back up: not counted
    assert fa.chance_from({"history": collapsed["history"]}) is None  # not a failed run


def test_collapse_sentence_counts_the_failed_seeds_per_rule():
    import pandas as pd
    table = pd.DataFrame({"seed": [0, 1, 2], "floor: accuracy": [87.7, 10.0, 10.0],
                          "floor: at chance from epoch": ["-", 6, 7],
                          "reflect: accuracy": [87.7, 87.1, None],
                          "reflect: at chance from epoch": ["-", "-", None]})
    assert fa.collapse_sentence(table) == (
        "With the step floor, 2 of 3 seeds failed (seed 1 from epoch 6, seed 2 from epoch 7); "
        "with reflected steps, 0 of 2 seeds failed.")


def test_fall_epochs_lists_where_any_run_fell_more_than_5_points():
    runs = [run(2, 2, 80.0, (70.0, 60.0, 75.0)), run(2, 2, 86.0, (80.0, 79.0, 90.0))]
    # first: 70 -> 60 at epoch 2 (a fall of 10), 75 -> 80 no; second: 90 -> 86 (4): no fall
    assert fa.fall_epochs(runs) == [2]
    assert fa.fall_epochs([run(2, 2, 80.0, (80.0, 74.9, 80.0))]) == [2]  # 5.1 points
    assert fa.fall_epochs([run(2, 2, 80.0, (80.0, 75.0, 80.0))]) == []  # exactly 5: not a fall


def test_load_counts_distinct_runs_and_the_controls_still_to_come(monkeypatch, tmp_path):
    from adabit_lite import studies, sweeps

    on_disk = {("fashion-allocation", "l0"), ("fashion-allocation", "u1"), ("fashion-allocation", "u2")}

    def groups(root, targets, seeds, base):  # like sweeps.fashion_groups: controls of stored runs
        learned = ["l0", "l1"]
        controls = [f"c-{c}" for c in learned if ("fashion-allocation", c) in on_disk]
        return {"1/1/1": {"U-quant": ["u1"], "M": learned, "control of M": controls},
                "1.5/1.5/1": {"U-quant": ["u1", "u2"]}}  # u1 again: one run, wanted once

    def stored(folder, cfg, train):
        target = {"u1": "1/1/1", "u2": "2/2/1"}.get(cfg, "1/1/1")
        return {"key": cfg, "parameters": {"target": target}} if (folder.name, cfg) in on_disk else None

    monkeypatch.setattr(sweeps, "fashion_groups", groups)
    monkeypatch.setattr(sweeps, "FASHION_CONTROLLED", {"1/1/1": ("M",)})
    monkeypatch.setattr(sweeps, "FASHION_NEAREST_UNIFORM", {"1.5/1.5/1": ("1/1/1", "2/2/1")})
    monkeypatch.setattr(studies, "stored_result", stored)
    monkeypatch.setattr(studies, "result_key", lambda cfg: cfg)
    stage = fa.load(tmp_path)
    # wanted: u1, l0, l1, c-l0, u2 and the control l1 will get; found: u1, l0, u2 (c-l0 not stored)
    assert (stage.wanted, stage.found) == (6, 3)
    assert [r["key"] for r in stage.groups["1/1/1"]["M"]] == ["l0"]
    assert stage.groups["1/1/1"]["control of M"] == []
    assert {m: [r["key"] for r in g] for m, g in stage.groups["1.5/1.5/1"].items()} == {
        "U-quant 1/1/1": ["u1"], "U-quant 2/2/1": ["u2"]}  # a uniform setting each


def test_difference_sentence_writes_p_with_p_text():
    d = {"a": "A", "b": "B", "difference": 1.5, "p": 0.19, "runs a": 5, "runs b": 4,
         "failed a": 0, "failed b": 1}
    assert fa.difference_sentence(d) == ("A +1.50 points against B (5 and 4 seeds), not significant "
                                         "(Welch p = 0.190); 1 of 4 B runs collapsed")
    assert fa.difference_sentence({**d, "p": 0.0004, "failed b": 0}).endswith(
        "significant (Welch p < 0.001)")
    assert fa.difference_sentence({**d, "p": float("nan")}).endswith("untested (too few runs); "
                                                                      "1 of 4 B runs collapsed")


def test_the_landing_view_shows_shares_in_percent_and_bits_to_two_decimals():
    import math
    import re

    import pandas as pd

    table = pd.DataFrame([
        {"method": "U-quant", "runs": 5, "W": 3.0, "S": 4.0, "T": 1.0, "within 0.3": 1.0, "within 0.1": 1.0,
         "bit budget": 12.0, "accuracy": 89.25, "std": 0.24, "p vs U-quant": math.nan, "flips": 3.0},
        {"method": "LBW", "runs": 5, "W": 2.9, "S": 4.0, "T": 1.04, "within 0.3": 1.0, "within 0.1": 0.2,
         "bit budget": 12.09, "accuracy": 88.74, "std": 0.5, "p vs U-quant": 0.0891, "flips": 3.0}])
    cells = [re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", r)
             for r in re.findall(r"<tr>(.*?)</tr>", fa.landing_view(table)._repr_html_())]
    assert cells[0][5:7] == ["within 0.3 (% of runs)", "within 0.1 (% of runs)"] and "flips" not in cells[0]
    assert cells[1][2:] == ["3.00", "4.00", "1.00", "100", "100", "12.00", "89.25", "0.24", "-"]
    assert cells[2][2:] == ["2.90", "4.00", "1.04", "100", "20", "12.09", "88.74", "0.50", "0.089"]


def test_the_note_names_the_targets_where_renewal_never_fired():
    def lbw(acc, renewals):
        return {"metrics": {"accuracy": acc, "renewals": {"l": {"w_flips": 0, "s_flips": 1, "w_renewals": 0,
                                                                "s_renewals": renewals}}}}

    small = {"1/1/1": {"LBW": [lbw(94.0, 0)], fa.PAPER_RULE: [lbw(93.0, 5)]},
             "3/4/1": {"LBW": [lbw(95.4, 0)], fa.PAPER_RULE: [lbw(95.4, 0), lbw(94.0, 0)]},
             "4/4/1": {"LBW": [lbw(95.1, 0)], fa.PAPER_RULE: [lbw(95.1, 0)]},
             "2/2/1": {fa.PAPER_RULE: [lbw(94.0, 0)]}}  # no LBW column to be equal to
    assert fa.never_renewed_note(small).startswith(
        "At 3/4/1 and 4/4/1 the small stage's LBW + renewal runs never renewed a step")
    assert fa.never_renewed_note({"1/1/1": small["1/1/1"]}) == ""
