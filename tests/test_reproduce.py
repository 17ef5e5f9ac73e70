"""Re-running stored results: settings, the checks another machine can pass, the reader's command."""

import copy
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from adabit_lite import reproduce
from adabit_lite.results import FOREIGN_ENV, machine_record
from adabit_lite.train import TrainConfig, load_or_train

ROOT = Path(__file__).resolve().parent.parent
TINY = dict(dataset="digits", data_options="size=8", width=8, epochs=1, train_limit=300,
            device="cpu")

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """A tiny stored sweep: two settings (U-quant and LBW at 1/1/1), seeds 0-2 each."""
    results = tmp_path_factory.mktemp("results")
    for seed in range(3):
        lbw = TrainConfig(seed=seed, **TINY)
        for cfg in (lbw, lbw.uquant()):
            load_or_train(cfg, results / "tiny", progress=False, verbose=False)
    return results


def _fake(acc, W=1.0, S=1.0, T=1.0, seed=0, epochs=10):
    return {"metrics": {"accuracy": acc, "W": W, "S": S, "T": T},
            "history": [{}] * epochs, "parameters": {"seed": seed}}


def test_settings_group_the_seeds_of_equal_parameters(sweep):
    groups = reproduce.settings(sweep / "tiny")
    assert [len(g) for g in groups] == [3, 3]
    assert [r["parameters"]["seed"] for r in groups[0]] == [0, 1, 2]
    labels = {reproduce.label(g, groups) for g in groups}
    assert len(labels) == 2 and all("learn_w=" in lab for lab in labels)
    one = groups[1][1]
    assert [r["key"] for r in reproduce.siblings(sweep / "tiny", one["parameters"])] == \
        [r["key"] for r in groups[1]]


def test_the_statistical_check_takes_the_stored_spread():
    stored = [_fake(a, seed=i) for i, a in enumerate([90.0, 91.0, 92.0])]  # std 1: +-3 points
    assert reproduce.statistical_failures(_fake(94.9), stored) == []
    assert reproduce.statistical_failures(_fake(87.1), stored) == []
    assert "accuracy" in reproduce.statistical_failures(_fake(95.1), stored)[0]
    assert "W 1.400" in reproduce.statistical_failures(_fake(91.0, W=1.4), stored)[0]
    assert "epochs" in reproduce.statistical_failures(_fake(91.0, epochs=9), stored)[0]
    same = [_fake(90.0, seed=i) for i in range(3)]  # no spread: at least one point either side
    assert reproduce.bounds(same)["accuracy"] == (89.0, 91.0)


def test_the_check_is_exact_only_on_the_machine_that_stored_the_run(monkeypatch):
    here = machine_record("cpu", 1, 1)
    stored = {"run": {"machine": here}, "metrics": {"a": 1}, "history": [1]}
    assert reproduce.rerun_mode(stored) == "exact"
    assert reproduce.rerun_failures({"metrics": {"a": 2}, "history": [1]}, stored, []) == \
        ["metrics differ"]
    # (the re-run takes the stored thread count, so threads never make it foreign)
    for change in ({"cpu": "AMD EPYC 7B13"}, {"cpu_capability": "AVX2"}, {"device": "NVIDIA H100"},
                   {"torch": "2.12.0"}, {"world_size": 2}):
        assert reproduce.rerun_mode({"run": {"machine": {**here, **change}}}) == "statistical"
    assert reproduce.rerun_mode({"run": {"machine": "not recorded"}}) == "statistical"
    monkeypatch.setenv(FOREIGN_ENV, "1")
    assert reproduce.rerun_mode(stored) == "statistical"


def test_fingerprint_failures_use_a_relative_tolerance():
    stored = {"a": 1.0, "b": 2.0, "bits": 4.0}
    assert reproduce.fingerprint_failures({"a": 1.00005, "b": 2.0, "bits": 4.0}, stored) == []
    assert reproduce.fingerprint_failures({"a": 1.0002, "b": 2.0, "bits": 4.0}, stored)
    assert reproduce.fingerprint_failures({"a": 1.0, "b": 2.0, "bits": 3.0}, stored)
    assert reproduce.fingerprint_failures({"a": 1.0}, stored) == ["the fingerprints name other numbers"]


def test_rerun_configs_take_the_stored_seeds_then_new_ones(sweep):
    group = reproduce.settings(sweep / "tiny")[0]
    assert [c.seed for c in reproduce.rerun_configs(group, 2)] == [0, 1]
    assert [c.seed for c in reproduce.rerun_configs(group, 5)] == [0, 1, 2, 3, 4]
    control = copy.deepcopy(group)
    for r in control:
        r["parameters"]["layer_bits"] = "fc=2/2/1"
    with pytest.raises(ValueError, match="at most 3 seeds"):
        reproduce.rerun_configs(control, 4)


