"""Temporal data (chapter 8): what binning does to the event task, what a squeezed layer passes on,
and the tables of the stored sweep ``temporal-budget`` (sweeps.temporal_budget).

Pairs.  ``moving-digits`` holds its samples in (clockwise, counterclockwise) pairs 2i, 2i+1 whose
time averages are equal (data.py).  A model that sees only a function of the time average gives
both members the same output and is right on exactly one of them: 50 % on any test set that keeps
pairs together.  ``pairs_identical`` counts the pairs whose whole input (every frame) is equal,
which happens after binning when a bin spans whole turns.

Tables.  A group is the stored results of one setting (one T and one method) over seeds.
``budget_table`` gives one row per group: the split (the run's target W/S/T), the mean final W,
S, T and Bit Budget, S-ACE, accuracy mean and std over seeds, and the Welch p-value of the
accuracy against the fixed split at the same T (studies.allocation.welch).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from .allocation import welch

CHANCE = 50.0  # two classes, pairs kept together


# ------------------------------------------------------------------ the data
def pairs_identical(events: torch.Tensor) -> float:
    """Fraction of pairs (2i, 2i+1) of ``[N, T, ...]`` samples whose inputs are exactly equal."""
    if events.shape[0] % 2:
        raise ValueError("events must hold whole pairs (an even number of samples)")
    a, b = events[0::2], events[1::2]
    same = (a == b).reshape(a.shape[0], -1).all(1)
    return float(same.double().mean())


def blindness_table(turns=(1, 2), bins=(8, 4, 2, 1), num_samples: int = 200, frames: int = 8,
                    **options) -> pd.DataFrame:
    """Per number of turns (rows) and of time bins (columns): the fraction of pairs whose binned
    inputs are identical, so that no model can tell their labels apart (``options``: the other
    options of data.make_moving_digits, e.g. canvas, digit_size)."""
    from ..data import bin_frames, make_moving_digits

    rows = []
    for n in turns:
        md = make_moving_digits(num_samples, T=frames, turns=n, **options)
        rows.append({"turns": n, **{f"T = {k}": pairs_identical(bin_frames(md.events, k))
                                    for k in bins}})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------ what a layer passes on
@torch.no_grad()
def order_demo(model: torch.nn.Module, x: torch.Tensor, rtol: float = 1e-5) -> pd.DataFrame:
    """Where the order of the frames survives, for a batch of whole pairs.

    ``model``: an EventCNN (models/temporal.py), used in eval mode as it is; ``x``: time-major
    ``[T, B, C, H, W]`` with the members of pair i at batch positions 2i and 2i+1.  For each
    quantity, the largest absolute difference between the two members of a pair (over all pairs
    and entries) and the fraction of entries that differ by more than float round-off (more than
    ``rtol`` times the largest magnitude of that quantity):

    - the input frames, and their mean over time;
    - the stem's output at every step (what a time-preserving layer passes on), and its mean over
      the steps (what a squeezed layer would pass on: one value per unit for all T frames);
    - the network's logits, fed the frames, and fed their time average (the control).
    """
    was_training = model.training
    model.eval()
    stem = model.features[0][0]
    averaged = model.time_average_input
    try:
        model.time_average_input = False
        y = stem(x)
        logits = model.forward_steps(x).mean(0)
        model.time_average_input = True
        logits_avg = model.forward_steps(x).mean(0)
    finally:
        model.time_average_input = averaged
        model.train(was_training)

    def diff(name, t, batch_axis):
        a = t.index_select(batch_axis, torch.arange(0, t.shape[batch_axis], 2))
        b = t.index_select(batch_axis, torch.arange(1, t.shape[batch_axis], 2))
        d = (a - b).abs()
        return {"quantity": name, "max |difference|": float(d.max()),
                "entries that differ": float((d > rtol * t.abs().max()).double().mean()),
                "scale (mean |value|)": float(t.abs().mean())}

    return pd.DataFrame([
        diff("input frames x_t", x, 1),
        diff("input, mean over time", x.mean(0), 0),
        diff("stem output y_t (time-preserving)", y, 1),
        diff("stem output, mean over steps (squeezed)", y.mean(0), 0),
        diff("logits, fed the frames", logits, 0),
        diff("logits, fed the time average", logits_avg, 0),
    ])


# ------------------------------------------------------------------ stored runs
def split_of(result: dict) -> str:
    """The run's target W/S/T as written in its parameters (a fixed run's split)."""
    return result["parameters"]["target"]


def at_chance(result: dict) -> bool:
    """The run's final test accuracy is exactly the two-class chance level (50 %)."""
    return result["metrics"]["accuracy"] == CHANCE



