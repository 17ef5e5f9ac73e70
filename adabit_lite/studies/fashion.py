"""The Fashion-MNIST stage (chapter 5): its stored runs, how they land on their targets, and what
they say about the paper's statements.

The stage (``sweeps.fashion_groups``): ResNet-8 (nine learned layers) on a 12,000-image training
subset of Fashion-MNIST, 10 epochs.  A run "lands" on its target at ``tol`` when its final mean W,
S and T are each within ``tol`` of the target's (``allocation.within_target``); the chapter reports
``COARSE`` (0.3, the small stage's band) and ``FINE`` (0.1: with nine layers the reachable means
are fine-grained, so a method that stops at the edge of the coarse band shows here).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator
from scipy import stats

from .. import sweeps
from ..reproduce import p_text
from ..train import CHANCE_MARGIN
from ..wst import parse_wst
from . import allocation as al
from .allocation import (PAPER_COLUMNS, PAPER_RULE, difference, plot_layer_bits,  # noqa: F401
                          settling)  # (the page's names)
from . import load_stored, stored_result, words

SWEEP, CONTROL_SWEEP = "fashion-allocation", "fashion-control"
COARSE, FINE = al.TOLERANCE, 0.1


@dataclass
class Stage:
    """Stored results by target and method (U-quant at a fractional target: one group per uniform
    setting, named "U-quant W/S/T"), and how many of the wanted runs are stored."""

    groups: dict[str, dict[str, list[dict]]] = field(default_factory=dict)
    wanted: int = 0
    found: int = 0


def _split_uquant(target: str, method: str, results: list[dict]) -> dict[str, list[dict]]:
    if method != "U-quant" or target not in sweeps.FASHION_NEAREST_UNIFORM:
        return {method: results}
    return {f"U-quant {u}": [r for r in results if r["parameters"]["target"] == u]
            for u in sweeps.FASHION_NEAREST_UNIFORM[target]}


def load(results_dir: str | Path = sweeps.RESULTS, train_missing: bool = False,
         targets=sweeps.FASHION_TARGETS, seeds: dict | None = None,
         base: dict | None = None) -> Stage:
    """The stage's stored runs (``train_missing``: train and store the missing ones first, the
    learned runs before the controls that copy their bits).  ``seeds`` and ``base`` as in
    ``sweeps.fashion_groups`` (a chapter's quick settings)."""
    root = Path(results_dir)

    def control(method):
        return method.startswith("control of ")

    stored = load_stored(lambda: sweeps.fashion_groups(root, targets, seeds, base),
                         lambda method, cfg: root / (CONTROL_SWEEP if control(method) else SWEEP),
                         train_missing, control=control, distinct=True)
    stage = Stage(wanted=stored.wanted, found=stored.found)
    for target, methods in stored.groups.items():
        stage.groups[target] = {}
        for method, got in methods.items():
            stage.groups[target].update(_split_uquant(target, method, got))
        cfgs = stored.configs[target]
        for m in sweeps.FASHION_CONTROLLED.get(target, ()):  # a learned run not yet stored has
            stage.wanted += len(cfgs[m]) - len(cfgs[f"control of {m}"])  # a control still to come
    return stage


def landing_table(methods: dict[str, list[dict]], target: str) -> pd.DataFrame:
    """``allocation.comparison_table`` of one target (every row judged against ``target``), with
    the share of runs within ``FINE`` beside the share within ``COARSE``.  Welch p against U-quant
    where the target is uniform, else against the paper's rule."""
    methods = {m: runs for m, runs in methods.items() if runs}
    if not methods:
        return pd.DataFrame()
    reference = "U-quant" if "U-quant" in methods else PAPER_RULE
    table = al.comparison_table(methods, reference=reference, target=target, tol=COARSE)
    fine = al.stability_table(methods, tol=FINE, target=target).set_index("method")
    table.insert(table.columns.get_loc("within target") + 1, "within 0.1",
                 table["method"].map(fine["within target"]))
    table = table.rename(columns={"within target": "within 0.3"})
    table.loc[table["within 0.3"].isna(), "within 0.1"] = math.nan  # no bits: full precision
    uquant = [m for m in methods if m.startswith("U-quant")]
    for column in ("within 0.3", "within 0.1"):  # a uniform setting is on its own target only
        table.loc[table["method"].isin(uquant) & (len(uquant) > 1), column] = math.nan
    return table


LANDING_SHOWN = ("method", "runs", "failed", "W", "S", "T", "within 0.3", "within 0.1", "bit budget",
                 "accuracy", "std")


def landing_view(table: pd.DataFrame):
    """A ``landing_table`` as the page shows it: the columns of ``LANDING_SHOWN`` and the p-value,
    W/S/T, Bit Budget, accuracy and std to two decimals, the shares within 0.3 and 0.1 in % of
    the runs."""
    from .. import plotting

    view = table[[c for c in LANDING_SHOWN if c in table] + [c for c in table if c.startswith("p vs")]].copy()
    shares = [c for c in ("within 0.3", "within 0.1") if c in view]
    view[shares] = 100 * view[shares]
    decimals = {c: 2 for c in ("W", "S", "T", "bit budget", "accuracy", "std")} | {c: 0 for c in shares}
    return plotting.show_table(view, decimals={c: d for c, d in decimals.items() if c in view},
                               units={"accuracy": "%", "std": "points"} | {c: "% of runs" for c in shares})


def difference_sentence(d: dict, alpha: float = 0.05) -> str:
    """One sentence for a ``difference``: which is ahead, by how much, whether it is significant."""
    if math.isnan(d["difference"]):
        return f"{d['a']} against {d['b']}: not stored yet"
    sig = ("untested (too few runs)" if math.isnan(d["p"]) else
           f"{'significant' if d['p'] < alpha else 'not significant'} (Welch {p_text(d['p'])})")
    failed = "".join(f"; {d[f'failed {s}']} of {d[f'runs {s}']} {d[s]} runs collapsed"
                     for s in ("a", "b") if d[f"failed {s}"])
    return (f"{d['a']} {'+' if d['difference'] >= 0 else '-'}{abs(d['difference']):.2f} points "
            f"against {d['b']} ({d['runs a']} and {d['runs b']} seeds), {sig}{failed}")


def layer_pattern(layers: pd.DataFrame) -> dict:
    """Figure 4's pattern on ``allocation.mean_layer_bits``: the rank correlation (Spearman) of
    each layer's weight count with its mean Bw and of its input features with its mean Bs (the
    paper: large layers get fewer bits, so negative), and the first and last layers' Bw and Bs
    against the mean of the layers between them (the paper: they keep more)."""
    rho_w = stats.spearmanr(layers["weights"], layers["Bw"]).statistic
    rho_s = stats.spearmanr(layers["in_features"], layers["Bs"]).statistic
    inner = layers.iloc[1:-1]
    return {"rho weights-Bw": float(rho_w), "rho features-Bs": float(rho_s),
            "first Bw - inner": float(layers["Bw"].iloc[0] - inner["Bw"].mean()),
            "last Bw - inner": float(layers["Bw"].iloc[-1] - inner["Bw"].mean()),
            "first Bs - inner": float(layers["Bs"].iloc[0] - inner["Bs"].mean()),
            "last Bs - inner": float(layers["Bs"].iloc[-1] - inner["Bs"].mean())}


def failures(stage: Stage) -> pd.DataFrame:
    """One row per stored run that failed (``train.blew_up``): target, method, seed, the epoch its
    failure was found, the epoch from which it sat at chance (``chance_from``), why, and the
    quantizers whose step sat at its floor."""
    rows = []
    for target, methods in stage.groups.items():
        for method, runs in methods.items():
            for r in runs:
                if r.get("failure"):
                    f = r["failure"]
                    rows.append({"target": target, "method": method, "seed": r["parameters"]["seed"],
                                 "epoch": f["epoch"], "at chance from epoch": chance_from(r) or "-",
                                 "reason": f["reason"].split(":")[0],
                                 "steps at floor": ", ".join(f.get("steps_at_floor", [])) or "-"})
    columns = ["target", "method", "seed", "epoch", "at chance from epoch", "reason", "steps at floor"]
    return pd.DataFrame(rows, columns=columns).drop_duplicates(["method", "seed", "epoch"])


def chance_from(result: dict) -> int | None:
    """For a failed run: the epoch (1-based) from which its test accuracy stayed within
    ``train.CHANCE_MARGIN`` of its final value (for a collapse, when it fell to chance; the failure
    record names the epoch it was found, after training).  None for a run that did not fail."""
    if not result.get("failure"):
        return None
    acc = [h["test_accuracy"] for h in result["history"]]
    epoch = len(acc)
    while epoch > 1 and acc[epoch - 2] <= acc[-1] + CHANCE_MARGIN:
        epoch -= 1
    return epoch


def collapse_table(results_dir: str | Path = sweeps.RESULTS, train_missing: bool = False,
                   base: dict | None = None, seeds=sweeps.FASHION_COLLAPSE_SEEDS) -> pd.DataFrame:
    """The paper's rule at 1/1/1, seed by seed, with the step floor and with reflected steps
    (sweep ``fashion-collapse``): final accuracy, the epoch from which a failed run sat at chance
    (``chance_from``) and the quantizers whose step sat at the floor.  Stored runs only (``train_missing``: train the others)."""
    root, rows = Path(results_dir) / "fashion-collapse", []
    for seed in seeds:
        row = {"seed": seed}
        for cfg in sweeps.fashion_method(PAPER_RULE, "1/1/1", seed, base):
            for clamp in ("floor", "reflect"):
                c = dataclasses.replace(cfg, step_clamp=clamp)
                r = stored_result(root, c, train_missing)
                if r is None:
                    continue
                f = r.get("failure") or {}
                row[f"{clamp}: accuracy"] = r["metrics"]["accuracy"]
                row[f"{clamp}: at chance from epoch"] = chance_from(r) or "-"
                if clamp == "floor":
                    row["floor: steps at floor"] = ", ".join(f.get("steps_at_floor", [])) or "-"
        rows.append(row)
    return pd.DataFrame(rows)


def collapse_sentence(table: pd.DataFrame) -> str:
    """How many stored seeds of ``collapse_table`` failed with each rule, and when they fell."""
    parts = []
    for clamp, rule in (("floor", "the step floor"), ("reflect", "reflected steps")):
        column = f"{clamp}: at chance from epoch"
        if column not in table:
            parts.append(f"with {rule}, no stored run")
            continue
        got = table[table[f"{clamp}: accuracy"].notna()]
        failed = got[got[column] != "-"]
        when = ", ".join(f"seed {int(r.seed)} from epoch {r[column]}" for _, r in failed.iterrows())
        parts.append(f"with {rule}, {len(failed)} of {len(got)} seeds failed"
                     + (f" ({when})" if when else ""))
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."


def load_small(results_dir: str | Path = sweeps.RESULTS, targets=sweeps.ALLOCATION_TARGETS
               ) -> dict[str, dict[str, list[dict]]]:
    """The small stage's stored runs (chapter 5a's sweep) by target and method."""
    return al.load_groups(results_dir, "allocation", sweeps.allocation_groups, targets=targets)[0]


def never_renewed_note(small: dict) -> str:
    """One sentence naming the targets at which no small-stage LBW + renewal run renewed a step
    (``allocation.flip_totals``), so that its runs train exactly as LBW's and the two columns of
    ``paper_vs_book`` are equal there; "" where there is none."""
    quiet = [t for t, g in small.items() if g.get(PAPER_RULE) and g.get("LBW")
             and all(sum(al.flip_totals(r)[k] for k in ("w_renewals", "s_renewals")) == 0
                     for r in g[PAPER_RULE])]
    if not quiet:
        return ""
    return (f"At {words(quiet)} the small stage's LBW + renewal runs never renewed a step (activation "
            "renewal acts only when the spike bits drop), so they trained exactly as the LBW runs: the two columns are "
            "the same numbers there.")


def paper_vs_book(stage: Stage, small: dict, paper_table: pd.DataFrame) -> pd.DataFrame:
    """Per target: the paper's accuracy of U-quant, LBW and LBW + renewal (``paper_table``: its
    ablation table by target) beside the mean (std, seeds) on the small stage and on this one,
    and each one's LBW + renewal minus U-quant."""
    rows = []
    for target in stage.groups:
        row = {"target": target}
        if target in paper_table.index:
            p = paper_table.loc[target]
            row.update({f"paper: {m}": float(p[c]) for m, c in PAPER_COLUMNS.items()})
            row["paper: gain"] = float(p["act_renew"]) - float(p["uquant"])
        for name, groups in (("small stage", small.get(target, {})),
                             ("Fashion stage", stage.groups[target])):
            for m in PAPER_COLUMNS:
                acc = [r["metrics"]["accuracy"] for r in groups.get(m, [])]
                if acc:
                    std = f" +- {np.std(acc, ddof=1):.2f}" if len(acc) > 1 else ""
                    row[f"{name}: {m}"] = f"{np.mean(acc):.2f}{std} ({len(acc)})"
            d = difference(groups, PAPER_RULE, "U-quant")
            if not math.isnan(d["difference"]):
                row[f"{name}: gain"] = d["difference"]
        rows.append(row)
    return pd.DataFrame(rows)


#: the targets above the 1-bit minimum where a remedy must land (W and S within ``FINE``)
REMEDY_TARGETS = ("2/2/1", "1.5/1.5/1")
#: the share of a remedy's runs that must land within ``FINE`` at each of ``REMEDY_TARGETS``
LANDING_SHARE = 0.9
RULE_COLUMN = "paper's rule"  # remedy_table's column of the paper's rule's mean accuracy


def fall_epochs(runs: list[dict]) -> list[int]:
    """The epochs (1-based, sorted) at which any of ``runs`` fell more than ``train.DROP_POINTS``
    below its epoch before (``allocation.drop_epochs``)."""
    return sorted({e for r in runs for e in al.drop_epochs(r)})


def remedy_table(stage: Stage, method: str, alpha: float = 0.05) -> pd.DataFrame:
    """One row per target of ``REMEDY_TARGETS`` for ``method``: its runs, the share whose final
    mean W and S are both within ``FINE`` of the target, the mean final W and S, the target nearest
    that mean (the larger of |dW|, |dS|), the runs with an epoch falling more than ``train.DROP_POINTS``
    and those epochs (``fall_epochs``), the same over the U-quant runs there (the stage's own
    noise; at a fractional target, the nearest uniform settings'), the accuracy mean against the
    paper's rule, and whether the accuracy is significantly lower (the paper's rule ahead with
    Welch p < ``alpha``)."""
    rows = []
    for target in REMEDY_TARGETS:
        runs = stage.groups.get(target, {}).get(method, [])
        rule = stage.groups.get(target, {}).get(PAPER_RULE, [])
        if not runs:
            continue
        w, s_ = (np.array([r["metrics"][k] for r in runs]) for k in "WS")
        tw, ts, _ = parse_wst(target)
        mean = (float(w.mean()), float(s_.mean()))
        nearest = min(REMEDY_TARGETS, key=lambda t: max(abs(m - v) for m, v in
                                                         zip(mean, parse_wst(t)[:2])))
        uquant = [r for m, group in stage.groups[target].items() if m.startswith("U-quant")
                  for r in group]
        acc = [r["metrics"]["accuracy"] for r in runs]
        acc_rule = [r["metrics"]["accuracy"] for r in rule]
        p = al.welch(acc, acc_rule)
        rows.append({"target": target, "runs": len(runs),
                     "W and S within 0.1": float(np.mean((abs(w - tw) <= FINE) & (abs(s_ - ts) <= FINE))),
                     "W": mean[0], "S": mean[1], "nearest target": nearest,
                     "runs with a drop > 5": sum(bool(al.drop_epochs(r)) for r in runs),
                     "fall epochs": fall_epochs(runs),
                     "U-quant runs with a drop > 5": sum(bool(al.drop_epochs(r)) for r in uquant),
                     "U-quant fall epochs": fall_epochs(uquant),
                     "U-quant settings": " and ".join(sorted({r["parameters"]["target"] for r in uquant})),
                     "U-quant runs": sum(len(g) for m, g in stage.groups[target].items()
                                         if m.startswith("U-quant")),
                     "accuracy": float(np.mean(acc)),
                     RULE_COLUMN: float(np.mean(acc_rule)) if acc_rule else math.nan,
                     "lower": bool(acc_rule and np.mean(acc) < np.mean(acc_rule)
                                   and not math.isnan(p) and p < alpha)})
    return pd.DataFrame(rows)


def remedy_verdict(table: pd.DataFrame, method: str) -> str:
    """Whether ``method`` meets the remedy criterion (``remedy_table``).  It lands exactly when at
    least ``LANDING_SHARE`` of its runs end within 0.1 in W and S at every remedy target and each
    target's mean lies nearest its own target; it meets the criterion when, besides, no epoch falls
    more than 5 points and its accuracy is not significantly below the paper's rule.  The
    sentence says which parts fail, with the numbers."""
    if set(table.get("target", ())) != set(REMEDY_TARGETS):
        return f"**{method}**: not judged yet (it needs stored runs at {' and '.join(REMEDY_TARGETS)})."
    rows = table.set_index("target")
    share = rows["W and S within 0.1"]
    landing = "; ".join(f"{share[t]:.0%} of {int(rows.loc[t, 'runs'])} runs within 0.1 at {t} "
                        f"(mean {rows.loc[t, 'W']:.2f}/{rows.loc[t, 'S']:.2f})" for t in REMEDY_TARGETS)
    missed = []
    if (share < LANDING_SHARE).any():
        missed.append(f"fewer than {LANDING_SHARE:.0%} of its runs end within 0.1 in W and S")
    if any(rows.loc[t, "nearest target"] != t for t in REMEDY_TARGETS):
        missed.append("the two targets end at allocations nearer the other target")
    rest = []
    drops = int(rows["runs with a drop > 5"].sum())
    if drops:
        uquant = "; ".join(f"{int(rows.loc[t, 'U-quant runs with a drop > 5'])} of "
                           f"{int(rows.loc[t, 'U-quant runs'])} runs at {rows.loc[t, 'U-quant settings']}"
                           for t in REMEDY_TARGETS)
        rest.append(f"{drops} of {int(rows['runs'].sum())} runs have an epoch falling more than 5 "
                    f"points ({_epochs(rows['fall epochs'])}; U-quant, at fixed bits, falls too: "
                    f"{uquant}, {_epochs(rows['U-quant fall epochs'])})")
    lower = [t for t in REMEDY_TARGETS if rows.loc[t, "lower"]]
    if lower:
        rest.append("its accuracy is significantly below the paper's rule at " + ", ".join(
            f"{t} ({rows.loc[t, 'accuracy']:.2f} vs {rows.loc[t, RULE_COLUMN]:.2f} %)" for t in lower))
    if missed:
        return f"**{method} does not land exactly** ({landing}): " + "; ".join(missed + rest) + "."
    if rest:
        return (f"**{method} lands exactly** ({landing}), **but fails the rest of the criterion**: "
                + "; ".join(rest) + ".")
    return (f"**{method} lands exactly and meets the criterion** ({landing}): no epoch fell more "
            "than 5 points and its accuracy is not significantly below the paper's rule.")


def _epochs(column) -> str:
    """The epochs of a column of epoch lists, in words ("at epochs 2, 4")."""
    found = sorted(set().union(*map(set, column)))
    return ("at epoch " if len(found) == 1 else "at epochs ") + ", ".join(map(str, found)) \
        if found else "no epoch"


def plot_bits_per_epoch(stage: Stage, methods=(PAPER_RULE, f"{PAPER_RULE} + projection")):
    """The paper's Figure 3 on this stage: per target, the seeds' mean W and S at the start (epoch
    0) and at the end of each epoch (band: one standard deviation) for ``methods``, the target
    dashed."""
    from .. import plotting

    targets = [t for t, g in stage.groups.items() if any(g.get(m) for m in methods)]
    ncols = min(max(len(targets), 1), 3)
    nrows = -(-max(len(targets), 1) // ncols)
    fig, axes = plotting.figure(ncols=ncols, nrows=nrows, figsize=(3.0 * ncols, 2.7 * nrows + 0.6),
                                sharey=True, squeeze=False)
    axes = axes.ravel()
    for ax in axes[len(targets):]:
        ax.set_visible(False)
    styles = {"W": "-", "S": ":"}
    for ax, target in zip(axes, targets):
        for color, method in zip(("#1f77b4", "#d62728"), methods):
            runs = stage.groups[target].get(method, [])
            if not runs:
                continue
            h = al.mean_history(runs, start=True)
            for key in "WS":
                ax.plot(h["epoch"], h[f"{key} mean"], styles[key], color=color, lw=1.4,
                        label=f"{key}, {method.replace(PAPER_RULE, 'paper rule')}")
                ax.fill_between(h["epoch"], h[f"{key} mean"] - h[f"{key} std"].fillna(0),
                                h[f"{key} mean"] + h[f"{key} std"].fillna(0), color=color,
                                alpha=0.12)
        for value in set(parse_wst(target)[:2]):
            ax.axhline(value, color="0.3", ls="--", lw=0.8)
        ax.set_title(f"target {target}")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for row in range(nrows):
        axes[row * ncols].set_ylabel("mean bits")
    legend = {}
    for ax in axes[:len(targets)]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    if legend:  # below the panels, clear of every line
        fig.legend(list(legend.values()), list(legend), loc="lower center", ncol=2, fontsize=9,
                   frameon=False)
        fig.subplots_adjust(bottom=0.6 / (2.7 * nrows + 0.6) + 0.12, hspace=0.45)
    return fig


def settling_table(stage: Stage, method: str = PAPER_RULE) -> pd.DataFrame:
    """``settling`` of ``method`` at every target, one row each."""
    return pd.DataFrame([{"target": t, **settling(m.get(method, []), t)}
                         for t, m in stage.groups.items()])


def figure4_verdict(pattern: dict) -> str:
    """Figure 4's statements against a ``layer_pattern``."""
    def sign(x, more="more", fewer="fewer"):
        return f"{abs(x):.2f} bits {more if x > 0 else fewer}" if abs(x) >= 0.005 else "the same"
    def fewer(rho, what):
        return (f"larger layers get fewer {what} bits, as in the paper" if rho < 0 else
                f"larger layers do not get fewer {what} bits, unlike the paper")
    larger = (f"{fewer(pattern['rho weights-Bw'], 'weight')}; "
              f"{fewer(pattern['rho features-Bs'], 'spike')}")
    return (f"Against Figure 4: rank correlation of weight count with Bw "
            f"{pattern['rho weights-Bw']:+.2f}, of input features with Bs "
            f"{pattern['rho features-Bs']:+.2f}: {larger}. The first layer has "
            f"{sign(pattern['first Bw - inner'])} Bw and {sign(pattern['first Bs - inner'])} Bs "
            f"than the layers between; the last (the fc) {sign(pattern['last Bw - inner'])} Bw "
            f"and {sign(pattern['last Bs - inner'])} Bs.")


# ---------------------------------------------------------------------- the chapter's parameters
# nb/05_fashion.ipynb's parameters (its validation cell: ``params.check(PARAMETERS, globals())``)
from .. import params as _p  # noqa: E402


def _quick_problem(quick) -> str | None:
    """What is wrong with ``quick`` (the run settings over the stage's), or None: it must build a
    valid TrainConfig."""
    from ..train import OptionError, TrainConfig

    if not isinstance(quick, dict):
        return "not a mapping"
    try:
        TrainConfig(**{**sweeps.fashion_base(*sweeps.FASHION_CANDIDATES[0]), **quick}).validated()
    except TypeError as err:
        return str(err)
    except OptionError as err:
        return err.line()
    return None


PARAMETERS = _p.declare(
    _p.results_dir("stored sweep results: results/fashion-allocation, results/fashion-control"),
    _p.Param("targets", "choice", None, "target mean W/S/T to show; None: all five of the stage "
             "(1/1/1, 2/2/1, 1.5/1.5/1, 3/4/1, 4/4/1)", choices=tuple(sweeps.FASHION_TARGETS),
             many=True, optional=True),
    _p.Param("seeds", "int", None, "seeds of every target; None: the stored sweep's (8 at 1/1/1, "
             "5 elsewhere)", low=0, many=True, optional=True),
    _p.Param("quick", "any", None, 'other run settings for a quick try, e.g. {"epochs": 2, '
             '"train_limit": 2000}; None: the stage\'s', optional=True,
             allowed="a mapping of run settings (TrainConfig options)", test=_quick_problem),
    _p.train_missing(),
    _p.fig_dir(),
    _p.Param("record_path", "path", "_build/records/05_fashion.json",
             "key numbers, read by the tests and the claims ledger", suffix=".json"),
)
