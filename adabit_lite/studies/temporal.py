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

Text and figures.  The chapter's generated sentences (``order_sentence``, ``live_sentence``,
``verdict``, ``paper_claims``), its printed key numbers (``*_lines``) and its figures
(``plot_*``) are made here, so that the notebook only calls them.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from .. import plotting, sweeps
from ..data import bin_frames, make_dataset, make_moving_digits
from ..layers import QuantConfig
from ..models import build_model
from ..reproduce import p_text
from ..sweeps import temporal_groups, temporal_split
from ..train import TrainConfig, format_pairs, train
from ..wst import parse_wst
from . import load_stored, words
from .allocation import mean_history, welch

CHANCE = 50.0  # two classes, pairs kept together
NEAR_CHANCE = 5.0  # points: a full-precision mean at most this far above chance reads no order


CEILING = 5.0  # points: a fixed split this close to full precision leaves learned bits nothing to keep


def reads_order(full_precision) -> bool:
    """Whether the full-precision network reads the order at this T: its mean accuracy is more than
    ``NEAR_CHANCE`` points above ``CHANCE`` (elementwise on a Series)."""
    return full_precision > CHANCE + NEAR_CHANCE
PAPER_CHANCE = 10.0  # CIFAR10-DVS: ten classes
BIN_COLORS = ("#1f77b4", "#2ca02c", "#ff7f0e", "#8c564b")  # one per T, largest T first


def data_options(stream: dict, **more) -> str:
    """The moving-digits options ``stream`` (with ``more`` added or replacing them) as
    TrainConfig's data_options text "key=value,...", in their order."""
    return format_pairs({**stream, **more}.items())


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

    rows = []
    for n in turns:
        md = make_moving_digits(num_samples, T=frames, turns=n, **options)
        rows.append({"turns": n, **{f"T = {k}": pairs_identical(bin_frames(md.events, k))
                                    for k in bins}})
    return pd.DataFrame(rows)


def blindness_lines(table: pd.DataFrame) -> list[str]:
    """One printed line per number of turns of ``blindness_table``: the share of identical pairs
    at each T, as whole percents."""
    return [f"turns {int(row['turns'])}: identical pairs "
            + ", ".join(f"{c} {row[c]:.0%}" for c in table.columns if c != "turns")
            for _, row in table.iterrows()]


def plot_event_bins(pair: torch.Tensor, bins) -> "matplotlib.figure.Figure":
    """One pair of event streams (``pair``: ``[2, F, 2, H, W]``, clockwise then counterclockwise)
    binned into each T of ``bins``: two rows of panels per T, one per member, one panel per bin;
    ON events red, OFF events blue, each T scaled to its largest bin count."""

    T_max = max(bins)
    fig, axes = plotting.figure(ncols=T_max, nrows=2 * len(bins),
                                figsize=(1.1 * T_max, 1.15 * 2 * len(bins)), squeeze=False)
    for i, K in enumerate(bins):
        binned = bin_frames(pair[:2], K)  # [2, K, 2, H, W]: the pair, K bins, ON/OFF
        lim = float(binned.max())
        for member, name in ((0, "cw"), (1, "ccw")):
            row = axes[2 * i + member]
            for k, ax in enumerate(row):
                ax.set_xticks([])
                ax.set_yticks([])
                ax.grid(False)
                if k >= K:
                    ax.axis("off")
                    continue
                on, off = binned[member, k, 0] / lim, binned[member, k, 1] / lim
                ax.imshow(torch.stack([on, torch.zeros_like(on), off], -1).numpy())
            row[0].set_ylabel(f"T={K} {name}", fontsize=8)
    fig.suptitle("one pair per time bin: ON events red, OFF blue, both purple", fontsize=10)
    fig.subplots_adjust(top=0.95, hspace=0.15, wspace=0.1)
    return fig


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


