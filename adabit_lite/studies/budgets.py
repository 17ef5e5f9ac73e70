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
their Welch p-values, raw and Holm-adjusted over all pairs of the table; ``verdicts`` sorts them
(Holm p < ``ALPHA``) and ``findings`` puts the chapter's verdict into words.

The page.  nb/07_budgets.ipynb only calls into this module: ``load_runs`` reads the stored runs,
``cost_table``, ``split_table``, ``comparison_table`` and ``paper_vs_book`` build its tables, the
``*_lines`` functions print their key numbers, ``findings`` and ``paper_claims`` write its
sentences and the ``plot_*`` functions draw its four figures.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..reproduce import p_text
from ..wst import parse_wst
from . import load_stored, words
from .ablations import accuracies
from .allocation import mean_history, welch

ALPHA = 0.05  # a Holm-adjusted p-value below this counts as a difference found
SPIKES_VS_STEPS = "spike bits vs time steps (same W)"
SPIKES_VS_WEIGHTS = "spike bits vs weight bits (same T)"
MAX_BITS = 16  # the largest W, S or T a split may ask for here
MAX_BUDGET = 256
SAME_COST = 0.01  # two printed S-ACE values within this (relative) of the budget's lowest count as equal


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


#: the columns of ``split_costs`` (in its order); ``accuracy_view`` keeps only ``KEPT_COSTS``, and only
#: where the stored values differ from them
COST_COLUMNS = ("MACs (M)", "S-ACE (M)", "stem MACs (M)", "stem W/S/T", "stem S-ACE (M)",
                "S-ACE + stem (M)", "uniform S-ACE (M)", "size (kbit)")
KEPT_COSTS = ("S-ACE (M)", "size (kbit)")


def cost_table(budgets: dict[int, list[str]], costs: dict[str, dict]) -> pd.DataFrame:
    """One row per budget and split (``budgets`` as ``normalize_budgets`` gives it): the levels
    its spikes and weights can take (``spike_levels``, ``weight_levels``) and its metered costs
    ``costs[split]`` (``split_costs``)."""
    rows = []
    for budget, splits in budgets.items():
        for split in splits:
            w, s, t = parse_split(split)
            rows.append({"budget": budget, "split": split, "spike levels": spike_levels(s, t),
                         "weight levels": weight_levels(w), **costs[split]})
    return pd.DataFrame(rows)


def cost_lines(table: pd.DataFrame, dataset: str, image_size) -> list[str]:
    """The printed summary of a ``cost_table``: the data and the MACs of the learned layers and
    the stem, then per split its levels, S-ACE (learned convention, + the stem's own, and the
    uniform convention) and size, all per sample."""
    lines = [f"data {dataset} {image_size[0]}x{image_size[1]}, learned layers "
             f"{table['MACs (M)'].iloc[0]:.4f} M MACs, stem {table['stem MACs (M)'].iloc[0]:.4f} M "
             "MACs per sample"]
    for _, r in table.iterrows():
        lines.append(
            f"BB {r['budget']} {r['split']}: levels spikes {r['spike levels']}, weights "
            f"{r['weight levels']}; S-ACE {r['S-ACE (M)']:.2f} M + stem {r['stem W/S/T']} "
            f"{r['stem S-ACE (M)']:.2f} M = {r['S-ACE + stem (M)']:.2f} M; uniform "
            f"{r['uniform S-ACE (M)']:.2f} M; size {r['size (kbit)']:.2f} kbit")
    return lines


# ------------------------------------------------------------------ stored runs
def load_runs(settings: dict[int, dict[str, list]], sweep_dir, train_missing: bool = False):
    """The stored results of ``settings`` ({budget: {split: [cfg]}}, ``sweeps.fixed_budget_groups``)
    under ``sweep_dir`` (``studies.load_stored``; trained first with ``train_missing``):
    (groups {budget: {split: [result]}}, wanted {budget: {split: runs wanted}}, runs found, runs
    wanted)."""
    stored = load_stored(settings, lambda split, cfg: sweep_dir, train_missing)
    wanted = {budget: {split: len(cfgs) for split, cfgs in by_split.items()}
              for budget, by_split in settings.items()}
    return stored.groups, wanted, stored.found, stored.wanted


