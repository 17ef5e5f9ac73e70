"""Ablations (chapter 6): summaries of the stored runs of ``sweeps.ABLATIONS`` at one target.

The runs are grouped by ablation name (``groups[name]`` = stored results over seeds).  Besides the
names of ``sweeps.ABLATIONS`` a group may be ``"U-quant"``: the refined neuron with every learned
layer fixed at the target bits (chapter 5's stored runs), the baseline of the paper's ablation
table.  ``SECTIONS`` orders the groups into the chapter's three parts; ``PAPER_COLUMNS`` maps the
paper's two ablation tables onto them; ``CLAIMS`` lists the one-factor comparisons that the paper's
tables make (which of the two is better is read from the paper's numbers, never typed in).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from . import allocation as al

REFERENCE = "default"  # LBW + activation renewal with the refined neuron: the paper's method
UQUANT = "U-quant"  # the refined neuron at the target bits from the start (chapter 5's runs)
ALPHA = 0.05  # significance level of the Welch tests

# The groups of each section, in the order shown.  A chapter shows those that it asks for; a
# group that is not in ``sweeps.ABLATIONS`` (the old neuron as U-quant or without renewal, two
# columns of the paper's neuron table) is reported as "not in the sweep".
SECTIONS = {
    "renewal variants": (UQUANT, "default", "renewal none", "renewal weight-only", "renewal both"),
    "neuron": ("old neuron, U-quant", "old neuron, no renewal", "old neuron", "tau 2, round"),
    "T learning and the reference code's renewal": (
        "T fixed", "running extrema", "renewal both, range-ratio weights"),
}

FIXED = "=target"  # a U-quant column: its W/S/T is the target
# paper table -> {column: (its label, our group, the column of its learned W/S/T, FIXED, or None
# where the paper prints none)}
PAPER_COLUMNS = {
    "yao_ablation": {
        "uquant": ("U-quant", UQUANT, FIXED),
        "lbw": ("LBW (no renewal)", "renewal none", "lbw_wst"),
        "weight_renew": ("LBW + weight-only renewal", "renewal weight-only", "weight_renew_wst"),
        "bilateral_renew": ("LBW + bilateral renewal", "renewal both", "bilateral_renew_wst"),
        "act_renew": ("LBW + activation-only renewal", "default", "act_renew_wst"),
    },
    "yao_neuron_ablation": {
        "tau2_floor_uquant": ("tau=2 & floor, U-quant", "old neuron, U-quant", FIXED),
        "tau2_floor_no_renew": ("tau=2 & floor, no renewal", "old neuron, no renewal", None),
        "tau2_floor_renew": ("tau=2 & floor, renewal", "old neuron", None),
        "tau2_round_renew": ("tau=2 & round, renewal", "tau 2, round", None),
        "tau1_round_renew": ("tau=1 & round, renewal", "default", None),
    },
}

# (paper table, column a, column b, the one factor that differs): one claim of the paper each
CLAIMS = (
    ("yao_ablation", "act_renew", "lbw", "activation renewal vs none"),
    ("yao_ablation", "bilateral_renew", "lbw", "bilateral renewal vs none"),
    ("yao_ablation", "weight_renew", "lbw", "weight-only renewal vs none"),
    ("yao_ablation", "act_renew", "bilateral_renew", "activation-only vs bilateral renewal"),
    ("yao_ablation", "lbw", "uquant", "learned bits (no renewal) vs U-quant"),
    ("yao_neuron_ablation", "tau1_round_renew", "tau2_round_renew",
     "tau 1 vs tau 2 (round, renewal)"),
    ("yao_neuron_ablation", "tau2_round_renew", "tau2_floor_renew",
     "round vs floor + amplitude (tau 2, renewal)"),
    ("yao_neuron_ablation", "tau2_floor_renew", "tau2_floor_no_renew",
     "old neuron: renewal vs none"),
    ("yao_neuron_ablation", "tau2_floor_no_renew", "tau2_floor_uquant",
     "old neuron: learned bits vs U-quant"),
)

# comparisons the paper does not make: (a, b, the one factor that differs)
EXTRA_COMPARISONS = (
    ("T fixed", "default", "T = 1 from the start vs learned T (from 2)"),
    ("running extrema", "default", "running extrema (reference code) vs each renewal's own range"),
    ("renewal both, range-ratio weights", "renewal both",
     "range-ratio weight renewal (reference code) vs grid search"),
)

TABLE_COLUMNS = ["section", "ablation", "runs", "W", "S", "T", "accuracy", "std",
                 f"p vs {REFERENCE}", "weight renewals", "spike renewals",
                 "runs with a drop > 5", "worst drop"]


OTHER = "other"  # the section of a group that ``SECTIONS`` does not list


def section_of(name: str) -> str:
    """The section of ``SECTIONS`` that lists the group ``name`` (``OTHER`` if none does)."""
    for section, names in SECTIONS.items():
        if name in names:
            return section
    return OTHER


def ordered(names) -> list[str]:
    """``names`` in the order of ``SECTIONS``, then those that no section lists."""
    listed = [n for group in SECTIONS.values() for n in group if n in names]
    return listed + [n for n in names if n not in listed]


def accuracies(group: list[dict]) -> list[float]:
    return [float(r["metrics"]["accuracy"]) for r in group]



def ablation_table(groups: dict[str, list[dict]], reference: str = REFERENCE) -> pd.DataFrame:
    """One row per group, in the order of ``groups`` (a group with no stored run is a row with 0
    runs and NaN elsewhere): its section, the number of runs, the mean final W, S, T, the
    accuracy mean and std (ddof 1), the Welch p-value of the accuracy against ``reference``,
    weight and spike renewals per run, the runs with an epoch more than 5 points below the one
    before, and the largest such fall."""
    ref = accuracies(groups.get(reference, []))
    rows = []
    for name, group in groups.items():
        row = dict.fromkeys(TABLE_COLUMNS, math.nan)
        row.update(section=section_of(name), ablation=name, runs=len(group))
        if group:
            acc = accuracies(group)
            totals = pd.DataFrame([al.flip_totals(r) for r in group]).mean()
            row.update({k: float(np.mean([r["metrics"][k] for r in group])) for k in "WST"})
            row.update(accuracy=float(np.mean(acc)),
                       std=float(np.std(acc, ddof=1)) if len(acc) > 1 else math.nan,
                       **{f"p vs {reference}": al.welch(acc, ref) if name != reference
                          else math.nan},
                       **{"weight renewals": float(totals["w_renewals"]),
                          "spike renewals": float(totals["s_renewals"]),
                          "runs with a drop > 5": int(sum(bool(r["metrics"]["accuracy_drops"])
                                                          for r in group)),
                          "worst drop": max(al.worst_drop(r) for r in group)})
        rows.append(row)
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def compare(groups: dict[str, list[dict]], a: str, b: str, alpha: float = ALPHA) -> dict:
    """Accuracy of group ``a`` against group ``b``: both means, the difference a - b, the Welch
    p-value and the outcome: "higher" or "lower" (p < alpha), "no significant difference",
    "untested" (no p-value: fewer than two runs in a group, or no spread in either),
    "not in the sweep" when ``groups`` has no such group, or "not run" when either group has no
    stored run."""
    if a not in groups or b not in groups:
        return {"a": a, "b": b, "mean a": math.nan, "mean b": math.nan, "difference": math.nan,
                "p": math.nan, "outcome": "not in the sweep"}
    acc_a, acc_b = accuracies(groups[a]), accuracies(groups[b])
    if not acc_a or not acc_b:
        return {"a": a, "b": b, "mean a": math.nan, "mean b": math.nan, "difference": math.nan,
                "p": math.nan, "outcome": "not run"}
    diff = float(np.mean(acc_a) - np.mean(acc_b))
    p = al.welch(acc_a, acc_b)
    outcome = ("untested" if math.isnan(p) else "no significant difference" if not p < alpha
               else "higher" if diff > 0 else "lower")
    return {"a": a, "b": b, "mean a": float(np.mean(acc_a)), "mean b": float(np.mean(acc_b)),
            "difference": diff, "p": p, "outcome": outcome}


NOT_REPRODUCED = ("same direction, not significant", "untested", "no difference",
                  "opposite direction, not significant", "reversed")


def verdict(paper_difference: float, ours: dict) -> str:
    """Whether our comparison reproduces the paper's direction: "reproduced" (same sign, p <
    alpha), "same direction, not significant", "untested" (no p-value), "no difference"
    (equal means), "opposite
    direction, not significant", "reversed" (opposite sign, p < alpha), "not run" or "not in
    the sweep"."""
    if ours["outcome"] in ("not run", "not in the sweep"):
        return ours["outcome"]
    if ours["difference"] == 0:
        return "no difference"
    if ours["outcome"] == "untested":
        return "untested"
    same = (ours["difference"] > 0) == (paper_difference > 0)
    if ours["outcome"] == "no significant difference":
        return ("same direction, not significant" if same
                else "opposite direction, not significant")
    return "reproduced" if same else "reversed"