def untrained_order_demo(stream: dict, frames: int, bins: int, seed: int, width: int,
                         pairs: int = 4, bits: int = 4) -> pd.DataFrame:
    """``order_demo`` on the first ``pairs`` test pairs of moving-digits (data seed 0, options
    ``stream``, ``frames`` frames summed into T = ``bins`` bins) fed to an untrained event CNN of
    ``width`` channels with ``bits``-bit weights and spikes at that T, its weights drawn after
    ``torch.manual_seed(seed)`` and its quantizer steps set by one training-mode pass."""

    data = make_dataset("moving-digits", seed=0, **stream, T=frames, bins=bins)
    x = data.test.tensors[0][:2 * pairs].transpose(0, 1).contiguous()  # [T, 2 pairs, 2, H, W]
    torch.manual_seed(seed)
    model = build_model("event-cnn", num_classes=2, in_channels=2, width=width, frames=bins,
                        cfg=QuantConfig(w_bits=bits, s_bits=bits, T=bins))
    with torch.no_grad():
        model.train()(x.transpose(0, 1))  # initialises the quantizer steps on this batch
    return order_demo(model, x)


def order_sentence(demo: pd.DataFrame) -> str:
    """What ``order_demo``'s table shows, in words: the share of the stem's per-step entries
    that differ within a pair, what is left of it after averaging over the steps (a squeezed
    layer), and the logits' difference when fed the time average."""
    d = demo.set_index("quantity")
    step_share = d.loc["stem output y_t (time-preserving)", "entries that differ"]
    sq = d.loc["stem output, mean over steps (squeezed)"]
    return (f"Per step, the stem's output differs between the members of a pair in {step_share:.0%} "
            f"of its entries. Averaged over the steps, as a squeezed layer would pass it on, it "
            f"differs in {sq['entries that differ']:.1%} of the entries beyond float round-off "
            f"(largest difference {sq['max |difference|']:.2g}, against a mean magnitude of "
            f"{sq['scale (mean |value|)']:.2g}): after one squeezed layer the order is gone, except "
            f"where the neurons' last residual differs. Fed the time average, the network gives the "
            f"two members logits that differ by "
            f"{d.loc['logits, fed the time average', 'max |difference|']:.1f}, i.e. identical outputs.")


# ------------------------------------------------------------------ the live control
LIVE_RUNS = {"fed the frames": False, "fed the time average": True}  # name: time_average_input


def live_configs(stream: dict, samples: int, epochs: int, /, frames: int, bins: int, seed: int,
                 **base) -> dict:
    """The live control's two TrainConfigs, by name: the full-precision event CNN on ``samples``
    samples of the stream (``frames`` frames in T = ``bins`` bins) for ``epochs`` epochs, fed the
    frames, or fed their time average at every step.  ``base``: other TrainConfig fields (width,
    batch_size...; an ``epochs`` there is replaced by ``epochs``)."""
    import dataclasses


    split = f"1/1/{bins}"
    cfg = TrainConfig(arch="event-cnn", dataset="moving-digits", seed=seed, init=split,
                      target=split, data_options=data_options(stream, num_samples=samples,
                                                              T=frames, bins=bins),
                      **{**base, "epochs": epochs}).full_precision_baseline()
    return {name: dataclasses.replace(cfg, time_average_input=averaged)
            for name, averaged in LIVE_RUNS.items()}


def live_control(stream: dict, samples: int, epochs: int, /, frames: int, bins: int, seed: int,
                 **base) -> dict[str, dict]:
    """Train the two runs of ``live_configs`` (same arguments), not stored: per run, the final
    test accuracy and the test accuracy after each epoch (rounded to 0.1)."""

    live = {}
    for name, cfg in live_configs(stream, samples, epochs, frames=frames, bins=bins, seed=seed,
                                  **base).items():
        r = train(cfg, None, progress=False)
        live[name] = {"test accuracy": r["metrics"]["accuracy"],
                      "per epoch": [round(h["test_accuracy"], 1) for h in r["history"]]}
    return live


def live_sentence(live: dict, epochs: int, samples: int) -> str:
    """The live control's two final accuracies (``live_control``), in words."""
    return (f"Fed the frames, the network reached {live['fed the frames']['test accuracy']:.1f} % "
            f"after {epochs} epoch{'s' * (epochs > 1)} on {samples} samples; fed their time "
            f"average, {live['fed the time average']['test accuracy']:.1f} % in every epoch.")


