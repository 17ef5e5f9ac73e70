"""studies.scale: the paper's ResNet-20 rows as configurations, commands and stored lookups."""

from pathlib import Path

import pytest

from adabit_lite import ALGORITHM_VERSION
from adabit_lite.paper import paper_table
from adabit_lite.results import atomic_write_json, result_key
from adabit_lite.studies import scale as sc

SETTING = dict(epochs=3, batch_size=16, device="cpu")


def test_scale_config_is_the_papers_network_or_uquant():
    cfg = sc.scale_config("cifar10", "2/2/1", "both", **SETTING)
    assert (cfg.arch, cfg.init, cfg.target, cfg.renewal, cfg.learn_w) == \
        ("resnet20", "4/4/2", "2/2/1", "both", True)
    u = sc.scale_config("cifar100", "1/1/1", None, **SETTING)
    assert (u.dataset, u.init, u.target, u.renewal, u.learn_w, u.learn_T) == \
        ("cifar100", "1/1/1", "1/1/1", "none", False, False)


def store_one_run(folder):
    """A stored result for the CIFAR-10 1/1/1 row with activation renewal (71.234 %)."""
    stored = sc.scale_config("cifar10", "1/1/1", "activation", **SETTING).validated()
    atomic_write_json(folder / result_key(stored) / "result.json", {
        "key": result_key(stored), "parameters": stored.parameters(),
        "code": {"algorithm_version": ALGORITHM_VERSION},
        "metrics": {"accuracy": 71.234, "wst": "1.10/1.00/1.00"}})


def test_rows_cover_every_paper_cell_and_find_only_exact_keys(tmp_path):
    store_one_run(tmp_path)
    runs = sc.scale_rows(tmp_path, **SETTING, command_dir="out")
    ablation, cifar = paper_table("yao_ablation"), paper_table("yao_cifar")
    n_c100 = int(cifar["method"].str.startswith("Ours").sum())
    assert len(runs) == 5 * len(ablation) + n_c100
    hit = runs[runs["ours top-1"] != sc.NOT_RUN]
    assert hit[["target", "method", "ours top-1", "our W/S/T"]].values.tolist() == \
        [["1/1/1", "+ activation renewal", "71.23", "1.10/1.00/1.00"]]
    first = ablation.iloc[0]
    row = runs[(runs["data"] == "CIFAR-10") & (runs["target"] == first["target"])
               & (runs["method"] == "U-quant")].iloc[0]
    assert row["paper top-1"] == first["uquant"] and row["paper W/S/T"] == first["target"]
    assert all(c.endswith("--out out/<key>") or "out/<key>" in c for c in runs["command"])
    rec = sc.scale_record(runs)
    assert (rec["n_runs"], rec["n_done"]) == (len(runs), 1)
    done = [r for r in rec["runs"] if r["ours top-1"] is not None]
    assert done == [{"data": "CIFAR-10", "target": "1/1/1", "method": "+ activation renewal",
                     "paper top-1": pytest.approx(float(hit.iloc[0]["paper top-1"])),
                     "ours top-1": 71.23}]


def test_cifar_status_names_no_home_folder(tmp_path, monkeypatch):
    from pathlib import Path
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(Path, "home", classmethod(lambda cls: tmp_path))

    def missing(name):
        raise FileNotFoundError(f"{tmp_path}/.adabit/data does not exist")

    monkeypatch.setattr(sc.data, "find_cifar_folder", missing)
    assert sc.cifar_status("cifar10") == "cifar10: not on this machine. ~/.adabit/data does not exist"
    monkeypatch.setattr(sc.data, "find_cifar_folder", lambda name: tmp_path / "c10")
    assert sc.cifar_status("cifar10") == "cifar10: found in ~/c10"


def test_wst_text_one_format_for_the_papers_learned_rows():
    assert sc.wst_text("1/2/1") == "1/2/1"  # a fixed split (U-quant's target)
    assert sc.wst_text("1.60/1.91/1.0") == "1.60/1.91/1"
    assert sc.wst_text("1.57/2.12", 1) == "1.57/2.12/1"  # printed as W/S only: T from the target
    assert sc.wst_text("2.13/2/2.08") == "2.13/2.00/2.08"
    assert sc.wst_text("4.02/3.93/1.92") == "4.02/3.93/1.92"
    assert sc.wst_text("1.10/1.00/1.00") == "1.10/1.00/1"
    assert sc.wst_text("") == "" and sc.wst_text("full precision") == "full precision"


def test_rows_write_every_paper_wst_in_one_format():
    runs = sc.scale_rows("/nonexistent", **SETTING, command_dir="out")
    row = runs[(runs["target"] == "1/2/1") & (runs["method"] == "+ weight renewal")].iloc[0]
    assert row["paper W/S/T"] == "1.57/2.12/1"  # the file: 1.57/2.12
    row = runs[(runs["target"] == "1/1/1") & (runs["method"] == "LBW")].iloc[0]
    assert row["paper W/S/T"] == "1.60/1.91/1"  # the file: 1.60/1.91/1.0
    for wst in runs["paper W/S/T"]:
        w, s, t = wst.split("/")  # always three parts; W and S both whole (a fixed split) or both 2 decimals
        assert (w.isdigit() and s.isdigit()) or (len(w.split(".")[1]) == len(s.split(".")[1]) == 2), wst


def test_scale_table_leaves_out_our_columns_when_nothing_is_stored(tmp_path):
    runs = sc.scale_rows(tmp_path, **SETTING, command_dir="out")
    shown = sc.scale_table(runs)
    assert list(shown.columns) == ["data", "target", "method", "paper W/S/T", "paper top-1"]
    assert sc.ours_note(runs, "results/scale") == (
        "ours: not run here (no row has a stored result under results/scale; the commands below train them)")
    store_one_run(tmp_path)
    runs = sc.scale_rows(tmp_path, **SETTING, command_dir="out")
    shown = sc.scale_table(runs)
    assert "command" not in shown and "ours top-1" in shown
    hit = shown[shown["ours top-1"] != sc.NOT_RUN]
    assert hit[["ours top-1", "our W/S/T"]].values.tolist() == [["71.23", "1.10/1.00/1"]]
    assert shown["our W/S/T"].isna().sum() == len(runs) - 1  # shown as "-"
    assert sc.ours_note(runs, "results/scale") == (
        f"ours: 1 of {len(runs)} rows have a stored result under results/scale, the others are not run here")


def test_a_sic_cell_is_marked_and_explained_and_the_commands_defaults_are_named():
    runs = sc.scale_rows(Path("/nonexistent"), 200, 128, "cuda", "results/scale")
    c100 = runs[runs["data"] == "CIFAR-100"].set_index("target")["paper W/S/T"]
    assert c100["1/1/1"] == "2.06/1.58/3.25 (sic)" and "(sic)" not in c100["2/2/2"]
    assert sc.sic_notes() == ["(sic) Ours-111: CIFAR-100 W/S/T printed 2.06/1.58/3.25: T = 3.25 equals "
                              "the printed BB (2.06*1.58 = 3.25)"]
    line = sc.defaults_line()
    assert "--target 1/1/1, --init 4/4/2, --renewal activation, --seed 0," in line
    assert "--lam-T 0.01" in line and "--momentum 0.9" in line
    assert all("--seed" not in cmd for cmd in runs["command"])  # left out, so the line must say it
