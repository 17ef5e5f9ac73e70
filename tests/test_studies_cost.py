"""adabit_lite.studies.cost (chapter 1's tables, counts, allocations, text and figures).

Expected values are counted by hand: the small CNN (stem 1->32, convs 32->64->64 with 3x3 kernels,
padding 1 and 2x2 pooling, a 256->10 classifier) has H_out W_out 9 C_in C_out MACs per conv; the
wide ResNet-20 has 2,587,235,328 MACs at 32x32 (tests/test_nb_cost.py counts them layer by layer)
and a 3->128 stem at 32x32; the published tables are small frames written here.
"""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from adabit_lite import meter
from adabit_lite.studies import cost

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py

R20_MACS = 2_587_235_328
R20_STEM = 32 * 32 * 9 * 3 * 128


def cnn_macs(size: int) -> list[int]:
    """MACs of the small CNN's four rows at size x size (stem first)."""
    return [size ** 2 * 9 * 32, (size // 2) ** 2 * 9 * 32 * 64, (size // 4) ** 2 * 9 * 64 * 64, 256 * 10]


def published(rows, **const):
    """A published table as paper.paper_table gives it (method, arch, wst, ..., notes)."""
    df = pd.DataFrame(rows)
    for k, v in const.items():
        df[k] = v
    df["notes"] = df.get("notes", "")
    return df


# ------------------------------------------------------------------------------ small helpers
def test_show_float_counts_and_four_digits():
    assert cost.show_float(2587235328.0) == "2,587,235,328"
    assert cost.show_float(999.0) == "999"
    assert cost.show_float(1.83) == "1.83"
    assert cost.show_float(0.123456) == "0.1235"
    assert cost.show_float(12345.6) == "1.235e+04"  # not a count: 4 significant digits


def test_uniform_wst_and_published_format():
    assert cost.uniform_wst("16/1/4") == (16, 1, 4)
    assert cost.uniform_wst("1.38/1.32/1") is None
    assert cost.uniform_wst("4/4") is None
    assert cost.fmt_pub(41.40) == "41.4" and cost.fmt_pub(139.0) == "139"
    assert cost.rel_pct(101.0, 100.0) == pytest.approx(1.0)
    assert cost.rel_pct(pd.Series([50.0, 150.0]), 100.0).tolist() == pytest.approx([-50.0, 50.0])


def test_records_rename_and_nan_to_none():
    table = pd.DataFrame({"a col": [1, 2], "b col": [0.5, np.nan], "skip": ["x", "y"]})
    assert cost.records(table, {"a col": "a", "b col": "b"}) == [{"a": 1, "b": 0.5}, {"a": 2, "b": None}]
    assert type(cost.records(table, {"a col": "a"})[0]["a"]) is int  # JSON-ready


# ------------------------------------------------------------------- counting and MAC counts
def test_valid_tap_macs_of_the_small_cnn_by_hand():
    model = cost.shaped_model("small-cnn", (8, 8))
    # 3x3 taps with padding 1 on an n-pixel side: 2 at each border, 3 inside -> (2 + 2 + 3 (n - 2))^2
    taps = [(4 + 3 * (n - 2)) ** 2 for n in (8, 4, 2)]
    hand = taps[0] * 32 + taps[1] * 32 * 64 + taps[2] * 64 * 64 + 2560
    assert hand == 288_384
    assert cost.valid_tap_macs(model) == pytest.approx(hand / 1e9, rel=1e-15)
    assert cost.valid_tap_macs(model) < sum(cnn_macs(8)) / 1e9


def test_macs_g_leaves_out_what_is_asked():
    layers = pd.DataFrame({"name": ["stem.0", "s.0.shortcut.0", "s.0.b.0", "head"],
                           "kind": ["conv", "conv", "conv", "linear"], "stem": [True, False, False, False],
                           "macs": [1000, 200, 30, 4]})
    assert cost.macs_g(layers) == pytest.approx(1234e-9)
    assert cost.macs_g(layers, stem=False) == pytest.approx(234e-9)
    assert cost.macs_g(layers, fc=False) == pytest.approx(1230e-9)
    assert cost.macs_g(layers, stem=False, fc=False, shortcuts=False) == pytest.approx(30e-9)


def test_macs_by_input_by_hand():
    by_size = cost.macs_by_input("small-cnn", [8, 16])
    assert list(by_size) == [8, 16]
    assert by_size[8] == pytest.approx(463_360e-9, rel=1e-15)
    assert by_size[16] == pytest.approx(1_845_760e-9, rel=1e-15)
    assert [sum(cnn_macs(s)) for s in (8, 16)] == [463_360, 1_845_760]


def test_macs_record_and_resnet20_lines():
    cnn = cost.macs_record(meter.meter_arch("small-cnn", "4/4/2", (16, 16)), "cnn")
    assert cnn == {"cnn_macs": 1_845_760, "cnn_macs_g": pytest.approx(1.84576e-3), "cnn_stem_macs": 73_728}
    r20 = meter.meter_arch("resnet20", "4/4/1", (32, 32))
    rec = cost.macs_record(r20, "resnet20")
    assert rec["resnet20_macs"] == R20_MACS and rec["resnet20_stem_macs"] == R20_STEM
    lines = cost.resnet20_lines(r20)
    assert lines[0] == "wide ResNet-20 at 32x32: 22 rows (stem, 18 3x3 convs, 2 1x1 downsample convs, fc)"
    assert lines[1] == "MACs per sample: 2,587,235,328 = 2.5872 G (stem 3,538,944)"
    assert lines[3].startswith(f"at 4/4/1: Bit Budget 16, S-ACE {R20_MACS * 16 / 1e9:.2f} G")
    assert f"{R20_MACS * 16 / 1e9:.2f}" == "41.40"


# ---------------------------------------------------------------------- the published columns
YAO = published([
    {"method": "A", "arch": "ResNet20", "wst": "16/1/4", "bb": 64.0, "s_ace_g": 165.58},
    {"method": "B", "arch": "ResNet20", "wst": "16/1/2", "bb": 32.0, "s_ace_g": 82.56},
    {"method": "C", "arch": "ResNet20", "wst": "4/4/1", "bb": 16.0, "s_ace_g": 50.0},
    {"method": "Ours", "arch": "ResNet20", "wst": "1.38/1.32/1", "bb": 1.83, "s_ace_g": 7.55},
    {"method": "D", "arch": "ResNet19", "wst": "16/1/4", "bb": 64.0, "s_ace_g": 146.56},
])


def test_published_rows_integer_bits_of_one_arch():
    assert cost.published_rows(YAO, "resnet20")["method"].tolist() == ["A", "B", "C"]
    assert cost.published_rows(YAO, "resnet19")["method"].tolist() == ["D"]
    other = published([{"method": "E", "arch": "CIFARNet-Fang", "wst": "16/1/8"},
                       {"method": "F", "arch": "Spikformer-4-256", "wst": "16/1/4"},
                       {"method": "G", "arch": "Spikformer-2-384", "wst": "1/1/1"}])
    assert cost.published_rows(other, "spikformer")["method"].tolist() == ["F", "G"]
    assert cost.published_rows(other, "resnet20").empty


def test_compare_table_by_hand():
    cols = ["source", "method", "W/S/T", "BB paper", "BB = W*S*T", "S-ACE paper (G)", "S-ACE meter (G)",
            "meter vs paper (%)", "implied MACs (G)", "SOPs paper (G)", "SOPs meter (G)",
            "MACs x T x min(S, W) (G)", "attention part (G)", "meter MACs (G)"]
    t = cost.compare_table({"Yao": YAO.iloc[:1], "other": YAO.iloc[2:3]}, "resnet20", (32, 32), cols)
    assert t.columns.tolist() == cols and t["source"].tolist() == ["Yao", "other"]
    a, c = t.to_dict("records")
    assert a["BB = W*S*T"] == 64 and a["BB paper"] == 64.0
    assert a["S-ACE meter (G)"] == pytest.approx(R20_MACS * 64 / 1e9, rel=1e-12)
    assert a["meter vs paper (%)"] == pytest.approx(100 * (R20_MACS * 64 / 1e9 / 165.58 - 1))
    assert a["implied MACs (G)"] == pytest.approx(165.58 / 64)
    assert math.isnan(a["SOPs paper (G)"]) and math.isnan(a["attention part (G)"])
    # SOPs = MACs x min(T S, W) = MACs x 4 at 16/1/4, and MACs x T x min(S, W) = MACs x 4 too
    assert a["SOPs meter (G)"] == pytest.approx(R20_MACS * 4 / 1e9)
    assert a["MACs x T x min(S, W) (G)"] == pytest.approx(R20_MACS * 4 / 1e9)
    # at 4/4/1: min(T S, W) = 4 and T min(S, W) = 4; BB 16
    assert c["S-ACE meter (G)"] == pytest.approx(R20_MACS * 16 / 1e9) and c["meter MACs (G)"] == R20_MACS / 1e9
    sops = published([{"method": "H", "arch": "ResNet20", "wst": "16/1/250", "s_ace_g": 1.0, "sops_g": 2.0}])
    h = cost.compare_table({"x": sops}, "resnet20", (32, 32), cols).iloc[0]
    assert h["SOPs paper (G)"] == 2.0 and math.isnan(h["BB paper"])
    assert h["SOPs meter (G)"] == pytest.approx(R20_MACS * 16 / 1e9)  # min(250 x 1, 16)
    assert h["MACs x T x min(S, W) (G)"] == pytest.approx(R20_MACS * 250 / 1e9)


def test_follows_from_exact_cut_or_neither():
    macs = R20_MACS / 1e9
    assert cost.follows_from(165.583, 165.58, macs, 64) == "exact: 2.5872 G x W*S*T"
    assert cost.follows_from(82.7915, 82.56, macs, 32) == "2.58 G x W*S*T (the count cut to 2 decimals)"
    assert cost.follows_from(82.7915, 82.8, macs, 32) == "neither"
    # cut, not rounded: 2.5899 is cut to 2.58 (rounding would give 2.59)
    assert cost.follows_from(0.0, 2.58 * 10, 2.5899, 10).startswith("2.58 G")


def test_resnet20_table_and_lines():
    t = cost.resnet20_table(YAO, R20_MACS / 1e9, (32, 32))
    assert t.columns.tolist() == cost.RESNET20_COLUMNS[:-1] + ["follows from", "paper's note"]
    assert t["follows from"].tolist() == ["exact: 2.5872 G x W*S*T",
                                          "2.58 G x W*S*T (the count cut to 2 decimals)", "neither"]
    rec = cost.records(t, cost.RESNET20_KEYS)
    assert rec[0] == {"method": "A", "wst": "16/1/4", "bb_paper": 64.0, "bb_meter": 64, "s_ace_paper": 165.58,
                      "s_ace_meter": pytest.approx(R20_MACS * 64 / 1e9), "rule": t["follows from"][0]}
    lines = cost.resnet20_table_lines(t, R20_MACS / 1e9)
    assert len(lines) == 4
    assert lines[0] == "A                16/1/4  BB   64  paper  165.58  meter   165.58  +0.00 %  exact: 2.5872 G x W*S*T"
    # the largest gap: C, 41.40 against 50 -> -17.21 %; the cut count 2.58 lies 0.28 % below 2.5872
    assert lines[-1] == "largest gap 17.21 %; the count cut to two decimals is 0.28 % below the meter's"


def test_resnet19_tried_and_lines():
    r19 = meter.meter_arch("resnet19", "1/1/1", (32, 32))
    tried = cost.resnet19_tried(r19)
    total = r19.totals["macs_g"] * 1e9
    assert tried["without the stem"] * 1e9 == pytest.approx(total - R20_STEM)  # the same 3->128 stem
    assert tried["without the fc layers"] * 1e9 == pytest.approx(total - (512 * 256 + 256 * 10))
    assert 0.9 * total < tried["only kernel taps on real pixels"] * 1e9 < total
    table = pd.DataFrame([{"source": "Shen et al.", "method": "tdBN", "W/S/T": "16/1/4", "S-ACE paper (G)": 139.0,
                           "S-ACE meter (G)": 146.2639, "meter vs paper (%)": 5.2258, "implied MACs (G)": 2.171875}])
    lines = cost.resnet19_lines(2.285373952, 32, {"a": 1.0, "b": 2.5}, table)
    assert lines == ["ResNet-19 at 32x32: 2.2854 G MACs per sample; tried: a 1.0000 G; b 2.5000 G",
                     "Shen et al.  tdBN           16/1/4  paper     139  meter  146.26   +5.23 %  implied MACs 2.172 G"]


def test_implied_macs_and_imagenet_lines():
    sh = published([{"method": "TET", "arch": "SEW-ResNet-34", "wst": "16/1/4", "s_ace_g": 217.72},
                    {"method": "TET", "arch": "SEW-ResNet-34", "wst": "16/1/6", "s_ace_g": 1.0}])
    assert cost.implied_macs(sh, "TET", "16/1/4") == pytest.approx(3.401875)
    table = pd.DataFrame([
        {"source": "Yao et al.", "method": "A very long method name indeed", "W/S/T": "8/8/1", "S-ACE paper (G)": 217.0,
         "S-ACE meter (G)": 234.48, "meter vs paper (%)": 8.05, "SOPs paper (G)": np.nan,
         "SOPs meter (G)": 1.0, "MACs x T x min(S, W) (G)": 1.0},
        {"source": "Shen et al.", "method": "Hybrid", "W/S/T": "16/1/250", "S-ACE paper (G)": 13608.0,
         "S-ACE meter (G)": 14655.05, "meter vs paper (%)": 7.69, "SOPs paper (G)": 850.6,
         "SOPs meter (G)": 58.62, "MACs x T x min(S, W) (G)": 915.94}])
    lines = cost.imagenet_lines(table, 3.663761408, 3.401875, 224)
    assert lines[0] == "SEW-ResNet-34 at 224x224: meter 3.6638 G MACs; the papers' S-ACE implies 3.4019 G (+7.7 %)"
    assert lines[1] == "Yao et al.   A very long method n 8/8/1    S-ACE paper     217  meter   234.48   +8.1 %"
    assert lines[2].endswith("+7.7 %  SOPs paper 850.6 meter 58.62 (T min(S,W): 915.94)")


def test_tried_table_and_lines_by_hand():
    res = meter.meter_arch("small-cnn", "1/1/1", (16, 16))
    m = cnn_macs(16)
    papers = 1.2e-3
    by_size = {14: 1.0e-3, 15: 1.5e-3, 16: sum(m) / 1e9}
    tried = cost.tried_table(res, by_size, papers)
    got = dict(zip(tried["count"], tried["MACs (G)"] * 1e9))
    taps = [(4 + 3 * (n - 2)) ** 2 for n in (16, 8, 4)]
    assert got == pytest.approx({
        "every conv and the fc, 16x16 (the meter)": sum(m), "without the stem": sum(m[1:]),
        "without the fc": sum(m[:3]), "without the stem, the fc and the 1x1 downsample convs": sum(m[1:3]),
        "only kernel taps on real pixels (zero padding not counted)":
            taps[0] * 32 + taps[1] * 32 * 64 + taps[2] * 64 * 64 + 2560,
        "input 14x14 (largest size below the papers' count)": 1.0e6,
        "input 15x15 (smallest size above it)": 1.5e6})
    assert tried["vs the papers (%)"].iloc[-1] == pytest.approx(25.0)
    lines = cost.tried_lines(tried, by_size, papers)
    assert lines[0] == "the papers' count: 0.0012 G" and len(lines) == 9
    assert lines[6] == "0.0010 G (-16.7 %)  input 14x14 (largest size below the papers' count)"
    assert lines[-1] == "input sizes 14..16: none within 0.5 % of 0.00 G: True"
    assert cost.tried_lines(tried, {1: 1.201e-3}, papers)[-1].endswith(": False")


def test_size_table_and_lines():
    sh = published([{"method": "a", "arch": "SEW-ResNet-34", "wst": "2/1/2", "params_m": 2.72},
                    {"method": "b", "arch": "SEW-ResNet-34", "wst": "16/1/4", "params_m": 21.79},
                    {"method": "c", "arch": "SEW-ResNet-34", "wst": "2/2/1", "params_m": 9.99},
                    {"method": "d", "arch": "ResNet-34", "wst": "8/8/1", "params_m": 10.89}])
    t = cost.size_table(sh, (64, 64))  # sizes do not depend on the input size
    assert t["W"].tolist() == [16, 2] and t["Params (M) paper"].tolist() == [21.79, 2.72]
    # conv/fc weights of SEW-ResNet-34: 21,779,648; all float parameters: 21,797,672
    assert t["meter: conv/fc weights x W/16 (M)"].tolist() == pytest.approx([21.779648, 2.722456])
    assert t["all float params x W/16, truncated (M)"].tolist() == [21.79, 2.72]
    sew = meter.meter_arch("sew-resnet34", "1/1/1", (64, 64))
    lines = cost.size_lines(sew, t)
    assert lines == ["SEW-ResNet-34: conv/fc weights 21.7796 M, float parameters 21.7977 M",
                     "W = 16: paper 21.79  meter 21.78  float, truncated 21.79",
                     "W =  2: paper  2.72  meter 2.72  float, truncated 2.72"]


def test_spikformer_table_splits_conv_fc_and_attention():
    sh = published([{"method": "Spikformer", "arch": "Spikformer-4-384", "wst": "16/1/4", "s_ace_g": 59.1},
                    {"method": "Q", "arch": "Spikformer-4-384", "wst": "1/1/1", "s_ace_g": 0.77},
                    {"method": "R", "arch": "ResNet-19", "wst": "16/1/4", "s_ace_g": 139.0}])
    t = cost.spikformer_table(sh, (32, 32))
    assert t.columns.tolist()[:4] == ["method", "arch", "W/S/T", "BB"] and t["BB"].tolist() == [64, 1]
    m = meter.meter_arch("spikformer-4-384", "1/1/1", (32, 32)).totals
    conv_fc_macs = m["macs_g"] - m["attn"]["macs_g"]
    assert t["conv/fc part (G)"].tolist() == pytest.approx([conv_fc_macs * 64, conv_fc_macs])
    assert (t["conv/fc part (G)"] + t["attention part (G)"]).tolist() == pytest.approx(t["S-ACE meter (G)"].tolist())
    assert t["implied MACs (G)"].tolist() == pytest.approx([59.1 / 64, 0.77])
    rec = cost.records(t, cost.SPIKFORMER_KEYS)
    assert set(rec[0]) == {"arch", "wst", "s_ace_paper", "s_ace_meter", "attn_meter"}
    line = cost.spikformer_lines(t.iloc[1:])[0]
    assert line.startswith("Spikformer-4-384  1/1/1   paper   0.77  meter ")
    assert line.endswith("implied MACs 0.770 G")


# ------------------------------------------------------------------------ the learned convention
def test_learned_table_lines_and_target():
    cifar = published([{"method": "Ours-111", "wst": "1.38/1.32/1", "bb": 1.83, "s_ace_g": 7.55},
                       {"method": "U-Quant", "wst": "4/4/1", "bb": 16.0, "s_ace_g": 41.4}], arch="ResNet20")
    imnet = published([{"method": "Ours-441", "wst": "3.93/3.92/1.0", "bb": 15.4, "s_ace_g": 77.78}],
                      arch="SEW-ResNet34")
    t = cost.learned_table(cifar, imnet, 2.5872, 3.4)
    assert t["method"].tolist() == ["Ours-111", "Ours-441"]
    assert t["MACs x BB (G)"].tolist() == pytest.approx([2.5872 * 1.83, 3.4 * 15.4])
    assert t["S-ACE / (MACs x BB)"].tolist() == pytest.approx([7.55 / 4.734576, 77.78 / 52.36])
    assert cost.records(t, cost.LEARNED_KEYS)[1] == {"method": "Ours-441", "table": "ImageNet (SEW-ResNet34)",
                                                     "ratio": pytest.approx(77.78 / (3.4 * 15.4))}
    assert cost.learned_lines(t)[0] == ("CIFAR-10 (ResNet20)      Ours-111  1.38/1.32/1    BB  1.83  S-ACE paper "
                                        "  7.55 G  MACs x BB   4.73 G  ratio 1.59")
    assert cost.learned_target(cifar) == (1.38, 1.32, 1.0)
    assert cost.learned_target(imnet, "Ours-441") == (3.93, 3.92, 1.0)


def test_water_fill_and_orders():
    counts = pd.Series({"a": 10, "b": 30, "c": 60})
    # budget (1.5 - 1) x 100 = 50 extra bit-counts
    assert cost.water_fill(counts, 1.5, ["a", "b", "c"], cap=4) == {"a": 4, "b": 1, "c": 1}  # a capped at 4
    assert cost.water_fill(counts, 1.5, ["c", "b", "a"], cap=4) == {"a": 3, "b": 2, "c": 1}
    assert cost.water_fill(counts, 1.5, ["a", "b", "c"], cap=2) == {"a": 2, "b": 2, "c": 1}
    s = pd.Series({"x": 5, "y": 1, "z": 3, "w": 2})
    assert cost.order_a(s) == ["x", "w", "y", "z"]  # first and last, then increasing
    assert cost.order_b(s) == ["x", "z", "w", "y"]  # decreasing


@pytest.fixture(scope="module")
def cnn_alloc():
    body = cost.body_layers("small-cnn", (16, 16))
    return body, cost.illustrative_allocations(body, (1.5, 1.5, 1.0), 4, (16, 16), arch="small-cnn")


def test_illustrative_allocations_by_hand(cnn_alloc):
    body, alloc = cnn_alloc
    assert body.index.tolist() == ["features.1.0", "features.2.0", "fc"]
    assert body["macs"].tolist() == cnn_macs(16)[1:]
    a, b = alloc["A"], alloc["B"]
    # weights 18432, 36864, 2560 (budget 28928); input features 2048, 1024, 256 (budget 1664)
    assert {n: (v["Bw"], v["Bs"]) for n, v in a["assignment"].items()} == \
        {"features.1.0": (2, 1), "features.2.0": (1, 1), "fc": (4, 4)}
    assert {n: (v["Bw"], v["Bs"]) for n, v in b["assignment"].items()} == \
        {"features.1.0": (2, 1), "features.2.0": (1, 2), "fc": (4, 3)}
    assert a["s_ace_g"] * 1e9 == pytest.approx(1179648 * 2 + 589824 + 2560 * 16)
    assert a["hand_s_ace_g"] == pytest.approx(a["s_ace_g"], rel=1e-12)
    assert b["s_ace_g"] * 1e9 == pytest.approx(1179648 * 2 + 589824 * 2 + 2560 * 12)
    assert (a["W"], a["S"], a["T"]) == pytest.approx((83968 / 57856, 4096 / 3328, 1.0))
    assert a["bit_budget"] == pytest.approx(83968 / 57856 * 4096 / 3328)
    assert a["macs_times_bb_g"] == pytest.approx(a["macs_g"] * a["bit_budget"])
    assert a["stem_s_ace_g"] * 1e9 == 73728 * 8 * 8  # fixed 8/8 bits, T = 1
    assert "result" not in a  # JSON-ready: the chapter records it whole


def test_allocation_table_lines_and_plot(cnn_alloc):
    body, alloc = cnn_alloc
    t = cost.allocation_table(body, alloc)
    assert t["name"].tolist() == body.index.tolist()
    assert t["MACs / weight"].tolist() == [64.0, 16.0, 1.0]  # H_out W_out per conv, once in the fc
    assert t["MACs / feature"].tolist() == [576.0, 576.0, 10.0]
    assert t["A Bw"].tolist() == [2, 1, 4] and t["B Bs"].tolist() == [1, 2, 3]
    lines = cost.allocation_lines(alloc, (1.5, 1.5, 1.0))
    assert lines[0] == "target (the paper's Ours-111 learned W/S/T): 1.5/1.5/1"
    assert lines[4] == f"same means, S-ACE differs by a factor {2990080 / 3569664:.2f}"
    assert lines[5] == "stem line (not in the totals): S-ACE 0.0047 G at 8/8/1"
    fig = cost.plot_allocations(body, alloc, 4)
    top, bottom = fig.axes[:2]
    assert [p.get_height() for p in top.patches] == [2, 1, 4, 2, 1, 4]
    assert [p.get_height() for p in bottom.patches] == [1, 1, 4, 1, 2, 3]
    assert [t.get_text() for t in bottom.get_xticklabels()] == ["features.1", "features.2", "fc"]


# ------------------------------------------------------------------------------------ NS-ACE
@pytest.fixture(scope="module")
def fired():
    ds, model, x = cost.calibrated_cnn("digits", "2/3/2", 16, seed=0)
    meter.measure_firing(model, [x])
    return ds, model, x, meter.meter_model(model, arch="small-cnn")


def test_calibrated_cnn_fits_the_batch(fired):
    ds, model, x, _ = fired
    assert torch.equal(x, ds.train.tensors[0][:16])
    seen = []  # the input of every batch norm in a training-mode pass

    def hook(m, inp, out):
        if isinstance(m, torch.nn.BatchNorm2d) and m.training:
            seen.append(inp[0].clone())

    handle = torch.nn.modules.module.register_module_forward_hook(hook)
    try:
        _, again, _ = cost.calibrated_cnn("digits", "2/3/2", 16, seed=0)
    finally:
        handle.remove()
    assert torch.equal(next(again.parameters()), next(model.parameters()))  # the seed fixes the weights
    bns = [m for m in again.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(bns) == len(seen) == 3 and all(m.momentum is None for m in bns)
    # one pass with momentum None: the running statistics are exactly this batch's own
    for bn, inp in zip(bns, seen):
        assert torch.allclose(bn.running_mean, inp.mean((0, 2, 3)), atol=1e-6)
        assert torch.allclose(bn.running_var, inp.var((0, 2, 3), unbiased=True), rtol=1e-4, atol=1e-7)
        assert bn.num_batches_tracked.item() == 1


def test_firing_record_lines_and_plot(fired):
    ds, _, x, fire = fired
    rec = cost.firing_record(fire, ds.description, len(x))
    assert rec["n_samples"] == 16 and rec["dataset"] == ds.description
    macs = cnn_macs(16)
    assert [r["macs"] for r in rec["layers"]] == macs
    for r, bits in zip(rec["layers"], [(8, 8, 2), (2, 3, 2), (2, 3, 2), (2, 3, 2)]):
        assert (r["Bw"], r["Bs"], r["T"]) == bits
        assert r["s_ace"] == r["macs"] * math.prod(bits)
        assert r["ns_ace"] == pytest.approx(r["s_ace"] * r["firing_rate"])
    body = rec["layers"][1:]
    assert rec["s_ace_g"] * 1e9 == pytest.approx(sum(r["s_ace"] for r in body))
    assert rec["ns_ace_g"] * 1e9 == pytest.approx(sum(r["ns_ace"] for r in body))
    assert rec["stem_ns_ace_g"] * 1e9 == pytest.approx(rec["layers"][0]["ns_ace"])
    lines = cost.firing_lines(fire)
    first = rec["layers"][0]
    assert lines[0].startswith(f"features.0.0   (stem)  8/8/2  firing rate {first['firing_rate']:.3f}  S-ACE ")
    assert lines[1].startswith("features.1.0           2/3/2")
    assert lines[-1].endswith(f"NS-ACE / S-ACE {rec['ns_ace_g'] / rec['s_ace_g']:.3f}")
    fig = cost.plot_firing(fire, "title")
    left, right = fig.axes[:2]
    assert [p.get_width() for p in left.patches] == pytest.approx([r["firing_rate"] for r in rec["layers"]])
    assert [p.get_width() for p in right.patches] == pytest.approx(
        [r["s_ace"] / 1e6 for r in body] + [r["ns_ace"] / 1e6 for r in body])


# ------------------------------------------------------------- accuracy against Bit Budget
def test_kind_and_family():
    assert [cost.kind_of(m) for m in ("Ours-111", "U-Quant", "Quant. SNN (Shen)", "Quantized SEW ResNet",
                                       "TET")] == ["ours", "quant", "quant", "quant", "other"]
    assert cost.family_of("Spikformer-8-512") == "Spikformer" and cost.family_of("ResNet-34") == "ResNet"


@pytest.fixture(scope="module")
def points():
    yc = published([{"method": "Ours-111", "arch": "ResNet20", "wst": "1.38/1.32/1", "bb": 1.83, "cifar10": 93.0},
                    {"method": "TET", "arch": "ResNet19", "wst": "16/1/4", "bb": 64.0, "cifar10": 94.5},
                    {"method": "X", "arch": "ResNet19", "wst": "16/1/2", "bb": 32.0, "cifar10": np.nan}])
    yi = published([{"method": "Ours-441", "arch": "SEW-ResNet34", "wst": "3.93/3.92/1.0", "bb": 15.4, "top1": 72.82},
                    {"method": "Quant. SNN (Shen)", "arch": "SEW-ResNet34", "wst": "8/8/1", "bb": 64.0, "top1": 70.13}])
    sh = published([{"method": "Quantized SEW ResNet", "arch": "SEW-ResNet-34", "wst": "8/8/1", "bb": 64.0,
                     "top1": 70.13},
                    {"method": "Quantized Spikformer", "arch": "Spikformer-8-512", "wst": "8/4/1", "bb": 32.0,
                     "top1": 79.37}])
    return cost.published_points(yc, yi, sh)


def test_published_points(points):
    assert points["panel"].tolist() == ["CIFAR-10"] * 2 + ["ImageNet"] * 3  # no accuracy: left out
    assert points["method"].tolist() == ["Ours-111", "TET", "Ours-441", "Quant. SNN (Shen)", "Quantized Spikformer"]
    assert "Quantized SEW ResNet" not in points["method"].tolist()  # printed by both tables: Yao et al.'s kept
    assert points["kind"].tolist() == ["ours", "other", "ours", "quant", "quant"]
    assert points["family"].tolist() == ["ResNet"] * 4 + ["Spikformer"]
    assert points["bit_budget"].tolist() == [1.83, 64.0, 15.4, 64.0, 32.0]


def test_plot_and_best_published(points):
    fig = cost.plot_published(points)
    for ax, n in zip(fig.axes[:2], (2, 3)):
        assert sum(len(c.get_offsets()) for c in ax.collections) == n
        assert ax.get_xscale() == "log"
    best, lines = cost.best_published(points)
    assert best == {"CIFAR-10": {"best": ["TET", "16/1/4"], "best_resnet": ["TET", "16/1/4"]},
                    "ImageNet": {"best": ["Quantized Spikformer", "8/4/1"], "best_resnet": ["Ours-441", "3.93/3.92/1.0"]}}
    assert lines[0] == ("CIFAR-10: 2 published rows; Bit Budget of the paper's models 1.83 to 1.83, "
                        "of the others 64 to 64")
    assert lines[4] == "  most accurate ResNet row: Ours-441 3.93/3.92/1.0 (BB 15.4, 72.82 %)"
    assert lines[5] == "  most accurate row: Quantized Spikformer Spikformer-8-512 8/4/1 (BB 32, 79.37 %)"


# -------------------------------------------------------------------------- paper against book
def test_paper_vs_book(fired):
    ds, _, _, fire = fired
    r20 = pd.DataFrame([{"W/S/T": w, "implied MACs (G)": 2.5871875, "S-ACE paper (G)": 10.0 * i,
                         "S-ACE meter (G)": 10.0 * i + 0.01, "meter vs paper (%)": 0.1 * i}
                        for i, w in enumerate(("16/1/4", "4/4/1", "4/4/2", "16/1/2", "16/4/6"), 1)])
    r19 = pd.DataFrame([{"source": "Yao et al.", "method": "tdBN", "W/S/T": "16/1/2", "S-ACE paper (G)": 73.28,
                         "S-ACE meter (G)": 73.13, "meter vs paper (%)": -0.2},
                        {"source": "Shen et al.", "method": "tdBN", "W/S/T": "16/1/4", "S-ACE paper (G)": 139.0,
                         "S-ACE meter (G)": 146.26, "meter vs paper (%)": 5.23}])
    im = pd.DataFrame([{"source": "Shen et al.", "arch": a, "W/S/T": w, "S-ACE paper (G)": 1.0, "S-ACE meter (G)": 2.0,
                        "SOPs paper (G)": 3.0, "SOPs meter (G)": 4.0, "MACs x T x min(S, W) (G)": 5.0}
                       for a, w in (("ResNet-34", "16/1/250"), ("SEW-ResNet-34", "16/1/4"),
                                    ("SEW-ResNet-34", "8/8/1"), ("SEW-ResNet-34", "1/1/1"))])
    sizes = pd.DataFrame([{"W": W, "Params (M) paper": W / 10, "meter: conv/fc weights x W/16 (M)": W / 8,
                           "all float params x W/16, truncated (M)": W / 4} for W in (16, 8, 2, 1)])
    sf = pd.DataFrame([{"arch": "Spikformer-4-384", "W/S/T": w, "S-ACE paper (G)": 1.0, "S-ACE meter (G)": 1.25,
                        "meter vs paper (%)": 25.0} for w in ("16/1/4", "1/1/1", "4/4/1")])
    yc = published([{"method": "Ours-111", "s_ace_g": 7.55, "bb": 1.83}])
    yi = published([{"method": "Ours-441", "top1": 72.82, "bb": 15.4},
                    {"method": "Quant. SNN (Shen)", "top1": 70.13, "bb": 64.0}])
    alloc = {"A": {"s_ace_g": 8.598}, "B": {"s_ace_g": 3.733}}
    t = cost.paper_vs_book(resnet20=r20, resnet19=r19, imagenet=im, sizes=sizes, spikformer=sf, yao_cifar=yc,
                           yao_imagenet=yi, macs20=2.5872353, macs34=3.6638, papers_macs34=3.4019, alloc=alloc,
                           alloc_cap=4, fire=fire, firing_setting="the CNN", cifar_input=32, imagenet_input=224)
    assert t.columns.tolist() == ["quantity", "paper", "this book", "setting"] and len(t) == 20
    row = t.set_index("quantity")
    assert row.loc["wide ResNet-20 MACs per image (G)", "paper"] == "2.5872 (implied)"
    assert row.loc["wide ResNet-20 S-ACE at 4/4/2 (G)", "this book"] == "30.01 (+0.30 %)"
    assert row.loc["ResNet-19 S-ACE at 16/1/4, Shen et al. (G)", "this book"] == "146.26 (+5.2 %): not reconstructed"
    assert row.loc["SEW-ResNet-34 MACs per image (G)", "this book"] == \
        f"3.6638 ({100 * (3.6638 / 3.4019 - 1):+.1f} %): convention behind 3.40 not found"
    assert row.loc["ResNet-34 SOPs at 16/1/250, hybrid training (G)", "this book"] == \
        "4.00 (meter: MACs x min(T*S, W)); 5.00 with MACs x T x min(S, W)"
    assert row.loc["SEW-ResNet-34 Params (M) at W = 16 / 8 / 1", "paper"] == "1.6 / 0.8 / 0.1"
    assert row.loc["Spikformer-4-384 S-ACE at 1/1/1 (G)", "this book"] == \
        "1.25 (+25.0 %): attention bits counted differently"
    assert row.loc["learned 1/1/1 model: S-ACE vs MACs x BB (G)", "this book"] == \
        "MACs x BB = 4.73; illustrative allocations at the same means: 3.73 (B) to 8.60 (A)"
    assert row.loc["ImageNet headline: accuracy and Bit Budget (published)", "this book"] == \
        "+2.69 points at 4.16x lower BB (arithmetic on the printed numbers; not run)"
    ratio = fire.totals["ns_ace_g"] / fire.totals["s_ace_g"]
    assert row.loc["NS-ACE / S-ACE of the small CNN", "this book"] == f"{ratio:.3f}"
    assert 0 < ratio < 1
