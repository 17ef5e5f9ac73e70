"""Fixed W/S/T splits of one Bit Budget (chapter 7, Shen et al. tables 2 and 5).

A split fixes every learned layer at W/S/T from the start (U-quant); its Bit Budget is W * S * T.
The stored sweep ``fixed-budget`` (``sweeps.fixed_budget_groups``) holds its runs.

What a split buys.  On a static image the refined neuron (tau = 1, round firing) gets the same
input x at every step and sends on the average of its T counts: a uniform quantizer with step
Vth1 / T and ``spike_levels(S, T) = T (2^S - 1) + 1`` levels (chapter 3).  Bits multiply the
levels, time steps only add to them.  A weight of W bits has ``weight_levels(W)`` values (binary
+-S_q at W = 1, else 2 qmax + 1 with qmax = 2^(W-1) - 1).

Cost.  ``split_costs`` meters the model at a split: the learned convention of the meter (the stem
left out, as the stored ``s_ace_g``), the stem's own line (8-bit weights and spikes for the split's
T steps), and the uniform convention of the papers' tables (every layer, stem included, at W/S/T).

Comparisons.  ``claim_pairs`` names the pairs the chapter tests: within one budget, the split with
the most spike bits against each other split with the same W (spike bits vs time steps) and
against each other split with the same T (spike bits vs weight bits).  ``comparison_table`` gives
their Welch p-values, raw and Holm-adjusted over all pairs of the table.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..wst import parse_wst
from .allocation import welch

SPIKES_VS_STEPS = "spike bits vs time steps (same W)"
SPIKES_VS_WEIGHTS = "spike bits vs weight bits (same T)"
MAX_BITS = 16  # the largest W, S or T a split may ask for here
MAX_BUDGET = 256


# ------------------------------------------------------------------ splits and budgets
def parse_split(text) -> tuple[int, int, int]:
    """``"W/S/T"`` -> (W, S, T), three integers >= 1 (``wst.parse_wst``; ValueError otherwise)."""
    return parse_wst(text, integers=True)


def budget_problem(budgets, known: dict | None = None) -> str | None:
    """What is wrong with a ``budgets`` parameter, in a few words, or None if it is good.

    Accepted: a dict {Bit Budget: [W/S/T splits]} (keys integers or their strings, as papermill
    passes them) whose splits are distinct, have W, S, T integers in 1 .. MAX_BITS and
    W * S * T = the budget; or a list of budgets of ``known`` (their splits are taken from it).
    """
    if isinstance(budgets, list):
        if not budgets:
            return "the list is empty"
        for b in budgets:
            if isinstance(b, bool) or not isinstance(b, int) or b not in (known or {}):
                return f"{b!r} is not one of the stored budgets {sorted(known or {})}"
        if len(set(budgets)) != len(budgets):
            return "a budget is repeated"
        return None
    if not isinstance(budgets, dict) or not budgets:
        return "not a non-empty dict or list"
    seen = set()
    for key, splits in budgets.items():
        try:
            budget = _budget_key(key)
        except ValueError:
            return f"key {key!r} is not an integer Bit Budget from 1 to {MAX_BUDGET}"
        if budget in seen:
            return f"budget {budget} is given twice"
        seen.add(budget)
        if not isinstance(splits, (list, tuple)) or not splits:
            return f"budget {budget} has no list of splits"
        for split in splits:
            try:
                w, s, t = parse_split(split)
            except ValueError as err:
                return str(err)
            if max(w, s, t) > MAX_BITS:
                return f"split {split} has a value above {MAX_BITS}"
            if w * s * t != budget:
                return f"split {split} has W * S * T = {w * s * t}, not its budget {budget}"
        if len({parse_split(s) for s in splits}) != len(splits):
            return f"budget {budget} repeats a split"
    return None


def _budget_key(key) -> int:
    if isinstance(key, bool):
        raise ValueError(key)
    if isinstance(key, str) and key.strip().isdigit():
        key = int(key)
    if not isinstance(key, int) or not 1 <= key <= MAX_BUDGET:
        raise ValueError(key)
    return key


def normalize_budgets(budgets, known: dict | None = None) -> dict[int, list[str]]:
    """The ``budgets`` parameter as {int budget: ["W/S/T", ...]} (canonical split strings, the
    order given); a list of budgets takes its splits from ``known``.  ValueError if it is bad."""
    problem = budget_problem(budgets, known)
    if problem is not None:
        raise ValueError(problem)
    if isinstance(budgets, list):
        return {b: list(known[b]) for b in budgets}
    return {_budget_key(k): ["/".join(map(str, parse_split(s))) for s in v]
            for k, v in budgets.items()}


# ------------------------------------------------------------------ what a split buys
def spike_levels(S: int, T: int) -> int:
    """Distinct values the refined neuron can send on from a static input: T (2^S - 1) + 1."""
    return T * (2 ** S - 1) + 1


def weight_levels(W: int) -> int:
    """Distinct values of a W-bit weight: 2 at W = 1 (+-S_q), else 2 (2^(W-1) - 1) + 1."""
    return 2 if W == 1 else 2 * (2 ** (W - 1) - 1) + 1


def model_spec(bundle) -> dict:
    """What ``train.build`` needs to know of a data set (classes, channels, image size)."""
    return {"num_classes": bundle.num_classes, "in_channels": bundle.in_channels,
            "image_size": list(bundle.image_size)}


def split_costs(cfg, spec: dict) -> dict:
    """Meter the model of ``cfg`` (a fixed split) on the input of ``spec``: per sample, in M.

    ``MACs (M)`` and ``S-ACE (M)``: the learned convention (stem left out, what training stores
    as ``macs_g`` and ``s_ace_g``); ``stem MACs (M)``, ``stem S-ACE (M)``: the stem's own line
    (8-bit weights and spikes for its T steps); ``S-ACE + stem (M)``: their sum; ``uniform S-ACE
    (M)``: every layer, the stem included, at the split (the papers' convention); ``size (kbit)``:
    weights * Bw over the learned layers."""
    from ..meter import meter_model
    from ..train import build

    cfg = cfg.validated()
    w, s, t = parse_split(cfg.target)
    model = build(cfg, spec)
    shape = (spec["in_channels"], *spec["image_size"])
    learned = meter_model(model, shape, convention="learned")
    uniform = meter_model(model, shape, convention="uniform", wst=(w, s, t))
    stem = learned.stem
    return {"MACs (M)": 1e3 * learned.totals["macs_g"],
            "S-ACE (M)": 1e3 * learned.totals["s_ace_g"],
            "stem MACs (M)": 1e3 * float(stem["macs_g"]),
            "stem W/S/T": f"{stem['Bw']:g}/{stem['Bs']:g}/{stem['T']}",
            "stem S-ACE (M)": 1e3 * float(stem["s_ace_g"]),
            "S-ACE + stem (M)": 1e3 * (learned.totals["s_ace_g"] + float(stem["s_ace_g"])),
            "uniform S-ACE (M)": 1e3 * uniform.totals["s_ace_g"],
            "size (kbit)": 1e3 * learned.totals["size_mbit"]}


# ------------------------------------------------------------------ stored runs

def accuracies(runs: list[dict]) -> list[float]:
    return [r["metrics"]["accuracy"] for r in runs]


def split_table(groups: dict[int, dict[str, list[dict]]], wanted: dict[int, dict[str, int]],
                costs: dict[str, dict] | None = None) -> pd.DataFrame:
    """One row per budget and split (``groups[budget][split]`` = stored results over seeds;
    ``wanted``: how many runs each should have): runs, final test accuracy mean and std (ddof 1),
    final train accuracy, the rank within the budget (1 = best mean), the Welch p-value against
    the budget's best split, the levels of spikes and weights, the stored S-ACE and model size
    (means over runs; NaN without runs), and the metered costs of ``costs[split]`` (``split_costs``)."""
    rows = []
    for budget, splits in wanted.items():
        got = groups.get(budget, {})
        means = {s: float(np.mean(accuracies(got[s]))) for s in splits if got.get(s)}
        best = max(means, key=means.get) if means else None
        order = sorted(means, key=means.get, reverse=True)
        for split, n_wanted in splits.items():
            runs = got.get(split, [])
            acc = accuracies(runs)
            w, s, t = parse_split(split)

            def mean(key, scale=1.0):
                return scale * float(np.mean([r["metrics"][key] for r in runs])) if runs else math.nan

            train_acc = [r["history"][-1]["train_accuracy"] for r in runs]
            rows.append({
                "budget": int(budget), "split": split, "W": w, "S": s, "T": t,
                "runs": len(runs), "wanted": int(n_wanted),
                "accuracy": float(np.mean(acc)) if acc else math.nan,
                "std": float(np.std(acc, ddof=1)) if len(acc) > 1 else math.nan,
                "train accuracy": float(np.mean(train_acc)) if train_acc else math.nan,
                "rank": order.index(split) + 1 if split in means else math.nan,
                "p vs best": (welch(accuracies(got[best]), acc)
                              if best is not None and split != best and acc else math.nan),
                "spike levels": spike_levels(s, t), "weight levels": weight_levels(w),
                "stored S-ACE (M)": mean("s_ace_g", 1e3),
                "stored size (kbit)": mean("size_mbit", 1e3),
                **(costs or {}).get(split, {}),
            })
    return pd.DataFrame(rows)


def ordering(table: pd.DataFrame, budget: int, column: str = "accuracy", digits: int = 2) -> str:
    """'a (x) > b (y) > ...' of one budget's splits by ``column``, best first (splits without a
    value are left out)."""
    rows = table[(table["budget"] == budget) & table[column].notna()]
    rows = rows.sort_values(column, ascending=False, kind="stable")
    return " > ".join(f"{r['split']} ({r[column]:.{digits}f})" for _, r in rows.iterrows())


# ------------------------------------------------------------------ the comparisons
def claim_pairs(splits) -> list[tuple[str, str, str]]:
    """(kind, a, b) with a the split of most spike bits: against every other split with the same
    W (``SPIKES_VS_STEPS``) and with the same T (``SPIKES_VS_WEIGHTS``), within one budget."""
    parsed = {s: parse_split(s) for s in splits}
    pairs = []
    for kind, same in ((SPIKES_VS_STEPS, 0), (SPIKES_VS_WEIGHTS, 2)):
        for value in dict.fromkeys(p[same] for p in parsed.values()):
            group = [s for s in splits if parsed[s][same] == value]
            if len(group) < 2:
                continue
            top = max(group, key=lambda s: parsed[s][1])
            pairs += [(kind, top, b) for b in group if b != top]
    return pairs


def holm(pvalues) -> list[float]:
    """Holm's step-down adjustment of p-values (NaN stays NaN and does not count)."""
    p = np.asarray(pvalues, float)
    out = np.full(p.shape, math.nan)
    idx = np.where(~np.isnan(p))[0]
    order = idx[np.argsort(p[idx], kind="stable")]
    m, running = len(order), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out.tolist()


