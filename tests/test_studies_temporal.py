"""adabit_lite.studies.temporal (chapter 8's computations) and the sweep temporal_budget."""

import math

import pytest
import torch

from adabit_lite import paper, sweeps
from adabit_lite.data import make_dataset
from adabit_lite.layers import QuantConfig
from adabit_lite.models import build_model
from adabit_lite.studies import temporal as tm


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


def test_pairs_identical_counts_equal_pairs():
    x = torch.zeros(6, 2, 3)
    x[2, 0, 0] = 1.0  # pair 1 differs
    assert tm.pairs_identical(x) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="pairs"):
        tm.pairs_identical(x[:5])


def test_blindness_table_one_and_two_turns():
    table = tm.blindness_table(turns=(1, 2), bins=(8, 4, 2, 1), num_samples=20, canvas=16,
                               digit_size=8).set_index("turns")
    assert table.loc[1].tolist() == [0.0, 0.0, 0.0, 1.0]
    assert table.loc[2].tolist() == [0.0, 0.0, 1.0, 1.0]


def test_order_demo_separates_what_keeps_the_order():
    ds = make_dataset("moving-digits", num_samples=20, canvas=16, digit_size=8, turns=2, bins=4)
    x = ds.test.tensors[0].transpose(0, 1).contiguous()  # two whole pairs, time-major
    torch.manual_seed(0)
    model = build_model("event-cnn", num_classes=2, in_channels=2, width=4, frames=4,
                        cfg=QuantConfig(w_bits=4, s_bits=4, T=4))
    with torch.no_grad():
        model.train()(x.transpose(0, 1))
    model.train()
    demo = tm.order_demo(model, x).set_index("quantity")
    assert model.training and not model.time_average_input  # left as it was
    assert demo.loc["input frames x_t", "max |difference|"] == 1.0
    assert demo.loc["input, mean over time", "max |difference|"] == 0.0
    assert demo.loc["stem output y_t (time-preserving)", "entries that differ"] > 0.05
    assert demo.loc["logits, fed the time average", "max |difference|"] == 0.0
    assert demo.loc["logits, fed the frames", "max |difference|"] > 0.0
    # averaged over the steps (what a squeezed layer passes on) far fewer entries differ
    squeezed = demo.loc["stem output, mean over steps (squeezed)", "entries that differ"]
    assert squeezed < 0.2 * demo.loc["stem output y_t (time-preserving)", "entries that differ"]


def _result(acc, W=1.0, S=1.0, T=8, bb=8.0, target="1/1/8", fp=False):
    return {"metrics": {"accuracy": acc, "W": W, "S": S, "T": T, "bit_budget": bb,
                        "s_ace_g": 0.001},
            "parameters": {"target": target, "full_precision": fp}}


def test_budget_table_means_spread_chance_and_welch():
    groups = {8: {"fixed": [_result(80.0), _result(70.0), _result(75.0)],
                  "learned": [_result(100.0, W=1.5, bb=12.0), _result(98.0, W=1.0, bb=8.0),
                              _result(99.0, W=1.0, bb=8.0)],
                  "full precision": [_result(100.0, fp=True), _result(100.0, fp=True)]},
              1: {"fixed": [_result(50.0, S=8.0, T=1, target="1/8/1")] * 2}}
    t = tm.budget_table(groups).set_index(["T", "method"])
    f, l, fp = t.loc[(8, "fixed")], t.loc[(8, "learned")], t.loc[(8, "full precision")]
    assert f["accuracy"] == 75.0 and f["std"] == pytest.approx(5.0) and f["split"] == "1/1/8"
    assert math.isnan(f["p vs fixed"])
    assert l["W"] == pytest.approx(3.5 / 3) and l["bit budget"] == pytest.approx(28 / 3)
    from scipy import stats
    assert l["p vs fixed"] == pytest.approx(
        stats.ttest_ind([100, 98, 99], [80, 70, 75], equal_var=False).pvalue)
    assert fp["split"] == "full precision" and math.isnan(fp["W"]) and math.isnan(fp["S-ACE (M)"])
    assert t.loc[(1, "fixed"), "at chance"] == 2 and t.loc[(8, "fixed"), "at chance"] == 0
    assert t.loc[(8, "fixed"), "S-ACE (M)"] == pytest.approx(1.0)
    empty = tm.budget_table({})
    assert empty.empty and "accuracy" in empty.columns and "p vs fixed" in empty.columns


