"""Adaptive bit allocation in training: summaries of stored runs (chapters 5 and 6).

A run "ends within tol of the target" when every one of its final mean W, S and T lies within
``tol`` (default 0.3) of the target's.  Flips and renewals are the quantizers' cumulative counts
(train.py records them per layer after every epoch); an accuracy drop is an epoch whose test
accuracy fell more than ``train.DROP_POINTS`` below the epoch before (``train.accuracy_drops``).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..reproduce import welch
from ..wst import parse_wst

TOLERANCE = 0.3


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
            "runs with a drop > 5": int(sum(bool(r["metrics"].get("accuracy_drops")) for r in group)),
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


def mean_history(group: list[dict], keys=("W", "S", "T", "test_accuracy")) -> pd.DataFrame:
    """Per epoch: the mean and std over runs of ``keys`` (the paper's Figure 3 averaged over seeds)."""
    frames = [pd.DataFrame([{k: h[k] for k in ("epoch",) + tuple(keys)} for h in r["history"]])
              for r in group]
    stacked = pd.concat(frames)
    out = stacked.groupby("epoch").agg(["mean", "std"])
    out.columns = [f"{k} {s}" for k, s in out.columns]
    return out.reset_index().assign(epoch=lambda d: d["epoch"] + 1)


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
    """Figure 3's statement (most of the bit reduction happens in the paper's first share of
    training: ``paper_statements`` "fig3_bit_reduction", in %) against a settling table: one row
    per target with "target", "runs", "settled" (runs that end within the tolerance) and "median
    epoch" (the median ``settle_epoch`` of those runs) out of ``epochs``.  ``paper_share``: a
    fraction, to override the paper's number (tests)."""
    if paper_share is None:
        from ..paper import paper_statements

        paper_share = float(paper_statements().loc["fig3_bit_reduction", "number"]) / 100
    head = f"Against Figure 3 (most of the reduction within the first {paper_share:.1%} of training): "
    done = settle[settle["settled"] > 0]
    if done.empty:
        return head + f"no run of {method} settled within {TOLERANCE} of its target, so it cannot be checked here."
    share = done["median epoch"] / epochs
    early = done.loc[share <= paper_share + 1e-12, "target"].tolist()
    late = done.loc[share > paper_share + 1e-12, "target"].tolist()
    text = (head + f"{method} settles after {share.min():.0%} to {share.max():.0%} of training "
            "(median epoch per target), ")
    if not late:
        text += "as early as the paper says"
    elif not early:
        text += "later than the paper says at every target"
    else:
        text += f"as early as the paper says at {', '.join(early)} and later at {', '.join(late)}"
    never = [f"{int(r.runs - r.settled)} of {int(r.runs)} at {r.target}"
             for r in settle.itertuples() if r.settled < r.runs]
    if never:
        text += f"; runs that never settled: {', '.join(never)}"
    text += "."
    if 1 / epochs > paper_share:
        text += (f" With {epochs} epochs the earliest measurable settling is after one epoch, "
                 f"{1 / epochs:.0%} of training, already more than the paper's share.")
    return text


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