# ------------------------------------------------------------------ stored runs
def split_of(result: dict) -> str:
    """The run's target W/S/T as written in its parameters (a fixed run's split)."""
    return result["parameters"]["target"]


def at_chance(result: dict) -> bool:
    """The run's final test accuracy is exactly the two-class chance level (50 %)."""
    return result["metrics"]["accuracy"] == CHANCE


def load_groups(results_dir, seeds, bins, data: str, train_missing: bool = False, **base
                ) -> tuple[dict[int, dict[str, list[dict]]], int, int]:
    """The stored results of ``sweeps.temporal_groups(seeds, bins, data, **base)`` under
    ``results_dir``/temporal-budget (``studies.load_stored``; with ``train_missing`` the missing
    ones are trained first) as ``groups[T][method]`` = results over seeds, and how many runs were
    wanted and how many found."""
    from pathlib import Path

    folder = Path(results_dir) / "temporal-budget"
    stored = load_stored(temporal_groups(seeds, bins=tuple(bins), data=data, **base),
                         lambda method, cfg: folder, train_missing)
    return stored.groups, stored.wanted, stored.found


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


def table_lines(table: pd.DataFrame) -> list[str]:
    """``budget_table`` as printed key numbers: a header, then per (T, method) the split, mean
    W/S and Bit Budget (not for full precision), accuracy mean +- std, runs at chance and p."""
    lines = ["T, method (runs): split, mean W/S, Bit Budget, accuracy mean +- std, runs at chance, "
             "p vs fixed"]
    for _, r in table.iterrows():
        bits = "" if np.isnan(r["W"]) else f", W/S {r['W']:.2f}/{r['S']:.2f}, BB {r['bit budget']:.2f}"
        p = "" if np.isnan(r["p vs fixed"]) else f", {p_text(r['p vs fixed'])}"
        lines.append(f"T={r['T']} {r['method']} ({r['runs']}): {r['split']}{bits}, "
                     f"{r['accuracy']:.2f} +- {r['std']:.2f}, at chance {r['at chance']}{p}")
    return lines


def comparison_table(table: pd.DataFrame) -> pd.DataFrame:
    """Learned against fixed bits at each T (largest first) that has both in ``budget_table``:
    the split, both accuracies, learned - fixed, the Welch p, the learned runs' Bit Budget and the
    full-precision accuracy at that T (NaN where not run)."""
    t = table.set_index(["T", "method"])
    rows = []
    for T in sorted(table["T"].unique(), reverse=True):
        if (T, "fixed") not in t.index or (T, "learned") not in t.index:
            continue
        f, l = t.loc[(T, "fixed")], t.loc[(T, "learned")]
        full = t.loc[(T, "full precision"), "accuracy"] if (T, "full precision") in t.index else np.nan
        rows.append({"T": int(T), "split": f["split"], "fixed": f["accuracy"],
                     "learned": l["accuracy"], "learned - fixed": l["accuracy"] - f["accuracy"],
                     "p": l["p vs fixed"], "learned BB": l["bit budget"], "full precision": full})
    return pd.DataFrame(rows)


def comparison_lines(comparison: pd.DataFrame, control: list[dict], T: int) -> list[str]:
    """``comparison_table`` as printed key numbers, one line per T, and a last line: how many of
    the time-average control's runs (``control``, at T = ``T``) are at exactly 50 %."""
    lines = []
    for _, c in comparison.iterrows():
        lines.append(f"T={c['T']} ({c['split']}): fixed {c['fixed']:.2f}, learned {c['learned']:.2f} "
                     f"(BB {c['learned BB']:.2f}), difference {c['learned - fixed']:+.2f}, "
                     f"Welch {p_text(c['p'])}, full precision {c['full precision']:.2f}")
    lines.append(f"time-average control at T={T}: {sum(at_chance(r) for r in control)} of "
                 f"{len(control)} runs at exactly 50 %")
    return lines