def devices(groups: dict[int, dict[str, list[dict]]]) -> list[str]:
    """The device types ("cpu", "cuda") the stored runs of ``groups`` were trained on, sorted."""
    return sorted({r["run"]["device_type"] for by_split in groups.values()
                   for runs in by_split.values() for r in runs if "run" in r})



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


def orderings(table: pd.DataFrame, budgets) -> dict:
    """{budget: ``ordering`` of its splits by mean accuracy} for every budget of ``budgets``."""
    return {b: ordering(table, b) for b in budgets}


def meter_matches(table: pd.DataFrame) -> bool:
    """Whether every split with runs stored the S-ACE and size (learned convention) that the
    meter gives its model now (relative tolerance 1e-9; True when no split has runs)."""
    shown = table[table["runs"] > 0]
    return bool(np.allclose(shown["stored S-ACE (M)"], shown["S-ACE (M)"], rtol=1e-9, atol=0)
                and np.allclose(shown["stored size (kbit)"], shown["size (kbit)"], rtol=1e-9, atol=0))


def accuracy_view(table: pd.DataFrame) -> pd.DataFrame:
    """A ``split_table`` as section 2 shows it: without W, S and T (the split says them), the runs
    wanted (the line above the table says them) and the metered costs shown in section 1
    (``COST_COLUMNS``); the S-ACE and size that the stored ones are compared with
    (``KEPT_COSTS``) stay only where they differ (``meter_matches`` false)."""
    drop = [c for c in COST_COLUMNS if c not in KEPT_COSTS or meter_matches(table)]
    return table.drop(columns=[c for c in ("W", "S", "T", "wanted", *drop) if c in table])


def split_lines(table: pd.DataFrame, orders: dict) -> list[str]:
    """The printed summary of a ``split_table``: per split its runs, accuracy mean +- std, train
    accuracy, rank, Welch p against the budget's best and stored S-ACE ("missing" without runs);
    whether the stored costs equal the meter's (``meter_matches``); each budget's ordering
    (``orders``, from ``orderings``)."""
    lines = ["budget, split (runs of wanted): accuracy mean +- std, train accuracy, rank, p vs best, "
             "stored S-ACE"]
    for _, r in table.iterrows():
        if r["runs"] == 0:
            lines.append(f"BB {r['budget']} {r['split']} (0 of {r['wanted']}): missing")
            continue
        p = "best" if r["rank"] == 1 else p_text(r["p vs best"])
        std = "n/a" if np.isnan(r["std"]) else f"{r['std']:.2f}"
        lines.append(f"BB {r['budget']} {r['split']} ({r['runs']} of {r['wanted']}): {r['accuracy']:.2f} "
                     f"+- {std}, train {r['train accuracy']:.2f}, rank {r['rank']:.0f}, {p}, S-ACE "
                     f"{r['stored S-ACE (M)']:.2f} M")
    same = meter_matches(table) if (table["runs"] > 0).any() else "no runs to compare"
    lines.append(f"stored S-ACE and size equal the meter's for every split shown: {same}")
    return lines + [f"BB {b} ordering: {text or 'no runs'}" for b, text in orders.items()]


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


def verdicts(comparisons: pd.DataFrame, alpha: float = ALPHA, column: str = "p (Holm)") -> dict:
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


