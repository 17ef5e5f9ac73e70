"""adabit_lite.studies.temporal (chapter 8's computations) and the sweep temporal_budget."""

import dataclasses
import math

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch

from adabit_lite import paper, studies, sweeps
from adabit_lite.data import make_dataset, make_moving_digits
from adabit_lite.layers import QuantConfig
from adabit_lite.models import build_model
from adabit_lite.studies import temporal as tm
from figures import legend_under


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


def test_data_options_keeps_the_order_and_replaces():
    stream = {"num_samples": 1000, "turns": 2}
    assert tm.data_options(stream) == "num_samples=1000,turns=2"
    assert tm.data_options(stream, num_samples=40, T=8, bins=4) == "num_samples=40,turns=2,T=8,bins=4"
    assert tm.data_options({}, flip=True) == "flip=true"  # TrainConfig's spelling of booleans
    assert stream == {"num_samples": 1000, "turns": 2}  # not changed


def test_blindness_lines_print_whole_percents():
    table = pd.DataFrame([{"turns": 1, "T = 8": 0.0, "T = 1": 1.0},
                          {"turns": 2, "T = 8": 0.25, "T = 1": 1.0}])
    assert tm.blindness_lines(table) == ["turns 1: identical pairs T = 8 0%, T = 1 100%",
                                         "turns 2: identical pairs T = 8 25%, T = 1 100%"]


def test_plot_event_bins_one_panel_per_bin_and_member():
    matplotlib.use("Agg")
    pair = make_moving_digits(20, T=8, turns=2, canvas=16, digit_size=8).events[:2]
    fig = tm.plot_event_bins(pair, [8, 2])
    rows = np.array(fig.axes).reshape(4, 8)  # two rows (cw, ccw) per T, 8 panels each
    images = [[ax.get_images() for ax in row] for row in rows]
    assert [sum(bool(i) for i in row) for row in images] == [8, 8, 2, 2]
    assert [row[0].get_ylabel() for row in rows] == ["T=8 cw", "T=8 ccw", "T=2 cw", "T=2 ccw"]
    # two turns in two bins: each bin is one whole turn, so the members look the same
    for k in range(2):
        assert np.array_equal(images[2][k][0].get_array(), images[3][k][0].get_array())
    assert not np.array_equal(images[0][0][0].get_array(), images[1][0][0].get_array())
    # scaled to the largest bin count of that T: red and blue channels reach 1, green stays 0
    top = max(float(np.asarray(i[0].get_array())[..., [0, 2]].max()) for i in images[2][:2])
    assert top == 1.0 and float(np.asarray(images[2][0][0].get_array())[..., 1].max()) == 0.0
    import matplotlib.pyplot as plt
    plt.close(fig)


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


STREAM = dict(num_samples=20, turns=2, canvas=16, digit_size=8)


def test_untrained_order_demo_feeds_whole_pairs():
    demo = tm.untrained_order_demo(STREAM, frames=8, bins=4, seed=0, width=4, pairs=2)
    d = demo.set_index("quantity")
    assert len(demo) == 6
    # the members of each pair: same time average, frames that differ by whole events
    assert d.loc["input frames x_t", "max |difference|"] >= 1.0
    assert d.loc["input, mean over time", "max |difference|"] == 0.0
    assert d.loc["logits, fed the time average", "max |difference|"] == 0.0
    assert d.loc["logits, fed the frames", "max |difference|"] > 0.0
    # the seed draws the weights: the same seed gives the same table, another seed another one
    again = tm.untrained_order_demo(STREAM, frames=8, bins=4, seed=0, width=4, pairs=2)
    other = tm.untrained_order_demo(STREAM, frames=8, bins=4, seed=1, width=4, pairs=2)
    pd.testing.assert_frame_equal(demo, again)
    assert (other["scale (mean |value|)"] != demo["scale (mean |value|)"]).iloc[2:].any()
    # bins set the steps: at one bin the frames of a pair are their (equal) sums
    one = tm.untrained_order_demo(STREAM, frames=8, bins=2, seed=0, width=4, pairs=2)
    assert one.set_index("quantity").loc["input frames x_t", "max |difference|"] == 0.0