def _joined(values, fmt: str = "") -> str:
    return words(format(v, fmt) for v in values)


def verdict(comparison: pd.DataFrame, control: list[dict], epochs: int, alpha: float = 0.05) -> str:
    """The section's finding in words: the T at which even full precision is within
    ``NEAR_CHANCE`` of chance (no order left to read), the learned and fixed bits where the order
    is kept with the differences significant at ``alpha`` (Welch), whether the fixed split with
    the most time steps is the best fixed split (runs of ``epochs`` epochs), and the time-average
    control's runs at 50 %."""
    if comparison.empty:
        return ("No stored runs yet for these parameters: the comparison appears once the sweep "
                "`temporal-budget` is stored (or with train_missing = True).")
    seen = comparison[reads_order(comparison["full precision"])]
    blind = comparison[~reads_order(comparison["full precision"])]
    parts = []
    if not blind.empty:
        parts.append(f"At T = {_joined(blind['T'])} every method is at or near chance (full "
                     f"precision {_joined(blind['full precision'], '.1f')} %), whatever the spike "
                     f"bits: the bins hold no order to read, and no bit width can bring it back.")
    if not seen.empty:
        rows = [f"T = {c['T']}: fixed {c['split']} {c['fixed']:.1f} %, learned {c['learned']:.1f} % "
                f"(Bit Budget {c['learned BB']:.1f}, Welch {p_text(c['p'])})" for _, c in seen.iterrows()]
        parts.append("Where the bins keep the order: " + "; ".join(rows) + ".")
        better = seen[(seen["learned - fixed"] > 0) & (seen["p"] < alpha)]
        worse = seen[(seen["learned - fixed"] < 0) & (seen["p"] < alpha)]
        if not better.empty:
            parts.append(f"The learned bits beat the fixed split at T = {_joined(better['T'])} "
                         f"(p < {alpha:g}).")
        if not worse.empty:
            parts.append(f"The fixed split beats the learned bits at T = {_joined(worse['T'])} "
                         f"(p < {alpha:g}).")
        if better.empty and worse.empty:
            parts.append(f"No difference between learned and fixed bits is significant at "
                         f"p < {alpha:g}.")
        best = seen.loc[seen["fixed"].idxmax()]
        if best["T"] != seen["T"].max():
            top = seen.loc[seen["T"].idxmax()]
            parts.append(f"Among the fixed splits, the most time steps are not the best here: "
                         f"{best['split']} reaches {best['fixed']:.1f} %, {top['split']} "
                         f"{top['fixed']:.1f} %, with 1-bit spikes and weights in {epochs} epoch{'s' * (epochs != 1)}; "
                         f"whether longer training closes that gap is not tested here.")
    if control:
        parts.append(f"The time-average control is at exactly 50 % in "
                     f"{sum(at_chance(r) for r in control)} of {len(control)} runs.")
    return " ".join(parts)