def comparison_lines(comparisons: pd.DataFrame) -> list[str]:
    """The printed summary of a ``comparison_table``: per pair both mean accuracies, a - b and
    the Welch p-value raw and Holm-adjusted ("missing runs" where a side has none)."""
    lines = []
    for _, c in comparisons.iterrows():
        head = f"BB {c['budget']} {c['comparison']}: "
        if np.isnan(c["a - b"]):
            lines.append(head + f"{c['a']} vs {c['b']}: missing runs")
            continue
        p = p_text(c["p"]) + ("" if np.isnan(c["p"]) else f", Holm {p_text(c['p (Holm)'])}")
        lines.append(head + f"{c['a']} {c['accuracy a']:.2f} vs {c['b']} {c['accuracy b']:.2f}, "
                            f"a - b {c['a - b']:+.2f} ({p})")
    return lines


def _pairs_text(table: pd.DataFrame, comparisons: pd.DataFrame, kind: str, title: str, describe,
                alpha: float):
    """("**title.** <pairs>. ", ``verdicts`` of ``kind``) for the pairs of one kind whose splits
    both have runs, each as ``describe(table by split, row)`` then a - b and p raw and Holm;
    (None, None) without such a pair."""
    rows = comparisons[comparisons["comparison"] == kind]
    rows = [r for _, r in rows.iterrows() if not np.isnan(r["a - b"])]
    if not rows:
        return None, None
    t = table.set_index("split")
    pairs = "; ".join(f"{describe(t, r)}: {r['a - b']:+.2f} points, {p_text(r['p'])}, "
                      f"Holm {p_text(r['p (Holm)'])}" for r in rows)
    return f"**{title}.** {pairs}. ", verdicts(comparisons, alpha)[kind]


def budget_sentence(table: pd.DataFrame, budget: int, order: str) -> str:
    """One budget in words: its runs, the ``order`` of its splits (``ordering``), best minus
    worst mean accuracy (two splits or more with runs) and the splits without runs."""
    rows = table[table["budget"] == budget]
    have = rows[rows["runs"] > 0]
    text = (f"**Bit Budget {budget}**, {int(have['runs'].sum())} runs: ordering by mean accuracy "
            f"{order or '(none)'}")
    if len(have) > 1:
        text += f"; best minus worst {have['accuracy'].max() - have['accuracy'].min():.2f} points"
    missing = rows[rows["runs"] == 0]["split"].tolist()
    if missing:
        text += f"; not stored: {', '.join(missing)}"
    return text + "."


# what T adds on a static image (shown whenever a spike-bits-vs-time-steps pair has runs;
# a plain comment: the API page would show the text, whose $ math renders only in a chapter)
WHAT_T_BUYS = (
    "What $T$ buys here: on a static image every step sees the same input, so $T$ steps "
    "of $B_s$ bits give each learned layer's input a grid of $T(2^{B_s}-1)+1$ levels, "
    "which the split with all the budget in $B_s$ contains. $T$ also repeats the 8-bit "
    "stem, which costs S-ACE that the learned convention does not count (section 1), and "
    "refines the stem's output beyond the 256 levels of its 8-bit spikes. Apart from that "
    "finer stem output, the time steps give the learned layers nothing that the spike bits "
    "of the same budget could not.")


