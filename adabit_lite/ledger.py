"""The claims ledger: every claim of the two papers that the book tests, one row each.

A row puts side by side

- the paper's statement and number, with its source named as a reader finds it in the paper
  (``paper.table_citation``: Shen et al.'s "Table 1", Yao et al.'s tables by the caption of the
  authors' draft, "Theorem 1", "Lemma 1", a figure of the draft);
- the book's number, with its spread (sample standard deviation over seeds), the number of seeds
  and, for a comparison of trained runs, the Welch p-value that its chapter computed;
- the setting the book's number comes from (data, model, epochs), and a link to the section of
  the chapter that shows it;
- a verdict (``verdict``), computed from those numbers.

Nothing in a row is typed in: the paper's numbers are read from ``adabit_lite.paper`` (the data
files of the published tables and ``paper_tables/statements.csv``), the book's from the records
that the chapters write with ``results.record`` (``_build/records/<chapter>.json``).  ``CLAIMS``
says, for each claim, which record key holds the book's number and which paper cell holds the
paper's (small specifications: ``Rec``, ``Pap``, ``Stmt`` and ``Fn``; ``value`` resolves them).
A chapter that did not run, or whose record lacks the key, gives no number: "not run here".

The verdict rule
----------------
Every claim is an *effect*: a number whose distance from a ``reference`` (0 for a difference of
two accuracies, 1 for a ratio, the bound of a lemma) and whose sign say what the paper claims.
Write ``e_paper = paper - reference`` and ``e_book = book - reference``; the paper's direction is
the sign of ``e_paper`` (or ``direction`` where the paper states a direction and no number).

1. No book number: **not run here**.  A book number from a setting where the claim cannot show at
   all (``testable`` false: on the event task at T = 1 or 2 even the full-precision network is at
   chance, and at T = 4 the fixed split loses nothing to full precision, so no allocation can win
   or lose there): **cannot be tested here**.
2. Where the book's number is a comparison of runs over seeds, it has a Welch p-value (the one its
   chapter decides by; chapter 7 adjusts its p-values by Holm's method): a p-value of ``ALPHA``
   or more, or none at all (fewer than two runs a side, or no spread), gives **no significant
   difference**.  Where the number is computed (closed form, meter, Monte Carlo, runs without a
   test), an effect of at most ``zero`` in size (0 unless a claim says otherwise, e.g. five Monte
   Carlo standard errors) gives **no significant difference**; a share of runs or of printed rows
   has no such step (``zero=None``): a share of none is the opposite of the claim (step 3).
3. ``e_book`` of the opposite sign to the paper's direction: **reversed**.
4. Otherwise the size decides.  With ``tolerance`` t, the book's effect **reproduces** the paper's
   when ``|e_book| >= (1 - t) |e_paper|`` (for a claim whose effect is stronger when it is smaller,
   such as "within the first eighth of training": ``|e_book| <= |e_paper| / (1 - t)``), and is
   **same direction, weaker** when it falls short.  A paper that states only a direction
   reproduces with any effect that passed steps 2 and 3.  t is ``CROSS_SETTING`` (one half) where
   the book measures the effect in another setting than the paper (a small network on small data
   for a few epochs against ResNet-20 on CIFAR-10 for 200 epochs: only the direction and the rough
   size can carry over), and ``EXACT`` where the book computes the paper's own quantity.  A paper
   number that is a threshold ("most of": over ``MOST`` %) has t = 0: the effect must reach it.
5. An identity (``kind="identity"``: two computations the paper says are equal) reproduces when the
   book's difference is at most ``zero`` and is otherwise **reversed** (the book finds them unequal).

The six verdicts are ``VERDICTS``.
"""

from __future__ import annotations

import html
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from . import paper
from .plotting import format_p

REPRODUCES = "reproduces"
SMALLER = "same direction, weaker"
NO_DIFFERENCE = "no significant difference"
REVERSED = "reversed"
NOT_RUN = "not run here"
UNTESTABLE = "cannot be tested here"
VERDICTS = (REPRODUCES, SMALLER, NO_DIFFERENCE, REVERSED, NOT_RUN, UNTESTABLE)

ALPHA = 0.05  # significance level of the Welch tests (the chapters use the same)
CROSS_SETTING = 0.5  # tolerance where the book's setting differs from the paper's
EXACT = 0.01  # tolerance where the book computes the paper's own quantity
MOST = 50.0  # "most of" a quantity: more than half of it, in %
ON_TARGET = 0.3  # a learned mean is on target when W, S and T are each within this of it
REGENERATED = 0.01  # a published cost is regenerated when the meter is within this (relative)


# ---------------------------------------------------------------- the verdict
def _sign(x: float) -> int:
    return (x > 0) - (x < 0)


