"""Ablations (chapter 6): summaries of the stored runs of ``sweeps.ABLATIONS`` at one target.

The runs are grouped by ablation name (``groups[name]`` = stored results over seeds).  Besides the
names of ``sweeps.ABLATIONS`` a group may be ``"U-quant"``: the refined neuron with every learned
layer fixed at the target bits (chapter 5's stored runs), the baseline of the paper's ablation
table.  ``SECTIONS`` orders the groups into the chapter's three parts; ``PAPER_COLUMNS`` maps the
paper's two ablation tables onto them; ``CLAIMS`` lists the one-factor comparisons that the paper's
tables make (which of the two is better is read from the paper's numbers, never typed in).
``load`` reads the groups, and the chapter's tables, figures and findings in words (``renewal_text``,
``neuron_text``, ``extra_text``, ``summary_text``) are built here from them.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from .. import ledger, paper, plotting, sweeps
from ..reproduce import p_text
from ..results import find_result
from ..train import TrainConfig
from ..wst import parse_wst
from . import allocation as al
from . import load_stored, runs_shown

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
                          "runs with a drop > 5": sum(bool(al.drop_epochs(r)) for r in group),
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


NOT_REPRODUCED = (ledger.SMALLER, ledger.NO_DIFFERENCE, ledger.REVERSED)


def verdict(paper_difference: float, ours: dict) -> str:
    """The claims ledger's verdict (``ledger.verdict``, the book's one rule) on our difference and
    its Welch p-value against the paper's difference: "reproduces", "same direction, weaker",
    "no significant difference" or "reversed"; "not run" or "not in the sweep" where a group has
    no stored run."""
    if ours["outcome"] in ("not run", "not in the sweep"):
        return ours["outcome"]
    return ledger.verdict(paper_difference, ours["difference"], ours["p"], tested=True)


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
    ledger.REPRODUCES: "reproduces (p < {alpha})",
    ledger.SMALLER: "same direction, weaker (p < {alpha}, under half the paper's difference)",
    ledger.NO_DIFFERENCE: "no significant difference at p < {alpha}",
    ledger.REVERSED: "reversed (p < {alpha}): the paper's ordering does not reproduce here",
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
    way = ""
    if row["verdict"] == ledger.NO_DIFFERENCE and row["ours a - b"] != 0:
        same = (row["ours a - b"] > 0) == (row["paper a - b"] > 0)
        way = " (the means point the paper's way)" if same else " (the means point the other way)"
    return (head + f"; here {row['ours a']:.2f} vs {row['ours b']:.2f} ({row['ours a - b']:+.2f}, "
            f"Welch {p_text(row['p'])}): " + _VERDICT_WORDS[row["verdict"]].format(alpha=alpha)
            + way + ".")


def compare_sentence(row, alpha: float = ALPHA) -> str:
    """One sentence for a row of ``extra_table``."""
    if row["outcome"] in ("not run", "not in the sweep"):
        return f"{row['factor']}: {_VERDICT_WORDS[row['outcome']]}."
    word = {"higher": f"higher (p < {alpha})", "lower": f"lower (p < {alpha})",
            "no significant difference": f"no significant difference at p < {alpha}",
            "untested": "no Welch test possible (fewer than two runs, or no spread)",
            }[row["outcome"]]
    return (f"{row['factor']}: {row['mean a']:.2f} vs {row['mean b']:.2f} "
            f"({row['difference']:+.2f}, Welch {p_text(row['p'])}): {word}.")


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


# ------------------------------------------------------------------ the runs the chapter shows
UQUANT_OPTIONS = "cfg.uquant(): every learned layer fixed at the target bits, no bit learning, no renewal"


def options_table(names) -> pd.DataFrame:
    """One row per group of ``names``: its section and what it changes as ``TrainConfig`` options
    over the default (``sweeps.ABLATIONS``; U-quant and ``sweeps.UQUANT_ABLATIONS`` add
    ``cfg.uquant()``: W/S/T fixed at the target from the start)."""
    def options(name):
        if name == UQUANT:
            return UQUANT_OPTIONS
        text = ", ".join(f"{k}={v!r}" for k, v in sweeps.ABLATIONS[name].items()) or "(none)"
        return text + (", then cfg.uquant()" if name in sweeps.UQUANT_ABLATIONS else "")

    return pd.DataFrame([{"section": section_of(n), "ablation": n, "TrainConfig options": options(n)}
                         for n in names], columns=["section", "ablation", "TrainConfig options"])


def left_out_columns(names) -> list[str]:
    """The paper's columns (``PAPER_COLUMNS``) whose group is not among ``names``, as "label (table)"."""
    return [f"{label} ({table})" for table, cols in PAPER_COLUMNS.items()
            for label, group, _ in cols.values() if group not in names]


