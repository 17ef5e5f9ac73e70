"""Summaries of stored runs (adabit_lite/studies/allocation.py) on hand-made results."""

import math

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from scipy import stats

from adabit_lite import studies
from adabit_lite.studies import allocation as al


def fake(acc: float, failed: bool = False, W: float = 1.0) -> dict:
    renewals = {"l": {"w_flips": 2, "s_flips": 1, "w_renewals": 0, "s_renewals": 0}}
    result = {"parameters": {"target": "1/1/1"},
              "metrics": {"accuracy": acc, "W": W, "S": 1.0, "T": 1.0, "renewals": renewals,
                          "accuracy_drops": [{"epoch": 1, "from": 80.0, "to": acc}] if failed else []},
              "history": [{"test_accuracy": 80.0}, {"test_accuracy": acc}]}
    if failed:
        result["failure"] = {"epoch": 2, "reason": "the network collapsed"}
    return result


def test_drop_epochs_are_the_stored_drops_one_based():
    from adabit_lite.train import accuracy_drops

    history = [{"epoch": e, "test_accuracy": a} for e, a in enumerate((80.0, 74.0, 80.0, 75.0, 69.0))]
    run = {"metrics": {"accuracy_drops": accuracy_drops(history)}, "history": history}
    assert al.drop_epochs(run) == [2, 5]  # 80 -> 74 and 75 -> 69; 80 -> 75 is exactly 5: not a drop
    assert al.drop_epochs({"metrics": {}}) == []


def test_a_failed_run_is_counted_and_stays_in_the_means():
    table = al.stability_table({"a": [fake(90.0), fake(10.0, failed=True)], "b": [fake(88.0)]},
                               reference="b")
    rows = table.set_index("method")
    assert rows.loc["a", "failed"] == 1 and rows.loc["b", "failed"] == 0
    assert rows.loc["a", "accuracy"] == pytest.approx(50.0)  # the collapse is an outcome
    assert rows.loc["a", "worst drop"] == pytest.approx(70.0)
    assert rows.loc["a", "runs with a drop > 5"] == 1


def test_the_failed_column_appears_only_where_a_run_failed():
    table = al.stability_table({"a": [fake(90.0), fake(91.0, W=1.5)]})
    assert "failed" not in table.columns
    assert table.loc[0, "within target"] == pytest.approx(0.5)
    assert math.isnan(table.loc[0, "p vs -"])


# ---------------------------------------------------------------- Figure 3's verdict
def settle_rows(*rows):
    keys = ("target", "runs", "settled", "median epoch", "fall done early (%)")
    return pd.DataFrame([dict(zip(keys, r)) for r in rows])


def test_the_settling_verdict_reads_the_fall_done_within_the_papers_share():
    late = al.settling_verdict(settle_rows(("1/1/1", 8, 8, 4.0, 33.0), ("2/2/1", 5, 2, 9.5, 47.0)),
                               10, paper_share=0.125)
    assert ("by the end of epoch 1 (10% of training) LBW + renewal has done 33 to 47 % of its fall"
            in late and "under half at every target, later than the paper says" in late)
    assert "stay there after 40 to 95 % of training" in late
    assert "12.5%" in late and "3 of 5 at 2/2/1" in late and "1/1/1" not in late.split("never")[-1]
    mixed = al.settling_verdict(settle_rows(("1/1/1", 4, 4, 1.0, 80.0), ("2/2/1", 4, 4, 3.0, 50.0),
                                            ("4/4/1", 4, 4, 1.0, math.nan)), 10, paper_share=0.125)
    assert "most of it at 1/1/1, as the paper says, and under half at 2/2/1" in mixed  # 50: not most
    assert "never" not in mixed and "At 4/4/1 the bits did not fall" in mixed
    early = al.settling_verdict(settle_rows(("1/1/1", 2, 2, 1.0, 90.0)), 4, paper_share=0.3)
    assert "by the end of epoch 1 (25% of training)" in early
    assert "most of it at every target, as the paper says" in early
    coarse = al.settling_verdict(settle_rows(("1/1/1", 2, 2, 1.0, 90.0)), 4, paper_share=0.125)
    assert "with 4 epochs no epoch ends within that share" in coarse
    flat = al.settling_verdict(settle_rows(("4/4/1", 2, 2, 1.0, math.nan)), 10, paper_share=0.125)
    assert "no run of LBW + renewal lowered its bits" in flat


def test_the_settling_verdict_reads_the_papers_share():
    from adabit_lite.paper import paper_statements

    share = paper_statements().loc["fig3_bit_reduction", "number"]
    text = al.settling_verdict(settle_rows(("1/1/1", 1, 1, 1.0, 60.0)), 10)
    assert f"{share / 100:.1%}" in text and al.paper_early_share() == share / 100