def _demo(step_share=0.38, squeezed_share=0.015, squeezed_max=6e-8, scale=0.04, avg_logits=0.0):
    row = lambda name, mx, share, sc: {"quantity": name, "max |difference|": mx,  # noqa: E731
                                       "entries that differ": share, "scale (mean |value|)": sc}
    return pd.DataFrame([
        row("stem output y_t (time-preserving)", 1.2, step_share, 0.07),
        row("stem output, mean over steps (squeezed)", squeezed_max, squeezed_share, scale),
        row("logits, fed the time average", avg_logits, 0.0, 0.02)])


def test_order_sentence_reads_the_table():
    text = tm.order_sentence(_demo())
    assert "a pair in 38% of its entries" in text
    assert "it differs in 1.5% of the entries" in text
    assert "(largest difference 6e-08, against a mean magnitude of 0.04)" in text
    assert "logits that differ by 0.0, i.e. identical outputs." in text
    assert "differ by 0.3," in tm.order_sentence(_demo(avg_logits=0.26))


def test_live_configs_differ_only_in_the_time_average():
    cfgs = tm.live_configs(STREAM, 40, 2, frames=8, bins=4, seed=3, width=4, epochs=5)
    assert list(cfgs) == ["fed the frames", "fed the time average"]
    frames, averaged = cfgs["fed the frames"], cfgs["fed the time average"]
    assert (frames.time_average_input, averaged.time_average_input) == (False, True)
    assert dataclasses.replace(averaged, time_average_input=False) == frames
    v = frames.validated()
    assert v.full_precision and v.arch == "event-cnn" and v.dataset == "moving-digits"
    assert (v.epochs, v.width, v.seed, v.target) == (2, 4, 3, "1/1/4")
    assert dict(kv.split("=") for kv in v.data_options.split(",")) == {
        "num_samples": "40", "turns": "2", "canvas": "16", "digit_size": "8", "T": "8", "bins": "4"}


def test_live_control_time_average_is_at_chance():
    live = tm.live_control(STREAM, 20, 1, frames=8, bins=4, seed=0, width=4, batch_size=8,
                           epochs=5)  # the epochs of base are replaced by the live ones
    assert list(live) == ["fed the frames", "fed the time average"]
    assert live["fed the time average"] == {"test accuracy": 50.0, "per epoch": [50.0]}
    frames = live["fed the frames"]
    assert len(frames["per epoch"]) == 1 and frames["per epoch"][0] == round(frames["test accuracy"], 1)


def test_live_sentence_says_epoch_or_epochs():
    live = {"fed the frames": {"test accuracy": 88.75}, "fed the time average": {"test accuracy": 50.0}}
    assert tm.live_sentence(live, 1, 40) == (
        "Fed the frames, the network reached 88.8 % after 1 epoch on 40 samples; fed their time "
        "average, 50.0 % in every epoch.")
    assert "after 3 epochs on 400 samples" in tm.live_sentence(live, 3, 400)


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


def test_load_groups_counts_wanted_and_found(tmp_path, monkeypatch):
    groups, wanted, found = tm.load_groups(tmp_path, [0, 1], [4, 1], "num_samples=40", width=4)
    assert (wanted, found) == (2 * (2 * 3) + 2, 0)  # 3 methods per T, the control at T = 4
    assert list(groups) == [4, 1]
    assert groups[4] == {"fixed": [], "learned": [], "full precision": [], "time average": []}
    calls = []

    def seed_zero_only(folder, cfg, train_missing):
        calls.append((folder, train_missing))
        return {"seed": cfg.seed, "width": cfg.width} if cfg.seed == 0 else None

    monkeypatch.setattr(studies, "stored_result", seed_zero_only)
    groups, wanted, found = tm.load_groups(tmp_path, [0, 1], [4, 1], "num_samples=40", True, width=4)
    assert (wanted, found) == (14, 7)
    assert groups[1]["learned"] == [{"seed": 0, "width": 4}]
    assert set(calls) == {(tmp_path / "temporal-budget", True)} and len(calls) == 14


