"""Chapter 3 (nb/03_neuron.ipynb) run through papermill with small parameters.

The assertions read the JSON the notebook records and recompute what they can without the
package: the neuron's spike counts in exact fractions, the refined neuron's error as rounding to the
grid Vth1/T, the level counts T + 1 and 2^T, the sign agreement and its Wilson interval (scipy).
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import binomtest

from nbrun import assert_stops_on_bad_parameter, run_chapter  # noqa: E402

SMALL = dict(dataset="digits", bits_list=[1, 2], T_list=[1, 2, 4], n_points=401, trace_T=6,
             T_serial_max=5, snn_n=2000, snn_T=8, width=8, train_steps=20, batch_size=32,
             grad_T=[1, 2], n_grad_batches=3, wide_batch=1, wide_channels=16)
FIGURES = ["traces", "rate_error", "bit_serial", "t_gradient"]
TABLES = ["traces", "rate_errors", "bit_serial", "snntorch", "squeezing", "mixed_T", "t_gradient",
          "t_gradient_agreement", "paper_vs_book"]
LAYERS = ["features.0.0", "features.1.0", "features.2.0", "fc"]


def exact_counts(x: float, bits: int, T: int, tau: int, firing: str) -> list[int]:
    """Spike counts of the neuron (Vth1 = 1) in exact rational arithmetic on the float's value."""
    x, v, out, counts = Fraction(x), Fraction(0), 0, []
    for _ in range(T):
        v = v / tau - out + x
        s = math.floor(v + Fraction(1, 2)) if firing == "round" else math.floor(v)
        out = min(max(s, 0), 2**bits - 1)
        counts.append(out)
    return counts


@pytest.fixture(scope="module")
def chapter(tmp_path_factory):
    return run_chapter("03_neuron", tmp_path_factory.mktemp("nb03"), **SMALL)


def test_parameters_and_traces(chapter):
    rec, _ = chapter
    assert {k: rec["parameters"][k] for k in SMALL} == SMALL
    assert len(rec["traces"]) == 6
    for key, counts in rec["traces"].items():
        name, x = key.split("|")
        tau, firing = (1, "round") if name.startswith("refined") else (2, "floor")
        assert counts == exact_counts(float(x), 2, SMALL["trace_T"], tau, firing), key


def test_rate_errors(chapter):
    rec, _ = chapter
    rows = rec["rate_errors"]
    assert len(rows) == 4 * len(SMALL["bits_list"]) * len(SMALL["T_list"])
    n = SMALL["n_points"]
    for r in rows:
        top = 2 ** r["Bs"] - 1
        x = (np.arange(n) + 0.5) / n * top
        if r["variant"].startswith("tau=1, round"):
            rr = np.round(x * r["T"]) / r["T"]  # nearest point of the grid Vth1/T (ties: same |error|)
            assert r["rmse"] == pytest.approx(np.sqrt(np.mean((rr - x) ** 2)), abs=1e-12)
            assert r["max |r-x|"] <= 1 / (2 * r["T"]) + 1e-12
        elif r["variant"] == "tau=1, floor":
            rr = np.floor(x * r["T"]) / r["T"]
            assert r["bias"] == pytest.approx(np.mean(rr - x), abs=1e-12)
            assert r["max |r-x|"] <= 1 / r["T"]
        elif r["T"] > 1:  # tau = 2: a shortfall that does not vanish with T
            assert r["bias"] < -0.1
        assert r["rmse best amplitude"] <= r["rmse"] + 1e-12


def test_bit_serial(chapter):
    rec, _ = chapter
    rows = rec["bit_serial"]
    assert [r["T = bit budget"] for r in rows] == list(range(1, SMALL["T_serial_max"] + 1))
    for r in rows:
        T = r["T = bit budget"]
        assert (r["neuron levels"], r["T-bit levels"], r["neuron Bs=2 levels"]) == (T + 1, 2**T, 3 * T + 1)
        assert r["neuron rmse"] == pytest.approx(1 / T / math.sqrt(12), rel=1e-3)
        assert r["T-bit rmse"] == pytest.approx(1 / (2**T - 1) / math.sqrt(12), rel=1e-2)