def test_the_reduction_share_and_the_start_of_the_history():
    run = result("1/1/1", history=[(2, 2, 1, 50), (1.5, 1, 1, 60), (1, 1, 1, 70)])  # from 4/4/2
    # W + S falls from 8 to 4, 2.5 and 2: 4, 5.5 and 6 of the whole 6
    assert [al.reduction_share(run, e) for e in (1, 2, 3)] == pytest.approx([4 / 6, 5.5 / 6, 1.0])
    flat = result("4/4/1", history=[(4, 4, 1, 50), (4, 4, 1, 60)])
    assert math.isnan(al.reduction_share(flat, 1))
    row = al.settling([run, flat], "1/1/1", share=0.5)  # 3 epochs: epoch 1 is the last within half
    assert row["early epoch"] == 1 and row["fall done early (%)"] == pytest.approx(100 * 4 / 6)
    assert math.isnan(al.settling([run], "1/1/1", share=0.2)["early epoch"])
    h = al.mean_history([run], start=True)
    assert h["epoch"].tolist() == [0, 1, 2, 3]
    assert h.loc[0, ["W mean", "S mean", "T mean"]].tolist() == [4.0, 4.0, 2.0]
    assert math.isnan(h.loc[0, "test_accuracy mean"])
    assert al.mean_history([run])["epoch"].tolist() == [1, 2, 3]


# ---------------------------------------------------------------- two targets, one allocation
def run(target, seed, bits, acc, tol=0.3):
    """A stored result with three layers (weights 1, 2, 1; features 2, 1, 1) at ``bits`` per layer."""
    sizes = ((1, 2), (2, 1), (1, 1))
    layers = [{"name": f"l{i}", "Bw": bw, "Bs": [bs], "T": 1, "weights": w, "in_features": f}
              for i, ((bw, bs), (w, f)) in enumerate(zip(bits, sizes))]
    mean = lambda k, n: sum(sz[n] * b[k] for b, sz in zip(bits, sizes)) / sum(sz[n] for sz in sizes)
    return {"parameters": {"target": target, "seed": seed, "bit_tolerance": tol},
            "metrics": {"layers": layers, "accuracy": acc, "W": mean(0, 0), "S": mean(1, 1), "T": 1.0}}


SHARED = ((2, 1), (1, 2), (3, 3))  # mean W = (2 + 2 + 3) / 4 = 1.75, mean S = (2 + 2 + 3) / 4 = 1.75


def test_two_targets_with_the_same_bits_in_every_seed_share_an_allocation():
    groups = {"2/2/1": {"m": [run("2/2/1", s, SHARED, 90.0 + s) for s in (0, 1)]},
              "1.5/1.5/1": {"m": [run("1.5/1.5/1", s, SHARED, 90.0 + s) for s in (1, 0)]},
              "4/4/1": {"m": [run("4/4/1", s, ((4, 4),) * 3, 95.0) for s in (0, 1)]}}
    pairs = al.shared_allocations(groups, "m")
    assert len(pairs) == 1
    pair = pairs[0]
    assert pair["targets"] == ("2/2/1", "1.5/1.5/1") and pair["runs"] == 2 and pair["same accuracy"]
    assert (pair["W"], pair["S"], pair["T"]) == (1.75, 1.75, 1.0) and pair["accuracy"] == 90.5
    note = al.shared_allocation_note(groups, "m", finer=0.1)
    assert note.startswith("At 2/2/1 and at 1.5/1.5/1, m ends at the same per-layer bits")
    # whole bits on weights (1, 2, 1): (B1 + 2 B2 + B3) / 4 in [1.5, 2] is 6/4, 7/4 or 8/4
    assert "1.75/1.75/1.00" in note and "only 3 mean Bw" in note
    assert "within 0.3 of both" in note and "does not allocate differently" in note
    assert note.endswith("tests this at 0.1).")


def test_a_seed_with_other_bits_or_an_allocation_outside_the_bands_is_said_so():
    other = ((1, 1), (1, 2), (3, 3))
    groups = {"2/2/1": {"m": [run("2/2/1", 0, SHARED, 90.0), run("2/2/1", 1, SHARED, 91.0)]},
              "1.5/1.5/1": {"m": [run("1.5/1.5/1", 0, SHARED, 90.0), run("1.5/1.5/1", 1, other, 91.0)]}}
    assert al.shared_allocations(groups, "m") == []
    assert al.shared_allocation_note(groups, "m") == "m ends at a different allocation at every target."
    assert al.shared_allocation_note({"2/2/1": groups["2/2/1"]}, "m") == ""
    narrow = {t: {"m": [run(t, 0, SHARED, 90.0, tol=0.1)]} for t in ("2/2/1", "1.5/1.5/1")}
    note = al.shared_allocation_note(narrow, "m")
    assert "within" not in note and "still end at the same allocation" in note


# ---------------------------------------------------------------- the chapters' tables and text
LAYERS = ((10, 5), (30, 2), (5, 1))  # (weights, input features) of three layers