def steps_paragraph(table: pd.DataFrame, comparisons: pd.DataFrame, setting: str,
                    alpha: float = ALPHA) -> str:
    """The spike-bits-vs-time-steps pairs with runs in words (spike levels, the stem's S-ACE of
    each side, a - b, p raw and Holm) and the verdict on Shen et al.'s finding by ``verdicts``;
    ``setting`` names the runs where nothing is significant.  "" without such a pair."""
    text, v = _pairs_text(
        table, comparisons, SPIKES_VS_STEPS, "Spike bits vs time steps",
        lambda t, r: (f"{r['a']} ({t.loc[r['a'], 'spike levels']} spike levels) vs {r['b']} "
                      f"({t.loc[r['b'], 'spike levels']} levels, stem S-ACE "
                      f"{t.loc[r['b'], 'stem S-ACE (M)']:.1f} M against "
                      f"{t.loc[r['a'], 'stem S-ACE (M)']:.1f} M)"), alpha)
    if text is None:
        return ""
    if v["a wins"] and not v["b wins"]:
        text += (f"Spike bits win where the difference is significant ({', '.join(v['a wins'])}), "
                 "as Shen et al. found on CIFAR.")
    elif v["b wins"] and not v["a wins"]:
        text += (f"Here the time steps win ({', '.join(v['b wins'])}), the opposite of Shen et al.'s "
                 "finding on CIFAR. Since one step of more bits can express every grid of the "
                 "T-step split (the stem's finer output aside), this is a matter of how the "
                 "splits train, not of what they can represent.")
    elif v["a wins"] and v["b wins"]:
        text += (f"The direction is mixed: spike bits win in {', '.join(v['a wins'])}, time "
                 f"steps in {', '.join(v['b wins'])}.")
    elif v["not significant"]:
        text += ("No difference is significant after the Holm adjustment: in this setting "
                 f"({setting}) Shen et al.'s finding that spike bits beat time steps on static "
                 "images does not reproduce as a measurable difference.")
    if v["not significant"] and (v["a wins"] or v["b wins"]):
        text += f" Not significant: {', '.join(v['not significant'])}."
    if v["no test"]:
        text += (f" No Welch test is possible for {', '.join(v['no test'])} (fewer than two runs "
                 "a side, or no spread); their means are shown, nothing is claimed.")
    return text


def weights_paragraph(table: pd.DataFrame, comparisons: pd.DataFrame, alpha: float = ALPHA) -> str:
    """The spike-bits-vs-weight-bits pairs with runs in words (weight levels and size of each
    side, a - b, p raw and Holm) and which side wins where (``verdicts``).  "" without such a
    pair."""
    text, v = _pairs_text(
        table, comparisons, SPIKES_VS_WEIGHTS, "Spike bits vs weight bits",
        lambda t, r: (f"{r['a']} vs {r['b']} (weight levels {t.loc[r['a'], 'weight levels']} vs "
                      f"{t.loc[r['b'], 'weight levels']}, size {t.loc[r['a'], 'size (kbit)']:.0f} vs "
                      f"{t.loc[r['b'], 'size (kbit)']:.0f} kbit)"), alpha)
    if text is None:
        return ""
    for key, phrase in (("a wins", "Spike bits win in {}. "), ("b wins", "Weight bits win in {}. "),
                        ("not significant", "Not significant: {}. "),
                        ("no test", "No Welch test possible: {}.")):
        if v[key]:
            text += phrase.format(words(v[key]))
    return text


def run_setting(dataset: str, epochs: int, n_seeds: int) -> str:
    """The runs' setting in words: "small CNN, <data>, <epochs> epoch(s), <n> seed(s) per split"."""
    return (f"small CNN, {dataset}, {epochs} epoch{'s' * (epochs != 1)}, {n_seeds} "
            f"seed{'s' * (n_seeds != 1)} per split")


def findings(table: pd.DataFrame, comparisons: pd.DataFrame, orders: dict, setting: str) -> str:
    """The chapter's findings (Markdown): every budget (``budget_sentence``), the spike bits vs
    time steps verdict (``steps_paragraph``, then ``WHAT_T_BUYS``) and the spike bits vs weight
    bits one (``weights_paragraph``); a note on how to get runs when none is stored."""
    if not (table["runs"] > 0).any():
        return ("No stored runs yet for these parameters: the comparison appears once the sweep "
                "`fixed-budget` is stored (`make results`, or train_missing = True).")
    parts = [budget_sentence(table, b, order) for b, order in orders.items()]
    steps = steps_paragraph(table, comparisons, setting)
    if steps:
        parts += [steps, WHAT_T_BUYS]
    weights = weights_paragraph(table, comparisons)
    return "\n\n".join(parts + ([weights] if weights else []))


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


