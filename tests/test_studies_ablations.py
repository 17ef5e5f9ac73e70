"""adabit_lite.studies.ablations on hand-made runs: the tables, comparisons, sentences and figures of
the ablation chapter (nb/06_ablations.ipynb), each checked against numbers worked out by hand.

Welch's test of two groups of two runs with equal spread has 2 degrees of freedom, where the
two-sided p-value is 1 - |t| / sqrt(t^2 + 2): the p-values below are worked out that way."""

import json
import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from adabit_lite import ALGORITHM_VERSION, paper, sweeps
from adabit_lite.results import key_parameters, result_key
from adabit_lite.studies import ablations as ab


def _run(acc, w=1.0, renewals=0, history=None, T=1.0, drops=(), device="cpu"):
    """A stored result with the fields the study reads: final metrics, renewals, one epoch."""
    return {"metrics": {"accuracy": acc, "W": w, "S": 1.0, "T": T, "accuracy_drops": list(drops),
                        "renewals": {"fc": {"w_flips": 0, "s_flips": 0, "w_renewals": renewals,
                                            "s_renewals": 0}}},
            "history": history or [{"epoch": 0, "W": w, "S": 1.0, "T": T, "test_accuracy": acc}],
            "run": {"device_type": device}}


def _keyed(acc, seed, key):
    return {**_run(acc), "key": key, "parameters": {"seed": seed}}


# each group's variance is 2 (ddof 1), so the standard error of a difference is sqrt(2 / 2 + 2 / 2)
P_2_VS_2 = 1 - math.sqrt(50) / math.sqrt(52)  # [80, 82] vs [90, 92]: t^2 = 10^2 / 2 (p 0.0194)
P_OLD = 1 - math.sqrt(12.5) / math.sqrt(14.5)  # [95, 97] vs [90, 92]: t^2 = 5^2 / 2 (p 0.0715)


def test_table_keeps_missing_groups_and_compare_reads_the_direction():
    groups = {"default": [_run(90.0), _run(91.0), _run(92.0)],
              "renewal none": [_run(80.0, renewals=3), _run(81.0, renewals=1), _run(82.0)],
              "old neuron": []}
    table = ab.ablation_table(groups).set_index("ablation")
    assert table.loc["old neuron", "runs"] == 0 and math.isnan(table.loc["old neuron", "accuracy"])
    assert table.loc["renewal none", "weight renewals"] == pytest.approx(4 / 3)
    assert table.loc["renewal none", "section"] == "renewal variants"
    c = ab.compare(groups, "default", "renewal none")
    assert c["difference"] == pytest.approx(10.0) and c["outcome"] == "higher"
    assert ab.verdict(+0.5, c) == "reproduces" and ab.verdict(-0.5, c) == "reversed"
    assert ab.verdict(+25.0, c) == "same direction, weaker"  # 10 points: under half of 25
    assert ab.compare(groups, "default", "old neuron")["outcome"] == "not run"
    flat = {"a": [_run(90.0), _run(92.0)], "b": [_run(91.0), _run(90.0)]}
    c = ab.compare(flat, "a", "b")
    assert c["outcome"] == "no significant difference"
    assert ab.verdict(-1.0, c) == ab.verdict(+1.0, c) == "no significant difference"
    row = {"factor": "a vs b", "paper a": 95.0, "paper b": 94.0, "paper a - b": 1.0, "ours a": 91.0,
           "ours b": 90.5, "ours a - b": 0.5, "p": 0.2, "verdict": "no significant difference"}
    assert ab.claim_sentence(row) == ("a vs b: the paper 95.00 vs 94.00 (+1.00); here 91.00 vs "
                                      "90.50 (+0.50, Welch p = 0.200): no significant difference at "
                                      "p < 0.05 (the means point the paper's way).")
    assert ab.claim_sentence({**row, "ours a - b": -0.5}).endswith("(the means point the other way).")
    one = {"a": [_run(90.0)], "b": [_run(80.0), _run(81.0)]}
    c = ab.compare(one, "a", "b")
    assert c["outcome"] == "untested" and ab.verdict(+1.0, c) == "no significant difference"
    assert ab.compare(one, "a", "c")["outcome"] == "not in the sweep"