def result(target="2/2/1", seed=0, acc=90.0, bits=((2, 2), (2, 2), (2, 2)), history=(), bb=4.0,
           sace=0.02, epochs=3):
    """A stored result: three layers of ``LAYERS`` at ``bits`` (Bw, Bs), its means, cost and
    ``history`` ((W, S, T, test accuracy) per epoch)."""
    layers = [{"name": f"l{i}", "kind": "conv", "Bw": bw, "Bs": [bs], "T": 1, "weights": w,
               "in_features": f} for i, ((bw, bs), (w, f)) in enumerate(zip(bits, LAYERS))]
    mean = [sum(b[k] * n[k] for b, n in zip(bits, LAYERS)) / sum(n[k] for n in LAYERS) for k in (0, 1)]
    return {"key": f"{target}-{seed}-{acc}",
            "parameters": {"target": target, "seed": seed, "epochs": epochs, "init": "4/4/2"},
            "metrics": {"accuracy": acc, "W": mean[0], "S": mean[1], "T": 1.0, "bit_budget": bb,
                        "s_ace_g": sace, "size_mbit": 0.1, "layers": layers, "wst": "2/2/1",
                        "renewals": {}},
            "history": [{"epoch": e, "W": w, "S": s, "T": t, "test_accuracy": a}
                        for e, (w, s, t, a) in enumerate(history)]}


def test_load_groups_reads_controls_from_their_sweep_and_trains_learned_runs_first(monkeypatch, tmp_path):
    stored = {("s", "a0"), ("s", "a1")}  # what is on disk: (sweep folder, config)
    calls = []

    def grouping(root, targets):
        assert root == tmp_path
        # like sweeps.*_groups: a control only for a stored learned run
        return {t: {"a": ["a0", "a1", "b0"] if t == "x" else ["a0"],
                    "control": [f"c-{c}" for c in ("a0", "a1", "b0") if ("s", c) in stored]}
                for t in targets}

    def fake_stored(folder, cfg, train):
        calls.append((folder.name, cfg, train))
        if train:
            stored.add((folder.name, cfg))
        return {"key": cfg} if (folder.name, cfg) in stored else None

    monkeypatch.setattr(studies, "stored_result", fake_stored)
    monkeypatch.setattr(studies, "result_key", lambda cfg: cfg)
    groups, wanted, found = al.load_groups(tmp_path, "s", grouping, targets=["x", "y"])
    assert [r["key"] for r in groups["x"]["a"]] == ["a0", "a1"]  # b0 is not stored
    assert groups["x"]["control"] == [] and groups["y"]["a"] == [{"key": "a0"}]
    assert (wanted, found) == (5, 2)  # distinct: a0, a1, b0, c-a0, c-a1 wanted; a0, a1 stored
    assert al.load_groups(tmp_path, "s", grouping, distinct=False, targets=["x", "y"])[1:] == (8, 3)
    calls.clear()
    groups, wanted, found = al.load_groups(tmp_path, "s", grouping, True, targets=["x"])
    first = calls.index(("s-control", "c-a0", True))
    assert all(folder == "s" for folder, _, _ in calls[:first])  # learned runs before controls
    assert [r["key"] for r in groups["x"]["control"]] == ["c-a0", "c-a1", "c-b0"]
    assert (wanted, found) == (6, 6)


def test_load_stored_keeps_the_nesting_and_counts_by_place_or_by_key(monkeypatch, tmp_path):
    on_disk = {"a": {"r1", "r2"}, "b": {"r2"}}  # folder -> stored configs
    calls = []

    def fake_stored(folder, cfg, train):
        calls.append((folder.name, cfg, train))
        return {"key": cfg} if cfg in on_disk[folder.name] else None

    monkeypatch.setattr(studies, "stored_result", fake_stored)
    monkeypatch.setattr(studies, "result_key", lambda cfg: cfg)
    folder = lambda name, cfg: tmp_path / ("b" if name == "n" else "a")  # noqa: E731
    # one level: group -> configs; r2 is wanted twice (in m and in n) and found twice
    one = studies.load_stored({"m": ["r1", "r2", "r3"], "n": ["r2"]}, folder)
    assert one.groups == {"m": [{"key": "r1"}, {"key": "r2"}], "n": [{"key": "r2"}]}
    assert (one.wanted, one.found) == (4, 3)
    assert studies.load_stored({"m": ["r1", "r2", "r3"], "n": ["r2"]}, folder,
                               distinct=True)[2:] == (3, 2)  # r1, r2, r3 wanted; r1, r2 found
    # two levels, read from a function; nothing trained without train_missing
    two = studies.load_stored(lambda: {4: {"m": ["r3"], "n": ["r2", "r9"]}}, folder)
    assert two.groups == {4: {"m": [], "n": [{"key": "r2"}]}}
    assert two.configs == {4: {"m": ["r3"], "n": ["r2", "r9"]}} and two[2:] == (3, 1)
    assert {train for _, _, train in calls} == {False}
    # train_missing: every learned run of every target before the first control
    calls.clear()
    tree = {"x": {"m": ["r1"], "control": ["c1"]}, "y": {"m": ["r3"], "control": ["c3"]}}
    studies.load_stored(tree, folder, True, control=lambda name: name == "control")
    trained = [cfg for _, cfg, train in calls if train]
    assert trained[:2] == ["r1", "r3"] and trained.index("c1") > trained.index("r3")


