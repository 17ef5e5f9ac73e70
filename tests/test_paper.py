"""The published tables as data: every table loads, has its columns and rows, and the facts that
the chapters derive from them (sums, orderings, the papers' own inconsistencies) hold."""

import math

import pytest

from adabit_lite.meter import parse_wst
from adabit_lite.paper import METER_ARCH, TABLES, paper_table, paper_tables, table_source

EXPECTED = {  # name: (rows, published columns)
    "yao_cifar": (18, ["method", "arch", "wst", "bb", "s_ace_g", "s_ace_squeezed_g", "cifar10",
                       "c100_wst", "c100_bb", "c100_s_ace_g", "c100_s_ace_squeezed_g", "cifar100"]),
    "yao_imagenet": (7, ["method", "arch", "wst", "bb", "s_ace_g", "top1"]),
    "yao_ablation": (8, ["target", "uquant", "lbw_wst", "lbw", "weight_renew_wst", "weight_renew",
                         "bilateral_renew_wst", "bilateral_renew", "act_renew_wst", "act_renew"]),
    "yao_neuron_ablation": (6, ["target", "tau2_floor_uquant", "tau2_floor_no_renew",
                                "tau2_floor_renew", "tau2_round_renew", "tau1_round_renew"]),
    "yao_spikformer_cifar10": (5, ["target", "uquant", "lbw_wst", "lbw", "lbw_renew_wst",
                                   "lbw_renew", "origin_16_1_4"]),
    "yao_spikformer_dvs": (11, ["method", "wst", "cifar10_dvs"]),
    "shen_table1": (22, ["method", "arch", "bb", "wst", "params_m", "sops_g", "s_ace_g", "ns_ace_g",
                         "top1"]),
    "shen_table2": (23, ["method", "arch", "wst", "params_m", "s_ace_g", "cifar10", "cifar100"]),
    "shen_table3": (6, ["wst", "cifar10_dvs", "dvs128_gesture", "n_caltech101"]),
}
SIC = {"yao_cifar": 4, "shen_table1": 3, "shen_table2": 3}  # rows whose notes say "(sic)"


def row(table, **match):
    df = paper_table(table)
    for k, v in match.items():
        df = df[df[k] == v]
    assert len(df) == 1, match
    return df.iloc[0]


@pytest.mark.parametrize("name", list(TABLES))
def test_every_table_loads_with_columns_rows_and_source(name):
    df = paper_table(name)
    rows, columns = EXPECTED[name]
    assert list(df.columns) == columns + ["notes", "sic", "source"]
    assert len(df) == rows
    src = table_source(name)
    arxiv = "2506.23717" if name.startswith("yao") else "2311.10802"
    assert (df["source"] == src).all() and arxiv in src
    assert int(df["sic"].sum()) == SIC.get(name, 0)
    assert df["sic"].equals(df["notes"].str.startswith("(sic)"))


def test_unknown_table_and_all_tables():
    with pytest.raises(ValueError, match="accepted"):
        paper_table("yao_table9")
    assert set(paper_tables()) == set(TABLES)


def test_yao_cifar_derived_facts():
    r20 = row("yao_cifar", method="Dspike", wst="16/1/4")
    assert r20["s_ace_g"] / 64 == pytest.approx(2.587, abs=5e-4)  # wide ResNet20 MACs
    assert row("yao_cifar", method="U-Quant", wst="4/4/1")["s_ace_g"] / 16 == pytest.approx(2.5875)
    assert row("yao_cifar", method="tdBN", wst="16/1/2")["s_ace_g"] / 32 == pytest.approx(2.29)
    # 16/1/2, 16/4/4, 16/4/6 are 2.58 G * BB
    for wst in ("16/4/4", "16/4/6"):
        r = row("yao_cifar", method="Multi-bit Spike", wst=wst)
        assert r["s_ace_g"] == pytest.approx(2.58 * r["bb"])
    ours = row("yao_cifar", method="Ours-222")
    assert (ours["s_ace_g"], ours["s_ace_squeezed_g"], ours["cifar10"]) == (29.75, 15.93, 96.48)
    assert ours["c100_wst"] == "2.11/1.98/2.08" and ours["cifar100"] == 80.59
    sic = row("yao_cifar", method="Ours-111")
    assert sic["sic"] and sic["c100_wst"] == "2.06/1.58/3.25" and sic["c100_bb"] == 3.25
    assert math.isnan(row("yao_cifar", method="MLF")["cifar100"])  # "-" in the paper