def test_other_chapter_sentence_says_when_the_runs_are_the_same_and_which_seeds_differ():
    ours = [_keyed(93.0 + s, s, f"k{s}") for s in range(3)]
    theirs = ours + [_keyed(90.0, 3, "k3"), _keyed(91.0, 4, "k4")]
    s = ab.shared_runs(ours, theirs)
    assert (s["shared"], s["only ours"], s["only theirs"]) == (3, [], [3, 4])
    assert s["mean ours"] == pytest.approx(94.0) and s["n theirs"] == 5
    assert s["mean theirs"] == pytest.approx(np.mean([93, 94, 95, 90, 91]))
    text = ab.other_chapter_sentence([("default", "LBW + renewal", s)], "chapter 5a", "1/1/1")
    assert "LBW + renewal 92.60 +- 2.07 over 5 seeds" in text
    assert "(default) are 94.00 +- 1.00 over 3 seeds" in text
    assert "same stored runs" in text and "seeds 3 and 4 at 1/1/1" in text
    # other settings: no key in common
    other = [_keyed(80.0, 0, "x0"), _keyed(81.0, 1, "x1")]
    text = ab.other_chapter_sentence([("default", "LBW + renewal", ab.shared_runs(ours, other))],
                                     "chapter 5a", "1/1/1")
    assert "None of chapter 5a's stored runs" in text and "same stored runs (" not in text
    assert ab.other_chapter_sentence([("default", "LBW + renewal", ab.shared_runs(ours, []))],
                                     "chapter 5a", "1/1/1") == ""


# ---------------------------------------------------------------- the runs the chapter shows
def test_options_table_names_each_groups_options_and_its_section():
    t = ab.options_table([ab.UQUANT, "default", "renewal none", "old neuron, U-quant", "T fixed"])
    opts = dict(zip(t["ablation"], t["TrainConfig options"]))
    assert opts[ab.UQUANT].startswith("cfg.uquant(): every learned layer fixed at the target bits")
    assert opts["default"] == "(none)"
    assert opts["renewal none"] == "renewal='none'"
    assert opts["old neuron, U-quant"] == "tau=2.0, firing='floor', amplitude=True, then cfg.uquant()"
    assert opts["T fixed"] == "learn_T=False, init='4/4/1'"
    assert list(t["section"]) == ["renewal variants"] * 3 + ["neuron", "T learning and the reference "
                                                             "code's renewal"]


def test_left_out_columns_lists_the_papers_columns_without_a_group():
    left = ab.left_out_columns(["default", "renewal none"])
    # 10 columns; "default" stands for two of them (activation renewal; tau 1 & round)
    assert len(left) == 7
    assert "U-quant (yao_ablation)" in left and "tau=2 & round, renewal (yao_neuron_ablation)" in left
    assert not any(x.startswith(("LBW (no renewal)", "LBW + activation-only", "tau=1 & round"))
                   for x in left)
    assert ab.left_out_columns(list(sweeps.ABLATIONS) + [ab.UQUANT]) == []


BASE = dict(dataset="digits", data_options="size=8", width=8, epochs=2)


def _store(folder, cfg, acc):
    """A result file of ``cfg`` where ``results.find_result`` looks for it."""
    key = result_key(cfg)
    path = folder / key / "result.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({**_run(acc), "key": key, "parameters": key_parameters(cfg),
                                "code": {"algorithm_version": ALGORITHM_VERSION}}))


def test_load_reads_uquant_from_allocation_and_the_rest_from_ablations(tmp_path):
    settings = sweeps.ablation_groups([0, 1], "1/1/1", **BASE)
    _store(tmp_path / "allocation", settings["default"][0].uquant(), 91.0)
    _store(tmp_path / "ablations", settings["default"][1].uquant(), 50.0)  # the wrong sweep
    for acc, cfg in zip((93.0, 94.0), settings["default"]):
        _store(tmp_path / "ablations", cfg, acc)
    groups, wanted = ab.load(tmp_path, [ab.UQUANT, "default", "T fixed"], [0, 1], "1/1/1", BASE)
    assert wanted == 6
    assert {n: [r["metrics"]["accuracy"] for r in g] for n, g in groups.items()} == {
        ab.UQUANT: [91.0], "default": [93.0, 94.0], "T fixed": []}
    assert ab.runs_message(groups, wanted, 2) == (
        "runs shown: 3 of 6 wanted (the rest are not stored: run `python -m adabit_lite.sweeps run "
        "allocation ablations` or set train_missing = True)\n"
        "incomplete groups: U-quant (1 of 2); T fixed (0 of 2)")
    assert "\n" not in ab.runs_message({"default": groups["default"]}, 2, 2)