#: the sweep of a group stored outside ``ablations``
SWEEP_OF = {UQUANT: "allocation"}


def load(root, names, seeds, target: str, base: dict,
         train_missing: bool = False) -> tuple[dict[str, list[dict]], int]:
    """The stored runs of each group of ``names`` at ``target`` over ``seeds`` (``base``: the
    shared TrainConfig options), and how many runs were wanted.  U-quant is read from the sweep
    ``allocation`` (the default's runs made U-quant, chapter 5's runs), the rest from
    ``ablations``; ``train_missing`` trains and stores the missing ones."""
    settings = sweeps.ablation_groups(seeds, target, **base)
    configs = {n: [c.uquant() for c in settings[REFERENCE]] if n == UQUANT else settings[n]
               for n in names}
    stored = load_stored(configs, lambda n, cfg: Path(root) / SWEEP_OF.get(n, "ablations"),
                         train_missing)
    return stored.groups, stored.wanted


def runs_message(groups: dict[str, list[dict]], wanted: int, n_seeds: int) -> str:
    """How many of the ``wanted`` runs are stored, and each group with fewer than ``n_seeds``."""
    text = runs_shown(sum(len(g) for g in groups.values()), wanted, *SWEEP_OF.values(), "ablations")
    short = [f"{n} ({len(g)} of {n_seeds})" for n, g in groups.items() if len(g) < n_seeds]
    return text + ("\nincomplete groups: " + "; ".join(short) if short else "")


def chapter5_pairs(groups: dict[str, list[dict]], root, target: str, base: dict) -> list[tuple]:
    """[(our group, its method in chapter 5a, :func:`shared_runs`)] for the groups of
    ``CHAPTER5_METHODS`` that ``groups`` holds, against chapter 5a's stored runs at ``target``
    (sweep ``allocation``, that chapter's own seeds)."""
    theirs = sweeps.allocation_groups(Path(root), targets=(target,), **base)[target]
    pairs = []
    for ours, method in CHAPTER5_METHODS.items():
        if ours in groups:
            runs = [r for c in theirs[method]
                    if (r := find_result(Path(root) / "allocation", c)) is not None]
            pairs.append((ours, method, shared_runs(groups[ours], runs)))
    return pairs


def table_lines(table: pd.DataFrame) -> str:
    """``ablation_table`` as text, section by section: per group its runs, mean W/S/T, accuracy
    mean +- std, p vs the reference, renewals per run (weights/spikes) and runs with a drop > 5."""
    p_col = next(c for c in table.columns if c.startswith("p vs "))
    lines = []
    for section, rows in table.groupby("section", sort=False):
        lines.append(f"{section}: runs, W/S/T, accuracy mean +- std, {p_col}, renewals w/s per run, "
                     "runs with a drop > 5")
        for _, r in rows.iterrows():
            if not r["runs"]:
                lines.append(f"  {r['ablation']:>34}: not run")
                continue
            lines.append(f"  {r['ablation']:>34}: {r['runs']}, {r['W']:.2f}/{r['S']:.2f}/{r['T']:.2f}, "
                         f"{r['accuracy']:.2f} +- {r['std']:.2f}, {p_text(r[p_col])}, renewals "
                         f"{r['weight renewals']:.1f}/{r['spike renewals']:.1f}, "
                         f"{int(r['runs with a drop > 5'])}")
    return "\n".join(lines)