def claims_table(groups: dict[str, list[dict]], paper_tables: dict[str, pd.DataFrame],
                 target: str, alpha: float = ALPHA) -> pd.DataFrame:
    """One row per claim of ``CLAIMS``: the paper's two accuracies at ``target`` (NaN when its
    table has no such row), ours, the Welch p-value and ``verdict``.  ``paper_tables``: name ->
    ``paper.paper_table(name)``."""
    rows = []
    for table, col_a, col_b, factor in CLAIMS:
        la, ga, _ = PAPER_COLUMNS[table][col_a]
        lb, gb, _ = PAPER_COLUMNS[table][col_b]
        t = paper_tables[table].set_index("target")
        pa, pb = ((float(t.loc[target, c]) if target in t.index else math.nan)
                  for c in (col_a, col_b))
        ours = compare(groups, ga, gb, alpha)
        rows.append({"paper table": table, "factor": factor, "a": ga, "b": gb,
                     "paper a": pa, "paper b": pb, "paper a - b": pa - pb,
                     "ours a": ours["mean a"], "ours b": ours["mean b"],
                     "ours a - b": ours["difference"], "p": ours["p"],
                     "verdict": "not reported" if math.isnan(pa - pb)
                     else verdict(pa - pb, ours)})
    return pd.DataFrame(rows)