def budget_table(groups: dict[int, dict[str, list[dict]]], reference: str = "fixed"
                 ) -> pd.DataFrame:
    """One row per (T, method) of stored results (``groups[T][method]`` = results over seeds):
    the split (target W/S/T), mean final W, S, T and Bit Budget, S-ACE (M), accuracy mean and
    std, the number of runs exactly at chance, and the Welch p-value of the accuracy against the
    ``reference`` method at the same T (NaN for the reference itself or when either has fewer
    than two runs or both have no spread)."""
    rows = []
    for T, methods in groups.items():
        ref = [r["metrics"]["accuracy"] for r in methods.get(reference, [])]
        for method, runs in methods.items():
            if not runs:
                continue
            acc = [r["metrics"]["accuracy"] for r in runs]
            m = [r["metrics"] for r in runs]
            full = all(r["parameters"].get("full_precision") for r in runs)

            def mean(key, scale=1.0):  # bits and costs mean nothing for a float network
                return math.nan if full else scale * float(np.mean([x[key] for x in m]))

            rows.append({
                "T": int(T), "method": method, "runs": len(runs),
                "split": "full precision" if full else split_of(runs[0]),
                "W": mean("W"), "S": mean("S"), "T mean": float(np.mean([x["T"] for x in m])),
                "bit budget": mean("bit_budget"), "S-ACE (M)": mean("s_ace_g", 1000.0),
                "accuracy": float(np.mean(acc)),
                "std": float(np.std(acc, ddof=1)) if len(acc) > 1 else math.nan,
                "at chance": int(sum(at_chance(r) for r in runs)),
                f"p vs {reference}": welch(acc, ref) if method != reference else math.nan,
            })
    columns = ["T", "method", "runs", "split", "W", "S", "T mean", "bit budget", "S-ACE (M)",
               "accuracy", "std", "at chance", f"p vs {reference}"]
    return pd.DataFrame(rows, columns=columns)


# ------------------------------------------------------------------ the papers
def _T_of(wst: str) -> float:
    return float(str(wst).split("/")[2])


def paper_vs_book(table: pd.DataFrame, shen: pd.DataFrame, yao: pd.DataFrame) -> pd.DataFrame:
    """The published CIFAR10-DVS rows (Shen et al. table 3, column cifar10_dvs; Yao et al.'s
    temporal-constraint table) beside ours, one row per T of ours (largest first) plus the
    full-precision origin.  At each T: the paper's fixed split and learned row with that T
    ("not reported" where the paper has none), and our fixed, learned and full-precision means.
    ``table``: ``budget_table``'s output."""
    def ours(T, method):
        row = table[(table["T"] == T) & (table["method"] == method)]
        if row.empty:
            return "not run"
        r = row.iloc[0]
        wst = r["split"] if method == "fixed" else f"{r['W']:.2f}/{r['S']:.2f}/{r['T mean']:.0f}"
        spread = "" if math.isnan(r["std"]) else f" +- {r['std']:.1f}"
        return f"{wst}: {r['accuracy']:.1f}{spread} ({r['runs']} runs)"

    def paper_row(df, T, col):
        hit = df[df["wst"].map(_T_of) == T]
        if hit.empty:
            return "not reported"
        r = hit.iloc[0]
        return f"{r['wst']}: {r[col]:.1f}"

    shen_q = shen[~shen["wst"].str.startswith("16/")]
    yao_ours = yao[yao["method"] == "Ours"]
    origin = shen[shen["wst"].str.startswith("16/")].iloc[0]
    def ours_fp(T):
        row = table[(table["T"] == T) & (table["method"] == "full precision")]
        if row.empty:
            return "not run"
        r = row.iloc[0]
        spread = "" if math.isnan(r["std"]) else f" +- {r['std']:.1f}"
        return f"T={T}: {r['accuracy']:.1f}{spread} ({r['runs']} runs)"

    rows = [{"T": "origin", "paper: fixed split (Shen)": f"{origin['wst']}: "
             f"{origin['cifar10_dvs']:.1f} (full precision)",
             "paper: learned (Yao)": "-", "ours: fixed split": "-", "ours: learned": "-",
             "ours: full precision": ours_fp(int(table["T"].max())) if not table.empty
             else "not run"}]
    for T in sorted(table["T"].unique(), reverse=True):
        rows.append({
            "T": int(T), "paper: fixed split (Shen)": paper_row(shen_q, T, "cifar10_dvs"),
            "paper: learned (Yao)": paper_row(yao_ours, T, "cifar10_dvs"),
            "ours: fixed split": ours(T, "fixed"), "ours: learned": ours(T, "learned"),
            "ours: full precision": ours_fp(int(T))})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------ the chapter's parameters
from .. import params as _p  # noqa: E402

# nb/08_temporal.ipynb's parameters (its validation cell: ``params.check(PARAMETERS, globals())``)
PARAMETERS = _p.declare(
    _p.results_dir("stored sweep results: results/temporal-budget"),
    _p.seeds("seeds of every setting in the tables"),
    _p.Param("bins", "choice", [8, 4, 2, 1], "time bins T of the 8-frame event stream (each must divide 8)",
             choices=(8, 4, 2, 1), many=True, note="dividing the 8 frames and the Bit Budget 8"),
    _p.Param("num_samples", "int", 1000, "samples of the event stream data set: 500 pairs, 800 train and "
             "200 test", low=20, high=10**6, even=True),
    _p.Param("turns", "int", 2, "turns of the digit in the 8 frames", low=1, high=3,
             note="less than half of the 8 frames"),
    _p.Param("canvas", "int", 16, "canvas side in pixels", low="digit_size + 8", high=512),
    _p.Param("digit_size", "int", 8, "digit side in pixels", low=8, high=256),
    _p.Param("width", "int", 8, "channel width of the event CNN stem", low=1),
    _p.Param("epochs", "int", 8, "epochs of every stored run", low=1, high=1000),
    _p.Param("batch_size", "int", 32, "batch size of every stored run", low=1),
    _p.Param("lr_bits", "float", 0.4, "learning rate of the bit latents (raised for these short runs)",
             low=0, open_low=True),
    _p.train_missing(),
    _p.Param("live_samples", "int", 400, "samples of the live control runs (pairs, so even)",
             low=20, high=100_000, even=True),
    _p.Param("live_epochs", "int", 3, "epochs of the live control runs", low=1, high=100),
    _p.fig_dir(),
    _p.record_path("08_temporal"),
)
