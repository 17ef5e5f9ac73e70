"""Stored sweep results (results/): current, findable, and reproduced by a re-run of a subset.

CI runs on the same kind of machine that produced them, so the re-run must give the stored file's
metrics and history exactly.  If it does not, either a change altered the numbers without bumping
adabit_lite.ALGORITHM_VERSION (bump it and run `make results`), or the machine differs.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from adabit_lite import ALGORITHM_VERSION, sweeps
from adabit_lite.results import find_result, result_key
from adabit_lite.train import train

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results"


def test_every_stored_run_is_current_and_findable():
    for name in sweeps.SWEEPS:
        configs = sweeps.sweep_configs(name, RESULTS)
        assert configs, f"{name}: no runs (a later sweep builds its runs from an earlier one's results)"
        found = [find_result(RESULTS / name, c) for c in configs]
        missing = [c for c, r in zip(configs, found) if r is None]
        assert not missing, f"{name}: {len(missing)} runs not stored for this code version: run make results"
        assert all(r["code"]["algorithm_version"] == ALGORITHM_VERSION for r in found)
        # one file per distinct run (two controls that fix the same learned bits are one run)
        assert len({r["key"] for r in found}) == len({result_key(c) for c in configs})


@pytest.mark.parametrize("name", sorted(sweeps.SUBSET))
def test_a_rerun_of_the_subset_reproduces_the_stored_numbers(name, tmp_path):
    cfg = next(c for c in sweeps.sweep_configs(name, RESULTS) if sweeps.SUBSET[name](c))
    stored = find_result(RESULTS / name, cfg)
    timing = json.loads((RESULTS / name / stored["key"] / "timing.json").read_text())
    threads = torch.get_num_threads()
    torch.set_num_threads(timing.get("threads", 1))  # float sums depend on the thread count
    try:
        fresh = train(cfg, tmp_path / "run", progress=False)
    finally:
        torch.set_num_threads(threads)
    assert fresh["metrics"] == stored["metrics"]
    assert fresh["history"] == stored["history"]


def test_the_control_sweep_has_one_run_per_stored_lbw_run_of_the_chosen_remedy():
    controls = sweeps.sweep_configs("bit-stability-control", RESULTS)
    assert len(controls) == len(sweeps.STABILITY_TARGETS) * len(sweeps.STABILITY_SEEDS)
    assert all(c.layer_bits and not c.learn_w for c in controls)


def test_the_allocation_control_fixes_the_bits_of_every_stored_lbw_run():
    groups = sweeps.allocation_groups(RESULTS)
    for target, methods in groups.items():
        wanted = len(methods["LBW + renewal"]) if target in sweeps.CONTROL_TARGETS else 0
        assert len(methods["control"]) == wanted
        for lbw, control in zip(methods["LBW + renewal"], methods["control"]):
            learned = find_result(RESULTS / "allocation", lbw)["metrics"]["layers"]
            fixed = find_result(RESULTS / "allocation-control", control)["metrics"]["layers"]
            assert [(l["Bw"], l["Bs"]) for l in fixed] == [(l["Bw"], l["Bs"]) for l in learned]


def test_default_dataset_follows_the_criterion():
    table = sweeps.dataset_choice_table(RESULTS)
    chosen = sweeps.default_dataset(RESULTS)
    row = table.set_index("dataset").loc[chosen]
    assert row["gap"] >= sweeps.GAP_POINTS
    earlier = table["dataset"].tolist().index(chosen)
    assert not table.iloc[:earlier]["criterion met"].any()  # the first in the declared order


def test_sweeps_cli_rejects_an_unknown_sweep():
    done = subprocess.run([sys.executable, "-m", "adabit_lite.sweeps", "run", "nope"],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 2 and "accepted: dataset-choice" in done.stderr


def test_project_path_finds_the_root_from_a_subfolder(monkeypatch):
    from adabit_lite.results import project_path

    monkeypatch.chdir(ROOT / "nb")
    assert project_path("results") == ROOT / "results"
    assert project_path("/abs/x") == Path("/abs/x")