def test_runs_shown_names_the_sweeps_to_run():
    assert studies.runs_shown(3, 5, "allocation", "ablations") == (
        "runs shown: 3 of 5 wanted (the rest are not stored: run `python -m adabit_lite.sweeps run "
        "allocation ablations` or set train_missing = True)")
    assert studies.runs_shown(5, 5, "allocation") == "runs shown: 5 of 5 wanted (all stored)"


def test_words_lists_items_as_a_reader_does():
    assert [studies.words(x) for x in ([], ["a"], ["a", "b"], ["a", "b", "c"], (1, 2, 3, 4))] == \
        ["", "a", "a and b", "a, b and c", "1, 2, 3 and 4"]


def test_layer_tables_lines_and_ranks():
    runs = [result(bits=((2, 3), (1, 2), (4, 4))), result(seed=1, bits=((2, 3), (3, 2), (4, 4)))]
    tables = al.layer_tables({"2/2/1": {"m": runs}, "1/1/1": {"m": []}}, "m")
    assert list(tables) == ["2/2/1"]
    lt = tables["2/2/1"]
    assert lt["Bw"].tolist() == [2.0, 2.0, 4.0] and lt["Bw_max"].tolist() == [2, 3, 4]
    assert al.layer_lines(lt) == ("l0 (10 w, 5 in) Bw 2.0 Bs 3.0; l1 (30 w, 2 in) Bw 2.0 Bs 2.0; "
                                  "l2 (5 w, 1 in) Bw 4.0 Bs 4.0")
    assert al.layer_lines(lt, counts=False).startswith("l0 Bw 2.0 Bs 3.0; l1 Bw 2.0")
    ranks = al.layer_ranks(lt)
    # l1 has most weights and ties for the fewest Bw; l0 has most features but not the fewest Bs
    assert ranks == {"largest_w": "l1", "largest_layer_w": "the fewest weight bits",
                     "largest_s": "l0", "largest_layer_s": "not the fewest spike bits",
                     "last": "l2", "last_layer_w": "the most weight bits"}
    assert al.ranks_sentence(ranks) == (
        "the layer with most weights (l1) has the fewest weight bits; the layer with most input "
        "features (l0) has not the fewest spike bits; the last layer (l2) has the most weight bits")
    even = al.layer_ranks(al.mean_layer_bits([result()]))
    assert even["largest_layer_w"] == "the same weight bits as every other layer"
    assert even["last_layer_w"] == "the same weight bits as every other layer"


def test_comparison_lines_show_dashes_where_a_method_has_no_bits():
    nan = math.nan
    table = pd.DataFrame([
        {"method": "U-quant", "runs": 2, "W": 1.0, "S": 1.0, "T": 1.0, "within target": 1.0,
         "bit budget": 1.0, "S-ACE (M)": 5.44, "accuracy": 90.0, "std": 0.5, "p vs U-quant": nan},
        {"method": "full precision", "runs": 3, "W": nan, "S": nan, "T": nan, "within target": nan,
         "bit budget": nan, "S-ACE (M)": nan, "accuracy": 95.126, "std": 0.2, "p vs U-quant": 0.0123}])
    assert al.comparison_lines("1/1/1", table) == (
        "target 1/1/1: method (runs): W/S/T, on target, Bit Budget, S-ACE (M), accuracy mean +- std, "
        "p vs U-quant\n"
        "         U-quant (2): 1.00/1.00/1.00, on target 100%, BB 1.00, S-ACE 5.4, 90.00 +- 0.50\n"
        "  full precision (3): -, on target -, -, 95.13 +- 0.20, p = 0.012")
    assert al.comparison_lines("2/2/1", pd.DataFrame()) == "target 2/2/1: no stored runs"