def extra_table(groups: dict[str, list[dict]], alpha: float = ALPHA) -> pd.DataFrame:
    """``compare`` for each of ``EXTRA_COMPARISONS`` (comparisons the paper does not make)."""
    return pd.DataFrame([{"factor": factor, **compare(groups, a, b, alpha)}
                         for a, b, factor in EXTRA_COMPARISONS])


def ranking(table: pd.DataFrame, names) -> list[tuple[str, float]]:
    """(group, mean accuracy) of the stored ``names`` in ``table``, best first."""
    t = table.set_index("ablation")
    rows = [(n, float(t.loc[n, "accuracy"])) for n in names if n in t.index and t.loc[n, "runs"]]
    return sorted(rows, key=lambda r: -r[1])


def paper_vs_book(table: pd.DataFrame, paper_tables: dict[str, pd.DataFrame], target: str,
                  setting_paper: str, setting_ours: str) -> pd.DataFrame:
    """The paper's row at ``target`` of both ablation tables (one row per column of
    ``PAPER_COLUMNS``) beside our group of the same ablation: the paper's learned W/S/T where it
    prints one and its accuracy; our runs, mean W/S/T and accuracy mean +- std ("not run" where
    no run is stored; "not reported" where the paper has no row at ``target``)."""
    t = table.set_index("ablation")
    rows = []
    for name, columns in PAPER_COLUMNS.items():
        p = paper_tables[name].set_index("target")
        for col, (label, group, wst_col) in columns.items():
            has = target in p.index
            wst = ("not reported" if not has else target if wst_col == FIXED
                   else "not printed" if wst_col is None else p.loc[target, wst_col])
            row = {"paper table": name, "paper column": label, "paper W/S/T": wst,
                   "paper accuracy": float(p.loc[target, col]) if has else math.nan,
                   "ours": group}
            if group in t.index and t.loc[group, "runs"]:
                r = t.loc[group]
                spread = "" if math.isnan(r["std"]) else f" +- {r['std']:.2f}"
                row.update({"ours: runs": int(r["runs"]),
                            "ours: W/S/T": f"{r['W']:.2f}/{r['S']:.2f}/{r['T']:.2f}",
                            "ours: accuracy": f"{r['accuracy']:.2f}{spread}"})
            else:
                missing = "not run" if group in t.index else "not in the sweep"
                row.update({"ours: runs": 0, "ours: W/S/T": missing, "ours: accuracy": missing})
            row.update({"paper setting": setting_paper, "our setting": setting_ours})
            rows.append(row)
    return pd.DataFrame(rows)