def test_table_lines_skip_bits_of_full_precision():
    groups = {8: {"fixed": [_result(80.0), _result(70.0)],
                  "full precision": [_result(100.0, fp=True), _result(100.0, fp=True)]}}
    header, fixed, full = tm.table_lines(tm.budget_table(groups))
    assert header.startswith("T, method (runs): split, mean W/S")
    assert fixed == "T=8 fixed (2): 1/1/8, W/S 1.00/1.00, BB 8.00, 75.00 +- 7.07, at chance 0"
    # Welch with one df (one group without spread): t = 25 / 5, p = 1 - 2 atan(5) / pi = 0.126
    assert full == "T=8 full precision (2): full precision, 100.00 +- 0.00, at chance 0, p = 0.126"


def _comparison_groups():
    return {8: {"fixed": [_result(80.0), _result(70.0)],
                "learned": [_result(99.0, bb=9.0), _result(97.0, bb=10.0)],
                "full precision": [_result(100.0, fp=True)] * 2},
            4: {"fixed": [_result(90.0, S=2.0, T=4, target="1/2/4")]},  # no learned runs: left out
            2: {"fixed": [_result(50.0, S=4.0, T=2, target="1/4/2")] * 2,
                "learned": [_result(50.0, S=4.0, T=2, target="1/4/2")] * 2}}


def test_comparison_table_pairs_learned_with_fixed():
    c = tm.comparison_table(tm.budget_table(_comparison_groups()))
    assert c["T"].tolist() == [8, 2]
    eight, two = c.iloc[0], c.iloc[1]
    assert (eight["fixed"], eight["learned"], eight["learned - fixed"]) == (75.0, 98.0, 23.0)
    assert eight["learned BB"] == 9.5 and eight["full precision"] == 100.0
    # Welch by hand: variances 50 and 2 over 2 runs each, t = 23 / sqrt(26), df = 26^2 / (25^2 + 1)
    from scipy import stats
    assert eight["split"] == "1/1/8"
    assert eight["p"] == pytest.approx(2 * stats.t.sf(23 / math.sqrt(26), 676 / 626))
    assert math.isnan(two["full precision"]) and math.isnan(two["p"])  # no spread at T = 2
    assert tm.comparison_table(tm.budget_table({})).empty


def test_comparison_lines_and_the_control():
    c = tm.comparison_table(tm.budget_table(_comparison_groups()))
    control = [_result(50.0, fp=True), _result(62.5, fp=True)]
    lines = tm.comparison_lines(c, control, 8)
    assert lines[1] == ("T=2 (1/4/2): fixed 50.00, learned 50.00 (BB 8.00), difference +0.00, "
                        "Welch p = n/a, full precision nan")
    assert lines[0].startswith("T=8 (1/1/8): fixed 75.00, learned 98.00 (BB 9.50), difference +23.00")
    assert lines[-1] == "time-average control at T=8: 1 of 2 runs at exactly 50 %"


def _comparison(rows):
    cols = ["T", "split", "fixed", "learned", "p", "learned BB", "full precision"]
    c = pd.DataFrame([dict(zip(cols, r)) for r in rows], columns=cols)
    return c.assign(**{"learned - fixed": c["learned"] - c["fixed"]})