def comparison_table(groups: dict[int, dict[str, list[dict]]],
                     budgets: dict[int, list[str]]) -> pd.DataFrame:
    """The ``claim_pairs`` of every budget: mean accuracies of a (more spike bits) and b, their
    difference a - b, the runs of each, the Welch p-value and the Holm-adjusted one (over all
    rows with a p-value)."""
    rows = []
    for budget, splits in budgets.items():
        got = groups.get(budget, {})
        for kind, a, b in claim_pairs(splits):
            acc_a, acc_b = accuracies(got.get(a, [])), accuracies(got.get(b, []))
            ma = float(np.mean(acc_a)) if acc_a else math.nan
            mb = float(np.mean(acc_b)) if acc_b else math.nan
            rows.append({"budget": int(budget), "comparison": kind, "a": a, "b": b,
                         "runs a": len(acc_a), "runs b": len(acc_b),
                         "accuracy a": ma, "accuracy b": mb, "a - b": ma - mb,
                         "p": welch(acc_a, acc_b)})
    df = pd.DataFrame(rows, columns=["budget", "comparison", "a", "b", "runs a", "runs b",
                                     "accuracy a", "accuracy b", "a - b", "p"])
    df["p (Holm)"] = holm(df["p"]) if len(df) else []
    return df


def verdicts(comparisons: pd.DataFrame, alpha: float = 0.05, column: str = "p (Holm)") -> dict:
    """Per kind of comparison: the pairs (as 'a vs b') where a wins, where b wins (each with
    ``column`` < ``alpha``), where the difference is not significant, where no test is possible
    (fewer than two runs a side, or no spread at all) and where runs are missing."""
    out = {}
    for kind, rows in comparisons.groupby("comparison", sort=False):
        v = {"a wins": [], "b wins": [], "not significant": [], "no test": [], "missing": []}
        for _, r in rows.iterrows():
            name = f"{r['a']} vs {r['b']}"
            if math.isnan(r["a - b"]):
                v["missing"].append(name)
            elif math.isnan(r[column]):
                v["no test"].append(name)
            elif r[column] < alpha:
                v["a wins" if r["a - b"] > 0 else "b wins"].append(name)
            else:
                v["not significant"].append(name)
        out[kind] = v
    return out