def plot_accuracy_vs_T(table: pd.DataFrame, shen: pd.DataFrame, yao: pd.DataFrame, bins,
                       budget: int) -> "matplotlib.figure.Figure":
    """Left: this book's accuracy (mean +- std over seeds) against T for the fixed split, the
    learned bits and full precision, the time-average control as a cross, the ticks labelled with
    the fixed splits of Bit Budget ``budget``.  Right: the papers' CIFAR10-DVS rows (Shen et al.'s
    fixed splits, Yao et al.'s learned bits) against T, with the full-precision origin."""

    colors = {"fixed": plotting.COLORS["uquant"], "learned": plotting.COLORS["lbw_renew"],
              "full precision": plotting.COLORS["fp"]}
    styles = {"full precision": dict(ls="--", lw=1, ms=3), "fixed": dict(lw=1.5, ms=4),
              "learned": dict(lw=1.5, ms=4)}
    fig, axes = plotting.figure(ncols=2, nrows=1, figsize=(10, 3.6))
    ax = axes[0]
    for method in ("full precision", "fixed", "learned"):
        rows = table[table["method"] == method].sort_values("T")
        if not rows.empty:
            ax.errorbar(rows["T"], rows["accuracy"], yerr=rows["std"].fillna(0), marker="o",
                        capsize=3, color=colors[method], label=method, **styles[method])
    ctrl = table[table["method"] == "time average"]
    if not ctrl.empty:
        ax.scatter(ctrl["T"], ctrl["accuracy"], marker="x", s=60, color=plotting.COLORS["control"],
                   label="time average (control)", zorder=3)
    ax.axhline(CHANCE, color=plotting.COLORS["paper"], ls="--", lw=1, label="chance")
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted(bins), [temporal_split(T, budget) for T in sorted(bins)])
    ax.set_xlabel(f"fixed split W/S/T (Bit Budget {budget})")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("this book: moving-digits, two turns")
    ax = axes[1]
    q, origin = _shen_quantized(shen), _shen_origin(shen)
    ax.plot(q["wst"].map(_T_of), q["cifar10_dvs"], marker="o", ms=4,
            color=plotting.COLORS["uquant"], label="Shen et al., fixed split (BB 16)")
    ours = _yao_ours(yao)
    ax.plot(ours["wst"].map(_T_of), ours["cifar10_dvs"], marker="o", ms=4,
            color=plotting.COLORS["lbw_renew"], label="Yao et al., learned")
    ax.axhline(float(origin["cifar10_dvs"]), color=plotting.COLORS["fp"], lw=1,
               label=f"full precision {origin['wst']}")
    ax.axhline(PAPER_CHANCE, color=plotting.COLORS["paper"], ls="--", lw=1,
               label="chance (10 classes)")
    ax.set_xscale("log", base=2)
    ax.set_xticks([1, 2, 4, 8, 16], ["1", "2", "4", "8", "16"])
    ax.set_xlabel("T")
    ax.set_title("the papers: Spikformer, CIFAR10-DVS")
    for ax in axes:  # each panel's own entries, under it
        plotting.legend_below(ax, fontsize=7)
    return fig


def plot_learned_bits(groups: dict[int, dict[str, list[dict]]], budget: int
                      ) -> "matplotlib.figure.Figure":
    """The learned runs' mean Bw (left) and Bs (right) after each epoch, mean over seeds, one
    line per T with its fixed split's bits (Bit Budget ``budget``) dashed in the same colour."""

    fig, axes = plotting.figure(ncols=2, nrows=1, figsize=(9.6, 3.4), sharey=True)
    palette = dict(zip(sorted(groups, reverse=True), BIN_COLORS))
    for T, by_method in groups.items():
        runs = by_method.get("learned", [])
        if not runs:
            continue
        h = mean_history(runs)
        tw, ts, _ = parse_wst(temporal_split(T, budget))
        for ax, key, value in ((axes[0], "W", tw), (axes[1], "S", ts)):
            ax.plot(h["epoch"], h[f"{key} mean"], marker="o", ms=3, color=palette[T], label=f"T={T}")
            ax.axhline(value, color=palette[T], ls="--", lw=1)
    for ax, key in ((axes[0], "w"), (axes[1], "s")):
        ax.set_xlabel("epoch")
        ax.set_title(f"learned runs: mean B{key}")
    axes[0].set_ylabel("bits (mean over seeds)")
    plotting.legend_below(fig, fontsize=8)
    return fig


# ------------------------------------------------------------------ the papers
def _T_of(wst: str) -> float:
    """T of a "W/S/T" text."""
    return parse_wst(str(wst))[2]


def _shen_origin(shen: pd.DataFrame) -> pd.Series:
    """Shen et al. table 3's full-precision row (16/1/16)."""
    return shen[shen["wst"].str.startswith("16/")].iloc[0]


def _shen_quantized(shen: pd.DataFrame) -> pd.DataFrame:
    """Shen et al. table 3's fixed splits (every row but the full-precision one)."""
    return shen[~shen["wst"].str.startswith("16/")]


def _yao_ours(yao: pd.DataFrame) -> pd.DataFrame:
    """Yao et al.'s own (learned-bits) rows of their temporal-constraint table."""
    return yao[yao["method"] == "Ours"]