# ------------------------------------------------------------------ the figures
def plot_accuracy(table: pd.DataFrame, groups: dict[str, list[dict]], title: str):
    """Every group's final accuracy over seeds (points; bar: mean with 95 % CI), coloured by
    section, the reference's mean dashed; a second, zoomed panel leaves out the groups more than
    10 points below the reference.  Returns the figure."""
    import matplotlib.pyplot as plt

    names = list(table["ablation"])
    ref_mean = table.set_index("ablation").loc[REFERENCE, "accuracy"]
    shown = table[table["runs"] > 0]
    far = shown[shown["accuracy"] < ref_mean - 10]["ablation"].tolist()  # off the zoomed scale
    palette = dict(zip(list(SECTIONS) + [OTHER], [plotting.COLORS["lbw_renew"], plotting.COLORS["lbw"],
                                                  plotting.COLORS["control"], plotting.COLORS["paper"]]))
    palette = {s: c for s, c in palette.items() if s in set(table["section"])}
    colours = {n: palette[section_of(n)] for n in names}
    panels = [("all ablations", names)]
    if far:
        panels.append(("without " + ", ".join(far), [n for n in names if n not in far]))
    fig, axes = plotting.figure(ncols=len(panels), nrows=1, squeeze=False, layout="constrained",
                                figsize=(4.2 * len(panels) + 1.8, 0.42 * len(table) + 1.4))
    for ax, (panel, panel_names) in zip(axes[0], panels):
        plotting.seed_comparison(ax, {n: accuracies(groups[n]) for n in panel_names}, palette=colours,
                                 value_label="test accuracy (%): points = seeds,\nbar = mean with 95 % CI")
        for yi, name in enumerate(panel_names):
            if not groups[name]:
                ax.text(0.02, yi, "not run", transform=ax.get_yaxis_transform(), va="center",
                        fontsize=8, color=plotting.COLORS["paper"])
        if not np.isnan(ref_mean):
            ax.axvline(ref_mean, color=plotting.COLORS["paper"], ls="--", lw=1)
        ax.tick_params(axis="y", labelsize=8)
        if len(panels) > 1:
            ax.set_title(panel, fontsize=9)
    handles = [plt.Line2D([], [], ls="", marker="o", color=c, label=s) for s, c in palette.items()]
    fig.legend(handles=handles, fontsize=8, loc="outside lower center", ncol=min(len(handles), 2))
    fig.suptitle(title, fontsize=9)
    return fig


RANGE_RATIO = "renewal both, range-ratio weights"
# the learned renewal variants of the bits-per-epoch figure: (colour, line style, marker)
RENEWAL_STYLES = {
    REFERENCE: (plotting.COLORS["lbw_renew"], "-", "o"),
    "renewal none": (plotting.COLORS["lbw"], "--", "s"),
    "renewal weight-only": ("#ff7f0e", "-.", "^"),
    "renewal both": ("#8c564b", ":", "v"),
    RANGE_RATIO: ("#bcbd22", (0, (1, 1)), "x"),
}


def renewal_histories(groups: dict[str, list[dict]]) -> dict[str, pd.DataFrame]:
    """The seeds' mean W, S, T and test accuracy per epoch (``allocation.mean_history``) of each
    stored group of ``RENEWAL_STYLES``, in that order."""
    return {n: al.mean_history(groups[n]) for n in RENEWAL_STYLES if groups.get(n)}


def plot_renewal_bits(histories: dict[str, pd.DataFrame], target: str):
    """The paper's Figure 3 for the renewal variants: mean Bw, Bs and T per epoch from the initial
    W/S/T at epoch 0 (the target dashed), and the test accuracy after each epoch."""
    from matplotlib.ticker import MaxNLocator

    init = dict(zip("WST", parse_wst(TrainConfig().init)))
    fig, axes = plotting.figure(ncols=2, nrows=2, figsize=(9.6, 6.2))
    axes = axes.ravel()
    for name, h in histories.items():
        color, ls, marker = RENEWAL_STYLES[name]
        style = dict(marker=marker, ms=4, color=color, label=name, ls=ls, mfc="none")
        for ax, key in zip(axes, "WST"):
            ax.plot([0] + list(h["epoch"]), [init[key]] + list(h[f"{key} mean"]), **style)
        axes[3].plot(h["epoch"], h["test_accuracy mean"], **style)
    for ax, value, label in zip(axes, parse_wst(target), ("mean Bw", "mean Bs", "mean T")):
        ax.axhline(value, color=plotting.COLORS["paper"], ls="--", lw=1)
        ax.set_title(f"{label} (target {value:g})")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].set_ylabel("bits (mean over seeds)")
    axes[2].set_ylabel("time steps (mean over seeds)")
    axes[3].set_title("test accuracy (%, mean over seeds)")
    if axes[3].get_legend_handles_labels()[0]:
        axes[3].legend(fontsize=7)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------ the findings, in words
