"""The sweep definitions of chapters 5-7 and the summaries the chapters compute from their runs."""

import json
import math
from pathlib import Path

import pytest

from adabit_lite import ALGORITHM_VERSION, sweeps
from adabit_lite.results import find_result, result_key
from adabit_lite.studies import allocation as al
from adabit_lite.train import TrainConfig


def test_allocation_has_three_methods_per_seed_and_eight_seeds_at_the_minimum():
    groups = sweeps.allocation_groups(results=Path("/nonexistent"))
    assert list(groups) == list(sweeps.ALLOCATION_TARGETS)
    for target, methods in groups.items():
        n = 8 if target == "1/1/1" else 5
        uquant, lbw, renew = methods["U-quant"], methods["LBW"], methods["LBW + renewal"]
        assert len(uquant) == len(lbw) == len(renew) == n
        assert all(not c.learn_w and not c.learn_s and c.init == target == c.target for c in uquant)
        assert all(c.learn_w and c.renewal == "none" and c.target == target for c in lbw)
        assert all(c == TrainConfig(target=target, seed=c.seed) for c in renew)  # the defaults
        assert methods["control"] == []  # nothing stored under that folder
        assert [c.seed for c in methods["full precision"]] == list(range(8))
        assert all(c.full_precision for c in methods["full precision"])
    assert len(sweeps.allocation()) == 3 * (8 + 3 * 5) + 8


def test_each_ablation_changes_only_its_own_options():
    groups = sweeps.ablation_groups()
    default = TrainConfig(target="1/1/1", seed=0).parameters()
    for name, cfgs in groups.items():
        assert [c.seed for c in cfgs] == list(sweeps.DEFAULT_SEEDS)
        changed = {k for k, v in cfgs[0].parameters().items() if default.get(k) != v}
        if name in sweeps.UQUANT_ABLATIONS:  # U-quant: nothing learned, the init is the target
            assert not (cfgs[0].learn_w or cfgs[0].learn_s or cfgs[0].learn_T), name
            assert cfgs[0].init == cfgs[0].target and cfgs[0].renewal == "none"
            changed -= {"init", "learn_w", "learn_s", "learn_T", "renewal"}
        assert changed == set(sweeps.ABLATIONS[name]), name
    old = groups["old neuron"][0]
    assert (old.tau, old.firing, old.amplitude) == (2.0, "floor", True)
    assert groups["old neuron, no renewal"][0].renewal == "none"
    assert groups["renewal both, range-ratio weights"][0].weight_renewal == "range-ratio"


def test_fixed_budget_splits_have_the_budget_and_a_wrong_one_is_refused():
    for budget, splits in sweeps.fixed_budget_groups().items():
        for split, cfgs in splits.items():
            w, s, t = (int(v) for v in split.split("/"))
            assert w * s * t == budget
            assert all(c.init == c.target == split and not c.learn_w for c in cfgs)
    with pytest.raises(ValueError, match="Bit Budget 8, not 4"):
        sweeps.fixed_budget_groups(budgets={4: ("2/2/2",)})


def _fake_result(cfg, folder, **metrics):
    key = result_key(cfg)
    (folder / key).mkdir(parents=True)
    data = {"key": key, "parameters": cfg.key_parameters(), "metrics": metrics,
            "code": {"algorithm_version": ALGORITHM_VERSION}}
    (folder / key / "result.json").write_text(json.dumps(data))
    return data


def test_a_run_stored_by_another_sweep_is_copied_not_retrained(tmp_path):
    cfg = TrainConfig(seed=3).uquant()
    _fake_result(cfg, tmp_path / "dataset-choice", accuracy=90.0)
    assert find_result(tmp_path / "allocation", cfg) is None
    assert sweeps._copy_from_another_sweep(cfg, "allocation", tmp_path)
    assert find_result(tmp_path / "allocation", cfg)["metrics"] == {"accuracy": 90.0}
    other = TrainConfig(seed=4).uquant()  # stored nowhere
    assert not sweeps._copy_from_another_sweep(other, "allocation", tmp_path)


def _run(target, history, **metrics):
    return {"parameters": {"target": target, "full_precision": metrics.pop("fp", False)},
            "history": [dict(zip("WST", h)) for h in history], "metrics": metrics}


def test_settle_epoch_is_the_first_epoch_from_which_the_means_stay_on_target():
    h = [(4, 4, 2), (1.2, 1.1, 1), (2.0, 1, 1), (1.2, 1.2, 1), (1.1, 1.0, 1)]
    assert al.settle_epoch(_run("1/1/1", h)) == 4  # epoch 2 was inside, epoch 3 left again
    assert al.settle_epoch(_run("1/1/1", h[:3])) is None  # ends outside
    assert al.settle_epoch(_run("4/4/2", h[:1])) == 1
    assert al.settle_epoch(_run("4/4/2", h), target="1/1/1") == 4


def test_comparison_table_adds_the_cost_and_blanks_it_for_full_precision():
    def res(acc, bb, fp=False):
        m = dict(accuracy=acc, W=1.0, S=1.0, T=1.0, bit_budget=bb, s_ace_g=bb / 1000,
                 size_mbit=0.002, renewals={}, accuracy_drops=[])
        run = _run("1/1/1", [(1, 1, 1)], fp=fp)
        run["history"][0]["test_accuracy"] = acc
        return {**run, "metrics": m}
    runs = {"U-quant": [res(90, 1), res(92, 1)], "LBW": [res(94, 2), res(95, 3)],
            "full precision": [res(97, 0, fp=True), res(98, 0, fp=True)]}
    t = al.comparison_table(runs, target="1/1/1").set_index("method")
    assert t.loc["LBW", "bit budget"] == 2.5 and t.loc["LBW", "S-ACE (M)"] == pytest.approx(2.5)
    assert t.loc["LBW", "size (kbit)"] == pytest.approx(2.0)
    assert t.loc["LBW", "accuracy"] == 94.5 and t.loc["U-quant", "within target"] == 1.0
    assert math.isnan(t.loc["full precision", "bit budget"])
    assert math.isnan(t.loc["full precision", "W"])
    assert t.loc["LBW", "p vs U-quant"] == pytest.approx(al.welch([94, 95], [90, 92]))
