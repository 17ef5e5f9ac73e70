"""Stored sweep results (results/): current, findable, and reproduced by a re-run of a subset.

A re-run is checked as the machine allows (adabit_lite.reproduce): where the stored run's machine
record is this machine's, metrics and history must be identical (a change that alters numbers
without bumping adabit_lite.ALGORITHM_VERSION fails here); on any other machine the re-run must
agree with the stored seeds of its setting, since last-bit differences of the CPU kernels grow into
other numbers of the same distribution.  The fingerprint (the first training steps, compared within
a relative tolerance) is sharp on every machine.  The test ids say which check runs
(ADABIT_FOREIGN_MACHINE=1 forces the other-machine checks).
"""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from adabit_lite import ALGORITHM_VERSION, reproduce, sweeps
from adabit_lite.results import find_result, result_key
from adabit_lite.train import train

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results"


def test_every_stored_run_is_current_and_findable():
    for name in sweeps.SWEEPS:
        configs = sweeps.sweep_configs(name, RESULTS)
        assert configs or name in sweeps.IN_PROGRESS, \
            f"{name}: no runs (a later sweep builds its runs from an earlier one's results)"
        found = [find_result(RESULTS / name, c) for c in configs]
        missing = [c for c, r in zip(configs, found) if r is None]
        if name in sweeps.IN_PROGRESS:  # stored so far: current, and part of the sweep
            keys = {result_key(c) for c in configs}
            stored = {p.name for p in (RESULTS / name).iterdir()} if (RESULTS / name).is_dir() else set()
            assert stored <= keys, f"{name}: stored runs that the sweep does not define: {stored - keys}"
            found = [r for r in found if r is not None]
            print(f"{name}: {len(found)} of {len(configs)} runs stored (in progress)")
        else:
            assert not missing, f"{name}: {len(missing)} runs not stored for this code version: run make results"
            # one file per distinct run (two controls that fix the same learned bits are one run)
            assert len({r["key"] for r in found}) == len({result_key(c) for c in configs})
        assert all(r["code"]["algorithm_version"] == ALGORITHM_VERSION for r in found)
        assert all(isinstance(r["run"]["machine"], dict) for r in found)  # every run says where


def _subset(name):
    cfg = next(c for c in sweeps.sweep_configs(name, RESULTS) if sweeps.SUBSET[name](c))
    return cfg, find_result(RESULTS / name, cfg)


def _cases():
    cases = []
    for name in sorted(sweeps.SUBSET):
        _, stored = _subset(name)
        mode = reproduce.rerun_mode(stored) if stored else "missing"
        cases.append(pytest.param(name, mode, id=f"{name}-{mode}"))
    return cases


@pytest.mark.parametrize("name, mode", _cases())
def test_a_rerun_of_the_subset_agrees_with_the_stored_numbers(name, mode, tmp_path):
    cfg, stored = _subset(name)
    assert stored is not None, f"{name}: subset run not stored: run make results"
    timing = json.loads((RESULTS / name / stored["key"] / "timing.json").read_text())
    threads = torch.get_num_threads()
    torch.set_num_threads(timing.get("threads", 1))  # float sums depend on the thread count
    try:
        fresh = train(cfg, tmp_path / "run", progress=False)
        assert reproduce.rerun_mode(stored) == mode
    finally:
        torch.set_num_threads(threads)
    seeds = reproduce.siblings(RESULTS / name, stored["parameters"])
    assert len(seeds) >= 3 and stored["key"] in {r["key"] for r in seeds}
    assert reproduce.rerun_failures(fresh, stored, seeds) == []


def _fingerprint_mode():
    stored = json.loads((RESULTS / reproduce.FINGERPRINT_FILE).read_text())
    return reproduce.fingerprint_mode(stored)


@pytest.mark.parametrize("mode", [_fingerprint_mode()])
def test_the_fingerprint_of_the_first_training_steps_is_the_stored_one(mode):
    stored = json.loads((RESULTS / reproduce.FINGERPRINT_FILE).read_text())
    assert stored["algorithm_version"] == ALGORITHM_VERSION, \
        "the fingerprint is of another code version: python -m adabit_lite.reproduce --write-fingerprint"
    assert stored["config"] == reproduce.FINGERPRINT_CONFIG
    fresh = reproduce.fingerprint(stored["steps"])
    if mode == "exact":
        assert fresh == stored["numbers"]
    else:
        assert reproduce.fingerprint_failures(fresh, stored["numbers"]) == []


def test_the_fingerprint_catches_a_changed_rule(monkeypatch):
    """The tolerance is loose enough for another CPU and tight enough for a changed loss or a
    changed learning rate."""
    from adabit_lite import train as train_mod

    stored = json.loads((RESULTS / reproduce.FINGERPRINT_FILE).read_text())["numbers"]
    real = train_mod.bit_loss
    monkeypatch.setattr(train_mod, "bit_loss", lambda stats, target: real(
        stats, dataclasses.replace(target, lam_w=target.lam_w * 1.05)))
    assert reproduce.fingerprint_failures(reproduce.fingerprint(), stored)
    monkeypatch.setattr(train_mod, "bit_loss", real)
    monkeypatch.setitem(reproduce.FINGERPRINT_CONFIG, "lr_step", 0.051)  # default 0.05
    assert reproduce.fingerprint_failures(reproduce.fingerprint(), stored)


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
