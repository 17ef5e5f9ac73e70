"""The scale chapter (nb/09_scale.ipynb) run by papermill: commands and stored-result lookup."""

import json
from pathlib import Path

import papermill
from nbrun import assert_stops_on_bad_parameter

from adabit_lite import ALGORITHM_VERSION
from adabit_lite.paper import paper_table
from adabit_lite.results import atomic_write_json, result_key
from adabit_lite.train import TrainConfig, _parser, config_from_args

NB = Path(__file__).resolve().parent.parent / "nb" / "09_scale.ipynb"


def _fake_result(results_dir: Path, cfg: TrainConfig, accuracy: float) -> None:
    cfg = cfg.validated()
    atomic_write_json(results_dir / result_key(cfg) / "result.json", {
        "key": result_key(cfg), "parameters": cfg.parameters(),
        "code": {"algorithm_version": ALGORITHM_VERSION},
        "metrics": {"accuracy": accuracy, "wst": "1.50/1.40/1.00"}})


def test_commands_and_stored_results(tmp_path):
    results_dir = tmp_path / "scale"
    stored = TrainConfig(arch="resnet20", dataset="cifar10", init="4/4/2", target="2/2/1",
                         renewal="activation", epochs=3, batch_size=16, device="cpu")
    _fake_result(results_dir, stored, 12.34)
    _fake_result(results_dir, TrainConfig(**{**stored.__dict__, "seed": 9}), 55.0)  # not a match
    record = tmp_path / "rec.json"
    out = tmp_path / "out.ipynb"
    papermill.execute_notebook(str(NB), str(out), cwd=str(NB.parent.parent), progress_bar=False,
                               parameters=dict(results_dir=str(results_dir), epochs=3,
                                               batch_size=16, device="cpu", record_path=str(record)))
    rec = json.loads(record.read_text())
    targets = paper_table("yao_ablation")["target"].tolist()
    n_c100 = paper_table("yao_cifar")["method"].str.startswith("Ours").sum()
    assert rec["n_runs"] == 5 * len(targets) + n_c100
    assert rec["n_done"] == 1  # exactly the matching stored run, not the other seed
    assert "12.34" in out.read_text()
    configs = [config_from_args(_parser().parse_args(c.split()[3:])) for c in rec["commands"]]
    assert all(c.arch == "resnet20" and c.epochs == 3 and c.device == "cpu" for c in configs)
    uquant = [c for c in configs if not c.learn_w]
    assert sorted(c.target for c in uquant) == sorted(targets)
    assert all(c.init == c.target and c.renewal == "none" for c in uquant)
    assert {c.renewal for c in configs if c.learn_w} == {"none", "weight", "both", "activation"}


def test_bad_parameter_stops_with_one_line(tmp_path):
    assert_stops_on_bad_parameter("09_scale", tmp_path, "epochs", 0, "an integer >= 1")