# the columns of ``paper_vs_book`` as the page labels them
PAPER_VS_BOOK_WORDS = {
    "paper column": "the paper's column",
    "paper W/S/T": "the paper's learned W/S/T",
    "paper accuracy": "the paper's top-1 accuracy (%)",
    "ours": "our group of runs",
    "ours: runs": "our runs (seeds)",
    "ours: W/S/T": "our final mean W/S/T",
    "ours: accuracy": "our accuracy (%, mean +- std over seeds)",
}

# our groups that chapter 5a also shows at the ablation target, by the method's name there
CHAPTER5_METHODS = {UQUANT: "U-quant", "renewal none": "LBW", "default": "LBW + renewal"}


_VERDICT_WORDS = {
    "reproduced": "reproduced (p < {alpha})",
    "same direction, not significant": "the same direction, but not significant at p < {alpha}: "
                                       "not reproduced with these seeds",
    "opposite direction, not significant": "the opposite direction, not significant: the "
                                           "paper's ordering does not reproduce here",
    "no difference": "equal means: the paper's ordering does not reproduce here",
    "untested": "no Welch test possible (fewer than two runs, or no spread): not established here",
    "reversed": "reversed (p < {alpha}): the paper's ordering does not reproduce here",
    "not run": "not run yet",
    "not in the sweep": "not in this book's sweep",
    "not reported": "the paper reports no row at this target",
}


def claim_sentence(row, alpha: float = ALPHA) -> str:
    """One sentence for a row of ``claims_table``: the paper's numbers, ours, and the verdict."""
    head = f"{row['factor']}: the paper "
    head += ("-" if math.isnan(row["paper a - b"]) else
             f"{row['paper a']:.2f} vs {row['paper b']:.2f} ({row['paper a - b']:+.2f})")
    if row["verdict"] in ("not run", "not in the sweep"):
        return head + "; here " + _VERDICT_WORDS[row["verdict"]] + "."
    p = "n/a" if math.isnan(row["p"]) else f"{row['p']:.3f}"
    return (head + f"; here {row['ours a']:.2f} vs {row['ours b']:.2f} ({row['ours a - b']:+.2f}, "
            f"Welch p = {p}): " + _VERDICT_WORDS[row["verdict"]].format(alpha=alpha) + ".")


def compare_sentence(row, alpha: float = ALPHA) -> str:
    """One sentence for a row of ``extra_table``."""
    if row["outcome"] in ("not run", "not in the sweep"):
        return f"{row['factor']}: {_VERDICT_WORDS[row['outcome']]}."
    p = "n/a" if math.isnan(row["p"]) else f"{row['p']:.3f}"
    word = {"higher": f"higher (p < {alpha})", "lower": f"lower (p < {alpha})",
            "no significant difference": f"no significant difference at p < {alpha}",
            "untested": "no Welch test possible (fewer than two runs, or no spread)",
            }[row["outcome"]]
    return (f"{row['factor']}: {row['mean a']:.2f} vs {row['mean b']:.2f} "
            f"({row['difference']:+.2f}, Welch p = {p}): {word}.")


def shared_runs(ours: list[dict], theirs: list[dict]) -> dict:
    """How the stored runs of one of our groups relate to another chapter's group of the same
    method: the runs both show (same key: same settings, seed and code version), the seeds that
    only the other shows, and both groups' accuracy mean, std (ddof 1) and size."""
    keys = {r["key"] for r in ours}
    theirs_keys = {r["key"] for r in theirs}

    def stats(group):
        acc = accuracies(group)
        return (float(np.mean(acc)) if acc else math.nan,
                float(np.std(acc, ddof=1)) if len(acc) > 1 else math.nan, len(acc))

    (m_o, s_o, n_o), (m_t, s_t, n_t) = stats(ours), stats(theirs)
    return {"shared": sum(r["key"] in theirs_keys for r in ours),
            "only ours": sorted(int(r["parameters"]["seed"]) for r in ours if r["key"] not in theirs_keys),
            "only theirs": sorted(int(r["parameters"]["seed"]) for r in theirs if r["key"] not in keys),
            "mean ours": m_o, "std ours": s_o, "n ours": n_o,
            "mean theirs": m_t, "std theirs": s_t, "n theirs": n_t}