def _missing(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def verdict(paper_number: float | None, book: float | None, p: float | None = None, *,
            reference: float = 0.0, direction: int | None = None, tolerance: float = CROSS_SETTING,
            zero: float | None = 0.0, stronger: str = "larger", kind: str = "effect",
            alpha: float = ALPHA, tested: bool = False, testable: bool = True) -> str:
    """The verdict of one claim (the rule is in the module docstring).

    ``paper_number``: the paper's number (None where it states only a ``direction``, +1 or -1);
    ``book``: the book's number (None or NaN: not run here); ``p``: the Welch p-value where the
    book's number compares runs over seeds (``tested=True`` says that it does, so that a missing
    p-value means "no test possible"); ``reference``: the value meaning "no effect";
    ``stronger``: "larger" or "smaller", which size of the effect makes the claim stronger;
    ``zero``: the size up to which a computed effect counts as none (None: no such check, for a
    share of runs or rows, where 0 is the opposite of the claim); ``kind``: "effect" or
    "identity"; ``testable``: False where the book's setting cannot show the claim at all."""
    if stronger not in ("larger", "smaller") or kind not in ("effect", "identity"):
        raise ValueError(f"stronger must be 'larger' or 'smaller' and kind 'effect' or 'identity', "
                         f"got {stronger!r}, {kind!r}")
    if _missing(book):
        return NOT_RUN
    if not testable:
        return UNTESTABLE
    if kind == "identity":
        target = reference if _missing(paper_number) else paper_number
        return REPRODUCES if abs(book - target) <= (zero or 0.0) else REVERSED
    e_book = book - reference
    if tested or not _missing(p):
        if _missing(p) or not p < alpha:
            return NO_DIFFERENCE
    elif zero is not None and abs(e_book) <= zero:
        return NO_DIFFERENCE
    if _missing(paper_number):
        if direction not in (1, -1):
            raise ValueError("a claim without a paper number needs a direction of +1 or -1")
        want = direction
    else:
        want = direction if direction in (1, -1) else _sign(paper_number - reference)
    if _sign(e_book) != want:
        return REVERSED
    if _missing(paper_number):
        return REPRODUCES
    size, claimed = abs(e_book), abs(paper_number - reference)
    if stronger == "larger":
        return REPRODUCES if size >= (1 - tolerance) * claimed else SMALLER
    return REPRODUCES if size <= claimed / (1 - tolerance) else SMALLER


# ---------------------------------------------------------------- where the numbers are
class Missing(LookupError):
    """A record, key or paper cell that a claim needs is not there."""


@dataclass(frozen=True, eq=False)
class Rec:
    """A value in a chapter's record: ``records[chapter]`` followed along ``path``.  A step is a
    key (str), a list index (int), a dict (the one list element whose items equal it; values may
    themselves be specifications) or ``ALL`` + dict (every matching element: the rest of the path
    is followed in each)."""
    chapter: str
    path: tuple


@dataclass(frozen=True, eq=False)
class Pap:
    """A cell of a published table: column ``column`` of the one row of ``paper.paper_table(table)``
    whose columns equal ``match``."""
    table: str
    column: str
    match: dict


@dataclass(frozen=True, eq=False)
class Stmt:
    """The number of a statement in ``paper.paper_statements()``."""
    id: str


@dataclass(frozen=True, eq=False)
class Fn:
    """``fn(*values of args)``: a number derived from other specifications."""
    fn: Callable
    args: tuple


ALL = "*all*"


def rec(chapter: str, *path) -> Rec:
    return Rec(chapter, tuple(path))


def pap(table: str, column: str, **match) -> Pap:
    return Pap(table, column, match)


def fn(function: Callable, *args) -> Fn:
    return Fn(function, tuple(args))


def _select(rows, match: dict, context) -> list:
    if not isinstance(rows, list):
        raise Missing(f"expected a list of rows to match {match}")
    want = {k: value(v, *context) for k, v in match.items()}
    return [r for r in rows if isinstance(r, dict) and all(r.get(k) == v for k, v in want.items())]


def _follow(obj, path: tuple, context):
    for i, step in enumerate(path):
        if step == ALL:
            rows = _select(obj, path[i + 1], context)
            return [_follow(r, path[i + 2:], context) for r in rows]
        if isinstance(step, dict):
            rows = _select(obj, step, context)
            if len(rows) != 1:
                raise Missing(f"{len(rows)} rows match {step}")
            obj = rows[0]
        elif isinstance(step, int):
            if not isinstance(obj, list) or not -len(obj) <= step < len(obj):
                raise Missing(f"no element {step}")
            obj = obj[step]
        else:
            if not isinstance(obj, dict) or step not in obj:
                raise Missing(f"no key {step!r}")
            obj = obj[step]
    return obj


def value(spec, records: dict, tables: dict | None = None):
    """The value a specification points at (constants are returned as they are); ``Missing`` when
    a record, key or cell is not there.  ``tables`` caches the paper tables by name."""
    tables = {} if tables is None else tables
    context = (records, tables)
    if isinstance(spec, Rec):
        if spec.chapter not in records:
            raise Missing(f"no record of chapter {spec.chapter}")
        return _follow(records[spec.chapter], spec.path, context)
    if isinstance(spec, Pap):
        if spec.table not in tables:
            tables[spec.table] = paper.paper_table(spec.table)
        df = tables[spec.table]
        for k, v in spec.match.items():
            df = df[df[k] == value(v, *context)]
        if len(df) != 1:
            raise Missing(f"{len(df)} rows of {spec.table} match {spec.match}")
        got = df.iloc[0][spec.column]
        return got.item() if hasattr(got, "item") else got
    if isinstance(spec, Stmt):
        return float(paper.paper_statements().loc[spec.id, "number"])
    if isinstance(spec, Fn):
        return spec.fn(*(value(a, *context) for a in spec.args))
    return spec


def number(spec, records: dict, tables: dict | None = None) -> float | None:
    """``value`` as a float, or None where it is missing (or NaN, or None in the record)."""
    if spec is None:
        return None
    try:
        got = value(spec, records, tables)
    except Missing:
        return None
    if got is None:
        return None
    got = float(got)
    return None if math.isnan(got) else got


# ---------------------------------------------------------------- derived numbers
def sub(a, b):
    return None if _missing(a) or _missing(b) else a - b


def only_at(got, expected, spec_value):
    """``spec_value`` when ``got == expected`` (a record made for the claim's setting), else
    ``Missing``: a record of other parameters (a target the claim is not about) gives no number."""
    if got != expected:
        raise Missing(f"the record is for {got!r}, the claim for {expected!r}")
    return spec_value


def smallest(values):
    values = [v for v in (values.values() if isinstance(values, dict) else values) if not _missing(v)]
    if not values:
        raise Missing("no values")
    return min(values)


def welch_from_stats(mean_a, std_a, n_a, mean_b, std_b, n_b):
    """Welch's two-sided p-value from two groups' means, sample standard deviations (ddof 1) and
    sizes: the same p-value as a Welch test of the runs themselves (NaN with fewer than two runs a
    side or no spread at all)."""
    from scipy import stats

    if n_a < 2 or n_b < 2 or (std_a == 0 and std_b == 0):
        return math.nan
    return float(stats.ttest_ind_from_stats(mean_a, std_a, n_a, mean_b, std_b, n_b,
                                            equal_var=False).pvalue)


def share_regenerated(*row_lists):
    """Per cent of published cost rows (dicts with ``s_ace_paper`` and ``s_ace_meter``) that the
    meter regenerates within ``REGENERATED`` (relative)."""
    rows = [r for rows in row_lists for r in rows]
    if not rows:
        raise Missing("no cost rows")
    ok = sum(abs(r["s_ace_meter"] / r["s_ace_paper"] - 1) <= REGENERATED for r in rows)
    return 100.0 * ok / len(rows)


def count_rows(*row_lists):
    return sum(len(rows) for rows in row_lists)


def on_target_percent(wst: str, target: str) -> float:
    """100 if a learned W/S/T as printed (T may be left out: the target's) lies within
    ``ON_TARGET`` of ``target`` in every part, else 0: the paper's one run counted as the book
    counts its runs."""
    got, want = [float(v) for v in wst.split("/")], [float(v) for v in target.split("/")]
    return 100.0 * all(abs(g - w) <= ON_TARGET for g, w in zip(got, want))


def largest_layer_gap(layers: list[dict], count: str, bits: str) -> float:
    """Mean bits of the other layers minus the bits of the layer with the largest ``count``
    (weights or input features): positive when the largest layer gets fewer bits."""
    if len(layers) < 2:
        raise Missing("fewer than two layers")
    big = max(layers, key=lambda r: r[count])
    others = [r[bits] for r in layers if r is not big]
    return sum(others) / len(others) - big[bits]


def largest_layer_name(layers: list[dict], count: str) -> str:
    return max(layers, key=lambda r: r[count])["layer"]


def dvs_row(table: str, method: str, T: int):
    """The CIFAR10-DVS accuracy of ``method`` at ``T`` time steps in one of the paper tables."""
    df = paper.paper_table(table)
    rows = df[(df["method"] == method) & (df["wst"].map(lambda w: float(w.split("/")[2])) == T)]
    if len(rows) != 1:
        raise Missing(f"{len(rows)} rows of {table} for {method} at T = {T}")
    return float(rows.iloc[0]["cifar10_dvs"])


def shen_dvs(what: str) -> float | str:
    """Shen et al.'s Table 3, CIFAR10-DVS, the split with the most time steps against the one with
    the fewest (same budget): their difference (``what="difference"``) or the two in words."""
    df = paper.paper_table("shen_table3")
    q = df[~df["wst"].str.startswith("16/")].assign(T=lambda d: d["wst"].map(lambda w: int(w.split("/")[2])))
    hi, lo = q.loc[q["T"].idxmax()], q.loc[q["T"].idxmin()]
    return float(hi["cifar10_dvs"] - lo["cifar10_dvs"]) if what == "difference" else (
        f"{hi['wst']} {hi['cifar10_dvs']:g} vs {lo['wst']} {lo['cifar10_dvs']:g}")


# ---------------------------------------------------------------- claims
@dataclass(frozen=True, eq=False)
class Claim:
    """One claim of a paper that a chapter tests.  ``paper_number``, ``book``, ``p``,
    ``reference``, ``zero``, ``spread`` and ``seeds`` are specifications (see ``value``); the
    rule's parameters (``direction``, ``tolerance``, ``stronger``, ``kind``) are ``verdict``'s;
    ``paper_detail`` and ``book_detail`` add words to the two numbers (callables of the records,
    or None); ``setting`` is a callable of the records."""
    key: str
    paper: str  # "Yao et al." or "Shen et al."
    title: str  # a few words, for the summary
    statement: Any  # the paper's statement, in words (or a callable: read from paper_statements)
    source: Any  # how a reader finds it: text, or paper.table_citation(name) of a table
    chapter: str  # the notebook that tests it (nb/<chapter>.ipynb)
    section: str  # words of the heading of the section that shows it
    measure: str  # what the numbers are, with their unit
    setting: Callable  # records -> the book's setting in words
    paper_number: Any = None
    book: Any = None
    p: Any = None
    tested: bool = False  # the book's number compares runs over seeds (it has a Welch test)
    testable: Any = None  # None, or a specification whose value is false where the claim cannot show
    spread: tuple = ()
    seeds: tuple = ()
    reference: float = 0.0
    direction: int | None = None
    tolerance: float = CROSS_SETTING
    zero: Any = 0.0
    stronger: str = "larger"
    kind: str = "effect"
    decimals: int = 2
    signed: bool = True  # print a sign (differences)
    paper_detail: Any = None
    book_detail: Any = None


def _cite(table: str) -> Callable:
    return lambda: paper.table_citation(table)


# ---- settings, from the records' parameters (and the package defaults a chapter's runs use)
def _model_name(base: dict) -> str:
    if base.get("arch"):
        return base["arch"]
    from .train import TrainConfig

    return TrainConfig().arch


def _epochs(n) -> str:
    return f"{n} epoch{'s' * (n != 1)}"


def _training_setting(chapter: str, extra: str = "") -> Callable:
    def setting(records):
        params = records[chapter]["parameters"]
        base = params["base"]
        width = "" if base.get("width") is None else f" (width {base['width']})"
        data = base["dataset"] + (f" ({base['data_options']})" if base.get("data_options") else "")
        return f"{_model_name(base)}{width}, {data}, {_epochs(base['epochs'])}{extra}"
    return setting


def _temporal_setting(records):
    from .sweeps import TEMPORAL_BASE

    params = records["08_temporal"]["parameters"]
    base = {**TEMPORAL_BASE, **params["base"]}
    return (f"{base['arch']} (width {base['width']}), {base['dataset']} ({params['data_options']}), "
            f"{_epochs(base['epochs'])}, Bit Budget {_temporal_budget()}")


def _temporal_budget():
    from .sweeps import TEMPORAL_BUDGET

    return TEMPORAL_BUDGET


def _theorem_setting(records):
    p = records["02_theorem"]["parameters"]
    return (f"half-normal input, sigma = {p['sigma']:g}; closed form, checked by Monte Carlo "
            f"(n = {p['n']:,}, seed {p['seed']}); b <= {p['b_max']}, T <= {p['T_max']}")


def _cost_setting(records):
    p = records["01_cost"]["parameters"]
    r = records["01_cost"]
    return (f"the package's meter, uniform convention, inputs {p['cifar_input']}x{p['cifar_input']} (CIFAR) "
            f"and {p['imagenet_input']}x{p['imagenet_input']} (ImageNet); no training. SEW-ResNet-34: "
            f"{r['sew_macs_g']:.2f} G MACs counted, {r['shen_implied_macs_g']:.2f} G implied by the papers")


def _squeeze_setting(records):
    rows = records["03_neuron"]["squeeze"]
    return "; ".join(f"{r['layer']}, Bs = {r['Bs']}, T = {r['T']}" for r in rows)


def _quantizer_setting(records):
    p = records["04_quantizers"]["parameters"]
    return (f"the chapter model after {p['warmup_steps']} SGD steps, layer inputs of {p['n_images']} "
            f"images, seed {p['seed']}")


def _scale_setting(records):
    p = records["09_scale"]["parameters"]
    return (f"the paper's settings (wide ResNet-20, CIFAR-10), {_epochs(p['epochs'])}, "
            f"batch {p['batch_size']}, {p['device']}")


def _not_run_setting(records):
    return "no chapter trains on ImageNet"


# ---- the claims of the paper's ablation tables (chapter 6)
ABLATION_TARGET = "1/1/1"  # the paper's ablation rows that chapter 6 tests


def _ablation_claim(key, table, col_a, col_b, factor, title, statement):
    chapter = "06_ablations"
    row = rec(chapter, "claims", {"factor": factor})
    target = rec(chapter, "parameters", "target")

    def group(side):
        return rec(chapter, "claims", {"factor": factor}, side)

    return Claim(
        key=key, paper="Yao et al.", title=title, statement=statement, source=_cite(table),
        chapter=chapter,
        section=("Renewal variants" if table == "yao_ablation" else "The neuron (the paper"),
        measure="accuracy difference a - b at target 1/1/1 (points)",
        setting=_training_setting(chapter, ", target 1/1/1"),
        paper_number=fn(sub, pap(table, col_a, target=ABLATION_TARGET),
                        pap(table, col_b, target=ABLATION_TARGET)),
        book=fn(only_at, target, ABLATION_TARGET, Rec(chapter, row.path + ("ours a - b",))),
        p=Rec(chapter, row.path + ("p",)), tested=True,
        spread=(rec(chapter, "table", {"ablation": group("a")}, "std"),
                rec(chapter, "table", {"ablation": group("b")}, "std")),
        seeds=(rec(chapter, "table", {"ablation": group("a")}, "runs"),
               rec(chapter, "table", {"ablation": group("b")}, "runs")),
        paper_detail=lambda records, t=table, a=col_a, b=col_b: _paper_pair(t, a, b, records),
        book_detail=lambda records, f=factor: _book_pair(records, f),
    )


def _paper_pair(table, col_a, col_b, records):
    t = paper.paper_table(table).set_index("target")
    return f"{t.loc[ABLATION_TARGET, col_a]:.2f} vs {t.loc[ABLATION_TARGET, col_b]:.2f}"


def _book_pair(records, factor):
    c = value(rec("06_ablations", "claims", {"factor": factor}), records)
    return f"{c['a']} {c['ours a']:.2f} vs {c['b']} {c['ours b']:.2f}"


def _lbw_claim(chapter: str, target: str, diff: Rec, table: Rec, seeds: tuple, key: str,
               title: str, section: str, b: str = "U-quant") -> Claim:
    """LBW + renewal against ``b`` (U-quant, or LBW without renewal) at ``target`` as chapter
    ``chapter`` records it: the difference and its p-value at ``diff``, the methods' rows
    (accuracy, std) in ``table``."""
    col_b = {"U-quant": "uquant", "LBW": "lbw"}[b]
    statement = (f"At the target W/S/T = {target}, learned bit widths with activation renewal are more "
                 "accurate than " + ("uniform quantization (U-quant) at the same target" if b == "U-quant"
                                     else "the same learned bit widths without renewal"))

    def row(method, column):
        return Rec(chapter, table.path + ({"method": method}, column))

    return Claim(
        key=key, paper="Yao et al.", title=title, statement=statement,
        source=_cite("yao_ablation"), chapter=chapter, section=section,
        measure=f"accuracy, LBW + renewal - {b} (points)",
        setting=_training_setting(chapter, f", target {target}"),
        paper_number=fn(sub, pap("yao_ablation", "act_renew", target=target),
                        pap("yao_ablation", col_b, target=target)),
        book=Rec(chapter, diff.path + ("difference",)), p=Rec(chapter, diff.path + ("p",)), tested=True,
        spread=(row("LBW + renewal", "std"), row(b, "std")), seeds=seeds,
        paper_detail=lambda records, t=target: (
            f"{value(pap('yao_ablation', 'act_renew', target=t), records):.2f} vs "
            f"{value(pap('yao_ablation', col_b, target=t), records):.2f}"),
        book_detail=lambda records: (f"{value(row('LBW + renewal', 'accuracy'), records):.2f} vs "
                                     f"{value(row(b, 'accuracy'), records):.2f} at Bit Budget "
                                     f"{value(row('LBW + renewal', 'bit budget'), records):.2f} vs "
                                     f"{value(row(b, 'bit budget'), records):.2f}"),
    )


def _allocation_claim(target):
    chapter = "05a_allocation"
    table = rec(chapter, "comparison", target)
    return _lbw_claim(
        chapter, target, rec(chapter, "differences", {"target": target,
                                                      "comparison": "LBW + renewal - U-quant"}),
        table, (Rec(chapter, table.path + ({"method": "LBW + renewal"}, "runs")),
                Rec(chapter, table.path + ({"method": "U-quant"}, "runs"))),
        f"lbw-vs-uquant-{target}", f"learned bits beat U-quant at {target}", "What differs")


FASHION = "05_fashion"


def _fashion_claim(target, b="U-quant"):
    """``_allocation_claim`` on chapter 5's Fashion-MNIST stage (against ``b``)."""
    diff = rec(FASHION, "differences", target, {"a": "LBW + renewal", "b": b})
    return _lbw_claim(
        FASHION, target, diff, rec(FASHION, "landing", target),
        (Rec(FASHION, diff.path + ("runs a",)), Rec(FASHION, diff.path + ("runs b",))),
        f"fashion-lbw-vs-uquant-{target}" if b == "U-quant" else "fashion-act-renewal",
        f"learned bits beat U-quant at {target}, deeper stage" if b == "U-quant" else
        "activation renewal helps, deeper stage", "Landing on the target", b=b)


def _fig3_claim(key: str, chapter: str, stage: str = "") -> Claim:
    """Figure 3's statement at 1/1/1 (LBW + renewal, the paper's rule) as ``chapter`` measures it:
    the share of the fall in mean Bw + Bs done by the last epoch within the paper's first share of
    training (its record "settle", row 1/1/1), against "most" (``MOST``)."""
    def settle(field: str) -> Rec:
        return rec(chapter, "settle", {"target": "1/1/1"}, field)

    return Claim(
        key=key, paper="Yao et al.", title=f"the bits fall early{stage}",
        statement=lambda: paper.paper_statements().loc["fig3_bit_reduction", "statement"],
        source=lambda: paper.paper_statements().loc["fig3_bit_reduction", "source"],
        chapter=chapter, section="Bits per epoch",
        measure=("share of the fall in mean Bw + Bs (from the start to the end of training) done "
                 "by the last epoch within the paper's first eighth, % (mean over runs, target "
                 "1/1/1); the paper: most of it (over 50 %)"),
        setting=_training_setting(chapter, ", LBW + renewal, target 1/1/1"),
        decimals=0, signed=False, tolerance=0.0, zero=None, paper_number=MOST,
        book=settle("fall done early (%)"), seeds=(settle("runs"),),
        paper_detail=lambda r: (f"most of the fall within the first "
                                f"{value(Stmt('fig3_bit_reduction'), r):g} % of training"),
        book_detail=lambda r: (f"by the end of epoch {value(settle('early epoch'), r):g}; "
                               f"{value(settle('settled'), r)} of {value(settle('runs'), r)} runs "
                               f"stay within {ON_TARGET:g} of the target"
                               + ("" if not value(settle("settled"), r) else
                                  f" from a median epoch of {value(settle('median epoch'), r):g} on")),
    )


def _budget_claim(b, kind, title):
    chapter = "07_budgets"
    row = rec(chapter, "comparisons", {"budget": 4, "a": "1/4/1", "b": b})
    wants = "time steps" if kind == "steps" else "weight bits"
    return Claim(
        key=f"budget-1/4/1-vs-{b}", paper="Shen et al.", title=title,
        statement=(f"At one Bit Budget (4), putting the budget into spike bits (1/4/1) rather than "
                   f"{wants} ({b}) gives a different accuracy on static images (Spikformer-4-384, "
                   f"CIFAR-10; the sign is the paper's)"),
        source=_cite("shen_table2"), chapter=chapter, section="Spike bits against time steps",
        measure="accuracy, 1/4/1 - " + b + " (points; p Holm-adjusted, as the chapter decides)",
        setting=_training_setting(chapter, ", every layer fixed at the split (U-quant)"),
        paper_number=fn(sub, pap("shen_table2", "cifar10", method="Quantized Spikformer", wst="1/4/1"),
                        pap("shen_table2", "cifar10", method="Quantized Spikformer", wst=b)),
        book=Rec(chapter, row.path + ("a - b",)), p=Rec(chapter, row.path + ("p (Holm)",)), tested=True,
        spread=(rec(chapter, "table", {"budget": 4, "split": "1/4/1"}, "std"),
                rec(chapter, "table", {"budget": 4, "split": b}, "std")),
        seeds=(Rec(chapter, row.path + ("runs a",)), Rec(chapter, row.path + ("runs b",))),
        paper_detail=lambda records, bb=b: " vs ".join(
            f"{value(pap('shen_table2', 'cifar10', method='Quantized Spikformer', wst=w), records):.2f}"
            for w in ("1/4/1", bb)),
        book_detail=lambda records, r=row: (
            f"{value(Rec(r.chapter, r.path + ('accuracy a',)), records):.2f} vs "
            f"{value(Rec(r.chapter, r.path + ('accuracy b',)), records):.2f}"),
    )


def _reads_order(full_precision: float) -> bool:
    from .studies.temporal import reads_order

    return bool(reads_order(full_precision))


def _dvs_testable(full_precision: float, fixed: float) -> bool:
    """Whether learned bits can show that they keep what the fixed split loses at one T: full
    precision reads the order there, and the fixed split loses more than ``temporal.CEILING``
    points to it."""
    from .studies.temporal import CEILING

    return _reads_order(full_precision) and full_precision - fixed > CEILING


def _smallest_read_T(comparison: list[dict]) -> int:
    """The fewest time steps at which the full-precision network reads the order."""
    seen = [c["T"] for c in comparison if _reads_order(c["full precision"])]
    if not seen:
        raise Missing("no T at which full precision reads the order")
    return min(seen)


def _dvs_claim(T):
    chapter = "08_temporal"
    row = rec(chapter, "comparison", {"T": T})
    return Claim(
        key=f"dvs-learned-vs-fixed-T{T}", paper="Yao et al.",
        title=f"learned bits beat fixed splits on events at T = {T}",
        statement=(f"Under a temporal constraint of T = {T} time step{'s' * (T != 1)}, learned bit widths keep the "
                   "accuracy that Shen et al.'s fixed 1-bit-weight split at the same T loses "
                   "(Spikformer, CIFAR10-DVS)"),
        source=_cite("yao_spikformer_dvs"), chapter=chapter, section="One Bit Budget, split",
        measure=f"accuracy, learned - fixed at T = {T} (points)", setting=_temporal_setting,
        paper_number=fn(sub, fn(dvs_row, "yao_spikformer_dvs", "Ours", T),
                        fn(dvs_row, "yao_spikformer_dvs", "Shen quantized", T)),
        book=Rec(chapter, row.path + ("learned - fixed",)), p=Rec(chapter, row.path + ("p",)), tested=True,
        testable=fn(_dvs_testable, Rec(chapter, row.path + ("full precision",)),
                    Rec(chapter, row.path + ("fixed",))),
        spread=(rec(chapter, "table", {"T": T, "method": "learned"}, "std"),
                rec(chapter, "table", {"T": T, "method": "fixed"}, "std")),
        seeds=(rec(chapter, "table", {"T": T, "method": "learned"}, "runs"),
               rec(chapter, "table", {"T": T, "method": "fixed"}, "runs")),
        paper_detail=lambda records, t=T: (f"{dvs_row('yao_spikformer_dvs', 'Ours', t):.1f} vs "
                                           f"{dvs_row('yao_spikformer_dvs', 'Shen quantized', t):.1f}"),
        book_detail=lambda records: _dvs_detail(records, row, T),
    )


def _dvs_detail(records, row: Rec, T: int) -> str:
    def at(key):
        return value(Rec(row.chapter, row.path + (key,)), records)

    fp = at("full precision")
    why = ("" if _dvs_testable(fp, at("fixed")) else
           f": at chance, no order left at T = {T} for any bits to keep" if not _reads_order(fp) else
           ": the fixed split loses nothing to keep")
    return f"{at('learned'):.1f} vs {at('fixed'):.1f} (split {at('split')}; full precision {fp:.1f}{why})"


def _scale_runs(method: str):
    return rec("09_scale", "runs", {"data": "CIFAR-10", "target": "1/1/1", "method": method}, "ours top-1")


_T_HI = rec("08_temporal", "table", {"T": fn(lambda b: max(b), rec("08_temporal", "parameters", "bins")),
                                      "method": "fixed"})
_T_LO = rec("08_temporal", "table", {"T": fn(_smallest_read_T, rec("08_temporal", "comparison")),
                                      "method": "fixed"})


def _at(row: Rec, key: str) -> Rec:
    return Rec(row.chapter, row.path + (key,))


def _paper_rule_221(key: str) -> Rec:  # chapter 5b, the paper's rule (no remedy) at 2/2/1
    return rec("05b_stability", "stability", "2/2/1", {"method": "paper"}, key)


CLAIMS: tuple[Claim, ...] = (
    # ------------------------------------------------------------ Yao et al.: theory and mechanisms
    Claim(
        key="theorem-1", paper="Yao et al.", title="Theorem 1's probability",
        statement=("When a layer's bit width drops from b to b' < b and its step is kept, the "
                   "quantization error grows with probability P(x > (2^b' - 1)/(2^b - 1) 3 sigma) for a "
                   "half-normal input"),
        source="Theorem 1", chapter="02_theorem", section="The theorem's probability",
        measure="probability that the error grows, b = 2 -> b' = 1 (the paper's: its formula evaluated)",
        setting=_theorem_setting, decimals=4, signed=False, tolerance=EXACT,
        paper_number=rec("02_theorem", "theorem_probability", "2,1"),
        book=rec("02_theorem", "exact_probability", "2,1"),
        spread=(rec("02_theorem", "mc_exact_probability", "2,1", 1),),
        book_detail=lambda r: (f"the exact event (x above the rounding midpoint); Monte Carlo "
                               f"{r['02_theorem']['mc_exact_probability']['2,1'][0]:.4f}"),
    ),
    Claim(
        key="lemma-1", paper="Yao et al.", title="Lemma 1's bound",
        statement=lambda: paper.paper_statements().loc["lemma_1", "statement"],
        source=lambda: paper.paper_statements().loc["lemma_1", "source"],
        chapter="02_theorem", section="The theorem's probability",
        measure="smallest probability of Theorem 1's event over all drops b' < b, against the bound",
        setting=_theorem_setting, decimals=4, signed=False, tolerance=EXACT,
        paper_number=None, direction=1, reference=Stmt("lemma_1"),
        book=fn(smallest, rec("02_theorem", "theorem_probability")),
        paper_detail=lambda r: f"bound {paper.paper_statements().loc['lemma_1', 'number']:.4f}",
        book_detail=lambda r: (f"the paper's event; the exact event only meets the bound "
                               f"({smallest(r['02_theorem']['exact_probability']):.4f}, equal, not "
                               f"above) at b' = b - 1"),
    ),
    Claim(
        key="t-steps", paper="Yao et al.", title="more time steps, more errors",
        statement=("Over T time steps the probability that some step errs more is 1 - (1 - p)^T, "
                   "which grows toward 1 with T"),
        source="Theorem 1 (its extension to T time steps)", chapter="02_theorem",
        section="time steps: independent trials",
        measure="growth of that probability from T = 1 to the largest T, b = 2 -> b' = 1",
        setting=_theorem_setting, decimals=4, signed=True, tolerance=EXACT,
        paper_number=fn(sub, rec("02_theorem", "t_steps", "2,1", "paper formula", -1),
                        rec("02_theorem", "t_steps", "2,1", "paper formula", 0)),
        book=fn(sub, rec("02_theorem", "t_steps", "2,1", "neuron original", -1),
                rec("02_theorem", "t_steps", "2,1", "neuron original", 0)),
        zero=fn(lambda se: 5 * se, rec("02_theorem", "t_steps", "2,1", "neuron original SE", -1)),
        spread=(rec("02_theorem", "t_steps", "2,1", "neuron original SE", -1),),
        book_detail=lambda r: (f"no growth: the refined neuron re-adds the same x at every step, so the "
                               f"stale neuron errs more than the b-bit one with probability "
                               f"{r['02_theorem']['t_steps']['2,1']['neuron original'][-1]:.3f} at every T "
                               f"(Monte Carlo); against a b'-bit neuron renewed to the paper's step it "
                               f"grows from {r['02_theorem']['t_steps']['2,1']['neuron paper'][0]:.2f} to "
                               f"{r['02_theorem']['t_steps']['2,1']['neuron paper'][-1]:.2f}, not as "
                               f"1 - (1 - p)^T either"),
    ),
    Claim(
        key="renewal-error", paper="Yao et al.", title="renewal lowers the error after a bit drop",
        statement=("A step kept after the bit width drops raises the quantization error; renewing the "
                   "step corrects it"),
        source='the method section, "Quantization step size renew" (backed by Theorem 1)',
        chapter="04_quantizers", section="What renewal does to the error",
        measure=("mean squared error, stale step / renewed step, spikes 4 -> 1 bits (smallest over "
                 "the layers)"),
        setting=_quantizer_setting, decimals=2, signed=False, reference=1.0, direction=1,
        book=fn(smallest, rec("04_quantizers", "drops", ALL, {"quantizer": "spike", "drop": "4->1"},
                              "stale / renewed")),
    ),
    Claim(
        key="squeezing", paper="Yao et al.", title="temporal squeezing is exact",
        statement=("Temporal squeezing: the convolution of the time-averaged spikes equals the average of "
                   "the T convolutions, so the layer runs one convolution instead of T"),
        source='the method section, "temporal squeezing"', chapter="03_neuron",
        section="Temporal squeezing", kind="identity", zero=0.0,
        measure="largest difference between the two on integer spike codes",
        setting=_squeeze_setting, decimals=0, signed=False, paper_number=0.0,
        book=fn(lambda v: max(v), rec("03_neuron", "squeeze", ALL, {}, "max diff integer codes")),
        paper_detail=lambda r: "equal (difference 0)",
        book_detail=lambda r: (f"float32: relative difference up to "
                               f"{max(x['rel diff float32'] for x in r['03_neuron']['squeeze']):.0e}"),
    ),
    # ------------------------------------------------------------ Yao et al.: training
    *(_allocation_claim(t) for t in ("1/1/1", "2/2/1", "3/4/1", "4/4/1")),
    *(_fashion_claim(t) for t in ("1/1/1", "2/2/1", "3/4/1", "4/4/1")),
    _fashion_claim("1/1/1", b="LBW"),
    _fig3_claim("fashion-fig3-early", FASHION, ", deeper stage"),

    *(Claim(
        key=f"fashion-layers-{what}", paper="Yao et al.",
        title=f"larger layers get fewer {what} bits, deeper stage",
        statement=(f"Layers with more {'weights' if what == 'weight' else 'input features'} learn fewer "
                   f"{what} bits"),
        source='the figure "Statistics of each layer\'s bit widths" (Figure 4 of the draft)',
        chapter=FASHION, section="Per-layer bits",
        measure=(f"minus the rank correlation (Spearman) of the nine learned layers' "
                 f"{count.replace('_', ' ')} with their mean {bits} (positive: larger layers, fewer bits)"),
        setting=_training_setting(FASHION, ", LBW + renewal, target 1/1/1"),
        direction=1,
        book=fn(lambda rho: None if _missing(rho) else -rho, rec(FASHION, "layer_pattern", key)),
        seeds=(rec(FASHION, "landing", "1/1/1", {"method": "LBW + renewal"}, "runs"),),
    ) for what, count, bits, key in (("weight", "weights", "Bw", "rho weights-Bw"),
                                     ("spike", "in_features", "Bs", "rho features-Bs"))),
    _fig3_claim("fig3-early", "05a_allocation"),

    *(Claim(
        key=f"layers-{what}", paper="Yao et al.", title=f"the largest layer gets the fewest {what} bits",
        statement=(f"Layers with more {'weights' if what == 'weight' else 'input features'} learn fewer "
                   f"{what} bits"),
        source='the figure "Statistics of each layer\'s bit widths" (Figure 4 of the draft)',
        chapter="05a_allocation", section="Per-layer bits",
        measure=(f"mean {bits} of the other layers - {bits} of the layer with the most "
                 f"{count.replace('_', ' ')} (bits)"),
        setting=_training_setting("05a_allocation", ", LBW + renewal, target 2/2/1"),
        direction=1,
        book=fn(largest_layer_gap, rec("05a_allocation", "layer_bits", "2/2/1", "layers"), count, bits),
        seeds=(rec("05a_allocation", "comparison", "2/2/1", {"method": "LBW + renewal"}, "runs"),),
        book_detail=lambda r, c=count: "largest layer: " + largest_layer_name(
            value(rec("05a_allocation", "layer_bits", "2/2/1", "layers"), r), c),
    ) for what, count, bits in (("weight", "weights", "Bw"), ("spike", "in_features", "Bs"))),
    Claim(
        key="on-target", paper="Yao et al.", title="the learned means land on the target",
        statement="Learned bit widths end at the target mean W/S/T",
        source=_cite("yao_ablation"), chapter="05b_stability", section="Five seeds per setting",
        measure=f"runs whose final mean W, S and T are each within {ON_TARGET:g} of the target 2/2/1 (%)",
        setting=_training_setting("05b_stability", ", the paper's rule (no remedy), target 2/2/1"),
        decimals=0, signed=False, zero=None,
        paper_number=fn(on_target_percent, pap("yao_ablation", "act_renew_wst", target="2/2/1"), "2/2/1"),
        book=fn(lambda v: 100.0 * v, _paper_rule_221("within target")),
        seeds=(_paper_rule_221("runs"),),
        paper_detail=lambda r: "one run, learned " + value(pap("yao_ablation", "act_renew_wst",
                                                               target="2/2/1"), r),
        book_detail=lambda r: "mean W/S/T " + "/".join(f"{value(_paper_rule_221(k), r):.2f}" for k in "WST"),
    ),
    _ablation_claim("abl-act-renewal", "yao_ablation", "act_renew", "lbw", "activation renewal vs none",
                    "activation renewal helps", "Activation-only renewal makes learned bit widths more "
                    "accurate than no renewal"),
    _ablation_claim("abl-bilateral", "yao_ablation", "bilateral_renew", "lbw", "bilateral renewal vs none",
                    "bilateral renewal helps", "Renewing both steps (weights and spikes) makes learned bit "
                    "widths more accurate than no renewal"),
    _ablation_claim("abl-weight-only", "yao_ablation", "weight_renew", "lbw", "weight-only renewal vs none",
                    "weight-only renewal hurts", "Renewing only the weight step makes learned bit widths "
                    "less accurate than no renewal"),
    _ablation_claim("abl-act-vs-both", "yao_ablation", "act_renew", "bilateral_renew",
                    "activation-only vs bilateral renewal", "activation-only beats bilateral renewal",
                    "Activation-only renewal is more accurate than renewing both steps"),
    _ablation_claim("abl-lbw", "yao_ablation", "lbw", "uquant", "learned bits (no renewal) vs U-quant",
                    "learned bits beat U-quant (no renewal)", "Learned bit widths, even without renewal, are "
                    "more accurate than U-quant at the same target"),
    _ablation_claim("neuron-tau", "yao_neuron_ablation", "tau1_round_renew", "tau2_round_renew",
                    "tau 1 vs tau 2 (round, renewal)", "no decay beats tau = 2",
                    "Dropping the membrane decay (tau = 1 instead of 2) makes the rounding neuron more "
                    "accurate"),
    _ablation_claim("neuron-round", "yao_neuron_ablation", "tau2_round_renew", "tau2_floor_renew",
                    "round vs floor + amplitude (tau 2, renewal)", "rounding beats flooring",
                    "Firing by rounding (instead of flooring with a separate amplitude) makes the neuron "
                    "more accurate"),
    _ablation_claim("neuron-old-renewal", "yao_neuron_ablation", "tau2_floor_renew", "tau2_floor_no_renew",
                    "old neuron: renewal vs none", "renewal helps the old neuron",
                    "With the old neuron (tau = 2, floor), renewal makes learned bit widths more accurate"),
    _ablation_claim("neuron-old-lbw", "yao_neuron_ablation", "tau2_floor_no_renew", "tau2_floor_uquant",
                    "old neuron: learned bits vs U-quant", "learned bits beat U-quant (old neuron)",
                    "With the old neuron, learned bit widths are more accurate than U-quant"),
    *(_dvs_claim(T) for T in (4, 2, 1)),
    Claim(
        key="scale-1/1/1", paper="Yao et al.", title="learned bits beat U-quant at paper scale",
        statement=("ResNet-20 on CIFAR-10 at target 1/1/1: learned bit widths with activation renewal "
                   "are far more accurate than U-quant"),
        source=_cite("yao_ablation"), chapter="09_scale", section="The runs",
        measure="top-1 accuracy, LBW + activation renewal - U-quant (points; one run each)",
        setting=_scale_setting,
        paper_number=fn(sub, pap("yao_ablation", "act_renew", target="1/1/1"),
                        pap("yao_ablation", "uquant", target="1/1/1")),
        book=fn(sub, _scale_runs("+ activation renewal"), _scale_runs("U-quant")),
        paper_detail=lambda r: (f"{value(pap('yao_ablation', 'act_renew', target='1/1/1'), r):.2f} vs "
                                f"{value(pap('yao_ablation', 'uquant', target='1/1/1'), r):.2f}"),
    ),
    Claim(
        key="imagenet-headline", paper="Yao et al.", title="the ImageNet headline",
        statement=("On ImageNet, SEW-ResNet-34 with learned bits is more accurate than Shen et al.'s "
                   "quantized 8/8/1 network at a fraction of its Bit Budget"),
        source=_cite("yao_imagenet"), chapter="01_cost", section="Accuracy against Bit Budget",
        measure="top-1 accuracy, Ours-441 - Quant. SNN (Shen) (points)",
        setting=_not_run_setting,
        paper_number=fn(sub, pap("yao_imagenet", "top1", method="Ours-441"),
                        pap("yao_imagenet", "top1", method="Quant. SNN (Shen)")),
        book=None,
        paper_detail=lambda r: (
            f"{value(pap('yao_imagenet', 'top1', method='Ours-441'), r):.2f} vs "
            f"{value(pap('yao_imagenet', 'top1', method='Quant. SNN (Shen)'), r):.2f}, Bit Budget "
            f"{value(pap('yao_imagenet', 'bb', method='Ours-441'), r):g} vs "
            f"{value(pap('yao_imagenet', 'bb', method='Quant. SNN (Shen)'), r):g}"),
    ),
    # ------------------------------------------------------------ cost model
    Claim(
        key="cost-yao", paper="Yao et al.", title="the S-ACE columns of the comparison tables",
        statement=("The S-ACE of a network with uniform bits is its MACs times W x S x T; the comparison "
                   "tables print it for every model"),
        source=lambda: f"{paper.table_citation('yao_cifar')} and {paper.table_citation('yao_imagenet')}",
        chapter="01_cost", section="The published cost columns",
        measure=f"share of the printed uniform-bit S-ACE values that the meter regenerates within {100 * REGENERATED:g} %, in %",
        setting=_cost_setting, decimals=0, signed=False, zero=None, tolerance=EXACT, paper_number=100.0,
        book=fn(share_regenerated, rec("01_cost", "resnet20_rows"),
                rec("01_cost", "resnet19_rows", ALL, {"source": "Yao et al."}),
                rec("01_cost", "imagenet_rows", ALL, {"source": "Yao et al."})),
        seeds=(),
        paper_detail=lambda r: "every printed row",
        book_detail=lambda r: "% of the {} printed rows".format(count_rows(
            r["01_cost"]["resnet20_rows"],
            [x for x in r["01_cost"]["resnet19_rows"] if x["source"] == "Yao et al."],
            [x for x in r["01_cost"]["imagenet_rows"] if x["source"] == "Yao et al."])),
    ),
    Claim(
        key="cost-shen", paper="Shen et al.", title="the S-ACE columns of Tables 1 and 2",
        statement=("S-ACE = MACs x W x S x T for a network with uniform bits; the tables print it for "
                   "every model"),
        source=lambda: f"{paper.table_citation('shen_table1')}, {paper.table_citation('shen_table2')}",
        chapter="01_cost", section="The published cost columns",
        measure=f"share of the printed uniform-bit S-ACE values that the meter regenerates within {100 * REGENERATED:g} %, in %",
        setting=_cost_setting, decimals=0, signed=False, zero=None, tolerance=EXACT, paper_number=100.0,
        book=fn(share_regenerated, rec("01_cost", "resnet19_rows", ALL, {"source": "Shen et al."}),
                rec("01_cost", "imagenet_rows", ALL, {"source": "Shen et al."}),
                rec("01_cost", "spikformer_rows")),
        paper_detail=lambda r: "every printed row",
        book_detail=lambda r: "% of the {} printed rows".format(count_rows(
            [x for x in r["01_cost"]["resnet19_rows"] if x["source"] == "Shen et al."],
            [x for x in r["01_cost"]["imagenet_rows"] if x["source"] == "Shen et al."],
            r["01_cost"]["spikformer_rows"])),
    ),
    # ------------------------------------------------------------ Shen et al.: budgets
    _budget_claim("1/1/4", "steps", "spike bits beat time steps (1/4/1 vs 1/1/4)"),
    _budget_claim("1/2/2", "steps", "spike bits beat time steps (1/4/1 vs 1/2/2)"),
    _budget_claim("2/2/1", "weights", "weight bits beat spike bits (2/2/1 vs 1/4/1)"),
    _budget_claim("4/1/1", "weights", "spike bits beat weight bits (1/4/1 vs 4/1/1)"),
    Claim(
        key="events-time-steps", paper="Shen et al.", title="time steps matter on event data",
        statement=("On event data the time steps cannot be traded for spike bits: at one Bit Budget, "
                   "accuracy falls from the split with the most time steps to the one with the fewest"),
        source=_cite("shen_table3"), chapter="08_temporal", section="One Bit Budget, split",
        measure=("accuracy, the fixed split with the most time steps - the one with the fewest at which "
                 "full precision still reads the order of the events (points)"),
        setting=_temporal_setting,
        paper_number=fn(shen_dvs, "difference"),
        book=fn(sub, _at(_T_HI, "accuracy"), _at(_T_LO, "accuracy")),
        p=fn(welch_from_stats, _at(_T_HI, "accuracy"), _at(_T_HI, "std"), _at(_T_HI, "runs"),
             _at(_T_LO, "accuracy"), _at(_T_LO, "std"), _at(_T_LO, "runs")),
        tested=True,
        spread=(_at(_T_HI, "std"), _at(_T_LO, "std")), seeds=(_at(_T_HI, "runs"), _at(_T_LO, "runs")),
        paper_detail=lambda r: f"CIFAR10-DVS {shen_dvs('text')}",
        book_detail=lambda r: (f"{value(_at(_T_HI, 'split'), r)} {value(_at(_T_HI, 'accuracy'), r):.1f} vs "
                               f"{value(_at(_T_LO, 'split'), r)} {value(_at(_T_LO, 'accuracy'), r):.1f}; "
                               f"below T = {value(_at(_T_LO, 'T'), r)} even full precision is at chance"),
    ),
)

CLAIMS = tuple(sorted(CLAIMS, key=lambda c: c.chapter))  # the book's order (numbered stems)
CHAPTERS = tuple(dict.fromkeys(c.chapter for c in CLAIMS))
#: (small stage, deeper stage): the claims that both training stages test, by key
STAGE_PAIRS = tuple((k, f"fashion-{k}") for k in (
    "lbw-vs-uquant-1/1/1", "lbw-vs-uquant-2/2/1", "lbw-vs-uquant-3/4/1", "lbw-vs-uquant-4/4/1",
    "fig3-early", "layers-weight", "layers-spike")) + (("abl-act-renewal", "fashion-act-renewal"),)
DEEPER = ", deeper stage"  # the end of a deeper-stage claim's title


# ---------------------------------------------------------------- anchors
def _plain_heading(text: str) -> str:
    """A markdown heading as Sphinx reads its text: math without its dollars, code without its
    backticks, emphasis without its stars."""
    text = re.sub(r"\$([^$]*)\$", r"\1", text)
    return re.sub(r"[`*]", "", text).strip()


def section_ids(notebook: str | Path) -> dict[str, str]:
    """Heading text (level 2 and below) -> the HTML id Sphinx gives its section, for a chapter
    notebook (docutils' ``make_id`` of the heading's text)."""
    from docutils.nodes import make_id

    nb = json.loads(Path(notebook).read_text(encoding="utf-8"))
    out, seen = {}, {}
    in_fence = False
    for cell in nb["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        for line in "".join(cell["source"]).splitlines():
            if line.lstrip().startswith("```"):
                in_fence = not in_fence
            m = None if in_fence else re.match(r"^(#{2,6})\s+(.*)$", line)
            if m:
                title = _plain_heading(m.group(2))
                ident = make_id(title)
                seen[ident] = seen.get(ident, 0) + 1
                out[title] = ident
    duplicated = [t for t, i in out.items() if seen[i] > 1]
    if duplicated:
        raise ValueError(f"{notebook}: headings share an id (Sphinx would number them): {duplicated}")
    return out


def section(notebook: str | Path, words: str) -> tuple[str, str]:
    """(heading, id) of the one section of ``notebook`` whose heading contains ``words`` (any case)."""
    found = [(t, i) for t, i in section_ids(notebook).items() if words.lower() in t.lower()]
    if len(found) != 1:
        raise ValueError(f"{notebook}: {len(found)} headings contain {words!r}")
    return found[0]


def anchor(notebook: str | Path, words: str) -> str:
    """The id of the one section of ``notebook`` whose heading contains ``words`` (any case)."""
    return section(notebook, words)[1]


# ---------------------------------------------------------------- rows
def load_records(folder: str | Path, chapters=CHAPTERS) -> dict[str, dict]:
    """The records of ``chapters`` found in ``folder`` (``<chapter>.json``); missing ones are left out."""
    folder = Path(folder)
    out = {}
    for name in chapters:
        path = folder / f"{name}.json"
        if path.exists():
            out[name] = json.loads(path.read_text())
    return out


def _fmt(x: float | None, decimals: int, signed: bool = False) -> str:
    if _missing(x):
        return "-"
    text = f"{x:+.{decimals}f}" if signed else f"{x:.{decimals}f}"
    return text.replace("-", "\u2212")


def _try(f, records) -> str:
    if f is None:
        return ""
    try:
        return str(f(records))
    except (Missing, KeyError, IndexError, TypeError, ValueError, ZeroDivisionError):
        return ""


def provisional(record: dict) -> str:
    """"; provisional: N of M runs stored" when a chapter's record shows fewer stored runs than it
    wants (a sweep still running), else ""."""
    found, wanted = record.get("runs_found"), record.get("runs_wanted")
    if found is None or wanted is None or found >= wanted:
        return ""
    return f"; provisional: {found} of {wanted} runs stored (sweep in progress)"


def testable(claim: Claim, records: dict, tables: dict | None = None) -> bool:
    """Whether the book's setting can show ``claim`` (``Claim.testable``; a missing value: it can)."""
    if claim.testable is None:
        return True
    got = number(claim.testable, records, tables)
    return True if _missing(got) else bool(got)


def row(claim: Claim, records: dict, nb_dir: str | Path, tables: dict | None = None) -> dict:
    """One row of the ledger for ``claim`` (plain values and the texts the page shows)."""
    tables = {} if tables is None else tables
    paper_number = number(claim.paper_number, records, tables)
    book = number(claim.book, records, tables)
    p = number(claim.p, records, tables)
    reference = number(claim.reference, records, tables)
    zero = None if claim.zero is None else (number(claim.zero, records, tables) or 0.0)
    spread = [number(s, records, tables) for s in claim.spread]
    seeds = [number(s, records, tables) for s in claim.seeds]
    v = verdict(paper_number, book, p, reference=reference if reference is not None else 0.0,
                direction=claim.direction, tolerance=claim.tolerance, zero=zero,
                stronger=claim.stronger, kind=claim.kind, tested=claim.tested,
                testable=testable(claim, records, tables))
    source = claim.source() if callable(claim.source) else claim.source
    statement = claim.statement() if callable(claim.statement) else claim.statement
    try:
        setting = claim.setting(records) + provisional(records.get(claim.chapter, {}))
    except (KeyError, TypeError, IndexError):
        setting = "-"
    title, ident = section(Path(nb_dir) / f"{claim.chapter}.ipynb", claim.section)
    if not _missing(paper_number):
        paper_text = _fmt(paper_number, claim.decimals, claim.signed)
    elif claim.direction in (1, -1) and not _missing(reference):
        # a direction and no number: the paper says the effect is above (below) the reference
        paper_text = f"{'>' if claim.direction > 0 else '<'} {_fmt(reference, max(claim.decimals, 1))}"
    else:
        paper_text = "-"
    have_book = not _missing(book)
    return {
        "key": claim.key, "paper": claim.paper, "title": claim.title, "claim": statement,
        "source": source, "measure": claim.measure,
        "paper number": paper_number, "paper text": paper_text,
        "paper detail": _try(claim.paper_detail, records),
        "book number": book, "book text": _fmt(book, claim.decimals, claim.signed),
        "book detail": _try(claim.book_detail, records) if have_book else "",
        "spread": spread, "spread text": " / ".join(_fmt(s, claim.decimals if claim.decimals else 2)
                                                    for s in spread) if have_book and spread else "-",
        "seeds": seeds, "seeds text": " / ".join(_fmt(s, 0) for s in seeds) if have_book and seeds else "-",
        "p": p, "p text": format_p(p) if have_book else "-",
        "setting": setting,
        "verdict": v, "chapter": claim.chapter, "section title": title, "anchor": ident,
        "href": f"{claim.chapter}.html#{ident}",
    }


def rows(records: dict, nb_dir: str | Path, claims=CLAIMS) -> list[dict]:
    """The ledger: one ``row`` per claim, in the order of ``claims``."""
    tables: dict = {}
    return [row(c, records, nb_dir, tables) for c in claims]


# ---------------------------------------------------------------- the page
def summary_lines(ledger: list[dict]) -> list[str]:
    """Five lines: the counts, then the claims of each verdict by title."""
    counts = {v: sum(r["verdict"] == v for r in ledger) for v in VERDICTS}
    first = (f"{len(ledger)} claims of the two papers are tested here; verdicts: "
             + "; ".join(f"{v} {counts[v]}" for v in VERDICTS) + ".")

    def titles(*verdicts):
        got = [r["title"] for r in ledger if r["verdict"] in verdicts]
        return "; ".join(got) if got else "none"

    return [first,
            f"Reproduced here: {titles(REPRODUCES)}.",
            f"Found in the same direction, but weaker: {titles(SMALLER)}.",
            f"No significant difference here: {titles(NO_DIFFERENCE)}.",
            f"Reversed here: {titles(REVERSED)}. Not run here: {titles(NOT_RUN)}. "
            f"Cannot be tested here: {titles(UNTESTABLE)}."]


def _both_stages(ledger: list[dict]) -> list[tuple[str, dict, dict]]:
    """(claim, small stage's row, deeper stage's row) of each pair of ``STAGE_PAIRS`` in ``ledger``."""
    by_key = {r["key"]: r for r in ledger}
    return [(by_key[d]["title"].removesuffix(DEEPER), by_key[s], by_key[d])
            for s, d in STAGE_PAIRS if s in by_key and d in by_key]


def stage_rows(ledger: list[dict]) -> list[dict]:
    """The claims both training stages test (``STAGE_PAIRS``), one row each: the claim, each
    stage's verdict with its number, and whether the deeper stage changes the verdict."""
    return [{"claim": claim, "small stage": f"{a['verdict']} ({a['book text']})",
             "deeper stage": f"{b['verdict']} ({b['book text']})",
             "changed": "yes" if a["verdict"] != b["verdict"] else "no"}
            for claim, a, b in _both_stages(ledger)]


def stage_sentence(ledger: list[dict]) -> str:
    """How many of the claims both stages test change their verdict on the deeper stage, and which
    (small stage's verdict -> the deeper stage's)."""
    both = _both_stages(ledger)
    changed = [(claim, a, b) for claim, a, b in both if a["verdict"] != b["verdict"]]
    if not both:
        return "No claim is tested on both training stages in this build."
    text = (f"Of the {len(both)} claim{'s' * (len(both) != 1)} that both training stages test, the deeper "
            f"stage changes the verdict of {len(changed)}")
    if not changed:
        return text + "."
    return text + ": " + "; ".join(f"{claim} ({a['verdict']} on the small stage, {b['verdict']} on the "
                                   f"deeper one)" for claim, a, b in changed) + "."


# (heading, class of its cells, share of the table's width in %) of the page's columns: the verdict
# second, where a reader sees it; the source, spread, seeds, p-value and setting folded under the claim
_COLUMNS = (("#", "n", 4), ("verdict", "verdict", 13), ("claim (the paper's statement)", "claim", 36),
            ("the paper", "paper", 14), ("this book", "book", 17), ("section", "section", 16))
# (label, row key, class) of the folded details of a claim
_DETAILS = (("source in the paper", "source", "source"), ("spread", "spread text", "spread"),
            ("seeds (runs)", "seeds text", "seeds"), ("Welch p", "p text", "p"),
            ("setting of this book", "setting", "setting"))
DETAILS_SUMMARY = "source, spread, seeds, p, setting"
_VERDICT_COLOURS = {REPRODUCES: "#d9f0d3", SMALLER: "#fff2cc", NO_DIFFERENCE: "#e8e8e8",
                    REVERSED: "#f4cccc", NOT_RUN: "#ffffff", UNTESTABLE: "#dde7f3"}


def render_html(ledger: list[dict]) -> str:
    """The ledger as one compact HTML table that fits the page: the row number, the verdict, the
    claim (what is measured in small print, and a folded block with the source in the paper, the
    spread, the seeds, the Welch p-value and the setting of this book's number), the paper's
    number, this book's number (each with its small print) and the link to the chapter section.
    Every cell has a class naming its column (``_COLUMNS``, ``_DETAILS``); "-" marks a number that
    does not exist."""
    e = html.escape

    def small(text):
        return f'<br><span class="note">{e(text)}</span>' if text else ""

    cols = "".join(f'<col style="width:{w}%">' for _, _, w in _COLUMNS)
    head = "".join(f'<th class="{c}">{e(h)}</th>' for h, c, _ in _COLUMNS)
    body = []
    for i, r in enumerate(ledger, 1):
        details = "".join(f'<dt>{e(label)}</dt><dd class="{cls}">{e(str(r[key]))}</dd>'
                          for label, key, cls in _DETAILS)
        cells = {
            "n": str(i),
            "verdict": f'<span class="verdict" style="background:{_VERDICT_COLOURS[r["verdict"]]}">'
                       f'{e(r["verdict"])}</span>',
            "claim": (f"<b>{e(r['paper'])}</b>: {e(r['claim'])}" + small(f"Measured: {r['measure']}")
                      + f"<details><summary>{e(DETAILS_SUMMARY)}</summary><dl>{details}</dl></details>"),
            "paper": e(r["paper text"]) + small(r["paper detail"]),
            "book": e(r["book text"]) + small(r["book detail"]),
            "section": f'<a href="{e(r["href"])}">{e(r["chapter"])}</a>{small(r["section title"])}',
        }
        body.append("<tr>" + "".join(f'<td class="{c}">{cells[c]}</td>' for _, c, _ in _COLUMNS) + "</tr>")
    style = ("<style>.claims-ledger{overflow-x:auto;max-width:100%}"
             ".claims-ledger table{border-collapse:collapse;font-size:0.8em;table-layout:fixed;"
             "width:100%;min-width:40em}"
             ".claims-ledger th,.claims-ledger td{border:1px solid #ccc;padding:3px 5px;vertical-align:top;"
             "white-space:normal;overflow-wrap:break-word;text-align:left}"
             ".claims-ledger .note{font-size:0.9em;color:#555}"
             ".claims-ledger span.verdict{padding:0 3px;display:inline-block}"
             ".claims-ledger details{margin-top:2px;font-size:0.9em}"
             ".claims-ledger summary{cursor:pointer;color:#2a5d9f}"
             ".claims-ledger dl{margin:2px 0 0}.claims-ledger dt{font-weight:bold;margin:0}"
             ".claims-ledger dd{margin:0 0 2px 1em}"
             "</style>")
    return (style + f'<div class="claims-ledger"><table><colgroup>{cols}</colgroup><thead><tr>{head}'
            + "</tr></thead><tbody>" + "".join(body) + "</tbody></table></div>")


def rule_text() -> str:
    """The verdict rule in words, with the constants of this module."""
    return (f"**How a verdict is decided** (`adabit_lite.ledger.verdict`). Each claim is an effect with "
            f"a direction. No number of this book: *{NOT_RUN}*. A comparison of runs over seeds with a Welch "
            f"p-value of {ALPHA:g} or more, or with no test possible: *{NO_DIFFERENCE}*; a computed number "
            f"with no effect: the same. An effect of the other sign than the paper's: *{REVERSED}*. "
            f"Otherwise *{REPRODUCES}* when the effect reaches {100 * (1 - CROSS_SETTING):g} % of the "
            f"paper's where the setting differs from the paper's (the training claims), "
            f"{100 * (1 - EXACT):g} % where the book computes the paper's own quantity, and "
            f"*{SMALLER}* when it falls short; where the paper's number is a threshold (\"most of\": over "
            f"{MOST:g} %), the effect must reach the threshold itself. An identity that fails: *{REVERSED}*. "
            f"A setting where the claim cannot show at all (even full precision at chance, or a fixed split "
            f"that loses nothing to full precision): *{UNTESTABLE}*.")


# ---------------------------------------------------------------------- the page's parameters
# nb/ledger.ipynb's parameters (its validation cell: ``params.check(PARAMETERS, globals())``)
from . import params as _p  # noqa: E402

PARAMETERS = _p.declare(
    _p.Param("records_dir", "path", "_build/records",
             "the chapters' records (<chapter>.json) of the build this page shows"),
    _p.Param("nb_dir", "path", "nb", "the chapter notebooks, whose headings give the links' anchors"),
    _p.Param("fig_dir", "path", "_build/figures", "the ledger as a table (CSV) goes here"),
    _p.Param("record_path", "path", "_build/records/ledger.json",
             "the ledger's rows, read by tests/test_ledger.py", suffix=".json"),
)