def paper_orderings(shen: pd.DataFrame, budgets: dict[int, list[str]]) -> dict[str, str]:
    """{"<budget> CIFAR-10": order, "<budget> CIFAR-100": order}: the splits of each budget that
    Shen et al. report, best first, as 'a (x) > b (y)' ("" where they report none)."""
    q = shen_quantized(shen).set_index("wst")
    out = {}
    for budget, splits in budgets.items():
        known = [s for s in splits if s in q.index]
        for col, name in (("cifar10", "CIFAR-10"), ("cifar100", "CIFAR-100")):
            out[f"{budget} {name}"] = " > ".join(
                f"{s} ({q.loc[s, col]:.2f})" for s in sorted(known, key=lambda s: -q.loc[s, col]))
    return out


def paper_lines(paper_orders: dict[str, str], orders: dict, paper_pairs: pd.DataFrame,
                dataset: str) -> list[str]:
    """The printed comparison with Shen et al.: per budget their orderings on CIFAR-10 and
    CIFAR-100 (``paper_orderings``) above ours (``orderings``), then per pair of
    ``paper_differences`` their a - b on both beside ours and its Welch p."""
    lines = []
    for budget, order in orders.items():
        lines += [f"BB {budget} Shen et al. {name}: {paper_orders[f'{budget} {name}'] or 'not reported'}"
                  for name in ("CIFAR-10", "CIFAR-100")]
        lines.append(f"BB {budget} this book ({dataset}): {order or 'no runs'}")
    for _, c in paper_pairs.iterrows():
        ours = "missing" if np.isnan(c["a - b"]) else f"{c['a - b']:+.2f} ({p_text(c['p'])})"
        lines.append(f"BB {c['budget']} {c['a']} - {c['b']}: Shen CIFAR-10 {c['paper CIFAR-10 a - b']:+.2f}, "
                     f"CIFAR-100 {c['paper CIFAR-100 a - b']:+.2f}; ours {ours}")
    return lines


def paper_claims(paper_pairs: pd.DataFrame, table: pd.DataFrame, shen: pd.DataFrame,
                 alpha: float = ALPHA) -> str:
    """Shen et al.'s spike-bits-vs-time-steps pairs against ours, in words (Markdown): in how
    many of them their spike-bit split wins on CIFAR-10 and CIFAR-100, in how many our mean is
    higher and significantly so (Holm p < ``alpha``) either way, and their printed S-ACE
    (``paper_cost_text``)."""
    text = []
    steps = paper_pairs[paper_pairs["comparison"] == SPIKES_VS_STEPS]
    if not steps.empty:
        c10 = int((steps["paper CIFAR-10 a - b"] > 0).sum())
        c100 = int((steps["paper CIFAR-100 a - b"] > 0).sum())
        n = int(steps["paper CIFAR-10 a - b"].notna().sum())
        text.append(f"**Shen et al.** In their rows the split with more spike bits beats the one with more "
                    f"time steps in {c10} of {n} of these pairs on CIFAR-10 and {c100} of {n} on CIFAR-100 "
                    f"(single runs, no spread reported).")
        ours = steps[steps["a - b"].notna()]
        if not ours.empty:
            wins = int((ours["a - b"] > 0).sum())
            sig = int(((ours["a - b"] > 0) & (ours["p (Holm)"] < alpha)).sum())
            sig_b = int(((ours["a - b"] < 0) & (ours["p (Holm)"] < alpha)).sum())
            tail = (f"it is significantly higher (Holm p < {alpha:g}) in {sig} and significantly lower "
                    f"in {sig_b}." if sig or sig_b else f"no difference is significant (Holm p < {alpha:g}).")
            text.append(f"**This book.** The mean of the spike-bit split is higher in {wins} of "
                        f"{len(ours)} pairs; " + tail)
    cost = paper_cost_text(shen, table)
    return "\n\n".join(text + ([cost] if cost else []))