def test_snntorch(chapter):
    rec, _ = chapter
    rows = {(r["inputs"], r["snntorch"]): r for r in rec["snntorch"]}
    rand = [r for (inputs, _), r in rows.items() if inputs == "random"]
    grid = [r for (inputs, _), r in rows.items() if inputs != "random"]
    assert [r["elements with a mismatch"] for r in rand] == [0, 0, rand[2]["elements with a mismatch"]]
    assert rand[2]["elements with a mismatch"] > 0 and rand[0]["elements"] == SMALL["snn_n"]
    assert all(r["elements with a mismatch"] > 0 for r in grid)  # the >= vs > boundary shows on the grid


def test_squeezing(chapter):
    rec, _ = chapter
    rows = rec["squeeze"]
    assert {r["T"] for r in rows} == {2, max(SMALL["T_list"])}
    for r in rows:
        assert r["spikes shape"][0] == r["T"] and r["spikes shape"][1:] == r["input shape"]
        assert r["max diff float64"] <= 1e-13 * r["max |y|"]
        assert r["max diff float32"] <= 1e-5 * r["max |y|"]
        assert r["max diff integer codes"] == 0
    wide = rows[-1]
    assert wide["input shape"] == [SMALL["wide_batch"], SMALL["wide_channels"], 32, 32]


def test_mixed_T(chapter):
    rec, _ = chapter
    rows = rec["mixed_T"]
    assert [r["layer"] for r in rows] == LAYERS and [r["T"] for r in rows] == [2, 2, 3, 1]
    for r in rows:
        assert r["neuron input shape"] == r["neuron output shape"]  # no time axis, nothing padded
        assert r["max |r T/Vth1 - round(.)|"] < 1e-3
        if not r["signed"]:
            assert 1 <= r["distinct r values"] <= r["T"] * (2 ** r["Bs"] - 1) + 1
    assert 0 <= rec["mixed_T_accuracy"] <= 100 and rec["test_accuracy"] > 20  # digits: chance is 10 %
    assert 0 <= rec["mixed_T_changed_predictions"] <= 360  # digits: 360 test images
    assert rec["train_loss_last"] < rec["train_loss_first"]


def test_t_gradient(chapter):
    rec, _ = chapter
    tg = rec["t_gradient"]
    rows = tg["rows"]
    assert tg["n"] == len(rows) == len(SMALL["grad_T"]) * tg["batches"] * len(LAYERS)
    assert tg["batches"] == SMALL["n_grad_batches"]
    agree = sum(1 for r in rows if np.sign(r["dL/dT_hat"]) == np.sign(r["L(T+1)-L(T)"]) and r["L(T+1)-L(T)"] != 0)
    assert agree == tg["agree"] and tg["fraction"] == pytest.approx(agree / tg["n"])
    assert all(bool(r["agree"]) == (np.sign(r["dL/dT_hat"]) == np.sign(r["L(T+1)-L(T)"]) and r["L(T+1)-L(T)"] != 0)
               for r in rows)
    ci = binomtest(agree, tg["n"]).proportion_ci(confidence_level=0.95, method="wilson")
    assert tg["ci"] == pytest.approx([ci.low, ci.high], abs=1e-9)
    assert tg["loss_falls"] == pytest.approx(np.mean([r["L(T+1)-L(T)"] < 0 for r in rows]))
    assert tg["surrogate_says_more_T"] == pytest.approx(np.mean([r["dL/dT_hat"] < 0 for r in rows]))
    assert rec["T_bound"] >= max(SMALL["grad_T"]) + 1


def test_figures_and_tables_written(chapter):
    rec, fig_dir = chapter
    assert sorted(Path(p).name for p in rec["figures"]) == sorted(f"03_neuron_{f}.png" for f in FIGURES)
    for name in FIGURES:
        data = (fig_dir / f"03_neuron_{name}.png").read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    for name in TABLES:
        assert len((fig_dir / f"03_neuron_{name}.csv").read_text().splitlines()) >= 2


@pytest.mark.parametrize("name,value,words", [
    ("grad_T", [0, 1], "integers from 1 to 8"),
    ("device", "tpu", "cpu or an available CUDA device"),
    ("dataset", "cifar10", "digits, mnist5k, mnist5k-noisy"),
])
def test_bad_parameter_stops_with_one_line(tmp_path, name, value, words):
    assert_stops_on_bad_parameter("03_neuron", tmp_path, name, value, words)