def test_paper_vs_book_matches_rows_by_T():
    shen, yao = paper.paper_table("shen_table3"), paper.paper_table("yao_spikformer_dvs")
    groups = {8: {"fixed": [_result(80.0)], "learned": [_result(99.0, W=1.07, S=1.15)],
                  "full precision": [_result(100.0, fp=True)]},
              2: {"fixed": [_result(50.0, S=4.0, T=2, target="1/4/2")]}}
    pvb = tm.paper_vs_book(tm.budget_table(groups), shen, yao).set_index("T")
    assert list(pvb.index) == ["origin", 8, 2]
    s = shen.set_index("wst")["cifar10_dvs"]
    assert pvb.loc[8, "paper: fixed split (Shen)"] == f"1/2/8: {s['1/2/8']:.1f}"
    assert pvb.loc[8, "paper: learned (Yao)"] == "not reported"  # Yao's rows: T = 6, 4, 3, 2, 1
    y = yao[yao["method"] == "Ours"].set_index("wst")["cifar10_dvs"]
    assert pvb.loc[2, "paper: learned (Yao)"] == f"1.31/4.03/2.0: {y['1.31/4.03/2.0']:.1f}"
    assert pvb.loc[8, "ours: learned"] == "1.07/1.15/8: 99.0 (1 runs)"
    assert pvb.loc[2, "ours: learned"] == pvb.loc[2, "ours: full precision"] == "not run"
    assert pvb.loc["origin", "ours: full precision"] == "T=8: 100.0 (1 runs)"


# ---------------------------------------------------------------- the sweep
def test_temporal_budget_runs_and_groups():
    runs = sweeps.temporal_budget()
    assert len(runs) == 4 * 3 * 5 + 5 == 65
    assert len({c.validated() for c in runs}) == 65  # no duplicates
    groups = sweeps.temporal_groups()
    assert list(groups) == [8, 4, 2, 1]
    for T, methods in groups.items():
        assert list(methods) == (["fixed", "learned", "full precision"]
                                 + (["time average"] if T == 8 else []))
        split = sweeps.temporal_split(T)
        w, s, t = (int(v) for v in split.split("/"))
        assert w == 1 and w * s * t == sweeps.TEMPORAL_BUDGET and t == T
        for method, cfgs in methods.items():
            assert [c.seed for c in cfgs] == list(range(5))
            for c in cfgs:
                v = c.validated()
                assert f"bins={T}" in v.data_options and "turns=2" in v.data_options
                assert v.target == split and v.arch == "event-cnn"
                assert v.time_average_input == (method == "time average")
                assert v.full_precision == (method in ("full precision", "time average"))
                assert v.learn_w == v.learn_s == (method == "learned")
                if method == "learned":
                    assert v.init == f"4/{max(4, s)}/{T}" and v.renewal == "activation"
                else:
                    assert v.init == split and v.renewal == "none"
    # base fields replace the defaults; tiny variants keep the structure
    tiny = sweeps.temporal_groups([0], bins=(4, 1), data="num_samples=40", width=4, epochs=1)
    assert list(tiny) == [4, 1] and "time average" in tiny[4]
    assert tiny[4]["fixed"][0].width == 4 and tiny[4]["fixed"][0].epochs == 1
    with pytest.raises(ValueError, match="divide"):
        sweeps.temporal_split(3)


def test_temporal_budget_configs_build_and_keep_t_fixed():
    from adabit_lite.train import build

    cfg = sweeps.temporal_groups([0], bins=(2,))[2]["learned"][0].validated()
    model = build(cfg, {"num_classes": 2, "in_channels": 2, "frames": 2})
    assert model.frames == 2
    with pytest.raises(ValueError, match="frames"):
        build(cfg, {"num_classes": 2, "in_channels": 2, "frames": 4})
