"""adabit_lite.studies.performance (the performance appendix) on a small results file made up here,
in the schema that ``python -m benchmarks`` writes; every expected number is worked out by hand."""

import math
import re

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from adabit_lite import plotting
from adabit_lite.studies import performance as pf

MACHINE = {"cpu": "AMD EPYC", "cores": 2, "torch": "2.13.0+cpu", "torch_threads": 2, "snntorch": "1.0.0"}


def section(**extra):
    return {"started": "2026-01-02T03:04:05", "seconds": 150.0, "machine": MACHINE,
            "load_start": [0.5, 0.5, 0.5], "load_end": [1.0, 1.0, 1.0], **extra}


def neuron_row(shape, T, Bs, ours, snn, eager=None):
    r = ours / snn
    return {"shape": shape, "T": T, "Bs": Bs, "ours_ms": ours, "snntorch_ms": snn, "ours_vs_snntorch": r,
            "ours_vs_snntorch_min": 0.9 * r, "ours_vs_snntorch_max": 1.1 * r, "ours_vs_eager": eager}


NEURON = [neuron_row("a", 1, 1, 1.0, 2.0, 0.9), neuron_row("a", 1, 4, 2.0, 2.5, 0.7),
          neuron_row("a", 8, 1, 1.0, 10.0, 0.3), neuron_row("a", 8, 4, 3.0, 10.0, 0.5),
          neuron_row("b", 1, 1, 2.0, 2.0, 1.0), neuron_row("b", 1, 4, 4.0, 2.0, 0.8),
          neuron_row("b", 8, 1, 2.0, 5.0, 0.4), neuron_row("b", 8, 4, 2.0, 20.0, 0.2)]


def layer_row(shape, T, squeezed, multi, ann):
    return {"shape": shape, "T": T, "squeezed_ms": squeezed, "multistep_ms": multi, "ann_ms": ann,
            "squeezed_vs_multistep": squeezed / multi, "squeezed_vs_ann": squeezed / ann,
            "multistep_vs_ann": multi / ann, "squeezed_vs_ann_min": squeezed / ann - 0.1,
            "squeezed_vs_ann_max": squeezed / ann + 0.1, "rounds": 7}


LAYER = [layer_row("a", 1, 12.0, 12.0, 10.0), layer_row("a", 4, 12.0, 48.0, 10.0), layer_row("a", 8, 13.0, 96.0, 10.0),
         layer_row("b", 1, 5.2, 6.0, 4.0), layer_row("b", 4, 6.0, 20.0, 4.0), layer_row("b", 8, 6.0, 40.0, 4.0)]


def memory_row(shape, variant, T, saved, peak, alloc=1.0, biggest=1.0):
    return {"shape": shape, "variant": variant, "T": T, "input": [2, 3], "Bs": 4, "levels": 16, "saved": saved,
            "peak": peak, "alloc_max": alloc, "saved_max_tensor": biggest}


MEMORY = [memory_row("a", "snntorch", 1, 1.0, 9.0), memory_row("a", "snntorch", 2, 2.0, 11.0),
          memory_row("a", "ours", 1, 4.0, 5.0), memory_row("a", "ours", 2, 4.0, None),
          memory_row("b", "ours", 1, 4.0, 5.0, alloc=None, biggest=1.5), memory_row("b", "ours", 2, 4.0, 5.0)]
COMP = {"T": 4, "Bs": 4, "neuron_rows": [
    {"shape": "a", "T": 4, "Bs": 4, "compiled_vs_snntorch": 0.1, "ours_vs_snntorch": 0.2, "compile_s": 12.4,
     "compiled_max_rel_diff": 0.0},
    {"shape": "b", "T": 4, "Bs": 4, "compiled_vs_snntorch": 0.3, "ours_vs_snntorch": 0.25, "compile_s": 4.6,
     "compiled_max_rel_diff": 2e-3}],
    "layer_rows": [{"shape": "a", "T": 4, "squeezed_vs_ann": 1.2, "compiled_vs_ann": 1.1},
                   {"shape": "b", "T": 4, "squeezed_vs_ann": 1.4, "compiled_vs_ann": 1.6}]}
TARGETS = {"layer_vs_multistep": {"threshold": 0.5}, "layer_vs_ann": {"threshold": 1.5}}