def test_differences_table_lines_and_verdict():
    groups = {"1/1/1": {"LBW + renewal": [result(acc=a) for a in (90.0, 92.0)],
                        "U-quant": [result(acc=a) for a in (88.0, 88.5)],
                        "LBW": [result(acc=91.0)]}}  # one run: no test against LBW
    d = al.differences_table(groups)
    assert d["comparison"].tolist() == ["LBW + renewal - U-quant"]
    row = d.iloc[0]
    assert row["difference"] == pytest.approx(2.75)
    assert row["p"] == pytest.approx(stats.ttest_ind([90, 92], [88, 88.5], equal_var=False).pvalue)
    assert bool(row["significant"]) == (row["p"] < 0.05)
    hand = pd.DataFrame([
        {"target": "1/1/1", "comparison": "LBW + renewal - U-quant", "difference": 1.07, "p": 0.01,
         "significant": True},
        {"target": "1/1/1", "comparison": "LBW + renewal - LBW", "difference": -0.79, "p": 0.033,
         "significant": True},
        {"target": "4/4/1", "comparison": "LBW + renewal - U-quant", "difference": 0.1, "p": 0.705,
         "significant": False}])
    assert al.difference_lines(hand) == (
        "target 1/1/1: LBW + renewal - U-quant: +1.07 points (Welch p = 0.010, significant)\n"
        "target 1/1/1: LBW + renewal - LBW: -0.79 points (Welch p = 0.033, significant)\n"
        "target 4/4/1: LBW + renewal - U-quant: +0.10 points (Welch p = 0.705)")
    tiny = hand.iloc[:1].assign(p=0.0004)
    assert al.difference_lines(tiny) == (
        "target 1/1/1: LBW + renewal - U-quant: +1.07 points (Welch p < 0.001, significant)")
    tables = {t: pd.DataFrame({"method": ["LBW + renewal"], "renewals": [r]})
              for t, r in (("1/1/1", 5.0), ("4/4/1", 0.0))}
    text = al.differences_verdict(hand, tables)
    lines = text.split("\n")
    assert lines[0] == "Measured here:" and len(lines) == 4
    assert lines[2] == ("- **1/1/1**: LBW + renewal against U-quant: +1.07 points, p = 0.010 (better); "
                        "renewal (LBW + renewal against LBW): -0.79 points, p = 0.033 (worse).")
    assert lines[3].startswith("- **4/4/1**: LBW + renewal against U-quant: +0.10 points, p = 0.705 "
                               "(no significant difference). Renewal never fired")
    assert al.differences_verdict(hand.iloc[:0], tables) == "Not enough stored runs to compare."


def test_settle_table_and_lines():
    runs = [result("1/1/1", 0, history=[(2, 2, 1, 0), (1.2, 1.1, 1, 0), (1.1, 1.0, 1, 0)]),  # from 2
            result("1/1/1", 1, history=[(2, 2, 1, 0), (1.5, 1.1, 1, 0), (1.2, 1.0, 1, 0)]),  # from 3
            result("1/1/1", 2, history=[(2, 2, 1, 0), (1.2, 1.1, 1, 0), (1.5, 1.0, 1, 0)])]  # never
    settle = al.settle_table({"1/1/1": {"m": runs}, "2/2/1": {"m": []}}, "m")
    row = settle.to_dict(orient="records")
    assert len(row) == 1 and {k: row[0][k] for k in ("target", "runs", "settled", "median epoch",
                                                      "share of training", "latest epoch")} == \
        {"target": "1/1/1", "runs": 3, "settled": 2, "median epoch": 2.5,
         "share of training": pytest.approx(2.5 / 3), "latest epoch": 3}
    assert math.isnan(row[0]["early epoch"])  # 3 epochs: none ends within the paper's eighth
    assert al.settle_lines(settle, 3) == (
        "target 1/1/1: 2 of 3 runs end within 0.3 of the target; they stay there from epoch 2.5 on "
        "(median; latest 3) of 3, i.e. after 83% of training")
    none = pd.DataFrame([{"target": "2/2/1", "runs": 2, "settled": 0, "median epoch": math.nan,
                          "latest epoch": math.nan}])
    assert al.settle_lines(none, 10) == "target 2/2/1: 0 of 2 runs end within 0.3 of the target"
    whole = pd.DataFrame([{"target": "1/1/1", "runs": 8, "settled": 8, "median epoch": 4.0,
                           "latest epoch": 4}])  # a whole median epoch: no ".0"
    assert al.settle_lines(whole, 10) == (
        "target 1/1/1: 8 of 8 runs end within 0.3 of the target; they stay there from epoch 4 on "
        "(median; latest 4) of 10, i.e. after 40% of training")


