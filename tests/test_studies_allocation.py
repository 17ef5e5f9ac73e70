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
