"""Adaptive bit allocation in training: summaries of stored runs (chapters 5 and 6).

A run "ends within tol of the target" when every one of its final mean W, S and T lies within
``tol`` (default 0.3) of the target's.  Flips and renewals are the quantizers' cumulative counts
(train.py records them per layer after every epoch); an accuracy drop is an epoch whose test
accuracy fell more than ``train.DROP_POINTS`` below the epoch before (``train.accuracy_drops``).

Below the run summaries: what the two sections of the small stage show, as tables, lines of text,
verdict sentences and figures (``load_groups`` reads both sections' runs).  nb/05a_allocation.ipynb
compares U-quant, LBW, LBW + renewal, the allocation control and full precision at four targets
W/S/T; nb/05b_stability.ipynb compares the paper's rule with the remedies of ``sweeps.REMEDIES``
(flips of Bw and Bs, the criterion a remedy must meet).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from .. import plotting, sweeps
from ..ledger import MOST
from ..reproduce import p_text, welch
from ..wst import parse_wst
from . import load_stored

TOLERANCE = 0.3
PAPER_RULE = "LBW + renewal"  # the paper's method, unchanged
#: the paper's ablation-table column of each method
PAPER_COLUMNS = {"U-quant": "uquant", "LBW": "lbw", PAPER_RULE: "act_renew"}


def target_of(result: dict) -> tuple[float, float, float]:
    return parse_wst(result["parameters"]["target"])


def within_target(result: dict, tol: float = TOLERANCE, target: str | None = None) -> bool:
    """Final mean W, S and T each within ``tol`` of ``target`` ("W/S/T"; default: the run's own
    target, which for a control or U-quant run is its fixed bits)."""
    m = result["metrics"]
    wanted = target_of(result) if target is None else parse_wst(target)
    return all(abs(m[k] - t) <= tol for k, t in zip("WST", wanted))


def flip_totals(result: dict) -> dict[str, int]:
    """Total weight and spike bit flips and renewals over all layers, at the end of the run."""
    counts = result["metrics"]["renewals"]
    return {k: sum(layer[k] for layer in counts.values())
            for k in ("w_flips", "s_flips", "w_renewals", "s_renewals")}


def drop_epochs(result: dict) -> list[int]:
    """The epochs (1-based) at which the run's test accuracy fell more than ``train.DROP_POINTS``
    below the epoch before: its stored ``accuracy_drops`` (``train.accuracy_drops``)."""
    return [d["epoch"] + 1 for d in result["metrics"].get("accuracy_drops", [])]


def worst_drop(result: dict) -> float:
    """The largest fall of test accuracy from one epoch to the next (0 if it never fell)."""
    acc = [h["test_accuracy"] for h in result["history"]]
    return max([0.0] + [a - b for a, b in zip(acc, acc[1:])])


def per_epoch(result: dict) -> pd.DataFrame:
    """One row per epoch: mean W/S/T, test accuracy, and flips/renewals in that epoch (all layers)."""
    rows, before = [], {"w_flips": 0, "s_flips": 0, "w_renewals": 0, "s_renewals": 0}
    for h in result["history"]:
        total = {k: sum(layer[k] for layer in h["renewals"].values()) for k in before}
        rows.append({"epoch": h["epoch"] + 1, "W": h["W"], "S": h["S"], "T": h["T"],
                     "test_accuracy": h["test_accuracy"],
                     **{k: total[k] - before[k] for k in before}})
        before = total
    return pd.DataFrame(rows)


def layer_bits(result: dict) -> pd.DataFrame:
    """The final per-layer Bw, mean Bs, T, weight and input-feature counts, flips and renewals."""
    counts = result["metrics"]["renewals"]
    rows = []
    for layer in result["metrics"]["layers"]:
        rows.append({"layer": layer["name"], "kind": layer["kind"], "Bw": layer["Bw"],
                     "Bs": float(np.mean(layer["Bs"])), "T": layer["T"],
                     "weights": layer["weights"], "in_features": layer["in_features"],
                     **counts.get(layer["name"], {})})
    return pd.DataFrame(rows)


def stability_table(runs: dict[str, list[dict]], reference: str | None = None,
                    tol: float = TOLERANCE, target: str | None = None) -> pd.DataFrame:
    """One row per group of runs (name -> stored results of one target and method, many seeds):
    the runs that failed (``train.blew_up``: stored as outcomes, counted in every mean; the column
    is shown only where one did), the fraction within ``tol`` of ``target`` (default: each run's
    own), mean flips and renewals per run, the worst and the
    number of > 5-point accuracy drops, final accuracy (mean, std) and, against ``reference``,
    the Welch p-value of the accuracy difference."""
    ref = [r["metrics"]["accuracy"] for r in runs.get(reference, [])]
    rows = []
    for name, group in runs.items():
        if not group:
            continue
        acc = [r["metrics"]["accuracy"] for r in group]
        totals = pd.DataFrame([flip_totals(r) for r in group]).mean()
        rows.append({
            "method": name, "runs": len(group),
            "failed": sum(bool(r.get("failure")) for r in group),
            "within target": float(np.mean([within_target(r, tol, target) for r in group])),
            "W": float(np.mean([r["metrics"]["W"] for r in group])),
            "S": float(np.mean([r["metrics"]["S"] for r in group])),
            "T": float(np.mean([r["metrics"]["T"] for r in group])),
            "Bw flips": totals["w_flips"], "Bs flips": totals["s_flips"],
            "renewals": totals["w_renewals"] + totals["s_renewals"],
            "runs with a drop > 5": sum(bool(drop_epochs(r)) for r in group),
            "worst drop": max(worst_drop(r) for r in group),
            "accuracy": float(np.mean(acc)), "std": float(np.std(acc, ddof=1)) if len(acc) > 1
            else math.nan,
            "p vs " + (reference or "-"): welch(acc, ref) if reference and name != reference
            else math.nan,
        })
    table = pd.DataFrame(rows)
    if "failed" in table and not table["failed"].any():
        table = table.drop(columns="failed")  # shown only where a run failed
    return table


def comparison_table(runs: dict[str, list[dict]], reference: str | None = "U-quant",
                     target: str | None = None, tol: float = TOLERANCE) -> pd.DataFrame:
    """``stability_table``'s rows (on target, mean W/S/T, flips, accuracy, Welch p against
    ``reference``) with the meter's cost beside them: mean Bit Budget, S-ACE (M) and model size
    (kbit).  A full-precision group has no bits: its bit and cost columns are NaN."""
    table = stability_table(runs, reference, tol, target)
    bit_columns = ["within target", "W", "S", "T", "Bw flips", "Bs flips", "renewals"]
    for name, group in runs.items():
        if not group:
            continue
        row = table["method"] == name
        if group[0]["parameters"].get("full_precision"):
            table.loc[row, bit_columns] = math.nan
            cost = (math.nan, math.nan, math.nan)
        else:
            cost = tuple(float(np.mean([r["metrics"][k] for r in group]))
                         for k in ("bit_budget", "s_ace_g", "size_mbit"))
        table.loc[row, "bit budget"] = cost[0]
        table.loc[row, "S-ACE (M)"] = 1000 * cost[1]
        table.loc[row, "size (kbit)"] = 1000 * cost[2]
    return table


def settle_epoch(result: dict, tol: float = TOLERANCE, target: str | None = None) -> int | None:
    """The first epoch (1-based) from which the end-of-epoch means W, S and T stay within ``tol``
    of ``target`` (default: the run's own) until the end; None if the last epoch is not."""
    wanted = target_of(result) if target is None else parse_wst(target)
    inside = [all(abs(h[k] - t) <= tol for k, t in zip("WST", wanted)) for h in result["history"]]
    if not inside or not inside[-1]:
        return None
    first = len(inside)
    while first > 0 and inside[first - 1]:
        first -= 1
    return first + 1


def difference(methods: dict[str, list[dict]], a: str, b: str) -> dict:
    """Mean final accuracy of ``a`` minus ``b`` over their stored seeds, with the Welch p-value and
    the seed counts (difference NaN while either has no stored run)."""
    ra, rb = methods.get(a, []), methods.get(b, [])
    if not ra or not rb:
        return {"a": a, "b": b, "difference": math.nan, "p": math.nan, "runs a": len(ra),
                "runs b": len(rb), "failed a": 0, "failed b": 0}
    acc_a = [r["metrics"]["accuracy"] for r in ra]
    acc_b = [r["metrics"]["accuracy"] for r in rb]
    return {"a": a, "b": b, "difference": float(np.mean(acc_a) - np.mean(acc_b)),
            "p": welch(acc_a, acc_b), "runs a": len(ra), "runs b": len(rb),
            "failed a": sum(bool(r.get("failure")) for r in ra),
            "failed b": sum(bool(r.get("failure")) for r in rb)}


def settling(runs: list[dict], target: str, tol: float = TOLERANCE, share: float | None = None
             ) -> dict:
    """When the means settle (``allocation.settle_epoch``): runs, how many settle, the median epoch
    and its share of training; and how much of the fall in bits is done by the last epoch that
    ends within ``share`` of training (default: the paper's Figure 3 statement, the first eighth):
    that epoch and the mean ``reduction_share`` over runs, in % (NaN when no epoch ends so early)."""
    share = paper_early_share() if share is None else share
    epochs = [settle_epoch(r, tol, target) for r in runs]
    settled = [e for e in epochs if e is not None]
    total = runs[0]["parameters"]["epochs"] if runs else 0
    median = float(np.median(settled)) if settled else math.nan
    early = math.floor(share * total + 1e-9)
    done = [x for r in runs if early >= 1 and not math.isnan(x := reduction_share(r, early))]
    return {"runs": len(runs), "settled": len(settled), "median epoch": median,
            "share of training": median / total if settled else math.nan,
            "early epoch": early if early >= 1 else math.nan,
            "fall done early (%)": 100 * float(np.mean(done)) if done else math.nan}


def paper_early_share() -> float:
    """The paper's Figure 3 statement as a fraction: most of the fall in bits happens within this
    share of training (``paper_statements`` "fig3_bit_reduction")."""
    from ..paper import paper_statements

    return float(paper_statements().loc["fig3_bit_reduction", "number"]) / 100


def batch_trace(cfg) -> tuple[pd.DataFrame, dict]:
    """Train ``cfg`` (no files) and record, before every batch, the rounded mean W and S and each
    learned layer's Bw and mean Bs: the bit trajectory at batch resolution, where flips show.
    Returns (one row per batch, the run's result)."""
    from ..layers import quant_layers
    from ..loss import bit_stats
    from ..train import train

    rows = []

    def hook(epoch, batch, model):
        if not any(m.in_shape for _, m in quant_layers(model)):
            return  # before the first forward pass the feature counts are unknown
        st = bit_stats(model)
        row = {"epoch": epoch, "batch": batch, "W": st.W.item(), "S": st.S.item(), "T": st.T.item()}
        for name, m in quant_layers(model):
            row[f"Bw {name}"] = int(m.wq.bits[0])
            row[f"Bs {name}"] = m.neuron.mean_bits()
        rows.append(row)

    result = train(cfg, None, progress=False, on_batch=hook)
    df = pd.DataFrame(rows)
    df.insert(0, "step", range(len(df)))
    return df, result


def trace_flips(trace: pd.DataFrame) -> dict[str, int]:
    """Changes of each layer's Bw / Bs between consecutive batches of a ``batch_trace``."""
    cols = [c for c in trace.columns if c.startswith(("Bw ", "Bs "))]
    return {c: int((trace[c].diff().fillna(0) != 0).sum()) for c in cols}


def mean_history(group: list[dict], keys=("W", "S", "T", "test_accuracy"), start: bool = False
                 ) -> pd.DataFrame:
    """Per epoch: the mean and std over runs of ``keys`` (the paper's Figure 3 averaged over seeds);
    ``start``: with a first row, epoch 0, of the bits each run started from (its ``init``)."""
    frames = [pd.DataFrame([{k: h[k] for k in ("epoch",) + tuple(keys)} for h in r["history"]])
              for r in group]
    if start:
        frames = [pd.concat([pd.DataFrame([{"epoch": -1, **_start(r, keys)}]), f]) for r, f in
                  zip(group, frames)]
    stacked = pd.concat(frames)
    out = stacked.groupby("epoch").agg(["mean", "std"])
    out.columns = [f"{k} {s}" for k, s in out.columns]
    return out.reset_index().assign(epoch=lambda d: d["epoch"] + 1)


def _start(result: dict, keys) -> dict:
    """The run's bits before training (its ``init``); NaN for the other ``keys``."""
    init = dict(zip("WST", parse_wst(result["parameters"]["init"])))
    return {k: float(init.get(k, math.nan)) for k in keys}


def reduction_share(result: dict, epoch: int) -> float:
    """The share of the run's whole fall in mean bits done by the end of ``epoch`` (1-based):
    ``(B0 - B(epoch)) / (B0 - B(end))`` with ``B = W + S`` and ``B0`` its ``init``; NaN when the
    bits did not fall."""
    b0 = sum(parse_wst(result["parameters"]["init"])[:2])
    b = [h["W"] + h["S"] for h in result["history"]]
    fall = b0 - b[-1]
    return (b0 - b[epoch - 1]) / fall if fall > 1e-9 else math.nan


def mean_layer_bits(group: list[dict]) -> pd.DataFrame:
    """Per layer: mean and spread of the final Bw and Bs over runs, with its size (Figure 4)."""
    frames = pd.concat([layer_bits(r) for r in group])
    agg = frames.groupby("layer", sort=False).agg(
        Bw=("Bw", "mean"), Bw_min=("Bw", "min"), Bw_max=("Bw", "max"), Bs=("Bs", "mean"),
        Bs_min=("Bs", "min"), Bs_max=("Bs", "max"), weights=("weights", "first"),
        in_features=("in_features", "first"))
    return agg.reset_index()


def reachable_means(counts: list[int], low: int = 1, high: int = 6) -> np.ndarray:
    """Every weighted mean sum_l n_l B_l / sum_l n_l that whole bit widths B_l in [low, high] can
    give (``counts``: the layers' weight or input-feature counts n_l), sorted, without repeats."""
    n = np.asarray(counts, float) / float(np.sum(counts))
    grids = np.meshgrid(*[np.arange(low, high + 1)] * len(n), indexing="ij")
    means = sum(w * g for w, g in zip(n, grids)).ravel()
    return np.unique(np.round(means, 12))


def nearest_reachable(counts: list[int], target: float, k: int = 2, **bounds) -> list[float]:
    """The ``k`` reachable means closest to ``target`` on each side (below, then above)."""
    means = reachable_means(counts, **bounds)
    below, above = means[means < target], means[means >= target]
    return [float(v) for v in np.concatenate([below[-k:], above[:k]])]


def settling_verdict(settle: pd.DataFrame, epochs: int, paper_share: float | None = None,
                     method: str = "LBW + renewal") -> str:
    """Figure 3's statement (most of the fall in bits happens within the paper's first share of
    training) against a settling table (``settle_table``): per target "fall done early (%)", the
    mean share of each run's fall in W + S done by the last epoch within that share; then, as
    context, when the means settle within the tolerance ("median epoch" of the "settled" runs).
    ``paper_share``: a fraction, overriding the paper's number (tests)."""
    paper_share = paper_early_share() if paper_share is None else paper_share
    head = (f"Against Figure 3 (most of the fall in bits within the first {paper_share:.1%} of "
            "training): ")
    early = math.floor(paper_share * epochs + 1e-9)
    if early < 1:
        return head + (f"with {epochs} epochs no epoch ends within that share, so it cannot be "
                       "checked here.")
    fell = settle.dropna(subset=["fall done early (%)"])
    if fell.empty:
        return head + f"no run of {method} lowered its bits, so it cannot be checked here."
    done = fell["fall done early (%)"]
    most = fell.loc[done > MOST, "target"].tolist()
    rest = fell.loc[done <= MOST, "target"].tolist()
    text = (head + f"by the end of epoch {early} ({early / epochs:.0%} of training) {method} has "
            f"done {_range(done.min(), done.max())} % of its fall in mean Bw + Bs (mean over "
            "seeds, per target): ")
    text += ("most of it at every target, as the paper says" if not rest else
             "under half at every target, later than the paper says" if not most else
             f"most of it at {', '.join(most)}, as the paper says, and under half at {', '.join(rest)}")
    settled = settle[settle["settled"] > 0]
    if not settled.empty:
        share = settled["median epoch"] / epochs
        text += (f". The means come within {TOLERANCE} of the target and stay there after "
                 f"{_range(100 * share.min(), 100 * share.max())} % of training (median epoch per "
                 "target)")
    never = [f"{int(r.runs - r.settled)} of {int(r.runs)} at {r.target}"
             for r in settle.itertuples() if r.settled < r.runs]
    if never:
        text += f"; runs that never settled: {', '.join(never)}"
    flat = [t for t in settle["target"] if t not in set(fell["target"])]
    if flat:
        text += f". At {', '.join(flat)} the bits did not fall (the start is the target)"
    return text + "."


def _range(low: float, high: float) -> str:
    return f"{low:.0f}" if round(low) == round(high) else f"{low:.0f} to {high:.0f}"


def _allocation(result: dict) -> tuple:
    """The per-layer (name, Bw, Bs, T) of a run, Bs as a tuple (per time step)."""
    return tuple((layer["name"], layer["Bw"], tuple(np.atleast_1d(layer["Bs"]).tolist()), layer["T"])
                 for layer in result["metrics"]["layers"])


def shared_allocations(groups: dict[str, dict[str, list[dict]]], method: str) -> list[dict]:
    """Pairs of targets at which ``method`` ended at the same allocation: seed for seed, the run at
    one target has the same per-layer Bw, Bs and T as the run at the other (``groups``: target ->
    method -> stored results).  One dict per pair: the two targets, the runs compared, whether the
    accuracies match seed for seed too, the mean final W/S/T, accuracy (mean, sample std) and the
    band of the bit loss (``bit_tolerance``) of the runs."""
    by_seed = {t: {r["parameters"]["seed"]: r for r in m.get(method, [])} for t, m in groups.items()}
    targets = [t for t in groups if by_seed[t]]
    pairs = []
    for i, a in enumerate(targets):
        for b in targets[i + 1:]:
            seeds = sorted(set(by_seed[a]) & set(by_seed[b]))
            if not seeds or any(_allocation(by_seed[a][s]) != _allocation(by_seed[b][s]) for s in seeds):
                continue
            runs = [by_seed[a][s] for s in seeds]
            acc = [r["metrics"]["accuracy"] for r in runs]
            pairs.append({
                "targets": (a, b), "runs": len(seeds),
                "same accuracy": all(by_seed[a][s]["metrics"]["accuracy"] == by_seed[b][s]["metrics"]["accuracy"]
                                     for s in seeds),
                **{k: float(np.mean([r["metrics"][k] for r in runs])) for k in "WST"},
                "accuracy": float(np.mean(acc)),
                "std": float(np.std(acc, ddof=1)) if len(acc) > 1 else math.nan,
                "band": float(runs[0]["parameters"].get("bit_tolerance", 0.0)),
            })
    return pairs


def shared_allocation_note(groups: dict[str, dict[str, list[dict]]], method: str,
                           finer: float | None = None) -> str:
    """A sentence on the pairs of ``shared_allocations``: which targets ``method`` ends at the same
    allocation, how few mean bit widths whole bits give between them (``reachable_means`` of the
    layers' weight and input-feature counts), whether that allocation lies inside both targets'
    bands, and what follows.  ``finer``: the band at which another stage tests the same (named in
    the sentence when given).  Where no two targets share one: a sentence that says so (empty with
    runs at fewer than two targets)."""
    out = []
    for pair in shared_allocations(groups, method):
        a, b = pair["targets"]
        run = groups[a][method][0]
        layers = run["metrics"]["layers"]
        ta, tb = parse_wst(a), parse_wst(b)
        band = pair["band"]
        counts = {"W": [l["weights"] for l in layers], "S": [l["in_features"] for l in layers]}
        between = {k: reachable_means(c) for k, c in counts.items()}
        between = {k: int(np.sum((m >= min(x, y) - 1e-9) & (m <= max(x, y) + 1e-9)))
                   for (k, m), x, y in zip(between.items(), ta, tb)}
        inside = all(abs(pair[k] - x) <= band + 1e-9 and abs(pair[k] - y) <= band + 1e-9
                     for k, x, y in zip("WST", ta, tb))
        amid = all(min(x, y) - 1e-9 <= pair[k] <= max(x, y) + 1e-9 for k, x, y in zip("WS", ta, tb))
        acc = (f"the same accuracy seed for seed ({pair['accuracy']:.2f} +- {pair['std']:.2f})"
               if pair["same accuracy"] else
               f"an accuracy of {pair['accuracy']:.2f} +- {pair['std']:.2f} at {a}")
        text = (f"At {a} and at {b}, {method} ends at the same per-layer bits in each of its "
                f"{pair['runs']} seeds (mean W/S/T {pair['W']:.2f}/{pair['S']:.2f}/{pair['T']:.2f}), "
                f"with {acc}. With {len(layers)} learned layers, whole bit widths give only "
                f"{between['W']} mean Bw and {between['S']} mean Bs values between the two targets")
        if inside and band > 0:
            text += (f", and this allocation lies within {band:g} of both: the band stops pushing "
                     f"there for either target, so the runs of both stop at the same reachable allocation"
                     f"{' between them' if amid else ''}. On this stage the remedy does not allocate "
                     f"differently for the two targets")
        else:
            text += "; the two targets still end at the same allocation"
        if finer is not None:
            text += (f" (the deeper stage on the chapter's first page, with more layers and finer "
                     f"reachable means, tests this at {finer:g})")
        out.append(text + ".")
    if not out and sum(bool(m.get(method)) for m in groups.values()) > 1:
        return f"{method} ends at a different allocation at every target."
    return " ".join(out)


# ---------------------------------------------------------------------- reading a chapter's runs
def load_groups(results_dir, sweep: str, grouping, train_missing: bool = False,
                distinct: bool = True, **kwargs) -> tuple[dict, int, int]:
    """The stored results of the runs that ``grouping(results_dir, **kwargs)`` names, by target
    and method (``sweeps.allocation_groups`` or ``sweeps.bit_stability_groups``): "control" runs
    from the sweep ``<sweep>-control``, the others from ``sweep``.  ``train_missing``: train and
    store the missing runs first, the learned ones before the controls that fix their bits.
    Returns (groups, runs wanted, runs found), a run counted once per result key (``distinct``)
    or once per place it takes in the groups (a group shown at two targets counts twice)."""
    root = Path(results_dir)
    stored = load_stored(lambda: grouping(root, **kwargs),
                         lambda method, cfg: root / (f"{sweep}-control" if method == "control" else sweep),
                         train_missing, control=lambda method: method == "control", distinct=distinct)
    return stored.groups, stored.wanted, stored.found


def layer_tables(groups: dict[str, dict[str, list[dict]]], method: str) -> dict[str, pd.DataFrame]:
    """``mean_layer_bits`` of ``method`` at every target where it has stored runs."""
    return {t: mean_layer_bits(m[method]) for t, m in groups.items() if m.get(method)}


def layer_lines(layers: pd.DataFrame, counts: bool = True) -> str:
    """A ``mean_layer_bits`` table in one line: each layer's mean Bw and Bs (one decimal), with its
    weight and input-feature counts when ``counts``."""
    return "; ".join(f"{r.layer}" + (f" ({r.weights} w, {r.in_features} in)" if counts else "")
                     + f" Bw {r.Bw:.1f} Bs {r.Bs:.1f}" for r in layers.itertuples())


def _extreme(layers: pd.DataFrame, value: float, column: str, noun: str, end: str) -> str:
    """Whether ``value`` is the smallest ("fewest") or largest ("most") of ``column``, in words."""
    if layers[column].nunique() == 1:
        return f"the same {noun} as every other layer"
    extreme = layers[column].min() if end == "fewest" else layers[column].max()
    return f"the {end} {noun}" if abs(value - extreme) < 1e-9 else f"not the {end} {noun}"


def layer_ranks(layers: pd.DataFrame) -> dict[str, str]:
    """Figure 4's pattern in words on a ``mean_layer_bits`` table: whether the layer with the most
    weights has the fewest Bw ("largest_layer_w"), the one with the most input features the fewest
    Bs ("largest_layer_s"), and the last layer the most Bw ("last_layer_w"); each of them named."""
    big_w = layers.loc[layers["weights"].idxmax()]
    big_s = layers.loc[layers["in_features"].idxmax()]
    last = layers.iloc[-1]
    return {"largest_w": big_w["layer"],
            "largest_layer_w": _extreme(layers, big_w["Bw"], "Bw", "weight bits", "fewest"),
            "largest_s": big_s["layer"],
            "largest_layer_s": _extreme(layers, big_s["Bs"], "Bs", "spike bits", "fewest"),
            "last": last["layer"],
            "last_layer_w": _extreme(layers, last["Bw"], "Bw", "weight bits", "most")}


def ranks_sentence(ranks: dict[str, str]) -> str:
    """``layer_ranks`` as one line."""
    return (f"the layer with most weights ({ranks['largest_w']}) has {ranks['largest_layer_w']}; "
            f"the layer with most input features ({ranks['largest_s']}) has {ranks['largest_layer_s']}; "
            f"the last layer ({ranks['last']}) has {ranks['last_layer_w']}")


#: from this many learned layers on, ``plot_layer_bits`` lays its bars horizontally, layers named
MANY_LAYERS = 12


def _count(n: int) -> str:
    """A weight or feature count in a layer's label: 640, 2.3k."""
    return f"{n / 1000:.1f}k" if n >= 1000 else f"{n}"


def plot_layer_bits(tables: dict[str, pd.DataFrame] | pd.DataFrame, note: str = ""):
    """The paper's Figure 4: each learned layer's mean Bw and Bs over the seeds, the black lines
    spanning the smallest to largest seed, the layers in order (L1, L2, ...) with their weight and
    input-feature counts.  ``tables``: target -> ``mean_layer_bits``, a panel each ("target T"
    and ``note`` as its title), two a row; or one ``mean_layer_bits`` table, one panel titled
    ``note``.  With ``MANY_LAYERS`` layers or more the bars lie horizontally, the first layer on
    top, each layer named beside its counts."""
    panels = ({note: tables} if isinstance(tables, pd.DataFrame)
              else {f"target {t}{note}": lt for t, lt in tables.items()})
    layers = max((len(lt) for lt in panels.values()), default=1)
    flat = layers >= MANY_LAYERS
    width = 6.4 if flat else 1.0 + 0.9 * max(layers, 3)  # one panel's
    n = max(len(panels), 1)
    ncols = min(2, n) if width <= 5 or flat else 1
    nrows = -(-n // ncols)
    height = 1.0 + 0.3 * layers if flat else 2.6
    fig, axes = plotting.figure(ncols=ncols, nrows=nrows, squeeze=False, sharex=True, sharey=True,
                                figsize=(width * ncols, 0.6 + height * nrows))
    colors = {"Bw": plotting.COLORS["lbw"], "Bs": plotting.COLORS["lbw_renew"]}
    top = 1
    for ax, (title, lt) in zip(axes.flat, panels.items()):
        at = np.arange(len(lt))
        for off, (key, color) in zip((-0.2, 0.2), colors.items()):
            spread = [lt[key] - lt[f"{key}_min"], lt[f"{key}_max"] - lt[key]]
            bar, err = (ax.barh, "xerr") if flat else (ax.bar, "yerr")
            bar(at + off, lt[key], 0.4, color=color, capsize=3, **{err: spread},
                error_kw={"elinewidth": 1.2, "capthick": 1.2})
        top = max(top, int(np.ceil(max(lt["Bw_max"].max(), lt["Bs_max"].max()))))
        counts = [(_count(w), _count(f)) for w, f in zip(lt["weights"], lt["in_features"])]
        if flat:
            ax.set_yticks(at, [f"L{i + 1} {name} ({w} w, {f} in)"
                               for i, (name, (w, f)) in enumerate(zip(lt["layer"], counts))],
                          fontsize=8)
            ax.set_ylim(len(lt) - 0.5, -0.5)  # the first layer on top
            ax.grid(False, axis="y")
        else:
            ax.set_xticks(at, [f"L{i + 1}\n{w} w\n{f} in" for i, (w, f) in enumerate(counts)])
            ax.grid(False, axis="x")
        ax.set_title(title)
    for r, c in np.ndindex(axes.shape):
        if r * ncols + c >= len(panels):
            axes[r, c].set_visible(False)
            if r > 0:
                axes[r - 1, c].tick_params(labelbottom=True)  # the last panel of its column
    (axes[0, 0].set_xticks if flat else axes[0, 0].set_yticks)(range(0, top + 1))
    for ax in axes[-1, :] if flat else axes[:, 0]:
        (ax.set_xlabel if flat else ax.set_ylabel)("learned bits")
    handles = [Line2D([], [], color=c, lw=6) for c in colors.values()]
    handles.append(Line2D([], [], color="black", marker="_" if flat else "|", ms=11, mew=1.2, lw=0))
    fig.legend(handles, ["Bw (mean over seeds)", "Bs (mean over seeds)", "range over the seeds"],
               loc="lower center", ncol=3, bbox_to_anchor=(0.5, 1.0), fontsize=9)
    fig.tight_layout()
    return fig


def bit_budget_points(ax, runs: dict[str, list[dict]], marks: dict[str, tuple[str, str]],
                      alpha: float = 0.75) -> None:
    """Every run of each method in ``marks`` (name -> (marker, ``plotting.COLORS`` key)) as one
    point on ``ax``: its final test accuracy against the Bit Budget of its final bits."""

    for method, (marker, color) in marks.items():
        if runs.get(method):
            ax.scatter([r["metrics"]["bit_budget"] for r in runs[method]],
                       [r["metrics"]["accuracy"] for r in runs[method]], marker=marker,
                       color=plotting.COLORS[color], s=22, alpha=alpha, label=method)


# ---------------------------------------------------------------------- chapter 5a: four targets
#: the methods of nb/05a_allocation.ipynb in the order it shows them, with their plotting.COLORS keys
METHOD_COLORS = {"U-quant": "uquant", "LBW": "lbw", "LBW + renewal": "lbw_renew",
                 "control": "control", "full precision": "fp"}
#: the columns of a ``comparison_table`` that the chapter shows
SHOWN_COLUMNS = ["method", "runs", "W", "S", "T", "within target", "renewals", "bit budget",
                 "S-ACE (M)", "size (kbit)", "accuracy", "std", "p vs U-quant"]
#: the differences the chapter tests: (a, b) is the mean accuracy of a minus that of b
PAIRS = (("LBW + renewal", "U-quant"), ("LBW", "U-quant"), ("LBW + renewal", "LBW"),
         ("LBW + renewal", "control"), ("full precision", "LBW + renewal"))
#: the points of ``plot_accuracy_vs_bit_budget``: method -> (marker, plotting.COLORS key)
BUDGET_MARKS = {"U-quant": ("v", "uquant"), "LBW": ("o", "lbw"), "LBW + renewal": ("o", "lbw_renew"),
                "control": ("s", "control")}
ALPHA = 0.05  # significance level of the Welch tests


def comparison_lines(target: str, table: pd.DataFrame, reference: str = "U-quant") -> str:
    """``comparison_table`` of one target as text, a line per method (runs): mean W/S/T, the share
    of runs on target, Bit Budget (BB) and S-ACE (M), accuracy mean +- std and the Welch p against
    ``reference``; "-" where a method has no bits (full precision)."""
    if table.empty:
        return f"target {target}: no stored runs"
    p_column = f"p vs {reference}"
    lines = [f"target {target}: method (runs): W/S/T, on target, Bit Budget, S-ACE (M), "
             f"accuracy mean +- std, {p_column}"]
    for _, row in table.iterrows():
        wst = "-" if np.isnan(row["W"]) else f"{row['W']:.2f}/{row['S']:.2f}/{row['T']:.2f}"
        cost = ("-" if np.isnan(row["bit budget"]) else
                f"BB {row['bit budget']:.2f}, S-ACE {row['S-ACE (M)']:.1f}")
        on = "-" if np.isnan(row["within target"]) else f"{row['within target']:.0%}"
        p = "" if np.isnan(row[p_column]) else f", {p_text(row[p_column])}"
        lines.append(f"  {row['method']:>14} ({row['runs']}): {wst}, on target {on}, {cost}, "
                     f"{row['accuracy']:.2f} +- {row['std']:.2f}{p}")
    return "\n".join(lines)


def plot_accuracy_by_seed(groups: dict[str, dict[str, list[dict]]], targets):
    """Each method's final test accuracy at each of ``targets``, a panel per target, two a row:
    every seed a point, over them the mean with its 95 % t-interval as a black bar
    (``plotting.seed_comparison``); the methods are named once, on the left."""

    targets = list(targets)
    palette = {m: plotting.COLORS[c] for m, c in METHOD_COLORS.items()}
    order = [m for m in METHOD_COLORS if any(methods.get(m) for methods in groups.values())]
    ncols = min(2, max(len(targets), 1))
    nrows = -(-max(len(targets), 1) // ncols)
    fig, axes = plotting.figure(ncols=ncols, nrows=nrows, squeeze=False,
                                figsize=(3.7 * ncols, (0.8 + 0.32 * len(order)) * nrows))
    for ax, target in zip(axes.flat, targets):
        accuracy = {m: [r["metrics"]["accuracy"] for r in groups[target].get(m, [])] for m in order}
        plotting.seed_comparison(ax, accuracy, order=order, palette=palette,
                                 value_label="test accuracy (%)")
        ax.set_title(f"target {target}")
    for ax in axes.flat[len(targets):]:
        ax.set_visible(False)
    for ax in axes[:, 1:].flat:  # the same methods in every panel: named on the left only
        ax.tick_params(labelleft=False)
    fig.tight_layout()
    return fig


def differences_table(groups: dict[str, dict[str, list[dict]]], pairs=PAIRS,
                      alpha: float = ALPHA) -> pd.DataFrame:
    """Per target and pair (a, b) of ``pairs`` where both have at least two stored runs
    (``difference``): mean final accuracy of a minus b in points as "a - b", the Welch
    p-value, and whether p < ``alpha``."""

    rows = []
    for target, methods in groups.items():
        for a, b in pairs:
            if len(methods.get(a, [])) < 2 or len(methods.get(b, [])) < 2:
                continue
            d = difference(methods, a, b)
            rows.append({"target": target, "comparison": f"{a} - {b}", "difference": d["difference"],
                         "p": d["p"], "significant": bool(d["p"] < alpha)})
    return pd.DataFrame(rows, columns=["target", "comparison", "difference", "p", "significant"])


def difference_lines(differences: pd.DataFrame) -> str:
    """A ``differences_table`` as text, a line per row."""
    return "\n".join(f"target {d['target']}: {d['comparison']}: {d['difference']:+.2f} points "
                     f"(Welch {p_text(d['p'])}{', significant' if d['significant'] else ''})"
                     for _, d in differences.iterrows())


#: the differences that ``differences_verdict`` reads, with the words it names them by
VERDICT_COMPARISONS = {"LBW + renewal - U-quant": "LBW + renewal against U-quant",
                       "LBW + renewal - LBW": "renewal (LBW + renewal against LBW)",
                       "LBW + renewal - control": "learning the bits (against the control)"}


def differences_verdict(differences: pd.DataFrame, tables: dict[str, pd.DataFrame]) -> str:
    """A bullet per target of a ``differences_table``: the paper's method against U-quant, what
    renewal adds and what learning the bits adds over the control, each with its difference,
    p-value and verdict (better / worse where significant); where LBW + renewal renewed no step
    (``tables``: target -> ``comparison_table``), a note that renewal never fired there."""
    if differences.empty:
        return "Not enough stored runs to compare."
    lines = []
    for target in differences["target"].unique():
        d = differences[differences["target"] == target].set_index("comparison")
        parts = []
        for comparison, label in VERDICT_COMPARISONS.items():
            if comparison in d.index:
                row = d.loc[comparison]
                word = (("better" if row["difference"] > 0 else "worse") if row["significant"]
                        else "no significant difference")
                parts.append(f"{label}: {row['difference']:+.2f} points, {p_text(row['p'])} ({word})")
        line = f"- **{target}**: " + "; ".join(parts) + "."
        if tables[target].set_index("method")["renewals"].get("LBW + renewal", math.nan) == 0:
            line += (" Renewal never fired at this target (the spike bits start at their target, so "
                     "activation renewal switches off after the first epoch): LBW and LBW + renewal "
                     "differ only in that switch.")
        lines.append(line)
    return "Measured here:\n\n" + "\n".join(lines)


def plot_mean_bits(groups: dict[str, dict[str, list[dict]]], method: str = "LBW + renewal"):
    """The paper's Figure 3 for ``method``: per epoch the seeds' mean Bw, Bs and T (three panels,
    a colour per target, the band one standard deviation), from the start (epoch 0), each target
    dashed."""

    fig, axes = plotting.figure(ncols=3, nrows=1, figsize=(11, 3.2), sharey=False)
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#17becf"]
    for i, (target, methods) in enumerate(groups.items()):
        if not methods.get(method):
            continue
        h, color = mean_history(methods[method], start=True), palette[i % len(palette)]
        for ax, key, value in zip(axes, "WST", parse_wst(target)):
            mean, std = h[f"{key} mean"], h[f"{key} std"].fillna(0)
            ax.plot(h["epoch"], mean, marker="o", ms=3, color=color, label=f"target {target}")
            ax.fill_between(h["epoch"], mean - std, mean + std, color=color, alpha=0.15)
            ax.axhline(value, color=color, ls="--", lw=0.9)
    for ax, key in zip(axes, ("mean Bw", "mean Bs", "mean T")):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(f"{key} ({method})")
    axes[0].set_ylabel("bits / time steps")
    axes[2].legend(fontsize=8)
    return fig


def settle_table(groups: dict[str, dict[str, list[dict]]], method: str = "LBW + renewal",
                 tol: float = TOLERANCE) -> pd.DataFrame:
    """Per target where ``method`` has runs, ``settling`` (runs, how many end within
    ``tol`` and stay, the median epoch they stay from, its share of training) and the latest such
    epoch (``settle_epoch``)."""

    rows = []
    for target, methods in groups.items():
        runs = methods.get(method, [])
        if runs:
            settled = [e for r in runs if (e := settle_epoch(r, tol, target)) is not None]
            rows.append({"target": target, **settling(runs, target, tol),
                         "latest epoch": max(settled, default=math.nan)})
    return pd.DataFrame(rows, columns=["target", "runs", "settled", "median epoch",
                                       "share of training", "latest epoch", "early epoch",
                                       "fall done early (%)"])


def settle_lines(settle: pd.DataFrame, epochs: int, tol: float = TOLERANCE) -> str:
    """A ``settle_table`` as text, a line per target."""
    lines = []
    for s in settle.to_dict(orient="records"):
        text = f"target {s['target']}: {s['settled']} of {s['runs']} runs end within {tol:g} of the target"
        if s["settled"]:
            text += (f"; they stay there from epoch {s['median epoch']:g} on (median; latest "
                     f"{s['latest epoch']:.0f}) of {epochs}, i.e. after {s['median epoch'] / epochs:.0%} "
                     "of training")
        lines.append(text)
    return "\n".join(lines)


def plot_accuracy_vs_bit_budget(groups: dict[str, dict[str, list[dict]]]):
    """Every run of every target as a point (``bit_budget_points`` of ``BUDGET_MARKS``), the Bit
    Budget on a log2 axis, with the full-precision mean as a dotted line."""

    fig, ax = plotting.figure(figsize=(6.4, 3.8))
    bit_budget_points(ax, {m: [r for g in groups.values() for r in g.get(m, [])]
                           for m in BUDGET_MARKS}, BUDGET_MARKS)
    fp = next((m["full precision"] for m in groups.values() if m.get("full precision")), [])
    if fp:
        ax.axhline(np.mean([r["metrics"]["accuracy"] for r in fp]), color=plotting.COLORS["fp"],
                   ls=":", lw=1, label="full precision (mean)")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("Bit Budget (log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.legend(fontsize=8)
    return fig


def accuracy_ordering(values: dict[str, float]) -> str:
    """The methods from the best mean accuracy to the worst, "a > b", means equal to 0.01 points
    joined by "="; "-" without any."""
    ranked = sorted(values.items(), key=lambda kv: -kv[1])
    if not ranked:
        return "-"
    text = ranked[0][0]
    for (_, before), (name, value) in zip(ranked, ranked[1:]):
        text += (" = " if abs(before - value) < 0.005 else " > ") + name
    return text


def ordering_vs_paper(tables: dict[str, pd.DataFrame], paper_table: pd.DataFrame) -> pd.DataFrame:
    """Per target (``tables``: target -> ``comparison_table``): the paper's accuracy of U-quant,
    LBW and LBW + renewal (``paper_table``: its ablation table by target, the columns of
    ``PAPER_COLUMNS``), its learned W/S and the ``accuracy_ordering`` of the three, beside
    ours (accuracy mean +- std, the learned W/S/T of LBW + renewal, our ordering)."""

    rows = []
    for target, table in tables.items():
        t = table.set_index("method")
        ours = {m: t.loc[m, "accuracy"] for m in PAPER_COLUMNS if m in t.index}
        row = {"target": target}
        if target in paper_table.index:
            p = paper_table.loc[target]
            theirs = {m: float(p[c]) for m, c in PAPER_COLUMNS.items()}
            row.update({f"paper: {m}": v for m, v in theirs.items()})
            row[f"paper: learned W/S ({PAPER_RULE})"] = p["act_renew_wst"]
            row["paper: ordering"] = accuracy_ordering(theirs)
        else:
            row["paper: ordering"] = "not reported"
        row.update({f"ours: {m}": f"{t.loc[m, 'accuracy']:.2f} +- {t.loc[m, 'std']:.2f}" for m in ours})
        if PAPER_RULE in t.index:
            row[f"ours: learned W/S/T ({PAPER_RULE})"] = "/".join(f"{t.loc[PAPER_RULE, k]:.2f}"
                                                                  for k in "WST")
        row["ours: ordering"] = accuracy_ordering(ours)
        rows.append(row)
    return pd.DataFrame(rows)


def ordering_sentence(table: pd.DataFrame) -> str:
    """Where an ``ordering_vs_paper`` table's orderings agree and where they differ."""
    same = [r["target"] for _, r in table.iterrows() if r["paper: ordering"] == r["ours: ordering"]]
    differ = [r["target"] for _, r in table.iterrows()
              if r["paper: ordering"] not in ("not reported", r["ours: ordering"])]
    return (f"The paper's ordering of the three methods holds here at: {', '.join(same) or 'no target'}; "
            f"it does not at: {', '.join(differ) or 'no target'}. The significance of each difference "
            "is in section 2: several of them are within the seed-to-seed spread.")


# ---------------------------------------------------------------------- chapter 5b: the remedies
#: a colour per rule of ``sweeps.REMEDIES`` (in its order), for ``plot_remedy_history``
REMEDY_COLORS = dict(zip(sweeps.REMEDIES, ["#1f77b4", "#ff7f0e", "#8c564b", "#9467bd", "#bcbd22",
                                           "#17becf", "#2ca02c"]))
#: the groups set against the Bit Budget in ``plot_baselines``: method -> (marker, plotting.COLORS key)
BASELINE_MARKS = {"paper": ("o", "lbw"), sweeps.CHOSEN_REMEDY: ("o", "lbw_renew"),
                  "control": ("s", "control"), "U-quant 1/1/1": ("v", "uquant"),
                  "U-quant 2/2/1": ("^", "uquant")}
ON_TARGET_SHARE = 0.9  # the remedies' criterion: at least this share of the runs on target


def trace_table(traces: dict[str, tuple[pd.DataFrame, dict]]) -> pd.DataFrame:
    """A row per live run (``traces``: name -> (``batch_trace`` rows, its result)), named in
    "method": the changes of each layer's Bw and Bs between batches (``trace_flips``), their
    total, the final W/S/T and test accuracy."""
    table = pd.DataFrame([trace_flips(trace) for trace, _ in traces.values()])
    table["total"] = table.sum(axis=1)
    table["final W/S/T"] = [r["metrics"]["wst"] for _, r in traces.values()]
    table["test accuracy"] = [r["metrics"]["accuracy"] for _, r in traces.values()]
    table.insert(0, "method", list(traces))
    return table


def trace_record(table: pd.DataFrame) -> dict[str, dict]:
    """A ``trace_table`` as the chapter records it: per run its total flips, W/S/T and accuracy."""
    return {row["method"]: {"flips": int(row["total"]), "wst": row["final W/S/T"],
                            "accuracy": float(row["test accuracy"])}
            for row in table.to_dict(orient="records")}


def plot_traces(traces: dict[str, tuple[pd.DataFrame, dict]], target: str):
    """The rounded mean Bw and Bs before every batch of each live run (the paper's rule in the LBW
    colour, the other in the renewal colour), the target dashed."""

    fig, axes = plotting.figure(ncols=2, nrows=1, figsize=(9.6, 3.4), sharey=True)
    for ax, key, value in zip(axes, "WS", parse_wst(target)):
        for name, (trace, _) in traces.items():
            color = plotting.COLORS["lbw"] if name == "paper" else plotting.COLORS["lbw_renew"]
            ax.plot(trace["step"], trace[key], lw=0.9, color=color, label=name)
        ax.axhline(value, color=plotting.COLORS["paper"], ls="--", lw=1, label="target")
        ax.set_xlabel("training batch")
        ax.set_title(f"mean B{'w' if key == 'W' else 's'} (rounded)")
    axes[0].set_ylabel("bits")
    axes[0].legend()
    return fig


def stability_lines(target: str, table: pd.DataFrame) -> str:
    """A ``stability_table`` of one target as text, a line per method: share of runs on target,
    Bw / Bs flips and renewals per run, runs with a drop > 5 points, the worst drop, accuracy."""
    lines = [f"target {target}: method, runs on target, Bw / Bs flips per run, renewals per run, "
             "runs with a drop > 5, worst drop, accuracy mean +- std"]
    for _, row in table.iterrows():
        lines.append(f"  {row['method']:>22}: {row['within target']:.0%} of {row['runs']}, "
                     f"flips {row['Bw flips']:.0f} / {row['Bs flips']:.0f}, renewals {row['renewals']:.0f}, "
                     f"{int(row['runs with a drop > 5'])} with a drop, worst {row['worst drop']:.1f}, "
                     f"{row['accuracy']:.2f} +- {row['std']:.2f}")
    return "\n".join(lines)


def visited_means(runs: list[dict], target: str, skip: int = 2) -> dict[str, list[float]]:
    """The end-of-epoch mean Bw and Bs (to 0.01) that ``runs`` visited after their first ``skip``
    epochs, and the reachable means nearest the target's W and S (``nearest_reachable`` with the
    first run's weight and input-feature counts)."""
    layers = runs[0]["metrics"]["layers"]
    tw, ts, _ = parse_wst(target)
    seen = {k: sorted({round(h[k], 2) for r in runs for h in r["history"][skip:]}) for k in "WS"}
    return {"W_visited": seen["W"], "S_visited": seen["S"],
            "W_reachable": nearest_reachable([l["weights"] for l in layers], tw),
            "S_reachable": nearest_reachable([l["in_features"] for l in layers], ts)}


def visited_lines(target: str, visited: dict[str, list[float]], skip: int = 2) -> str:
    """``visited_means`` of the paper's runs as two lines."""
    near = {k: [round(v, 2) for v in visited[f"{k}_reachable"]] for k in "WS"}
    return (f"target {target}: the paper's runs visited mean Bw {visited['W_visited']} and mean Bs "
            f"{visited['S_visited']} (epochs {skip + 1} on)\n"
            f"  reachable means nearest the target: Bw {near['W']}, Bs {near['S']}")


def hidden_under(h: pd.DataFrame, later: dict[str, pd.DataFrame]) -> list[str]:
    """The curves drawn after ``h`` (``later``: name -> ``mean_history``, in drawing order) that
    cover every point of its W and S curves: the last one that repeats it whole, else the last
    one through each point; [] where a point of ``h`` shows."""
    whole = [m for m, g in later.items() if len(g) == len(h)
             and all(np.allclose(g[f"{k} mean"], h[f"{k} mean"]) for k in "WS")]
    if whole:
        return whole[-1:]
    tops = set()
    for k in "WS":
        for e, v in zip(h["epoch"], h[f"{k} mean"]):
            through = [m for m, g in later.items()
                       if np.isclose(g.set_index("epoch")[f"{k} mean"].get(e, np.nan), v)]
            if not through:
                return []
            tops.add(through[-1])
    return [m for m in later if m in tops]


def plot_remedy_history(by_method: dict[str, list[dict]], target: str):
    """Per epoch the seeds' mean Bw and Bs of every rule of ``REMEDY_COLORS`` at ``target``, the
    target dashed with the band of ``TOLERANCE`` shaded; a rule whose curves a later one covers is
    named in the legend (``hidden_under``), which sits below the axes."""


    fig, axes = plotting.figure(ncols=2, nrows=1, figsize=(9.6, 3.4), sharey=True)
    hist = {m: mean_history(by_method[m]) for m in REMEDY_COLORS if by_method.get(m)}
    for i, (method, h) in enumerate(hist.items()):
        under = hidden_under(h, dict(list(hist.items())[i + 1:]))
        label = f"{method} (under {', '.join(under)})" if under else method
        for ax, key in zip(axes, "WS"):
            ax.plot(h["epoch"], h[f"{key} mean"], marker="o", ms=3, color=REMEDY_COLORS[method],
                    label=label)
    for ax, key, value in zip(axes, "WS", parse_wst(target)):
        ax.axhline(value, color=plotting.COLORS["paper"], ls="--", lw=1)
        ax.axhspan(value - TOLERANCE, value + TOLERANCE, color=plotting.COLORS["paper"], alpha=0.1)
        ax.set_xlabel("epoch")
        ax.set_title(f"target {target}: mean B{'w' if key == 'W' else 's'}")
    axes[0].set_ylabel("bits (mean over seeds)")
    handles, labels = axes[0].get_legend_handles_labels()
    handles.append(Line2D([], [], color=plotting.COLORS["paper"], ls="--", lw=1))
    labels.append(f"target (shaded: within {TOLERANCE:g})")
    fig.tight_layout()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=2, fontsize=9)
    return fig


def plot_baselines(groups: dict[str, dict[str, list[dict]]]):
    """A panel per target: every run of ``BASELINE_MARKS``'s groups as a point, final test accuracy
    against Bit Budget (``bit_budget_points``)."""

    fig, axes = plotting.figure(ncols=len(groups), nrows=1, figsize=(4.8 * len(groups), 3.4),
                                sharey=True)
    axes = np.atleast_1d(axes)
    for ax, (target, by_method) in zip(axes, groups.items()):
        bit_budget_points(ax, by_method, BASELINE_MARKS, alpha=0.8)
        ax.set_xlabel("Bit Budget")
        ax.set_title(f"target {target}")
    axes[0].set_ylabel("test accuracy (%)")
    axes[-1].legend(fontsize=7)
    return fig


def baseline_summary(groups: dict[str, dict[str, list[dict]]], methods=tuple(BASELINE_MARKS)
                     ) -> pd.DataFrame:
    """Per target and method of ``methods`` with stored runs: runs, mean W/S/T, Bit Budget and
    S-ACE (M), accuracy mean and sample std."""
    rows = []
    for target, by_method in groups.items():
        for method in methods:
            runs = by_method.get(method, [])
            if not runs:
                continue
            acc = [r["metrics"]["accuracy"] for r in runs]
            rows.append({"target": target, "method": method, "runs": len(runs),
                         "W/S/T": "/".join(f"{np.mean([r['metrics'][k] for r in runs]):.2f}" for k in "WST"),
                         "bit budget": float(np.mean([r["metrics"]["bit_budget"] for r in runs])),
                         "S-ACE (M)": 1000 * float(np.mean([r["metrics"]["s_ace_g"] for r in runs])),
                         "accuracy": float(np.mean(acc)),
                         "std": float(np.std(acc, ddof=1)) if len(acc) > 1 else math.nan})
    return pd.DataFrame(rows)


def baseline_lines(summary: pd.DataFrame) -> str:
    """A ``baseline_summary`` as text, a line per row."""
    return "\n".join(f"target {r['target']}: {r['method']} ({r['runs']} runs): W/S/T {r['W/S/T']}, "
                     f"BB {r['bit budget']:.2f}, accuracy {r['accuracy']:.2f} +- {r['std']:.2f}"
                     for _, r in summary.iterrows())


def criterion_table(tables: dict[str, pd.DataFrame], methods, reference: str = "paper",
                    share: float = ON_TARGET_SHARE, alpha: float = ALPHA) -> pd.DataFrame:
    """The criterion set for a remedy, per target (``tables``: target -> ``stability_table`` with
    Welch p against ``reference``) and method of ``methods`` in the table: its share of runs on
    target, its runs with an accuracy drop > 5 points, whether it is worse than ``reference``
    (lower mean accuracy and p < ``alpha``), and "met": at least ``share`` on target, no drop and
    not worse."""
    rows = []
    for target, table in tables.items():
        t = table.set_index("method")
        for method in methods:
            if method not in t.index:
                continue
            row = t.loc[method]
            worse = bool(method != reference and row["accuracy"] < t.loc[reference, "accuracy"]
                         and row[f"p vs {reference}"] < alpha)
            drops = int(row["runs with a drop > 5"])
            rows.append({"target": target, "method": method, "within target": float(row["within target"]),
                         "runs with a drop > 5": drops, "worse": worse,
                         "met": bool(row["within target"] >= share and drops == 0 and not worse)})
    return pd.DataFrame(rows, columns=["target", "method", "within target", "runs with a drop > 5",
                                       "worse", "met"])


def criterion_lines(checks: pd.DataFrame, reference: str = "the paper's rule") -> str:
    """A ``criterion_table`` as text, a line per row."""
    return "\n".join(f"target {c['target']}, {c['method']}: on target {c['within target']:.0%}, "
                     f"runs with a drop > 5: {c['runs with a drop > 5']}, accuracy "
                     f"{'worse than' if c['worse'] else 'not worse than'} {reference} -> "
                     f"{'criterion met' if c['met'] else 'criterion not met'}"
                     for c in checks.to_dict(orient="records"))


def criterion_verdict(checks: pd.DataFrame) -> dict[str, dict[str, bool]]:
    """A ``criterion_table`` as method -> target -> criterion met."""
    verdict: dict[str, dict[str, bool]] = {}
    for c in checks.to_dict(orient="records"):
        verdict.setdefault(c["method"], {})[c["target"]] = bool(c["met"])
    return verdict


def remedy_sentence(verdict: dict[str, dict[str, bool]], tables: dict[str, pd.DataFrame],
                    reference: str = "paper") -> str:
    """The remedies' verdict in words: per target the share of ``reference``'s runs on target with
    its flips per run (``tables``: target -> ``stability_table``), and the remedies that meet the
    criterion at every target (``criterion_verdict``)."""
    rows = {t: tab.set_index("method").loc[reference] for t, tab in tables.items()
            if reference in set(tab["method"])}
    parts = [f"{row['within target']:.0%} of the runs at {t} ended on target ({row['Bw flips']:.0f} "
             f"weight-bit and {row['Bs flips']:.0f} spike-bit flips per run)" for t, row in rows.items()]
    text = f"With the paper's rule, {'; '.join(parts)}. " if parts else ""
    met = [m for m, by_target in verdict.items() if by_target and all(by_target.values())]
    if met:
        return text + f"The criterion holds at every target for: {', '.join(met)}."
    return text + "No remedy meets the criterion at every target (see the table above for what each reached)."


def remedies_vs_paper(tables: dict[str, pd.DataFrame], paper_table: pd.DataFrame, targets,
                      methods) -> pd.DataFrame:
    """A row per target of ``targets`` and method of ``methods`` in its ``stability_table``
    (``tables``): the paper's learned W/S, accuracy and U-quant accuracy at that target
    (``paper_table``: its ablation table by target; "not reported" where it has no row) beside our
    mean W/S/T, share on target and accuracy mean +- std."""
    columns = {"paper: learned W/S (LBW + act. renewal)": "act_renew_wst",
               "paper: accuracy (ResNet-20, CIFAR-10)": "act_renew", "paper: U-quant": "uquant"}
    rows = []
    for target in targets:
        ours = tables.get(target)
        theirs = {name: paper_table.loc[target, c] if target in paper_table.index else "not reported"
                  for name, c in columns.items()}
        for method in methods:
            if ours is None or method not in set(ours["method"]):
                continue
            o = ours.set_index("method").loc[method]
            rows.append({
                "setting": f"target {target}, {method}", **theirs,
                "ours: mean W/S/T": f"{o['W']:.2f}/{o['S']:.2f}/{o['T']:.2f}",
                "ours: on target": f"{o['within target']:.0%}",
                "ours: accuracy (small CNN, default data)": f"{o['accuracy']:.2f} +- {o['std']:.2f}",
            })
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------- the chapters' parameters
# nb/05a_allocation.ipynb's and nb/05b_stability.ipynb's parameters (their validation cells:
# ``params.check(PARAMETERS_05A, globals())`` and ``params.check(PARAMETERS_05B, globals())``).
# A target's W and S may be at most 2 above the init every run starts at (TrainConfig's default,
# 4/4/2), its T at most 1 above: the learned bits' upper bounds (book/method.md#method-learnable-bits).
from .. import params as _p  # noqa: E402
from .. import sweeps as _sweeps  # noqa: E402
from ..train import TrainConfig as _TrainConfig  # noqa: E402

_INIT = parse_wst(_TrainConfig().init, integers=True)
TARGET_HIGH = (_INIT[0] + 2, _INIT[1] + 2, _INIT[2] + 1)  # (6, 6, 3) for the 4/4/2 init
_TARGET_NOTE = f"the bounds of the {'/'.join(map(str, _INIT))} init"
_DATA_OPTIONS_HELP = "data set options KEY=VALUE, e.g. size=8 for digits"

PARAMETERS_05A = _p.declare(
    _p.results_dir("stored sweep results: results/allocation, results/allocation-control"),
    _p.Param("targets", "wst", list(_sweeps.ALLOCATION_TARGETS),
             "LBW target mean W/S/T (the paper's table rows)", high=TARGET_HIGH, many=True,
             note=_TARGET_NOTE),
    _p.Param("seeds_111", "int", list(_sweeps.allocation_seeds("1/1/1")),
             "seeds at 1/1/1 (U-quant is noisy there: at least 8)",
             low=0, many=True),
    _p.seeds("seeds at every other target"),
    *_p.training(data_options_help=_DATA_OPTIONS_HELP),
    _p.train_missing(),
    _p.fig_dir(),
    _p.record_path("05a_allocation"),
)

PARAMETERS_05B = _p.declare(
    _p.results_dir("stored sweep results: results/bit-stability, results/bit-stability-control"),
    _p.Param("targets", "wst", list(_sweeps.STABILITY_TARGETS),
             "target mean W/S/T, above the 1-bit minimum",
             high=TARGET_HIGH, many=True, note=_TARGET_NOTE),
    _p.seeds("seeds of every setting in the tables", _sweeps.STABILITY_SEEDS),
    *_p.training(data_options_help=_DATA_OPTIONS_HELP),
    _p.train_missing(),
    _p.Param("trace_target", "wst", "2/2/1", "the live run whose bit widths are recorded before every batch",
             high=TARGET_HIGH, note=_TARGET_NOTE),
    _p.Param("trace_epochs", "int", 3, "epochs of the live runs", low=1, high=100),
    _p.fig_dir(),
    _p.record_path("05b_stability"),
)