def ranked(table: pd.DataFrame, names) -> str:
    """'a 94.10 > b 93.20 > ...': ``ranking`` of ``names`` as text ("no run stored" if none is)."""
    return " > ".join(f"{n} {a:.2f}" for n, a in ranking(table, names)) or "no run stored"


def paper_ranked(paper_tables: dict[str, pd.DataFrame], name: str, target: str) -> str:
    """The columns of the paper's table ``name`` at ``target``, best accuracy first, as
    'label 96.15 > label 95.84 > ...' ("no row at this target" if the paper has none)."""
    p = paper_tables[name].set_index("target")
    if target not in p.index:
        return "no row at this target"
    labels = PAPER_COLUMNS[name]
    cols = sorted(labels, key=lambda c: -p.loc[target, c])
    return " > ".join(f"{labels[c][0]} {p.loc[target, c]:.2f}" for c in cols)


def _ranking_paragraph(table, names, paper_tables, name, target) -> str:
    return (f"Ranked by mean accuracy here: {ranked(table, names)}. The paper at {target} "
            f"({paper.table_citation(name)}): {paper_ranked(paper_tables, name, target)}.")


def _claim_paragraphs(claims: pd.DataFrame, name: str) -> list[str]:
    """The claims of the paper's table ``name`` as bullets, then those not reproduced."""
    rows = claims[claims["paper table"] == name]
    out = ["- " + claim_sentence(c) for _, c in rows.iterrows()]
    failed = rows[rows["verdict"].isin(NOT_REPRODUCED)]
    if not failed.empty:
        out.append("Not reproduced in full here (weaker, not significant or reversed): "
                   + "; ".join(failed["factor"]) + ".")
    return out


def _stored(t: pd.DataFrame, name: str) -> bool:
    return name in t.index and bool(t.loc[name, "runs"])


def bits_path_sentence(histories: dict[str, pd.DataFrame], tol: float = 0.1) -> str:
    """How far apart the renewal variants' mean W, S and T of an epoch lie at most (the largest
    max - min over variants, epochs and W/S/T), and the first epoch at which the default's (else
    the first variant's) mean W and S lie within ``tol`` of their final values."""
    per_epoch = pd.concat({n: h.set_index("epoch")[["W mean", "S mean", "T mean"]]
                           for n, h in histories.items()})
    spread = float(per_epoch.groupby(level=1).agg(lambda v: v.max() - v.min()).max().max())
    h = histories.get(REFERENCE, next(iter(histories.values())))
    settled = [int(h.loc[(h[f"{k} mean"] - h[f"{k} mean"].iloc[-1]).abs().le(tol), "epoch"].min())
               for k in "WS"]
    return (f"**The bits per epoch.** Across the renewal variants the mean W, S and T of an epoch "
            f"differ by at most {spread:.2f}"
            + (": the variants follow the same path of bits, and renewal changes the steps, "
               "not the bits." if spread < 0.05 else ".")
            + f" The default's mean W and S come within {tol:g} of their final values at epochs "
            f"{settled[0]} and {settled[1]} of {len(h)} (the paper's Figure 3: most of the "
            f"reduction within the first eighth of training).")