def _seeds_text(seeds) -> str:
    seeds = list(seeds)
    if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]} to {seeds[-1]}"
    return ", ".join(map(str, seeds[:-1])) + (" and " if len(seeds) > 1 else "") + str(seeds[-1])


def _means_text(pairs, side: str, names) -> str:
    """'a 1.00 +- 0.10, b ... and c ... over 5 seeds' (the seed count once when all agree)."""
    ns = {s[f"n {side}"] for _, _, s in pairs}
    parts = []
    for name, (_, _, s) in zip(names, pairs):
        spread = "" if math.isnan(s[f"std {side}"]) else f" +- {s[f'std {side}']:.2f}"
        each = "" if len(ns) == 1 else f" ({s[f'n {side}']} seeds)"
        parts.append(f"{name} {s[f'mean {side}']:.2f}{spread}{each}".strip())
    text = ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1]
    if len(ns) == 1:
        n = ns.pop()
        text += f" over {n} seed{'s' * (n != 1)}"
    return text


def other_chapter_sentence(pairs, other: str, target: str) -> str:
    """Why ``other`` (a chapter, e.g. "chapter 5a") shows other numbers for the same methods at
    ``target``, in two sentences from ``pairs`` = [(our group, its name there,
    :func:`shared_runs`), ...]: both sides' means, and whether the runs are the same stored runs
    (same keys) with seeds that only one side has, or runs of other settings.  "" when either side
    has no stored run of these methods."""
    pairs = [(o, t, s) for o, t, s in pairs if s["n theirs"] and s["n ours"]]
    if not pairs:
        return ""
    Other = other[:1].upper() + other[1:]
    head = (f"**Why {other} shows other numbers.** {Other} shows "
            f"{_means_text(pairs, 'theirs', [t for _, t, _ in pairs])} at {target}; here the same "
            f"methods ({', '.join(o for o, _, _ in pairs)}) are "
            f"{_means_text(pairs, 'ours', [''] * len(pairs))}. ")
    same = all(s["shared"] == s["n ours"] for _, _, s in pairs)
    extra = sorted({seed for _, _, s in pairs for seed in s["only theirs"]})
    if same and extra:
        why = (f"They are the same stored runs (same settings, seed and code version): {other} adds "
               f"seed{'s' * (len(extra) > 1)} {_seeds_text(extra)} at {target}, which this chapter "
               f"runs for no ablation.")
    elif same:
        why = "They are the same stored runs (same settings, seeds and code version)."
    elif not any(s["shared"] for _, _, s in pairs):
        why = (f"None of {other}'s stored runs has the settings of this chapter's runs, so the two "
               f"are not the same runs.")
    else:
        counts = ", ".join(f"{o}: {s['shared']} of {s['n ours']}" for o, _, s in pairs)
        why = f"Only some runs are the same stored runs ({counts}); the others differ in settings or seed."
    return head + why


# ------------------------------------------------------------------ the chapter's parameters
from .. import params as _p  # noqa: E402
from .. import sweeps as _sweeps  # noqa: E402

# nb/06_ablations.ipynb's parameters (its validation cell: ``params.check(PARAMETERS, globals())``)
PARAMETERS = _p.declare(
    _p.results_dir("stored sweep results: results/ablations (and results/allocation for U-quant)"),
    _p.seeds("seeds of every ablation"),
    _p.Param("target", "wst", "1/1/1", "target mean W/S/T of every run: whole W and S from 1 to 6, T of 1",
             low=1, high=(6, 6, 1), integers=True,
             note="U-quant needs whole bits; 'T fixed' holds T = 1"),
    *_p.training(),
    _p.train_missing(),
    _p.Param("ablations", "choice", list(_sweeps.ABLATIONS), 'names from sweeps.ABLATIONS, "default" among them',
             choices=tuple(_sweeps.ABLATIONS), many=True, among=(REFERENCE,)),
    _p.Param("show_uquant", "bool", True, "also show U-quant with the refined neuron (chapter 5's runs, "
             "results/allocation)"),
    _p.fig_dir(),
    _p.record_path("06_ablations"),
)