def test_accuracy_ordering_and_the_paper_comparison():
    assert al.accuracy_ordering({"a": 90.0, "b": 91.0, "c": 90.004}) == "b > c = a"
    assert al.accuracy_ordering({}) == "-"
    methods = ["U-quant", "LBW", "LBW + renewal"]
    ours = pd.DataFrame({"method": methods, "accuracy": [92.0, 94.0, 93.0], "std": [0.5, 0.25, 1.0],
                         "W": [1.0, 1.1, 1.25], "S": [1.0, 1.0, 1.5], "T": [1.0, 1.0, 1.0]})
    paper_table = pd.DataFrame({"target": ["1/1/1"], "uquant": [74.8], "lbw": [95.6],
                                "act_renew": [96.1], "act_renew_wst": ["1.38/1.32/1.0"]}).set_index("target")
    table = al.ordering_vs_paper({"1/1/1": ours, "3/3/3": ours.iloc[::-1]}, paper_table)
    first, second = table.to_dict(orient="records")
    assert first["paper: ordering"] == "LBW + renewal > LBW > U-quant"
    assert first["paper: U-quant"] == 74.8 and first["paper: learned W/S (LBW + renewal)"] == "1.38/1.32/1.0"
    assert first["ours: ordering"] == "LBW > LBW + renewal > U-quant"
    assert first["ours: LBW"] == "94.00 +- 0.25"
    assert first["ours: learned W/S/T (LBW + renewal)"] == "1.25/1.50/1.00"
    assert second["paper: ordering"] == "not reported" and second["ours: ordering"] == first["ours: ordering"]
    agree = pd.DataFrame({"target": ["a", "b", "c"], "paper: ordering": ["x > y", "not reported", "x > y"],
                          "ours: ordering": ["x > y", "x > y", "y > x"]})
    assert al.ordering_sentence(agree).startswith(
        "The paper's ordering of the three methods holds here at: a; it does not at: c.")
    assert "holds here at: no target; it does not at: no target." in al.ordering_sentence(agree.iloc[1:2])


def trace(bw, bs):
    return pd.DataFrame({"step": range(len(bw)), "W": bw, "S": bs, "Bw l0": bw, "Bs l0": bs})


def test_trace_table_counts_the_changes_between_batches():
    traces = {"paper": (trace([4, 3, 2, 3, 2], [4, 4, 2, 2, 2]),
                        {"metrics": {"wst": "2/2/1", "accuracy": 88.9}}),
              "remedy": (trace([4, 2, 2, 2, 2], [4, 2, 2, 2, 2]),
                         {"metrics": {"wst": "1.8/1.7/1", "accuracy": 92.2}})}
    table = al.trace_table(traces)
    assert table["method"].tolist() == ["paper", "remedy"]
    assert table["Bw l0"].tolist() == [4, 1] and table["Bs l0"].tolist() == [1, 1]
    assert table["total"].tolist() == [5, 2]
    assert al.trace_record(table) == {"paper": {"flips": 5, "wst": "2/2/1", "accuracy": 88.9},
                                      "remedy": {"flips": 2, "wst": "1.8/1.7/1", "accuracy": 92.2}}
    fig = al.plot_traces(traces, "2/2/1")
    left = fig.axes[0]
    assert [line.get_label() for line in left.lines] == ["paper", "remedy", "target"]
    assert left.lines[2].get_ydata()[0] == 2.0
    plt.close(fig)


def test_stability_lines():
    table = pd.DataFrame([{"method": "paper", "runs": 5, "within target": 0.4, "Bw flips": 167.6,
                           "Bs flips": 182.4, "renewals": 5.0, "runs with a drop > 5": 4,
                           "worst drop": 31.84, "accuracy": 94.0, "std": 1.494}])
    assert al.stability_lines("2/2/1", table).split("\n")[1] == (
        "                   paper: 40% of 5, flips 168 / 182, renewals 5, 4 with a drop, worst 31.8, "
        "94.00 +- 1.49")


def test_visited_and_nearest_reachable_means():
    runs = [result("2/2/1", s, history=[(4, 4, 2, 0), (3, 3, 1, 0), (w, s_, 1, 0), (2.004, 1.9, 1, 0)])
            for s, (w, s_) in enumerate(((1.77, 1.73), (2.41, 1.73)))]
    for r in runs:  # two layers of 1 and 3 weights / features
        r["metrics"]["layers"] = [{"weights": 1, "in_features": 3}, {"weights": 3, "in_features": 1}]
    visited = al.visited_means(runs, "2/2/1")
    assert visited["W_visited"] == [1.77, 2.0, 2.41] and visited["S_visited"] == [1.73, 1.9]
    # (B1 + 3 B2) / 4 with whole B in 1..6: below 2 the largest are 1.5 and 1.75; from 2: 2 and 2.25
    assert visited["W_reachable"] == [1.5, 1.75, 2.0, 2.25]
    assert visited["S_reachable"] == [1.5, 1.75, 2.0, 2.25]
    assert al.visited_lines("2/2/1", visited) == (
        "target 2/2/1: the paper's runs visited mean Bw [1.77, 2.0, 2.41] and mean Bs [1.73, 1.9] "
        "(epochs 3 on)\n  reachable means nearest the target: Bw [1.5, 1.75, 2.0, 2.25], "
        "Bs [1.5, 1.75, 2.0, 2.25]")


def history(w, s):
    return pd.DataFrame({"epoch": range(1, len(w) + 1), "W mean": w, "S mean": s})


def test_hidden_under_names_the_curves_that_cover_a_curve():
    h = history([3, 2], [3, 2])
    assert al.hidden_under(h, {"a": history([3, 2], [3, 2]), "b": history([3, 2], [3, 2])}) == ["b"]
    # no curve repeats h whole, but every point lies under a (epoch 1) or b (epoch 2)
    parts = {"a": history([3, 9], [3, 9]), "b": history([9, 2], [9, 2])}
    assert al.hidden_under(h, parts) == ["a", "b"]
    assert al.hidden_under(h, {"a": history([3, 9], [3, 9])}) == []