def renewal_text(table: pd.DataFrame, groups: dict[str, list[dict]], claims: pd.DataFrame,
                 paper_tables: dict[str, pd.DataFrame], target: str) -> str:
    """Section 1's findings: the renewal variants ranked here and in the paper, whether
    activation renewal beats none here, each claim of the paper's ablation table with its
    verdict, the bits per epoch (``bits_path_sentence``), final W/S/T and renewals per run."""
    t = table.set_index("ablation")
    out = [_ranking_paragraph(table, SECTIONS["renewal variants"], paper_tables, "yao_ablation",
                              target)]
    helps = compare(groups, REFERENCE, "renewal none")
    if helps["outcome"] not in ("not run", "not in the sweep"):
        word = {"higher": "helps here", "lower": "hurts here",
                "no significant difference": "makes no significant difference here",
                "untested": "cannot be tested with these runs"}[helps["outcome"]]
        out.append(f"**Does activation renewal help?** The default against no renewal: "
                   f"{helps['difference']:+.2f} points (Welch {p_text(helps['p'])}): renewal {word}.")
    out += _claim_paragraphs(claims, "yao_ablation")
    histories = renewal_histories(groups)
    if histories:
        out.append(bits_path_sentence(histories))
    ok = [n for n in SECTIONS["renewal variants"] if _stored(t, n)]
    if ok:
        out.append("Final bits: " + "; ".join(f"{n} {t.loc[n, 'W']:.2f}/{t.loc[n, 'S']:.2f}/"
                                              f"{t.loc[n, 'T']:.2f}" for n in ok)
                   + ". Renewals per run (weights / spikes): "
                   + "; ".join(f"{n} {t.loc[n, 'weight renewals']:.1f} / "
                               f"{t.loc[n, 'spike renewals']:.1f}" for n in ok if n != UQUANT) + ".")
    return "\n\n".join(out)


def old_neuron_line(groups: dict[str, list[dict]]) -> str:
    """The old neuron (with renewal) against the default: the outcome of ``compare``, with the
    difference and p-value where both groups are stored."""
    old = compare(groups, "old neuron", REFERENCE)
    return (f"old neuron vs {REFERENCE}: {old['outcome']}"
            + ("" if np.isnan(old["difference"]) else f" ({old['difference']:+.2f}, {p_text(old['p'])})"))


def neuron_text(table: pd.DataFrame, groups: dict[str, list[dict]], claims: pd.DataFrame,
                paper_tables: dict[str, pd.DataFrame], target: str) -> str:
    """Section 2's findings: the neuron variants ranked here and in the paper, whether the old
    neuron is worse than the default here, each claim of the paper's neuron table with its
    verdict, and the final mean T of the learned groups."""
    names = SECTIONS["neuron"] + (REFERENCE,)
    out = [_ranking_paragraph(table, names, paper_tables, "yao_neuron_ablation", target)]
    old = compare(groups, "old neuron", REFERENCE)
    if old["outcome"] not in ("not run", "not in the sweep"):
        word = {"lower": "worse than the refined neuron here",
                "higher": "better than the refined neuron here, the opposite of the paper",
                "no significant difference": "not significantly different from the refined neuron here",
                "untested": "not comparable by a test with these runs"}[old["outcome"]]
        out.append(f"**Is the old neuron worse?** With renewal, the old neuron against the default: "
                   f"{old['difference']:+.2f} points (Welch {p_text(old['p'])}): the old neuron is {word}.")
    out += _claim_paragraphs(claims, "yao_neuron_ablation")
    t = table.set_index("ablation")
    learned = [n for n in names if _stored(t, n) and UQUANT not in n]
    if learned:
        out.append("Final mean T: " + "; ".join(f"{n} {t.loc[n, 'T']:.2f}" for n in learned) + ".")
    return "\n\n".join(out)


def extra_text(table: pd.DataFrame, extra: pd.DataFrame) -> str:
    """Section 3's findings: ``compare_sentence`` of each comparison the paper does not make,
    the weight renewals and accuracy drops of range-ratio against grid-search renewal, and the
    final mean T of the default and of "T fixed"."""
    t = table.set_index("ablation")
    out = ["- " + compare_sentence(c) for _, c in extra.iterrows()]
    if _stored(t, RANGE_RATIO) and _stored(t, "renewal both"):
        rr, both = t.loc[RANGE_RATIO], t.loc["renewal both"]
        out.append(f"Weight renewals per run: {rr['weight renewals']:.1f} with the range ratio, "
                   f"{both['weight renewals']:.1f} with the grid search; runs with an accuracy "
                   f"drop > 5 points: {int(rr['runs with a drop > 5'])} and "
                   f"{int(both['runs with a drop > 5'])} of {int(rr['runs'])}.")
    if _stored(t, "T fixed"):
        out.append(f"The default's runs end at mean T = {t.loc[REFERENCE, 'T']:.2f} "
                   f"(learned from 2), the T-fixed runs at {t.loc['T fixed', 'T']:.2f}.")
    return "\n\n".join(out)