# ------------------------------------------------------------------ the paper
def shen_quantized(shen: pd.DataFrame) -> pd.DataFrame:
    """Shen et al.'s quantized Spikformer-4-384 rows (tables 2 and 5) with their Bit Budget."""
    q = shen[shen["method"] == "Quantized Spikformer"].copy()
    q["budget"] = [math.prod(parse_split(s)) for s in q["wst"]]
    return q


def paper_vs_book(table: pd.DataFrame, shen: pd.DataFrame) -> pd.DataFrame:
    """One row per split of ``table`` (``split_table``): Shen et al.'s S-ACE, CIFAR-10 and
    CIFAR-100 accuracy and their rank within the budget among the splits we show (1 = best), beside
    our accuracy (mean +- std, runs) and rank among the same splits ("not reported" / "not run"
    where one side has no number)."""
    q = shen_quantized(shen).set_index("wst")
    rows = []
    for budget, part in table.groupby("budget", sort=False):
        shown = [s for s in part["split"] if s in q.index]
        ranks = {col: q.loc[shown, col].rank(ascending=False, method="min") for col in
                 ("cifar10", "cifar100")} if shown else {}
        ours = part[part["accuracy"].notna()]
        our_rank = ours.set_index("split")["accuracy"].rank(ascending=False, method="min")
        for _, r in part.iterrows():
            split = r["split"]
            row = {"budget": int(budget), "split": split}
            if split in q.index:
                p = q.loc[split]
                row.update({"paper S-ACE (G)": float(p["s_ace_g"]),
                            "paper CIFAR-10": float(p["cifar10"]),
                            "paper CIFAR-10 rank": int(ranks["cifar10"][split]),
                            "paper CIFAR-100": float(p["cifar100"]),
                            "paper CIFAR-100 rank": int(ranks["cifar100"][split])})
            else:
                row.update({"paper S-ACE (G)": math.nan, "paper CIFAR-10": math.nan,
                            "paper CIFAR-10 rank": "not reported", "paper CIFAR-100": math.nan,
                            "paper CIFAR-100 rank": "not reported"})
            if r["runs"]:
                spread = "" if math.isnan(r["std"]) else f" +- {r['std']:.2f}"
                row["ours"] = f"{r['accuracy']:.2f}{spread} ({r['runs']} runs)"
                row["ours rank"] = int(our_rank[split])
            else:
                row["ours"], row["ours rank"] = "not run", "not run"
            rows.append(row)
    return pd.DataFrame(rows)