def test_verdict_sorts_blind_and_seen_T():
    c = _comparison([(8, "1/1/8", 90.0, 99.0, 0.0004, 9.5, 100.0),
                     (4, "1/2/4", 95.0, 94.0, 0.5, 8.5, 100.0),
                     (2, "1/4/2", 50.0, 50.0, math.nan, 8.6, 55.0)])  # 55: still near chance
    control = [_result(50.0, fp=True), _result(51.0, fp=True)]
    text = tm.verdict(c, control, epochs=3)
    assert text.startswith("At T = 2 every method is at or near chance (full precision 55.0 %)")
    assert ("Where the bins keep the order: T = 8: fixed 1/1/8 90.0 %, learned 99.0 % (Bit Budget "
            "9.5, Welch p < 0.001); T = 4: fixed 1/2/4 95.0 %, learned 94.0 % (Bit Budget 8.5, Welch "
            "p = 0.500).") in text
    assert "The learned bits beat the fixed split at T = 8 (p < 0.05)." in text
    assert "fixed split beats" not in text and "No difference" not in text
    assert "1/2/4 reaches 95.0 %, 1/1/8 90.0 %, with 1-bit spikes and weights in 3 epochs" in text
    assert text.endswith("The time-average control is at exactly 50 % in 1 of 2 runs.")
    assert "weights in 1 epoch; whether" in tm.verdict(c, control, epochs=1)
    # learned worse and significant; the most time steps best; full precision 55.1 is not blind
    c = _comparison([(8, "1/1/8", 99.0, 90.0, 0.001, 9.5, 100.0),
                     (2, "1/4/2", 60.0, 60.0, math.nan, 8.6, 55.1)])
    text = tm.verdict(c, [], epochs=8)
    assert "The fixed split beats the learned bits at T = 8 (p < 0.05)." in text
    assert "or near chance" not in text and "Among the fixed splits" not in text
    assert "control" not in text
    assert "No difference between learned and fixed bits is significant at p < 0.001." in tm.verdict(
        c, [], epochs=8, alpha=0.001)
    assert tm.verdict(_comparison([]), [], epochs=8).startswith("No stored runs yet")


def test_paper_claims_against_the_papers_rows():
    shen, yao = paper.paper_table("shen_table3"), paper.paper_table("yao_spikformer_dvs")
    s = shen.set_index("wst")["cifar10_dvs"]
    y = yao[yao["method"] == "Ours"].set_index("wst")["cifar10_dvs"]
    c = _comparison([(8, "1/1/8", 93.0, 99.9, 0.1, 9.9, 100.0),
                     (4, "1/2/4", 80.0, 99.0, 0.1, 9.0, 100.0),
                     (1, "1/8/1", 50.0, 50.0, math.nan, 8.6, 50.0)])
    text = tm.paper_claims(shen, yao, c)
    paragraphs = text.split("\n\n")
    assert len(paragraphs) == 4
    # Shen's fixed splits: the most time steps (1/1/16) against the fewest (1/16/1)
    assert (f"falls from {s['1/1/16']:.1f} % at 1/1/16 to {s['1/16/1']:.1f} % at 1/16/1"
            in paragraphs[0])
    # ours: judged where full precision reads the order (T = 8 and 4), T = 1 named as the task's
    assert paragraphs[1].startswith("Here, over the T at which full precision reads the order, the fixed "
                                    "splits go from 93.0 % at 1/1/8 to 80.0 % at 1/2/4: the direction holds.")
    assert "At T = 1 the fixed splits score 50.0 %, at chance with full precision" in paragraphs[1]
    assert "above the 10 % chance" in paragraphs[1]
    # Yao's learned row at their smallest T (1)
    assert f"keep {y['1.31/4.03/1.0']:.1f} % at 1.31/4.03/1.0" in paragraphs[2]
    assert paragraphs[3].startswith("Here no allocation can do that at T = 1: learned bits score 50.0 %")
    flat = _comparison([(8, "1/1/8", 54.0, 99.9, 0.1, 9.9, 100.0),
                        (4, "1/2/4", 50.0, 99.0, 0.1, 9.0, 100.0)])  # a fall of 4: within 5 points
    text = tm.paper_claims(shen, yao, flat)
    assert "the fall does not show" in text and "no allocation" not in text and "At T =" not in text
    assert len(tm.paper_claims(shen, yao, _comparison([])).split("\n\n")) == 2