SETTING_PAPER = "ResNet-20 (wide), CIFAR-10, 200 epochs, GPU, one run per cell"


def our_setting(groups: dict[str, list[dict]], n_seeds: int, base: dict) -> str:
    """This book's setting in words: the model width, data, epochs (``base``), the devices the
    stored runs trained on and the number of seeds."""
    devices = sorted({r["run"]["device_type"] for g in groups.values() for r in g})
    width, options, epochs = base["width"], base["data_options"], base["epochs"]
    return (f"small CNN{'' if width is None else f' (width {width})'}, {base['dataset']}"
            f"{f' ({options})' if options else ''}, {epochs} epoch{'s' * (epochs > 1)}, "
            f"{', '.join('GPU' if d == 'cuda' else d.upper() for d in devices) or '-'}, "
            f"{n_seeds} seeds")


def paper_vs_book_parts(pvb: pd.DataFrame, target: str) -> list[tuple[str, pd.DataFrame]]:
    """``paper_vs_book`` split by the paper's table: (a heading naming the table by its caption
    and source, its rows with the page's column names ``PAPER_VS_BOOK_WORDS``)."""
    parts = []
    for name in PAPER_COLUMNS:
        rows = pvb[pvb["paper table"] == name].drop(columns=["paper table", "paper setting",
                                                             "our setting"])
        heading = (f"**Yao et al., {paper.table_citation(name)}**, row {target}, beside our runs "
                   f"({paper.table_source(name).split('; ', 1)[1]})")
        parts.append((heading, rows.rename(columns=PAPER_VS_BOOK_WORDS)))
    return parts


def summary_text(claims: pd.DataFrame, paper_tables: dict[str, pd.DataFrame], target: str,
                 n_seeds: int, alpha: float = ALPHA) -> str:
    """The chapter's summary: whether the paper's two U-quant numbers at ``target`` coincide
    (a hint that its U-quant baseline uses the old neuron), and how many of the claims got each
    verdict."""
    text = []
    p1, p2 = (paper_tables[n].set_index("target") for n in ("yao_ablation", "yao_neuron_ablation"))
    if target in p1.index and target in p2.index:
        u1, u2 = p1.loc[target, "uquant"], p2.loc[target, "tau2_floor_uquant"]
        text.append(f"The paper's U-quant at {target} is {u1:.2f} in the ablation table and {u2:.2f} "
                    f"with the old neuron in the neuron table"
                    + (": the same number, so its U-quant baseline may well use the old neuron; this "
                       "book runs U-quant with both neurons (sections 1 and 2)." if u1 == u2 else "."))
    counts = claims["verdict"].value_counts()
    parts = [f"{v} {counts.get(v, 0)}" for v in (ledger.REPRODUCES,) + NOT_REPRODUCED
             + ("not run", "not in the sweep", "not reported") if counts.get(v, 0)]
    text.append(f"Of the paper's {len(claims)} one-factor orderings (sections 1 and 2): "
                + "; ".join(parts) + f" (the claims ledger's rule: Welch test, p < {alpha}, "
                f"{n_seeds} seeds per group).")
    return "\n\n".join(text)


# ------------------------------------------------------------------ the chapter's parameters
from .. import params as _p  # noqa: E402

# nb/06_ablations.ipynb's parameters (its validation cell: ``params.check(PARAMETERS, globals())``)
PARAMETERS = _p.declare(
    _p.results_dir("stored sweep results: results/ablations (and results/allocation for U-quant)"),
    _p.seeds("seeds of every ablation"),
    _p.Param("target", "wst", sweeps.ABLATION_TARGET, "target mean W/S/T of every run: whole W and S from 1 to 6, T of 1",
             low=1, high=(6, 6, 1), integers=True,
             note="U-quant needs whole bits; 'T fixed' holds T = 1"),
    *_p.training(),
    _p.train_missing(),
    _p.Param("ablations", "choice", list(sweeps.ABLATIONS), 'names from sweeps.ABLATIONS, "default" among them',
             choices=tuple(sweeps.ABLATIONS), many=True, among=(REFERENCE,)),
    _p.Param("show_uquant", "bool", True, "also show U-quant with the refined neuron (chapter 5's runs, "
             "results/allocation)"),
    _p.fig_dir(),
    _p.record_path("06_ablations"),
)