def test_plot_remedy_history_names_a_covered_rule_in_the_legend():
    same = [result(history=[(3, 3, 1, 0), (2, 2, 1, 0)])]
    by_method = {"paper": [result(history=[(3, 3, 1, 0), (1.5, 1.5, 1, 0)])],
                 "hysteresis": same, "soft loss": same}
    fig = al.plot_remedy_history(by_method, "2/2/1")
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ["paper", "hysteresis (under soft loss)", "soft loss", "target (shaded: within 0.3)"]
    plt.close(fig)


def test_baseline_summary_and_lines():
    groups = {"2/2/1": {"paper": [result(acc=90.0, bb=3.0), result(acc=92.0, bb=5.0)],
                        "U-quant 1/1/1": [result(acc=88.0, bits=((1, 1),) * 3, bb=1.0, sace=0.005)],
                        "other": [result()]}}
    summary = al.baseline_summary(groups)
    assert summary["method"].tolist() == ["paper", "U-quant 1/1/1"]  # only the shown groups
    paper = summary.iloc[0]
    assert paper["bit budget"] == 4.0 and paper["std"] == pytest.approx(math.sqrt(2))
    assert paper["W/S/T"] == "2.00/2.00/1.00" and paper["S-ACE (M)"] == pytest.approx(20.0)
    assert math.isnan(summary.iloc[1]["std"])
    assert al.baseline_lines(summary).split("\n")[0] == (
        "target 2/2/1: paper (2 runs): W/S/T 2.00/2.00/1.00, BB 4.00, accuracy 91.00 +- 1.41")
    fig = al.plot_baselines(groups)
    ax = fig.axes[0]
    assert [len(c.get_offsets()) for c in ax.collections] == [2, 1]
    assert ax.get_title() == "target 2/2/1"
    plt.close(fig)


def stability_rows(*rows):
    columns = ("method", "within target", "runs with a drop > 5", "accuracy", "p vs paper",
               "Bw flips", "Bs flips")
    return pd.DataFrame([dict(zip(columns, r)) for r in rows])


def test_the_remedy_criterion_and_its_sentence():
    tables = {"2/2/1": stability_rows(("paper", 0.4, 4, 94.0, math.nan, 167.6, 182.4),
                                      ("a", 1.0, 0, 94.5, 0.4, 4, 4),
                                      ("b", 1.0, 0, 92.0, 0.01, 4, 4),  # worse: lower and p < 0.05
                                      ("c", 0.8, 0, 95.0, 0.5, 4, 4)),  # below 90 % on target
              "1.5/1.5/1": stability_rows(("paper", 1.0, 0, 92.0, math.nan, 168, 171),
                                          ("a", 1.0, 0, 93.0, 0.1, 4, 4),
                                          ("b", 1.0, 1, 94.0, 0.1, 4, 4))}
    checks = al.criterion_table(tables, ["paper", "a", "b", "c", "d"])
    assert checks["met"].tolist() == [False, True, False, False, True, True, False]
    assert checks["worse"].tolist() == [False, False, True, False, False, False, False]
    assert al.criterion_lines(checks).split("\n")[2] == (
        "target 2/2/1, b: on target 100%, runs with a drop > 5: 0, accuracy worse than the paper's "
        "rule -> criterion not met")
    verdict = al.criterion_verdict(checks)
    assert verdict == {"paper": {"2/2/1": False, "1.5/1.5/1": True}, "a": {"2/2/1": True, "1.5/1.5/1": True},
                       "b": {"2/2/1": False, "1.5/1.5/1": False}, "c": {"2/2/1": False}}
    assert al.remedy_sentence(verdict, tables) == (
        "With the paper's rule, 40% of the runs at 2/2/1 ended on target (168 weight-bit and 182 "
        "spike-bit flips per run); 100% of the runs at 1.5/1.5/1 ended on target (168 weight-bit and "
        "171 spike-bit flips per run). The criterion holds at every target for: a.")
    assert al.remedy_sentence({"a": {"2/2/1": False}}, {}).startswith("No remedy meets the criterion")


def test_remedies_vs_paper_marks_a_target_the_paper_did_not_run():
    ours = pd.DataFrame([{"method": "paper", "W": 1.9, "S": 1.99, "T": 1.0, "within target": 0.4,
                          "accuracy": 94.0, "std": 1.49}])
    paper_table = pd.DataFrame({"target": ["2/2/1"], "uquant": [88.65], "act_renew": [96.51],
                                "act_renew_wst": ["2.08/2.08"]}).set_index("target")
    table = al.remedies_vs_paper({"2/2/1": ours, "1.5/1.5/1": ours}, paper_table,
                                 ["2/2/1", "1.5/1.5/1", "3/3/1"], ["paper", "remedy"])
    first, second = table.to_dict(orient="records")
    assert first["setting"] == "target 2/2/1, paper" and first["paper: U-quant"] == 88.65
    assert first["ours: mean W/S/T"] == "1.90/1.99/1.00" and first["ours: on target"] == "40%"
    assert second["paper: accuracy (ResNet-20, CIFAR-10)"] == "not reported"
    assert len(table) == 2  # no row for a method or target without a table row