def paper_cost_text(shen: pd.DataFrame, table: pd.DataFrame) -> str:
    """Shen et al.'s printed S-ACE of the splits of ``table``, budget by budget: which splits print
    the budget's lowest value (within ``SAME_COST``) and which print more, with the data file's
    note on those, and whether splits of different T print the same; "" where no budget has two
    splits shown."""
    q = shen_quantized(shen)
    q = q[q["wst"].isin(table["split"]) & q["s_ace_g"].notna()]
    parts, flat = [], False
    for budget, rows in q.groupby("budget", sort=True):
        if len(rows) < 2:
            continue
        low = rows["s_ace_g"].min()
        same = rows[rows["s_ace_g"] <= low * (1 + SAME_COST)]
        dear = rows[rows["s_ace_g"] > low * (1 + SAME_COST)]
        level = (f"{low:.2f} G" if same["s_ace_g"].max() == low
                 else f"{low:.2f} to {same['s_ace_g'].max():.2f} G")
        text = (f"at Bit Budget {budget}, the splits {words(same['wst'])} print the same S-ACE ({level})"
                if len(same) > 1 else f"at Bit Budget {budget}, {same['wst'].iloc[0]} prints {level}")
        if not dear.empty:
            notes = sorted({str(n) for n in dear.get("notes", pd.Series(dtype=object)).dropna() if str(n)})
            text += (" and " + "only " * (len(same) > 1) + words(f"{w} ({c:.2f} G)" for w, c in zip(dear["wst"], dear["s_ace_g"]))
                     + " more" + (" (the data file notes " + "; ".join(f'"{n}"' for n in notes) + ")" if notes else ""))
        parts.append(text)
        flat |= len({parse_split(w)[2] for w in same["wst"]}) > 1
    if not parts:
        return ""
    return ("**Cost.** In Shen et al.'s rows " + "; ".join(parts) + "."
            + (" Their printed cost, then, does not rise with every added time step; our 8-bit stem "
               "makes each one cost more (section 1)." if flat else
               " Our 8-bit stem makes each added time step cost more (section 1)."))


# ------------------------------------------------------------------ figures
def _panels(budgets, width: float, height: float):
    """One panel per budget, side by side, sharing the y axis: (fig, the axes in a row)."""
    from .. import plotting

    fig, axes = plotting.figure(ncols=len(budgets), nrows=1, figsize=(width * len(budgets), height),
                                squeeze=False, sharey=True)
    return fig, axes[0]


def _legend_below(where) -> None:
    """The figure's (or one panel's) legend under the panels, clear of the data (none without
    labelled artists)."""
    from .. import plotting

    plotting.legend_below(where, fontsize=7)


def plot_accuracy_vs_split(groups: dict[int, dict[str, list[dict]]], budgets: dict[int, list[str]]):
    """Per budget, each split's test accuracy: the seeds (jittered), their mean +- std (ddof 1),
    and the split's spike levels under its name; "not run" for a split without runs."""
    from .. import plotting

    fig, axes = _panels(budgets, 4.6, 3.6)
    rng = np.random.default_rng(0)  # horizontal jitter of the seed points only
    for ax, (budget, splits) in zip(axes, budgets.items()):
        for i, split in enumerate(splits):
            acc = accuracies(groups[budget][split])
            if not acc:
                ax.text(i, 0.5, "not run", transform=ax.get_xaxis_transform(), ha="center", fontsize=8,
                        color=plotting.COLORS["paper"])
                continue
            ax.scatter(i + rng.uniform(-0.12, 0.12, len(acc)), acc, s=12, alpha=0.6,
                       color=plotting.COLORS["uquant"], label="seeds" if i == 0 else None)
            ax.errorbar(i, np.mean(acc), yerr=np.std(acc, ddof=1) if len(acc) > 1 else 0, fmt="o", ms=7,
                        capsize=4, color=plotting.COLORS["fp"], label="mean +- std" if i == 0 else None)
        ax.set_xticks(range(len(splits)),
                      [f"{s}\n{spike_levels(*parse_split(s)[1:])} lv" for s in splits], fontsize=8)
        ax.set_xlim(-0.5, len(splits) - 0.5)
        ax.set_xlabel("W/S/T split (spike levels)")
        ax.set_title(f"Bit Budget {budget}")
    axes[0].set_ylabel("test accuracy (%)")
    _legend_below(fig)
    return fig