def paper_vs_book(table: pd.DataFrame, shen: pd.DataFrame, yao: pd.DataFrame) -> pd.DataFrame:
    """The published CIFAR10-DVS rows (Shen et al. table 3, column cifar10_dvs; Yao et al.'s
    temporal-constraint table) beside ours, one row per T of ours and per T of Shen et al.'s
    fixed splits with the most and the fewest time steps (the two that ``paper_claims`` cites),
    largest first, plus the full-precision origin.  At each T: the paper's fixed split and learned
    row with that T ("not reported" where the paper has none), and our fixed, learned and
    full-precision means ("not run" where we have none).  ``table``: ``budget_table``'s output."""
    def ours(T, method):
        row = table[(table["T"] == T) & (table["method"] == method)]
        if row.empty:
            return "not run"
        r = row.iloc[0]
        label = {"fixed": r["split"], "full precision": f"T={T}"}.get(
            method, f"{r['W']:.2f}/{r['S']:.2f}/{r['T mean']:.0f}")
        spread = "" if math.isnan(r["std"]) else f" +- {r['std']:.1f}"
        return f"{label}: {r['accuracy']:.1f}{spread} ({r['runs']} runs)"

    def paper_row(df, T, col):
        hit = df[df["wst"].map(_T_of) == T]
        if hit.empty:
            return "not reported"
        r = hit.iloc[0]
        return f"{r['wst']}: {r[col]:.1f}"

    shen_q, yao_ours, origin = _shen_quantized(shen), _yao_ours(yao), _shen_origin(shen)
    rows = [{"T": "origin", "paper: fixed split (Shen)": f"{origin['wst']}: "
             f"{origin['cifar10_dvs']:.1f} (full precision)",
             "paper: learned (Yao)": "-", "ours: fixed split": "-", "ours: learned": "-",
             "ours: full precision": ours(int(table["T"].max()), "full precision")
             if not table.empty else "not run"}]
    cited = {_T_of(w) for w in shen_q["wst"]}
    for T in sorted({int(t) for t in table["T"].unique()} | {max(cited), min(cited)}, reverse=True):
        rows.append({
            "T": int(T), "paper: fixed split (Shen)": paper_row(shen_q, T, "cifar10_dvs"),
            "paper: learned (Yao)": paper_row(yao_ours, T, "cifar10_dvs"),
            "ours: fixed split": ours(T, "fixed"), "ours: learned": ours(T, "learned"),
            "ours: full precision": ours(int(T), "full precision")})
    return pd.DataFrame(rows)