def test_chapter5_pairs_finds_chapter_5as_runs_of_the_same_methods(tmp_path):
    theirs = sweeps.allocation_groups(tmp_path, targets=("1/1/1",), **BASE)["1/1/1"]["U-quant"]
    for seed in (0, 1, 2):
        _store(tmp_path / "allocation", theirs[seed], 90.0 + seed)
    groups, _ = ab.load(tmp_path, [ab.UQUANT, "default"], [0, 1], "1/1/1", BASE)
    pairs = ab.chapter5_pairs(groups, tmp_path, "1/1/1", BASE)
    assert [(o, t) for o, t, _ in pairs] == [(ab.UQUANT, "U-quant"), ("default", "LBW + renewal")]
    uq, default = pairs[0][2], pairs[1][2]
    assert (uq["shared"], uq["n ours"], uq["only theirs"]) == (2, 2, [2])
    assert uq["mean theirs"] == pytest.approx(91.0)
    assert (default["n ours"], default["n theirs"]) == (0, 0)


def _groups():
    return {ab.UQUANT: [_run(70.0), _run(72.0)],
            "default": [_run(90.0, T=1.5), _run(92.0, T=1.5)],
            "renewal none": [_run(80.0), _run(82.0)],
            "T fixed": []}


def test_table_lines_print_each_section_and_not_run_groups():
    lines = ab.table_lines(ab.ablation_table(_groups())).split("\n")
    head = ": runs, W/S/T, accuracy mean +- std, p vs default, renewals w/s per run, runs with a drop > 5"
    assert lines[0] == "renewal variants" + head
    assert lines[2] == (f"  {'default':>34}: 2, 1.00/1.00/1.50, 91.00 +- 1.41, p = n/a, "
                        "renewals 0.0/0.0, 0")  # the reference: no test against itself
    assert lines[3] == (f"  {'renewal none':>34}: 2, 1.00/1.00/1.00, 81.00 +- 1.41, p = 0.019, "
                        "renewals 0.0/0.0, 0")
    assert P_2_VS_2 == pytest.approx(0.019, abs=5e-4)
    assert lines[4:] == ["T learning and the reference code's renewal" + head,
                         f"  {'T fixed':>34}: not run"]


# ---------------------------------------------------------------- the figures
def test_plot_accuracy_adds_a_zoomed_panel_without_the_far_groups():
    groups = _groups()
    fig = ab.plot_accuracy(ab.ablation_table(groups), groups, "a title")
    axes = [ax for ax in fig.axes if ax.get_ylabel() == "" and ax.get_title()]
    assert [ax.get_title() for ax in axes] == ["all ablations", "without U-quant"]
    assert fig._suptitle.get_text() == "a title"
    # the empty group is marked in both panels; the reference's mean is the dashed line at 91
    assert sum(t.get_text() == "not run" for ax in axes for t in ax.texts) == 2
    assert all(any(list(line.get_xdata()) == [91.0, 91.0] for line in ax.lines) for ax in axes)
    plt.close(fig)
    near = {n: g for n, g in groups.items() if n != ab.UQUANT}
    fig = ab.plot_accuracy(ab.ablation_table(near), near, "t")
    assert len(fig.axes) == 1 and fig.axes[0].get_title() == ""
    plt.close(fig)


def _history(ws, ss, acc=90.0):
    return [{"epoch": e, "W": w, "S": s, "T": 1.0, "test_accuracy": acc} for e, (w, s) in
            enumerate(zip(ws, ss))]


def test_renewal_histories_and_their_figure_start_at_the_init():
    groups = {ab.UQUANT: [_run(70.0)], "renewal none": [_run(80.0, history=_history([3, 2], [2, 1]))],
              "default": [_run(90.0, history=_history([2, 1], [3, 1])),
                          _run(92.0, history=_history([4, 1], [3, 1]))],
              "renewal both": []}
    hist = ab.renewal_histories(groups)
    assert list(hist) == ["default", "renewal none"]  # the styles' order; none of U-quant, no empty
    assert list(hist["default"]["W mean"]) == [3.0, 1.0] and list(hist["default"]["epoch"]) == [1, 2]
    fig = ab.plot_renewal_bits(hist, "1/2/1")
    w_ax = fig.axes[0]
    default_w = next(line for line in w_ax.lines if line.get_label() == "default")
    assert list(default_w.get_xdata()) == [0, 1, 2] and list(default_w.get_ydata()) == [4.0, 3.0, 1.0]
    assert [ax.get_title() for ax in fig.axes[:3]] == ["mean Bw (target 1)", "mean Bs (target 2)",
                                                       "mean T (target 1)"]
    assert [t.get_text() for t in fig.axes[3].get_legend().get_texts()] == ["default", "renewal none"]
    plt.close(fig)