def _history(W, S):
    return [{"epoch": e, "W": w, "S": s, "T": 8, "test_accuracy": 50.0}
            for e, (w, s) in enumerate(zip(W, S))]


def test_plot_learned_bits_lines_and_targets():
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = {4: {"learned": [{"history": _history([4, 2], [4, 3])}, {"history": _history([2, 1], [4, 1])}],
                  "fixed": []},
              1: {"learned": []}}
    fig = tm.plot_learned_bits(groups, budget=8)
    w_ax, s_ax = fig.axes
    (w_line, w_target), (s_line, s_target) = w_ax.get_lines(), s_ax.get_lines()
    assert list(w_line.get_xdata()) == [1, 2] and list(w_line.get_ydata()) == [3.0, 1.5]
    assert list(s_line.get_ydata()) == [4.0, 2.0]
    assert set(w_target.get_ydata()) == {1.0} and set(s_target.get_ydata()) == {2.0}  # 1/2/4
    assert w_line.get_color() == s_target.get_color() == tm.BIN_COLORS[0]  # the largest T
    plt.close(fig)


def test_plot_accuracy_vs_T_axes():
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shen, yao = paper.paper_table("shen_table3"), paper.paper_table("yao_spikformer_dvs")
    groups = {2: {"fixed": [_result(80.0, S=4.0, T=2, target="1/4/2")] * 2,
                  "time average": [_result(50.0, T=2, fp=True)]},
              1: {"fixed": [_result(50.0, S=8.0, T=1, target="1/8/1")] * 2}}
    fig = tm.plot_accuracy_vs_T(tm.budget_table(groups), shen, yao, [2, 1], budget=8)
    ours, papers = fig.axes
    assert [t.get_text() for t in ours.get_xticklabels()] == ["1/8/1", "1/4/2"]
    labels = ours.get_legend_handles_labels()[1]
    assert sorted(labels) == ["chance", "fixed", "time average (control)"]  # no other method
    assert fig.legends == []  # each panel has its legend, under it (it covers no data)
    assert sorted(legend_under(fig, ours.get_legend(), [ours])) == sorted(labels)
    assert legend_under(fig, papers.get_legend(), [papers]) == [
        "Shen et al., fixed split (BB 16)", "Yao et al., learned", "full precision 16/1/16", "chance (10 classes)"]
    fixed_line = ours.containers[0].lines[0]
    assert list(fixed_line.get_xdata()) == [1, 2] and list(fixed_line.get_ydata()) == [50.0, 80.0]
    shen_line, yao_line, origin, chance = papers.get_lines()
    q = shen[shen["wst"] != "16/1/16"]
    assert list(shen_line.get_xdata()) == [16.0, 8.0, 4.0, 2.0, 1.0]
    assert list(shen_line.get_ydata()) == q["cifar10_dvs"].tolist()
    assert list(origin.get_ydata()) == [80.7, 80.7] and list(chance.get_ydata()) == [10.0, 10.0]
    assert papers.get_legend_handles_labels()[1][2] == "full precision 16/1/16"
    plt.close(fig)


def test_paper_vs_book_matches_rows_by_T():
    shen, yao = paper.paper_table("shen_table3"), paper.paper_table("yao_spikformer_dvs")
    groups = {8: {"fixed": [_result(80.0)], "learned": [_result(99.0, W=1.07, S=1.15)],
                  "full precision": [_result(100.0, fp=True)]},
              2: {"fixed": [_result(50.0, S=4.0, T=2, target="1/4/2")]}}
    pvb = tm.paper_vs_book(tm.budget_table(groups), shen, yao).set_index("T")
    assert list(pvb.index) == ["origin", 16, 8, 2, 1]  # ours, and Shen's most and fewest time steps
    assert pvb.loc[16, "paper: fixed split (Shen)"] == f"1/1/16: {shen.set_index('wst')['cifar10_dvs']['1/1/16']:.1f}"
    assert pvb.loc[16, "ours: fixed split"] == pvb.loc[1, "ours: learned"] == "not run"
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