def paper_claims(shen: pd.DataFrame, yao: pd.DataFrame, comparison: pd.DataFrame) -> str:
    """The two papers' claims on CIFAR10-DVS against this book's ``comparison_table``, as
    paragraphs: Shen et al.'s fall of the fixed split from the most to the fewest time steps and
    whether ours falls too (by more than ``NEAR_CHANCE`` points) over the T at which full precision
    reads the order (``reads_order``), and what the fixed splits score at the others; Yao et al.'s learned bits at
    their smallest T against Shen's, and the T at which ours are blind whatever the bits."""
    q = _shen_quantized(shen).assign(T=lambda d: d["wst"].map(_T_of))
    y = _yao_ours(yao).assign(T=lambda d: d["wst"].map(_T_of))
    s_hi, s_lo = q.loc[q["T"].idxmax()], q.loc[q["T"].idxmin()]
    y_lo = y.loc[y["T"].idxmin()]
    text = [f"**Shen et al.** At their Bit Budget of 16, accuracy on CIFAR10-DVS falls from "
            f"{s_hi['cifar10_dvs']:.1f} % at {s_hi['wst']} to {s_lo['cifar10_dvs']:.1f} % at "
            f"{s_lo['wst']}: spike bits do not replace time steps on event data."]
    if not comparison.empty:
        seen = comparison[reads_order(comparison["full precision"])]
        blind = comparison[~reads_order(comparison["full precision"])]
        parts = []
        if len(seen) > 1:
            hi, lo = seen.iloc[0], seen.iloc[-1]
            holds = hi["fixed"] > lo["fixed"] + NEAR_CHANCE
            parts.append(f"Here, over the T at which full precision reads the order, the fixed splits go "
                         f"from {hi['fixed']:.1f} % at {hi['split']} to {lo['fixed']:.1f} % at "
                         f"{lo['split']}: " + ("the direction holds." if holds else
                                               "the fall does not show (see the table above)."))
        if not blind.empty:
            parts.append(f"At T = {_joined(blind['T'])} the fixed splits score "
                         f"{_joined(blind['fixed'], '.1f')} %, at chance with full precision: this task "
                         "was built so that bins spanning whole turns carry nothing, so there the task "
                         "decides, not the split. On CIFAR10-DVS the shape of the summed events still "
                         f"tells the class, so their T = 1 row stays far above the {PAPER_CHANCE:.0f} % "
                         "chance.")
        if parts:
            text.append(" ".join(parts))
    text.append(f"**Yao et al.** Their learned bits keep {y_lo['cifar10_dvs']:.1f} % at {y_lo['wst']}, "
                f"where Shen's fixed split has {s_lo['cifar10_dvs']:.1f} %. On CIFAR10-DVS, then, most "
                f"labels can be read without the order of the events, and the fixed split's fall at "
                f"small T is not only lost order.")
    if not comparison.empty:
        blind = comparison[~reads_order(comparison["full precision"])]
        if not blind.empty:
            text.append(f"Here no allocation can do that at T = {_joined(blind['T'])}: "
                        f"learned bits score {_joined(blind['learned'], '.1f')} % there. "
                        f"Where the order is kept, the comparison of learned and fixed bits at the "
                        f"same target is the one in the section above.")
    return "\n\n".join(text)


# ------------------------------------------------------------------ the chapter's parameters
from .. import params as _p  # noqa: E402

#: the stored sweep's data options and training settings: the defaults of the chapter's parameters
_DATA = TrainConfig(data_options=sweeps.TEMPORAL_DATA).dataset_options()
_BASE = sweeps.TEMPORAL_BASE

# nb/08_temporal.ipynb's parameters (its validation cell: ``params.check(PARAMETERS, globals())``)
PARAMETERS = _p.declare(
    _p.results_dir("stored sweep results: results/temporal-budget"),
    _p.seeds("seeds of every setting in the tables"),
    _p.Param("bins", "choice", list(sweeps.TEMPORAL_BINS), "time bins T of the 8-frame event stream (each must divide 8)",
             choices=(8, 4, 2, 1), many=True, note="dividing the 8 frames and the Bit Budget 8"),
    _p.Param("num_samples", "int", _DATA["num_samples"], "samples of the event stream data set: 500 pairs, 800 train and "
             "200 test", low=20, high=10**6, even=True),
    _p.Param("turns", "int", _DATA["turns"], "turns of the digit in the 8 frames", low=1, high=3,
             note="less than half of the 8 frames"),
    _p.Param("canvas", "int", _DATA["canvas"], "canvas side in pixels", low="digit_size + 8", high=512),
    _p.Param("digit_size", "int", _DATA["digit_size"], "digit side in pixels", low=8, high=256),
    _p.Param("width", "int", _BASE["width"], "channel width of the event CNN stem", low=1),
    _p.Param("epochs", "int", _BASE["epochs"], "epochs of every stored run", low=1, high=1000),
    _p.Param("batch_size", "int", _BASE["batch_size"], "batch size of every stored run", low=1),
    _p.Param("lr_bits", "float", _BASE["lr_bits"], "learning rate of the bit latents (raised for these short runs)",
             low=0, open_low=True),
    _p.train_missing(),
    _p.Param("live_samples", "int", 400, "samples of the live control runs (pairs, so even)",
             low=20, high=100_000, even=True),
    _p.Param("live_epochs", "int", 3, "epochs of the live control runs", low=1, high=100),
    _p.fig_dir(),
    _p.record_path("08_temporal"),
)