# ---------------------------------------------------------------- the findings in words
def test_ranked_and_paper_ranked_order_best_first():
    table = ab.ablation_table(_groups())
    assert ab.ranked(table, ["renewal none", ab.UQUANT, "default", "T fixed", "absent"]) == (
        "default 91.00 > renewal none 81.00 > U-quant 71.00")
    assert ab.ranked(table, ["T fixed"]) == "no run stored"
    p = pd.DataFrame([{"target": "1/1/1", "uquant": 50.0, "lbw": 70.0, "weight_renew": 60.0,
                       "bilateral_renew": 65.0, "act_renew": 80.0}])
    assert ab.paper_ranked({"yao_ablation": p}, "yao_ablation", "1/1/1") == (
        "LBW + activation-only renewal 80.00 > LBW (no renewal) 70.00 > LBW + bilateral renewal "
        "65.00 > LBW + weight-only renewal 60.00 > U-quant 50.00")
    assert ab.paper_ranked({"yao_ablation": p}, "yao_ablation", "2/2/1") == "no row at this target"


def test_bits_path_sentence_reads_the_spread_and_when_the_default_settles():
    def frame(ws, ss):
        return pd.DataFrame({"epoch": [1, 2, 3, 4], "W mean": ws, "S mean": ss, "T mean": [1.0] * 4})

    hist = {"renewal none": frame([2.0, 1.5, 1.05, 1.0], [3.0, 2.0, 1.5, 1.0]),
            "default": frame([2.0, 1.8, 1.05, 1.0], [3.0, 2.0, 1.5, 1.0])}
    text = ab.bits_path_sentence(hist)
    assert "differ by at most 0.30." in text and "same path of bits" not in text
    assert "within 0.1 of their final values at epochs 3 and 4 of 4" in text
    same = ab.bits_path_sentence({"default": hist["default"], "renewal none": hist["default"]})
    assert "differ by at most 0.00: the variants follow the same path of bits" in same


TABLES = {name: paper.paper_table(name) for name in ab.PAPER_COLUMNS}


def test_renewal_text_states_whether_renewal_helps_and_which_claims_fail():
    groups = _groups()
    groups["renewal weight-only"] = [_run(99.0, renewals=2), _run(100.0, renewals=4)]
    table = ab.ablation_table(groups)
    claims = ab.claims_table(groups, TABLES, "1/1/1")
    text = ab.renewal_text(table, groups, claims, TABLES, "1/1/1")
    assert text.startswith("Ranked by mean accuracy here: renewal weight-only 99.50 > default 91.00 > "
                           "renewal none 81.00 > U-quant 71.00. The paper at 1/1/1 (")
    assert (f"The default against no renewal: +10.00 points (Welch p = {P_2_VS_2:.3f}): renewal "
            "helps here.") in text
    # the paper has weight-only renewal 2.37 below none; here it is 18.5 above: reversed; LBW beats
    # U-quant by 10 points, under half the paper's 20.83: weaker
    assert "(+10.00, Welch p = 0.019): same direction, weaker (p < 0.05, under half" in text
    assert ("Not reproduced in full here (weaker, not significant or reversed): weight-only renewal "
            "vs none; learned bits (no renewal) vs U-quant.") in text
    assert "within 0.1 of their final values at epochs 1 and 1 of 1" in text
    assert ("Final bits: U-quant 1.00/1.00/1.00; default 1.00/1.00/1.50; renewal none 1.00/1.00/1.00; "
            "renewal weight-only 1.00/1.00/1.00. Renewals per run (weights / spikes): default 0.0 / 0.0; "
            "renewal none 0.0 / 0.0; renewal weight-only 3.0 / 0.0.") in text