def plot_accuracy_vs_s_ace(table: pd.DataFrame, budgets):
    """Mean accuracy of each split with runs against its S-ACE per sample: left the learned
    convention (stem left out), right with the stem's own S-ACE added; log x where it spans more
    than a factor 3."""
    from .. import plotting

    palette = dict(zip(budgets, ["#1f77b4", "#2ca02c", "#ff7f0e", "#8c564b"]))
    fig, axes = plotting.figure(ncols=2, nrows=1, figsize=(10, 3.8), sharey=True)
    for ax, column, title in ((axes[0], "S-ACE (M)", "learned convention (stem left out)"),
                              (axes[1], "S-ACE + stem (M)", "with the 8-bit stem's own S-ACE")):
        for budget in budgets:
            rows = table[(table["budget"] == budget) & (table["runs"] > 0)]
            if rows.empty:
                continue
            ax.scatter(rows[column], rows["accuracy"], s=30, color=palette[budget],
                       label=f"Bit Budget {budget}")
            for _, r in rows.iterrows():
                ax.annotate(r["split"], (r[column], r["accuracy"]), textcoords="offset points", xytext=(5, 3),
                            fontsize=7)
        xs = table.loc[table["runs"] > 0, column]
        if len(xs) and xs.max() > 3 * xs.min():
            ax.set_xscale("log")
        ax.set_xlabel("S-ACE per sample (M)")
        ax.set_title(title)
    axes[0].set_ylabel("test accuracy (%)")
    _legend_below(fig)
    return fig


def plot_accuracy_per_epoch(groups: dict[int, dict[str, list[dict]]], budgets: dict[int, list[str]]):
    """Per budget, each split's test accuracy after every epoch, mean over its runs."""
    fig, axes = _panels(budgets, 4.8, 3.4)
    colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2"]
    for ax, (budget, splits) in zip(axes, budgets.items()):
        for i, split in enumerate(splits):
            runs = groups[budget][split]
            if not runs:
                continue
            h = mean_history(runs, keys=("test_accuracy",))
            ax.plot(h["epoch"], h["test_accuracy mean"], marker="o", ms=3, color=colors[i % len(colors)],
                    label=split)
        ax.set_xlabel("epoch")
        ax.set_title(f"Bit Budget {budget}")
        _legend_below(ax)
    axes[0].set_ylabel("test accuracy (%, mean over seeds)")
    return fig


def plot_paper_vs_book(table: pd.DataFrame, shen: pd.DataFrame, budgets: dict[int, list[str]]):
    """Per budget, each split's accuracy minus the budget's best: ours (mean over runs) and Shen
    et al.'s on CIFAR-10 and CIFAR-100, where there are numbers."""
    from .. import plotting

    q = shen_quantized(shen).set_index("wst")
    fig, axes = _panels(budgets, 4.8, 3.4)
    for ax, (budget, splits) in zip(axes, budgets.items()):
        x = np.arange(len(splits))
        ours = table[table["budget"] == budget].set_index("split")["accuracy"].reindex(splits)
        series = [("this book", ours, plotting.COLORS["uquant"], "o")]
        for col, name, marker in (("cifar10", "Shen et al. CIFAR-10", "s"),
                                  ("cifar100", "Shen et al. CIFAR-100", "^")):
            series.append((name, q[col].reindex(splits), plotting.COLORS["paper"], marker))
        for name, values, color, marker in series:
            if values.notna().any():
                ax.plot(x, values - values.max(), marker=marker, ls="-" if name == "this book" else "--",
                        color=color, label=name)
        ax.set_xticks(x, splits, fontsize=8)
        ax.set_xlabel("W/S/T split")
        ax.set_title(f"Bit Budget {budget}")
    axes[0].set_ylabel("accuracy minus the budget's best (points)")
    _legend_below(fig)
    return fig


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