def test_machine_and_old_sections():
    assert pf.machine_text(section()) == ("AMD EPYC, 2 cores, no GPU; torch 2.13.0+cpu with 2 thread(s); "
                                          "snntorch 1.0.0")
    gpu = section(device="cuda", machine={**MACHINE, "gpu": "H100"})
    assert pf.machine_text(gpu).endswith("2 cores, GPU H100; torch 2.13.0+cpu with 2 thread(s); "
                                         "snntorch 1.0.0; timed on cuda")
    old = section(rows=[{"shape": "a", "prototype_ms": 1.0}])
    old_variant = section(layer_rows=[{"variant": "prototype"}])
    bench = {"neuron": section(rows=NEURON, note="quiet"), "layer": old, "memory": old_variant,
             "epoch": section(note="quiet")}
    assert [pf.measured_before_v2(s) for s in bench.values()] == [False, True, True, False]
    assert pf.old_sections(bench) == ["layer", "memory"]
    assert pf.run_notes(bench) == [
        "note stored with the run: quiet",
        "NOTE: the layer section was measured with the package's old neuron (before ALGORITHM_VERSION 2); "
        "rerun `python -m benchmarks layer`",
        "NOTE: the memory section was measured with the package's old neuron (before ALGORITHM_VERSION 2); "
        "rerun `python -m benchmarks memory`"]
    table = pf.machine_table(bench).set_index("benchmark")
    assert list(table.index) == list(pf.SECTIONS)
    assert table.loc["neuron", "measured"] == "2026-01-02 03:04 UTC" and table.loc["neuron", "minutes"] == 2.5
    assert table.loc["book", "measured"] == "not measured" and math.isnan(table.loc["book", "minutes"])
    assert pf.rows_frame(bench, "book").empty and len(pf.rows_frame(bench, "neuron")) == 8
    # as the chapter shows it: load averages (1, 5 and 15 minutes) as three values, not a shape
    shown = plotting.show_table(pf.machine_table(bench), decimals={"minutes": 1, "load average at start": 2,
                                                                   "at end": 2})  # as in the chapter
    cells = re.findall(r"<td[^>]*>(.*?)</td>", shown._repr_html_())
    assert cells[:6] == ["neuron", "2026-01-02 03:04 UTC", "2.5", pf.machine_text(section()),
                         "0.50, 0.50, 0.50", "1.00, 1.00, 1.00"]


def test_targets():
    assert pf.format_measured({"a": 0.123, "levels": 16}) == "a: 0.12, levels: 16"
    assert pf.format_measured({"max": 0.951, "worst_case": "fc T=1", "median": 0.2, "cases_over": 0,
                               "cases": 48}) == "max 0.95 (fc T=1), median 0.20, 0 of 48 cases over"
    assert pf.format_measured({"shape": {"saved": [4, 4]}}) == "see the memory section"
    assert pf.format_measured(None) == "None"
    res = {"targets": [{"id": "fast", "variant": "package", "threshold": 1, "measured": {"a": 0.5}, "met": True,
                        "description": "d"},
                       {"id": "small", "variant": "compiled", "threshold": 2, "measured": None, "met": None,
                        "description": "e"}]}
    table = pf.target_table(res)
    assert list(table["status"]) == ["met", "not measured"] and table["measured"].iloc[0] == "a: 0.50"
    assert pf.target_lines(res) == "fast" + " " * 29 + "met\nsmall" + " " * 28 + "not measured"


def test_neuron_tables_and_words():
    neuron = pd.DataFrame(NEURON)
    table = pf.neuron_table(neuron).set_index(["shape", "T"])
    assert list(table.columns) == ["package ms (Bs=4)", "snntorch ms", "package/snntorch Bs=1",
                                   "package/snntorch Bs=4"]
    assert table.loc[("b", 8)].tolist() == pytest.approx([2.0, 20.0, 0.4, 0.1])
    rec = pf.neuron_record(neuron)
    assert rec["neuron_by_T"] == {"a": {1: pytest.approx(0.65), 8: pytest.approx(0.2)},
                                  "b": {1: pytest.approx(1.5), 8: pytest.approx(0.25)}}
    assert (rec["neuron_faster"], rec["neuron_cases"]) == (6, 8)  # b at T = 1, Bs = 1 ties: not faster
    assert pf.neuron_lines(neuron).splitlines() == [
        "a                package/snntorch (median over Bs) by T: T=1: 0.65  T=8: 0.20",
        "b                package/snntorch (median over Bs) by T: T=1: 1.50  T=8: 0.25",
        "package faster than snntorch.Leaky in 6 of 8 cases"]
    assert pf.neuron_sentence(neuron) == (
        "The package's neuron is faster than `snntorch.Leaky` in 6 of the 8 cases. Its time ranges from 0.10 times "
        "snntorch's (a, $T = 8$, $B_s = 1$) to 2.00 times (b, $T = 1$, $B_s = 4$); the median over shapes and $B_s$ "
        "is 0.90 at $T = 1$ and 0.20 at $T = 8$.")
    assert pf.neuron_growth(neuron) == {"a": {"package": 1.5, "snntorch": 4.0}, "b": {"package": 0.5, "snntorch": 10.0}}
    assert pf.growth_lines(neuron).splitlines()[0] == (
        "a                neuron time T=8 / T=1 (Bs=4): package 1.5, snntorch.Leaky 4.0")


