"""The data chapter (nb/00_data.ipynb) run by papermill."""

from pathlib import Path

import pytest
from nbrun import assert_stops_on_bad_parameter, run_chapter

from adabit_lite import sweeps

ROOT = Path(__file__).resolve().parent.parent


def test_data_chapter_records_the_choice_and_the_event_pair(tmp_path):
    rec, figs = run_chapter("00_data", tmp_path, n_show=2, seed=1)
    assert rec["default_dataset"] == sweeps.default_dataset(ROOT / "results")
    table = sweeps.dataset_choice_table(ROOT / "results").set_index("dataset")
    for name, gap in rec["gaps"].items():
        assert gap == pytest.approx(table.loc[name, "gap"], abs=1e-4)
    assert rec["gaps"][rec["default_dataset"]] >= sweeps.GAP_POINTS
    assert rec["event_pair_same_time_average"] and rec["event_pair_reversed"]
    for name in ("data_samples.png", "moving_digits_pair.png"):
        assert (figs / name).stat().st_size > 5_000
    assert (figs / "dataset_choice.csv").exists()


def test_bad_parameter_stops_with_one_line(tmp_path):
    assert_stops_on_bad_parameter("00_data", tmp_path, "n_show", 0, "an integer from 1 to 16")
