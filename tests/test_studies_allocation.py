"""Summaries of stored runs (adabit_lite/studies/allocation.py) on hand-made results."""

import math

import pytest

from adabit_lite.studies import allocation as al


def fake(acc: float, failed: bool = False, W: float = 1.0) -> dict:
    renewals = {"l": {"w_flips": 2, "s_flips": 1, "w_renewals": 0, "s_renewals": 0}}
    result = {"parameters": {"target": "1/1/1"},
              "metrics": {"accuracy": acc, "W": W, "S": 1.0, "T": 1.0, "renewals": renewals,
                          "accuracy_drops": [6] if failed else []},
              "history": [{"test_accuracy": 80.0}, {"test_accuracy": acc}]}
    if failed:
        result["failure"] = {"epoch": 2, "reason": "the network collapsed"}
    return result


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
    import pandas as pd

    return pd.DataFrame([dict(zip(("target", "runs", "settled", "median epoch"), r)) for r in rows])


def test_the_settling_verdict_compares_the_median_share_with_the_papers():
    late = al.settling_verdict(settle_rows(("1/1/1", 8, 8, 4.0), ("2/2/1", 5, 2, 9.5)), 10,
                               paper_share=0.125)
    assert "40% to 95%" in late and "later than the paper says at every target" in late
    assert "12.5%" in late and "3 of 5 at 2/2/1" in late and "1/1/1" not in late.split("never")[-1]
    assert "earliest measurable" not in late  # one epoch of 10 is within the paper's share
    mixed = al.settling_verdict(settle_rows(("1/1/1", 4, 4, 1.0), ("2/2/1", 4, 4, 3.0)), 10,
                                paper_share=0.125)
    assert "as early as the paper says at 1/1/1 and later at 2/2/1" in mixed
    assert "never" not in mixed
    early = al.settling_verdict(settle_rows(("1/1/1", 2, 2, 1.0)), 4, paper_share=0.3)
    assert "as early as the paper says." in early
    coarse = al.settling_verdict(settle_rows(("1/1/1", 2, 2, 1.0)), 2, paper_share=0.125)
    assert "earliest measurable settling is after one epoch, 50%" in coarse
    none = al.settling_verdict(settle_rows(("1/1/1", 2, 0, float("nan"))), 10, paper_share=0.125)
    assert "no run" in none


def test_the_settling_verdict_reads_the_papers_share():
    from adabit_lite.paper import paper_statements

    share = paper_statements().loc["fig3_bit_reduction", "number"]
    assert f"{share / 100:.1%}" in al.settling_verdict(settle_rows(("1/1/1", 1, 1, 1.0)), 10)


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