def test_fused_vs_eager():
    neuron = pd.DataFrame(NEURON)
    fused = pf.fused_vs_eager(neuron)
    assert fused == {"a": {1: pytest.approx(0.8), 8: pytest.approx(0.4)},
                     "b": {1: pytest.approx(0.9), 8: pytest.approx(0.3)}}
    assert pf.fused_lines(fused).splitlines()[1] == (
        "b                C loop / eager loop (median over Bs) by T: T=1: 0.90  T=8: 0.30")
    assert pf.fused_vs_eager(neuron.drop(columns="ours_vs_eager")) is None
    assert pf.fused_vs_eager(pd.DataFrame()) is None


def test_layer_lines_record_and_sentence():
    layer = pd.DataFrame(LAYER)
    assert list(pf.layer_at_T(layer)["shape"]) == ["a", "b"]
    assert pf.layer_record(layer) == {"a": {"vs_multistep": 0.25, "vs_ann": 1.2},
                                      "b": {"vs_multistep": 0.3, "vs_ann": 1.5}}
    assert pf.layer_lines(layer, TARGETS).splitlines()[1] == (
        "b                T=4: squeezed/multi-step 0.30 (target <= 0.5), squeezed/ANN 1.50 (target <= 1.5)")
    sentence = pf.layer_sentence(layer)
    assert sentence.startswith("At $T = 4$ the squeezed layer takes 0.25 to 0.30 times the multi-step layer's "
                               "time and 1.20 to 1.50 times the ANN floor's, over the 2 shapes.")
    # medians over the shapes of multi-step / ANN: T = 1 (1.2, 1.5) -> 1.35; T = 8 (9.6, 10) -> 9.80
    assert "goes from 1.35 to 9.80 times the ANN floor, that of the squeezed layer from 1.25 to 1.40" in sentence
    assert sentence.endswith("Over the 7 rounds of this run the squeezed layer's time at $T = 4$ per ANN-floor "
                             "time spread over a 1.10 to 1.30; b 1.40 to 1.60.")


def test_memory():
    memory = pd.DataFrame(MEMORY)
    caption, wide = pf.memory_table(memory)
    assert caption == "shape a, input [2, 3], Bs = 4, 16 levels"
    assert list(wide.index) == ["ours", "snntorch"]  # the order of VARIANTS, only those measured
    assert wide.loc["snntorch", ("saved", 2)] == 2.0 and wide.loc["ours", ("largest", 1)] == 1.0
    rec = pf.memory_record(memory)
    assert rec == {"memory_same_for_every_T": True, "memory_largest": 1.5,
                   "memory_saved": {"a": {1: 4.0, 2: 4.0}, "b": {1: 4.0, 2: 4.0}}}
    assert pf.memory_lines(memory).splitlines() == [
        "ours           saved by T: 4.00 4.00   peak by T: 5.0 -",
        "snntorch       saved by T: 1.00 2.00   peak by T: 9.0 11.0",
        "shared neuron: saved bytes identical for every T on every shape: True",
        "largest saved tensor or allocation of the shared neuron: 1.50 input-sized tensors (16 levels)"]
    memory.loc[5, "saved"] = 5.0
    assert pf.memory_record(memory)["memory_same_for_every_T"] is False


def test_times_book_and_stage():
    bench = {"epoch": {"config": {"arch": "cnn", "dataset": "mnist"}, "epoch_s": 5, "wall_s": 5.54, "repeats": 3,
                       "threads": 2},
             "meter": {"arch": "sew", "wst": "8/1/4", "cold_s": 0.25, "warm_s": 0.003, "macs_g": 3.66381,
                       "repeats": 5},
             "book": {"wall_s": 61.5, "source": "HEAD " + "0" * 40, "ok": False, "checkout_s": 0.31,
                      "notebooks": [{"notebook": "01", "seconds": 20.0, "share_percent": 40.0}], "sphinx_s": 10.0,
                      "build_s": 50.0}}
    times = pf.times_table(bench)
    assert list(times["detail"]) == ["whole train() call 5.5 s; median of 3; 2 thread(s)",
                                     "warm (cached) 3.0 ms; 3.6638 G MACs; median of 5",
                                     "HEAD 000000000000, FAILED; 1 notebook(s); checkout 0.3 s"]
    assert pf.times_record(times) == {"one training epoch, cnn on mnist": 5.0,
                                      "meter sew at 224x224 (8/1/4), cold": 0.25,
                                      "book build from a clean checkout": 61.5}
    assert pf.times_record(pf.times_table({})) == {}
    shares = pf.book_shares(bench["book"])
    assert shares.iloc[-1].tolist() == ["(jupyter-book / Sphinx)", 10.0, 20.0]
    assert len(pf.book_shares({**bench["book"], "sphinx_s": None})) == 1
    assert pf.book_missing(bench["book"], ["01"]) == ""
    assert pf.book_missing(bench["book"], ["01", "ledger", "05_fashion"]) == (
        "This build was measured before 05_fashion and ledger were added: it ran 1 of the 3 notebooks "
        "the book has now, so today's build takes longer (re-measure with python -m benchmarks book).")
    assert pf.book_missing(bench["book"], ["02", "01"]).startswith("This build was measured before 02 was added: it ran 1 of the 2")
    stage = {"config": {"arch": "resnet8", "width": 16, "dataset": "fashion", "train_limit": 12000},
             "epoch_s": 30.04, "floor_epoch_s": 10.0, "ratio": 3.004, "repeats": 3, "threads": 1, "device": "cpu",
             "profile_shares": {"neuron": 0.25, "other": 0.75}}
    assert pf.stage_sentence(stage) == (
        "One epoch of resnet8 (width 16) on fashion (12000 images): **30.0 s** with the quantized spiking layers, "
        "**10.0 s** for the float floor: **3.00 times** the floor (median of 3 interleaved runs each, 1 thread(s), "
        "cpu).")
    assert pf.stage_parts(stage).to_dict("records") == [{"part": "neuron", "share of the batch time (%)": 25.0},
                                                        {"part": "other", "share of the batch time (%)": 75.0}]