def test_bit_budget_is_w_s_t_except_where_marked():
    for table in ("yao_cifar", "shen_table1"):
        df = paper_table(table)
        for _, r in df.iterrows():
            try:
                W, S, T = parse_wst(r["wst"])
            except ValueError:
                continue  # learned, fractional W/S/T
            if not r["sic"] or "BB" not in r["notes"]:
                assert r["bb"] == W * S * T, (table, r["method"], r["wst"])


def test_imagenet_headline_and_sew_macs():
    ours = row("yao_imagenet", method="Ours-441")
    shen = row("yao_imagenet", method="Quant. SNN (Shen)")
    assert round(ours["top1"] - shen["top1"], 2) == 2.69
    assert round(shen["bb"] / ours["bb"], 2) == 4.16
    assert row("yao_imagenet", method="TET")["s_ace_g"] / 64 == pytest.approx(3.40, abs=2e-3)


def test_shen_sew_rows():
    tet = row("shen_table1", method="TET")
    assert tet["sops_g"] == pytest.approx(3.40 * 4, abs=0.01)  # SOPs = MACs * min(T*S, W)
    q111 = row("shen_table1", arch="SEW-ResNet-34", wst="1/1/1")
    assert (q111["sops_g"], q111["s_ace_g"], q111["params_m"]) == (3.40, 3.40, 1.36)
    assert round(tet["params_m"] / 16, 2) == q111["params_m"]
    assert row("shen_table1", arch="SEW-ResNet-34", wst="8/8/1")["params_m"] == 10.89
    assert row("shen_table1", arch="SEW-ResNet-34", wst="8/8/1")["sops_g"] == pytest.approx(
        3.40 * 8, abs=0.1)


def test_shen_cifar_and_neuromorphic_rows():
    r19 = paper_table("shen_table2").query("arch == 'ResNet-19'")
    assert (r19["params_m"] == 12.63).all() and len(r19) == 6
    burst = row("shen_table2", method="Burst", wst="16/2/6")
    assert burst["s_ace_g"] / 192 == pytest.approx(2.17, abs=0.005)
    spik = row("shen_table2", method="Spikformer", arch="Spikformer-4-384")
    assert spik["params_m"] == 4.15 and spik["sic"]
    assert row("shen_table2", method="Quantized Spikformer", wst="1/2/2")["sic"]
    t3 = paper_table("shen_table3")
    assert t3["cifar10_dvs"].tolist() == [80.7, 79.8, 79.3, 63.1, 43.0, 35.8]
    dvs = paper_table("yao_spikformer_dvs")
    assert dvs.groupby("method").size().to_dict() == {"Origin": 1, "Shen quantized": 5, "Ours": 5}
    # Yao's copy of Shen's CIFAR10-DVS numbers agrees with Shen's table 3
    shen_rows = dvs[dvs["method"] == "Shen quantized"].set_index("wst")["cifar10_dvs"]
    assert shen_rows.to_dict() == t3.set_index("wst")["cifar10_dvs"].drop("16/1/16").to_dict()


def test_ablation_tables_spot_values():
    abl = paper_table("yao_ablation").set_index("target")
    assert abl.loc["1/1/1", "act_renew_wst"] == "1.38/1.32/1.0" and abl.loc["1/1/1", "act_renew"] == 96.15
    assert abl.loc["4/4/2", "lbw_wst"] == "4.02/3.93/1.92"
    neu = paper_table("yao_neuron_ablation").set_index("target")
    assert neu.loc["2/2/1", "tau2_floor_uquant"] == 0.1 and neu.loc["3/4/1", "tau1_round_renew"] == 97.02
    spk = paper_table("yao_spikformer_cifar10")
    assert spk["origin_16_1_4"].notna().sum() == 1 and spk.loc[0, "origin_16_1_4"] == 95.19


def test_meter_arch_names_cover_the_metered_papers_archs():
    from adabit_lite.meter import ARCH_INPUTS

    assert set(METER_ARCH.values()) <= set(ARCH_INPUTS)
    for table in ("yao_cifar", "yao_imagenet"):
        archs = set(paper_table(table)["arch"]) - {"ResNet34"}  # Ternary Spike's plain ResNet34
        assert archs <= set(METER_ARCH)