# ---------------------------------------------------------------- the figures
def test_plot_layer_bits_hides_the_spare_panel_and_labels_the_counts():
    lt = al.mean_layer_bits([result(bits=((1, 2), (2, 3), (5, 4)))])
    fig = al.plot_layer_bits({"a": lt, "b": lt, "c": lt}, " (m)")
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(fig.axes) == 4 and len(visible) == 3
    assert visible[0].get_title() == "target a (m)"
    fig.canvas.draw()
    labels = [[t.get_text() for t in ax.get_xticklabels() if t.get_visible()] for ax in visible]
    assert labels[2][1] == "L2\n30 w\n2 in"  # bottom row; LAYERS: l1 has 30 weights, 2 features
    assert labels[1] == labels[2] and labels[0] == []  # b is the last panel of its column
    assert max(visible[0].get_yticks()) == 5  # up to the largest bit width seen
    plt.close(fig)


def test_plot_layer_bits_of_one_table_and_of_many_layers():
    lt = al.mean_layer_bits([result(bits=((1, 2), (2, 3), (5, 4)))])
    fig = al.plot_layer_bits(lt, "one stage")  # a bare table: one panel, titled by the note
    assert [ax.get_title() for ax in fig.axes] == ["one stage"]
    plt.close(fig)
    n = al.MANY_LAYERS
    deep = pd.DataFrame({"layer": [f"stages.{i}.branch1.0" for i in range(n)], "Bw": 2.0, "Bs": 1.0,
                         "Bw_min": 1, "Bw_max": 3, "Bs_min": 1, "Bs_max": 1,
                         "weights": [512 + 1000 * i for i in range(n)], "in_features": 64})
    fig = al.plot_layer_bits({"1/1/1": deep})
    ax = fig.axes[0]
    fig.canvas.draw()
    names = [t.get_text() for t in ax.get_yticklabels()]
    assert names[0] == "L1 stages.0.branch1.0 (512 w, 64 in)" and len(names) == n
    assert names[1] == "L2 stages.1.branch1.0 (1.5k w, 64 in)"
    bottom, top = ax.get_ylim()
    assert top < bottom  # horizontal bars, the first layer on top
    assert ax.get_xlabel() == "learned bits" and max(ax.get_xticks()) == 3
    widths = sorted({round(p.get_width(), 6) for p in ax.patches})
    assert widths == [1.0, 2.0]  # Bs and Bw of every layer, lengths along x
    plt.close(fig)


def test_plot_accuracy_by_seed_and_vs_bit_budget():
    groups = {t: {"U-quant": [result(t, s, 90.0 + s) for s in (0, 1)],
                  "full precision": [result(t, s, 95.0 + s) for s in (0, 1)]}
              for t in ("1/1/1", "2/2/1", "4/4/1")}
    fig = al.plot_accuracy_by_seed(groups, ["1/1/1", "2/2/1", "4/4/1"])
    assert [ax.get_title() for ax in fig.axes if ax.get_visible()] == ["target 1/1/1", "target 2/2/1",
                                                                        "target 4/4/1"]
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["U-quant", "full precision"]
    plt.close(fig)
    fig = al.plot_accuracy_vs_bit_budget(groups)
    ax = fig.axes[0]
    assert len(ax.collections) == 1 and len(ax.collections[0].get_offsets()) == 6  # U-quant, 3 targets
    assert ax.lines[0].get_ydata()[0] == pytest.approx(95.5)  # full-precision mean
    assert ax.get_xscale() == "log"
    plt.close(fig)


def test_plot_mean_bits_draws_a_curve_and_a_target_line_per_target():
    groups = {"1/1/1": {"LBW + renewal": [result("1/1/1", history=[(3, 2, 2, 0), (1, 1, 1, 0)])]},
              "2/2/1": {"LBW + renewal": []}}
    fig = al.plot_mean_bits(groups)
    w_axis = fig.axes[0]
    assert len(w_axis.lines) == 2  # one target with runs: its curve and its target
    assert w_axis.lines[0].get_xdata().tolist() == [0, 1, 2]  # from the start (init 4/4/2)
    assert w_axis.lines[0].get_ydata().tolist() == [4, 3, 1] and w_axis.lines[1].get_ydata()[0] == 1.0
    assert fig.axes[2].get_title() == "mean T (LBW + renewal)"
    plt.close(fig)