def test_the_command_retrains_a_setting_and_gives_a_verdict(sweep, tmp_path, capsys):
    code = reproduce.main(["tiny", "--results", str(sweep), "--setting", "1", "--seeds", "4",
                           "--out", str(tmp_path), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "3 stored seeds; training 4 here" in out and "seed 3: accuracy" in out
    assert "stored" in out and "here" in out and "0,1,2,3" in out
    assert out.strip().splitlines()[-1].startswith(("AGREES", "DIFFERS"))
    # the stored seeds re-trained on this machine are the stored runs, bit for bit
    fresh = {r["key"]: r for r in map(json.loads, map(Path.read_text,
                                                          (tmp_path / "tiny").glob("*/result.json")))}
    for r in reproduce.settings(sweep / "tiny")[1]:
        assert fresh[r["key"]]["history"] == r["history"]
    code = reproduce.main(["tiny", "--results", str(sweep), "--list"])
    listing = capsys.readouterr().out.splitlines()
    assert code == 0 and len(listing) == 2 and listing[0].lstrip().startswith("0  3 seeds")


@pytest.mark.parametrize("args, words", [
    (["nope"], "no stored results"),
    (["tiny", "--setting", "7"], "--setting must be 0..1"),
    (["tiny", "--key", "0123456789abcdef"], "no stored run with key"),
    (["tiny", "--setting", "0", "--seeds", "0"], "--seeds and --jobs must be integers >= 1"),
    ([], "name a sweep"),
    (["tiny", "--seeds", "x"], "invalid int value"),
])
def test_bad_requests_are_one_line_and_exit_2(args, words, sweep, tmp_path):
    done = subprocess.run([sys.executable, "-m", "adabit_lite.reproduce", *args, "--results",
                           str(sweep), "--out", str(tmp_path / "out")], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and words in done.stderr, done.stderr
    assert not (tmp_path / "out").exists()


def test_welch_is_quiet_about_nearly_equal_groups():
    """scipy warns (on stderr, naming its own file) when the values are nearly equal; a notebook
    that shows the p-value would then differ from one machine's folder to the next."""
    import warnings

    a, b = [87.5, 87.5, 87.5], [87.5, 87.5, 87.5 + 1e-11]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = reproduce.welch(a, b)
    assert 0.0 < p < 1.0
    assert math.isnan(reproduce.welch([1.0, 1.0], [1.0, 1.0]))
    assert math.isnan(reproduce.welch([1.0], [2.0, 3.0]))


def test_p_text_writes_a_p_value_the_one_way_the_book_does():
    assert reproduce.p_text(0.0149) == "p = 0.015"
    assert reproduce.p_text(0.001) == "p = 0.001"  # 0.001 itself is written out
    assert reproduce.p_text(0.000999) == "p < 0.001"
    assert reproduce.p_text(0.0) == "p < 0.001"
    assert reproduce.p_text(1.0) == "p = 1.000"
    assert reproduce.p_text(math.nan) == "p = n/a"


def _run(seed, acc):
    return {"parameters": {"seed": seed}, "history": [{}],
            "metrics": {"accuracy": acc, "W": 1.0, "S": 1.0, "T": 1.0}}


def test_the_verdict_writes_the_welch_p_value_with_p_text():
    stored = [_run(s, a) for s, a in enumerate((90.0, 91.0, 92.0))]
    # the same mean on both sides: t = 0, p = 1
    _, verdict = reproduce.comparison(stored, [_run(3, 90.5), _run(4, 91.5)])
    assert verdict == ("AGREES: every re-run inside the stored seeds' bounds, mean accuracy "
                       "91.00 vs 91.00 (Welch p = 1.000)")
    _, verdict = reproduce.comparison(stored, [_run(3, 91.0)])
    assert verdict.endswith("(Welch p = n/a (fewer than 2 runs on a side))")
    tight = [_run(s, a) for s, a in enumerate((90.0, 90.1, 90.2))]  # bounds 89.0 to 91.2
    _, verdict = reproduce.comparison(tight, [_run(3, 91.1), _run(4, 91.15), _run(5, 91.2)])
    p = reproduce.welch([90.0, 90.1, 90.2], [91.1, 91.15, 91.2])
    assert verdict == f"DIFFERS: mean accuracy 91.15 vs 90.10 (Welch {reproduce.p_text(p)}, below 0.05)"