def paper_differences(comparisons: pd.DataFrame, shen: pd.DataFrame) -> pd.DataFrame:
    """``comparisons`` with Shen et al.'s differences a - b on CIFAR-10 and CIFAR-100 added (NaN
    where the paper lacks either split)."""
    q = shen_quantized(shen).set_index("wst")
    out = comparisons.copy()
    for col, name in (("cifar10", "paper CIFAR-10 a - b"), ("cifar100", "paper CIFAR-100 a - b")):
        out[name] = [float(q.loc[a, col] - q.loc[b, col]) if a in q.index and b in q.index
                     else math.nan for a, b in zip(out["a"], out["b"])]
    return out


# ------------------------------------------------------------------ the chapter's parameters
from .. import params as _p  # noqa: E402
from .. import sweeps as _sweeps  # noqa: E402

# nb/07_budgets.ipynb's parameters (its validation cell: ``params.check(PARAMETERS, globals())``)
PARAMETERS = _p.declare(
    _p.results_dir("stored sweep results: results/fixed-budget"),
    _p.seeds("seeds of every split"),
    _p.Param("budgets", "any", None, "None: every budget and split of the stored sweep (sweeps.BUDGETS), or "
             "a list of its budgets, or a dict {Bit Budget: [\"W/S/T\", ...]} whose splits multiply to their "
             "budget",
             allowed=f"None, a list of the stored budgets {sorted(_sweeps.BUDGETS)}, or a dict {{Bit Budget: "
                     f"[W/S/T splits]}} of integer splits with W * S * T = the budget",
             test=lambda v: None if v is None else budget_problem(v, _sweeps.BUDGETS)),
    *_p.training(),
    _p.train_missing(),
    _p.fig_dir(),
    _p.record_path("07_budgets"),
)
