"""Chapter 4 (nb/04_quantizers.ipynb) run through papermill with small parameters.

The assertions read the JSON the notebook records and recompute what they can from first
principles: layer sizes of the default model, LSQ's scale and initial step, the bit loss's
gradient lambda * share, the grid of Algorithm 1, the reference code's range ratio, the running
maximum. A wrong notebook or a wrong adabit_lite.studies.quantizers makes them fail.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nbrun import assert_stops_on_bad_parameter, run_chapter  # noqa: E402

SMALL = dict(seed=1, warmup_steps=20, warmup_batch=16, n_images=8, n_batches=1, K=20, p=2.4)
LAYERS = ["conv2", "conv3", "fc"]
WEIGHTS = {"conv2": 32 * 64 * 9, "conv3": 64 * 64 * 9, "fc": 256 * 10}
FEATURES = {"conv2": 32 * 14 * 14, "conv3": 64 * 7 * 7, "fc": 256}  # per image, at each neuron's input
BATCH = 64  # TrainConfig().batch_size: the batches of the bit-gradient measurements
LN2 = math.log(2.0)
FIGURES = ["step_gradient", "bit_gradient", "grid_scores", "grid_steps", "bit_drops", "bit_gradient_balance",
           "reference_flaws"]
TABLES = ["elementwise_check", "layers", "realdata_check", "scale_at_init", "grid_search", "bit_drops",
          "bit_gradient_vs_bits", "running_extrema", "range_ratio", "paper_vs_book"]


def qmax(bits: int, signed: bool) -> int:
    return max(2 ** (bits - 1) - 1, 1) if signed else 2**bits - 1


@pytest.fixture(scope="module")
def chapter(tmp_path_factory):
    return run_chapter("04_quantizers", tmp_path_factory.mktemp("nb04"), **SMALL)


def by(rows, *keys):
    return {tuple(r[k] for k in keys): r for r in rows}


def test_parameters_and_elementwise_gradients(chapter):
    rec, _ = chapter
    assert rec["parameters"] == SMALL
    rows = rec["elementwise"]
    assert len(rows) == 8
    for r in rows:
        signed = r["quantizer"] == "weight"
        assert r["qmax"] == qmax(r["B"], signed)
        assert r["max |ds autograd - formula|"] < 1e-12 and r["max |dB autograd - formula|"] < 1e-12
        assert r["bit gradient only where clipped"] and r["clipped points"] > 0
    # the package's extra lower-tail bit gradient for unsigned inputs below -1/2
    u = np.arange(-3.0, 0.0, 0.05) + 0.0123
    assert rec["negative_spike_points"] == len(u)
    assert rec["negative_spike_bit_mismatch"] == int((u < -0.5).sum())
    assert rec["negative_spike_package_value"] == pytest.approx(-4 * LN2)


def test_layers_and_real_gradient_check(chapter):
    rec, _ = chapter
    lay = by(rec["layers"], "layer")
    assert sorted(lay) == sorted((n,) for n in LAYERS)
    for n in LAYERS:
        r = lay[(n,)]
        assert r["weights"] == WEIGHTS[n]
        assert r["input elements"] == SMALL["n_images"] * FEATURES[n]
        assert r["input min"] >= 0
    assert rec["min_potential_ratio"] >= -0.5
    assert 10 < rec["warmup_accuracy"] <= 100
    check = rec["realdata_check"]
    assert len(check) == 18
    for r in check:
        assert r["rel diff ds"] < 1e-4 and r["rel diff dB"] < 1e-4
        for d in ("ds", "dB"):  # |autograd - formula| / |formula|; where the formula is 0, 0 or 1
            a, f = r[f"dL/{d} autograd"], r[f"dL/{d} formula"]
            assert r[f"rel diff {d}"] == pytest.approx(abs(a - f) / abs(f) if f else float(a != 0), abs=1e-15)
        assert (r["dL/dB formula"] != 0) == (r["clipped"] > 0)
        if r["B"] == 1:  # the trained 4-bit steps at 1 bit: many values clip
            assert r["clipped"] > 0.01


def test_scale_and_bit_gradient_at_init(chapter):
    rec, _ = chapter
    rows = rec["scale_at_init"]
    assert len(rows) == 6
    n_w, n_x = sum(WEIGHTS.values()), sum(FEATURES.values())
    for r in rows:
        signed = r["quantizer"] == "weight"
        N = WEIGHTS[r["layer"]] if signed else BATCH * FEATURES[r["layer"]]
        assert r["N"] == N and r["B"] == 4 and r["qmax"] == qmax(4, signed)
        assert r["g"] == pytest.approx(1 / math.sqrt(N * qmax(4, signed)), rel=1e-12)
        share = WEIGHTS[r["layer"]] / n_w if signed else FEATURES[r["layer"]] / n_x
        assert r["lambda * share"] == pytest.approx(0.04 * share, rel=1e-12)
        assert r["bit-loss dL/dB"] == pytest.approx(0.04 * share, rel=1e-5)
        assert r["R without g"] == pytest.approx(r["LSQ balance R"] / r["g"], rel=1e-9)
        if r["clipped"] == 0:
            assert r["task dL/dB mean"] == 0
    assert max(r["clipped"] for r in rows) < 1e-3  # LSQ's initial step clips (almost) nothing


def test_grid_search_on_layer_inputs(chapter):
    rec, _ = chapter
    K = SMALL["K"]
    grid = by(rec["grid"], "layer", "quantizer", "B")
    lay = by(rec["layers"], "layer")
    assert len(grid) == 24
    for (n, kind, B), r in grid.items():
        q = qmax(B, kind == "weight")
        assert 1 <= r["k*"] <= K
        assert r["c*"] == pytest.approx(r["k*"] * r["R"] / K, rel=1e-9)
        assert r["grid step"] == pytest.approx(r["c*"] / q, rel=1e-12)
        assert r["grid / LSQ init"] == pytest.approx(r["grid step"] / r["LSQ init step"], rel=1e-12)
        assert r["package score / min score"] < 1 + 1e-4
        if kind == "spike":  # x >= 0, so mean|x| = mean x of the layer record
            assert r["LSQ init step"] == pytest.approx(2 * lay[(n,)]["input mean"] / math.sqrt(q), rel=1e-4)
    for n in LAYERS:
        assert grid[(n, "weight", 1)]["LSQ init step"] == pytest.approx(grid[(n, "weight", 2)]["LSQ init step"])
        assert grid[(n, "weight", 3)]["LSQ init step"] == pytest.approx(
            grid[(n, "weight", 4)]["LSQ init step"] * math.sqrt(7 / 3), rel=1e-9)
        assert grid[(n, "spike", 1)]["c*"] < grid[(n, "spike", 4)]["c*"]  # fewer bits, narrower range


def test_bit_drops(chapter):
    rec, _ = chapter
    grid = by(rec["grid"], "layer", "quantizer", "B")
    lay = by(rec["layers"], "layer")
    drops = rec["drops"]
    assert len(drops) == 36
    for r in drops:
        n, kind, b, bn = r["layer"], r["quantizer"], r["b"], r["b'"]
        trained = lay[(n,)]["S_q trained" if kind == "weight" else "Vth1 trained"]
        old = trained if b == 4 else grid[(n, kind, b)]["grid step"]
        assert r["step stale"] == pytest.approx(old, rel=1e-12)
        assert r["step renewed"] == pytest.approx(grid[(n, kind, bn)]["grid step"], rel=1e-12)
        assert r["step LSQ init"] == pytest.approx(grid[(n, kind, bn)]["LSQ init step"], rel=1e-12)
        if kind == "weight":
            ratio = 2 * qmax(bn, True) / (2 * qmax(b, True))
            assert r["step range ratio"] == pytest.approx(old * ratio, rel=1e-12)
            assert r["neuron T=2 MSE stale"] is None
        else:
            for label in ("stale", "renewed", "LSQ init"):
                assert r[f"neuron T=1 MSE {label}"] == pytest.approx(r[f"MSE {label}"], rel=1e-5)
            if b - bn >= 2:
                assert r["MSE stale"] > r["MSE renewed"]


def test_bit_gradient_against_the_bit_loss(chapter):
    rec, _ = chapter
    rows = rec["bit_gradient_vs_bits"]
    assert len(rows) == 4 * 2 * 6
    init = by(rec["scale_at_init"], "layer", "quantizer")
    for r in rows:
        assert r["lambda * share"] == pytest.approx(init[(r["layer"], r["quantizer"])]["lambda * share"])
        assert r["task / bit loss"] == pytest.approx(-r["task dL/dB mean"] / r["lambda * share"], rel=1e-9)
        if r["clipped"] == 0:
            assert r["task dL/dB mean"] == 0
    # at 1 bit with the 4-bit weight steps kept, most weights clip
    assert all(r["clipped"] > 0.3 for r in rows if r["B"] == 1 and r["steps"] == "stale" and r["quantizer"] == "weight")


def test_reference_code_flaws(chapter):
    rec, _ = chapter
    grid = by(rec["grid"], "layer", "quantizer", "B")
    lay = by(rec["layers"], "layer")
    running = rec["running_extrema"]
    assert len(running) == 3 * (3 + 4)
    for n in LAYERS:
        for seq in ("4->3->2->1", "4->2->1->2->1"):
            stages = sorted((r for r in running if r["layer"] == n and r["sequence"] == seq), key=lambda r: r["stage"])
            assert [r["B"] for r in stages] == [int(b) for b in seq.split("->")[1:]]
            assert stages[0]["step running extrema"] == pytest.approx(stages[0]["step default"], rel=1e-6)
            for k, r in enumerate(stages):
                assert r["step default"] == pytest.approx(grid[(n, "spike", r["B"])]["grid step"], rel=1e-12)
                # the running maximum of the chosen clipping ranges so far
                widest = max(grid[(n, "spike", s["B"])]["c*"] for s in stages[: k + 1])
                assert r["clip level running extrema"] == pytest.approx(widest, rel=1e-5)
                assert r["MSE ratio"] >= 1 - 1e-6
    ratio = rec["range_ratio"]
    assert len(ratio) == 9
    for n in LAYERS:
        steps = [r["step range ratio"] for r in sorted((r for r in ratio if r["layer"] == n), key=lambda r: -r["B"])]
        s = lay[(n,)]["S_q trained"]
        assert steps == pytest.approx([s * 6 / 14, s * 6 / 14 * 2 / 6, s * 6 / 14 * 2 / 6], rel=1e-9)
    assert all(r["MSE ratio"] > 1 for r in ratio)


def test_paper_vs_book_table(chapter):
    rec, fig_dir = chapter
    df = pd.read_csv(fig_dir / "04_quantizers_paper_vs_book.csv")
    assert list(df.columns) == ["claim", "paper", "this book", "setting"] and len(df) == 8
    book, setting = list(df["this book"]), list(df["setting"])
    points = sum(r["points"] for r in rec["elementwise"])
    assert f"autograd equals the formula at every point of {points} " in book[0]
    assert f"(smallest v/Vth1 here {rec['min_potential_ratio']:.2f})" in book[1]
    assert setting[2] == f"fresh model, first batch initialises the steps, {SMALL['n_batches']} batches of 64"
    assert setting[3] == (f"default chapter model (small CNN, mnist5k-noisy, 4/4/2) after {SMALL['warmup_steps']} SGD "
                          f"steps ({rec['warmup_accuracy']:.1f} % test); layer inputs of {SMALL['n_images']} images; "
                          f"seed {SMALL['seed']}")
    assert f"in all {len(rec['grid'])} cases" in book[5] and setting[5] == f"K = {SMALL['K']}, p = {SMALL['p']:g}"
    ratios = [r["MSE ratio"] for r in rec["range_ratio"]]
    assert f"MSE {min(ratios):.1f} to {max(ratios):.1f} x the grid search's" in book[7]


def test_figures_and_tables_written(chapter):
    rec, fig_dir = chapter
    assert sorted(Path(p).name for p in rec["figures"]) == sorted(f"04_quantizers_{f}.png" for f in FIGURES)
    for name in FIGURES:
        data = (fig_dir / f"04_quantizers_{name}.png").read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    for name in TABLES:
        assert len((fig_dir / f"04_quantizers_{name}.csv").read_text().splitlines()) >= 2


@pytest.mark.parametrize("name,value,words", [("warmup_steps", 0, "integer from 1"),
                                              ("p", 0.5, "number from 1 to 8")])
def test_bad_parameter_stops_with_one_line(tmp_path, name, value, words):
    assert_stops_on_bad_parameter("04_quantizers", tmp_path, name, value, words)