def test_compiled_variant():
    cn, cl = pf.compiled_tables(COMP)
    assert list(cn["shape"]) == ["a", "b"] and list(cl["compiled_vs_ann"]) == [1.1, 1.6]
    assert pf.compiled_record(COMP) == {"compiled_agrees": False,  # b differs by 2e-3
                                        "compiled_layer": {"a": {"package_vs_ann": 1.2, "compiled_vs_ann": 1.1},
                                                           "b": {"package_vs_ann": 1.4, "compiled_vs_ann": 1.6}}}
    assert pf.compiled_lines(COMP, TARGETS).splitlines() == [
        "a                T=4: time / ANN floor: package 1.20, compiled 1.10 (target <= 1.5)",
        "b                T=4: time / ANN floor: package 1.40, compiled 1.60 (target <= 1.5)",
        "compiled neuron: same output as the package and gradients within 1e-3 on every shape: False"]
    assert pf.compiled_sentence(COMP) == (
        "At $T = 4$ the compiled neuron alone takes 0.10 to 0.30 times `snntorch.Leaky`'s time, against 0.20 to "
        "0.25 for the package's neuron, and the layer with it 1.10 to 1.60 times the ANN floor (package: 1.20 to "
        "1.40), after 5 to 12 s of compilation per shape.")


def test_figures():
    fig = pf.plot_neuron_ratio(pd.DataFrame(NEURON), COMP, 1.0)
    assert [ax.get_title() for ax in fig.axes] == ["a", "b"]
    stars = [line for line in fig.axes[1].lines if line.get_marker() == "*"]
    assert [list(s.get_ydata()) for s in stars] == [[0.3]]  # the compiled point of shape b
    assert sorted(_legend_under_panels(fig)) == ["compiled variant, Bs=4", "package, Bs=1", "package, Bs=4",
                                                 "target 1.0"]
    plt.close(fig)
    fig = pf.plot_layer_time(pd.DataFrame(LAYER), None, 1.5)
    ax = fig.axes[0]
    assert list(ax.lines[0].get_ydata()) == pytest.approx([1.2, 4.8, 9.6])  # multi-step / ANN floor of a
    assert [list(line.get_ydata()) for line in ax.lines if line.get_marker() == "v"] == [[1.5]]
    assert _legend_under_panels(fig) == ["multi-step (snntorch)", "squeezed (package)", "ANN floor",
                                         "target at T=4"]
    plt.close(fig)
    rounds = pd.DataFrame(LAYER).assign(squeezed_vs_ann=[1.3, 1.1, 1.4, 1.2, 1.6, 1.5])  # per-round medians
    fig = pf.plot_layer_time(rounds, None, 1.5)
    assert list(fig.axes[0].lines[1].get_ydata()) == [1.3, 1.1, 1.4]  # the tables' ratio, not 12/10 ...
    plt.close(fig)


def _legend_under_panels(fig) -> list[str]:
    """The figure's one legend, each entry once, under every panel (it covers no data)."""
    assert all(ax.get_legend() is None for ax in fig.axes) and len(fig.legends) == 1
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    box = fig.legends[0].get_window_extent(r)
    assert all(box.y1 <= ax.get_tightbbox(r, bbox_extra_artists=[]).y0 + 0.5 for ax in fig.axes)
    return [t.get_text() for t in fig.legends[0].get_texts()]