def test_neuron_text_and_line_compare_the_old_neuron_with_the_default():
    groups = {**_groups(), "old neuron": [_run(95.0, T=1.2), _run(97.0, T=1.2)]}
    assert ab.old_neuron_line(groups) == (f"old neuron vs default: no significant difference "
                                          f"(+5.00, p = {P_OLD:.3f})")
    assert ab.old_neuron_line(_groups()) == "old neuron vs default: not in the sweep"
    table = ab.ablation_table(groups)
    text = ab.neuron_text(table, groups, ab.claims_table(groups, TABLES, "1/1/1"), TABLES, "1/1/1")
    assert text.startswith("Ranked by mean accuracy here: old neuron 96.00 > default 91.00.")
    assert (f"the old neuron against the default: +5.00 points (Welch p = {P_OLD:.3f}): the old neuron "
            "is not significantly different from the refined neuron here.") in text
    assert text.endswith("Final mean T: old neuron 1.20; default 1.50.")
    assert "Not reproduced" not in text  # no claim of the neuron table has both groups here


def test_extra_text_compares_renewal_counts_and_T():
    groups = {"default": [_run(90.0, T=1.5), _run(92.0, T=1.5)],
              "renewal both": [_run(91.0, renewals=1), _run(93.0, renewals=1)],
              ab.RANGE_RATIO: [_run(89.0, renewals=2, drops=[{"epoch": 3, "from": 95.0, "to": 89.0}]), _run(90.0, renewals=4)],
              "T fixed": [_run(90.0)]}
    text = ab.extra_text(ab.ablation_table(groups), ab.extra_table(groups))
    assert text.startswith("- T = 1 from the start vs learned T (from 2): 90.00 vs 91.00 (-1.00, "
                           "Welch p = n/a): no Welch test possible")
    assert ("Weight renewals per run: 3.0 with the range ratio, 1.0 with the grid search; runs with an "
            "accuracy drop > 5 points: 1 and 0 of 2.") in text
    assert text.endswith("The default's runs end at mean T = 1.50 (learned from 2), the T-fixed runs "
                         "at 1.00.")
    only = {"default": groups["default"]}
    assert "Weight renewals" not in ab.extra_text(ab.ablation_table(only), ab.extra_table(only))


def test_our_setting_names_data_devices_and_seeds():
    groups = {"a": [_run(90.0, device="cuda")], "b": [_run(90.0), _run(91.0)]}
    assert ab.our_setting(groups, 3, BASE) == ("small CNN (width 8), digits (size=8), 2 epochs, CPU, "
                                               "GPU, 3 seeds")
    one = dict(dataset="mnist5k-noisy", data_options="", width=None, epochs=1)
    assert ab.our_setting({"a": []}, 5, one) == "small CNN, mnist5k-noisy, 1 epoch, -, 5 seeds"


def test_paper_vs_book_parts_split_by_the_papers_table():
    groups = _groups()
    pvb = ab.paper_vs_book(ab.ablation_table(groups), TABLES, "1/1/1", "theirs", "ours")
    parts = ab.paper_vs_book_parts(pvb, "1/1/1")
    assert len(parts) == 2 and [len(rows) for _, rows in parts] == [5, 5]
    for (heading, rows), name in zip(parts, ab.PAPER_COLUMNS):
        assert heading.startswith(f"**Yao et al., {paper.table_citation(name)}**, row 1/1/1, "
                                  "beside our runs (")
        assert list(rows.columns) == list(ab.PAPER_VS_BOOK_WORDS.values())
    assert parts[0][1].iloc[0].tolist()[3:] == [ab.UQUANT, 2, "1.00/1.00/1.00", "71.00 +- 1.41"]


def test_summary_text_counts_the_verdicts_in_their_order():
    p1 = pd.DataFrame([{"target": "1/1/1", "uquant": 74.82}])
    p2 = pd.DataFrame([{"target": "1/1/1", "tau2_floor_uquant": 74.82}])
    claims = pd.DataFrame({"verdict": ["reversed", "reproduces", "not run", "reproduces"]})
    text = ab.summary_text(claims, {"yao_ablation": p1, "yao_neuron_ablation": p2}, "1/1/1", 3)
    first, second = text.split("\n\n")
    assert first.startswith("The paper's U-quant at 1/1/1 is 74.82 in the ablation table and 74.82 ")
    assert "the same number" in first
    assert second == ("Of the paper's 4 one-factor orderings (sections 1 and 2): reproduces 2; "
                      "reversed 1; not run 1 (the claims ledger's rule: Welch test, p < 0.05, "
                      "3 seeds per group).")
    p2.loc[0, "tau2_floor_uquant"] = 70.0
    text = ab.summary_text(claims, {"yao_ablation": p1, "yao_neuron_ablation": p2}, "2/2/1", 3)
    assert text == second  # no paper row at 2/2/1: only the counts
