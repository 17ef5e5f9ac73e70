"""The step-size mismatch theorem (chapter 2): its tables, figures and verdicts.

Every number comes from ``adabit_lite.theory`` (closed forms and Monte Carlo on a half-normal
input ``x = |N(0, sigma^2)|``) and from ``quant.grid_search_step`` (the renewal used in training).
A bit drop is a pair ``(b, b')`` with ``1 <= b' < b``: the layer had ``b`` bits and step
``s_b = 3 sigma / (2^b - 1)`` and now has ``b'`` bits.  The tables here are one row per pair (or
per bit width ``b``) with the closed form, its Monte Carlo estimate, the standard error (SE) and
the deviation in standard errors (z); the ``*_findings`` functions give the lines the chapter
prints under each table, and :func:`paper_vs_book` the chapter's closing verdicts.

Seeds.  Each Monte Carlo estimate draws from its own seed, ``seed + 1000 kind + 10 b + b'``
(:func:`mc_seed`), so that adding a pair or a section leaves every other estimate unchanged.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .. import plotting, theory

#: the two reference neurons of section 6: name -> what the stale neuron is compared with
REFERENCES = {"original": "stale vs b bits, step s_b (before the drop)",
              "paper": "stale vs b' bits renewed to s_b'"}
Z_LIMIT = 5  # a Monte Carlo estimate agrees with its closed form within this many SE
EXACT = 1e-12  # closed forms that must agree to round-off
BN = "b'"  # the column of b', the bit width after the drop
K_GRID = 100  # clipping ranges scored by the grid-search renewal (Algorithm 1)


# ------------------------------------------------------------------ pairs and seeds
def drop_pairs(b_max: int) -> list[tuple[int, int]]:
    """Every bit drop (b, b') with 1 <= b' < b <= b_max, ordered by b, then b'."""
    return [(b, bn) for b in range(2, b_max + 1) for bn in range(1, b)]


def pair_key(b, bn) -> str:
    """The record key of the pair (b, b'): "b,b'"."""
    return f"{int(b)},{int(bn)}"


def mc_seed(seed: int, kind: int, b: int, bn: int = 0) -> int:
    """A distinct, reproducible seed for Monte Carlo estimate ``kind`` of the pair (b, b')."""
    return seed + 1000 * kind + 10 * b + bn


def by_pair(table: pd.DataFrame, *columns: str) -> dict:
    """{"b,b'": value} over the rows of a per-pair table: the column's float for one column,
    the list of floats for several (e.g. a Monte Carlo estimate and its SE)."""
    out = {}
    for _, r in table.iterrows():
        values = [float(r[c]) for c in columns]
        out[pair_key(r["b"], r["b'"])] = values[0] if len(values) == 1 else values
    return out


def by_bits(table: pd.DataFrame, column: str) -> dict:
    """{"b": value} of ``column`` over the rows of a per-bit-width table."""
    return {str(int(r["b"])): float(r[column]) for _, r in table.iterrows()}


def _z(estimate: float, p: float, n: int) -> float:
    """Deviation of a Monte Carlo proportion from its closed form ``p``, in units of the
    binomial standard error sqrt(p (1 - p) / n) of the closed form."""
    return (estimate - p) / math.sqrt(p * (1 - p) / n)


def _pair_labels(table: pd.DataFrame) -> list[str]:
    return [f"{b},{bn}" for b, bn in zip(table["b"], table["b'"])]


# ------------------------------------------------------------------ the chapter's tables, shown
#: decimals of the chapter's table columns, by the start of a column's name (first match wins):
#: z-scores and excesses (%) to 2; probabilities, thresholds in sigma and steps to 4, so that a
#: Monte Carlo estimate shows its difference from the closed form.  Every other column gets ``show_table``'s
#: own per-column decimals (two significant digits of its smallest value).
DECIMALS = (("z", 2), ("P ", 4), ("MC paper", 4), ("MC exact", 4), ("paper threshold", 4),
            ("exact threshold", 4), ("neuron (MC)", 4), ("independent steps", 4),
            ("paper 1-(1-p)", 4), ("paper step", 4), ("optimal step", 4), ("grid step", 4),
            ("excess", 2), ("paper excess", 2))


def column_decimals(columns) -> dict:
    """{column: decimals} for the columns that :data:`DECIMALS` names (the others: automatic)."""
    out = {}
    for col in columns:
        d = next((d for start, d in DECIMALS if str(col).startswith(start)), None)
        if d is not None:
            out[col] = d
    return out


def show(table: pd.DataFrame):
    """A table of this chapter as the book shows tables (``plotting.show_table``: no index, fixed
    decimals, one format per column), with the decimals of :func:`column_decimals`."""
    return plotting.show_table(table, decimals=column_decimals(table.columns))


# ------------------------------------------------------------------ section 1: the lemma
def lemma_text(lemma: float, ratios: dict) -> str:
    """The lemma's constant 2 (1 - Phi(1.5)) and, per b, the largest clip ratio
    (2^(b-1) - 1) / (2^b - 1), one line each."""
    lines = [f"lemma bound 2 (1 - Phi(1.5)) = {lemma:.4f}"]
    lines += [f"b = {b}: largest clip ratio (2^(b-1) - 1) / (2^b - 1) = {ratio:.4f} < 0.5"
              for b, ratio in ratios.items()]
    return "\n".join(lines)


# ------------------------------------------------------------------ section 2: probabilities
def probability_table(b_max: int, sigma: float, n: int, seed: int) -> pd.DataFrame:
    """Per pair: the paper's event x > (2^b' - 1) s_b and the exact event x > (2^b' - 1/2) s_b,
    each as threshold / sigma, closed-form probability, Monte Carlo estimate over ``n`` samples,
    its SE and z (seed kinds 1 and 2)."""
    rows = []
    for b, bn in drop_pairs(b_max):
        p_paper = theory.theorem_probability(b, bn, sigma)
        p_exact = theory.exact_error_increase_probability(b, bn, sigma)
        mc_paper, se_paper = theory.mc_probability(b, bn, sigma, n=n, seed=mc_seed(seed, 1, b, bn),
                                                   event="theorem")
        mc_exact, se_exact = theory.mc_probability(b, bn, sigma, n=n, seed=mc_seed(seed, 2, b, bn),
                                                   event="exact")
        rows.append({
            "b": b, "b'": bn,
            "paper threshold/sigma": theory.theorem_threshold(b, bn, sigma) / sigma,
            "P paper": p_paper, "MC paper": mc_paper, "SE paper": se_paper,
            "z paper": _z(mc_paper, p_paper, n),
            "exact threshold/sigma": theory.exact_threshold(b, bn, sigma) / sigma,
            "P exact": p_exact, "MC exact": mc_exact, "SE exact": se_exact,
            "z exact": _z(mc_exact, p_exact, n),
        })
    return pd.DataFrame(rows)


def probability_record(prob: pd.DataFrame) -> dict:
    """The chapter's record of :func:`probability_table`: both closed forms and both Monte Carlo
    estimates ([estimate, SE]) per pair."""
    return dict(theorem_probability=by_pair(prob, "P paper"),
                exact_probability=by_pair(prob, "P exact"),
                mc_theorem_probability=by_pair(prob, "MC paper", "SE paper"),
                mc_exact_probability=by_pair(prob, "MC exact", "SE exact"))


def probability_findings(prob: pd.DataFrame, lemma: float) -> str:
    """Both probabilities per pair, then the checks against the lemma's bound: the paper's event
    above it, the exact event at or above it and equal to it exactly where b' = b - 1, the exact
    event below the paper's, and every Monte Carlo estimate within 5 SE."""
    lines = [f"b={r['b']} b'={r[BN]}: paper {r['P paper']:.4f}  exact {r['P exact']:.4f}"
             for r in prob.to_dict("records")]
    one_bit = prob["b'"] == prob["b"] - 1
    at_bound = (prob["P exact"] - lemma).abs() < EXACT
    lines += [
        f"paper's event above the lemma bound for every pair: {bool((prob['P paper'] > lemma).all())}",
        f"exact event at or above the bound for every pair: {bool((prob['P exact'] >= lemma - EXACT).all())}",
        f"exact event equal to the bound (1e-12) exactly where b' = b - 1: {bool(at_bound.eq(one_bit).all())}",
        f"exact below the paper's probability for every pair: {bool((prob['P exact'] < prob['P paper']).all())}",
        f"Monte Carlo within 5 SE of the closed form: paper {bool((prob['z paper'].abs() < Z_LIMIT).all())}, "
        f"exact {bool((prob['z exact'].abs() < Z_LIMIT).all())}",
    ]
    return "\n".join(lines)


def plot_probabilities(prob: pd.DataFrame, lemma: float):
    """Both events' closed forms (markers) and Monte Carlo estimates (5 SE bars) per pair, with
    the lemma's bound as a dashed line."""
    fig, ax = plotting.figure()
    xpos = np.arange(len(prob))
    ax.errorbar(xpos - 0.1, prob["MC paper"], yerr=5 * prob["SE paper"], fmt="none",
                ecolor=plotting.COLORS["paper"], label="Monte Carlo (5 SE bars)")
    ax.errorbar(xpos + 0.1, prob["MC exact"], yerr=5 * prob["SE exact"], fmt="none",
                ecolor=plotting.COLORS["lbw"])
    ax.plot(xpos - 0.1, prob["P paper"], "o", color=plotting.COLORS["paper"],
            label=r"paper's event $x > (2^{b'}-1)s_b$")
    ax.plot(xpos + 0.1, prob["P exact"], "s", color=plotting.COLORS["lbw"],
            label=r"exact event $x > (2^{b'}-1/2)s_b$")
    ax.axhline(lemma, color=plotting.COLORS["uquant"], ls="--", label=r"lemma: $2(1-\Phi(1.5))$")
    ax.set_xticks(xpos, _pair_labels(prob), rotation=90 if len(prob) > 10 else 0)
    ax.set_xlabel("(b, b')")
    ax.set_ylabel("probability that the error grows")
    ax.legend(fontsize=8, ncol=2, loc="lower center", bbox_to_anchor=(0.5, 1.0))
    return fig


# ------------------------------------------------------------------ section 3: expected errors
ERROR_KINDS = ("stale", "renewed paper", "renewed optimal")


def error_table(b_max: int, sigma: float, n: int, seed: int) -> pd.DataFrame:
    """Per pair: E[(Q - x)^2] before the drop (b bits, s_b), with the stale step s_b, renewed to
    the paper's s_b' and renewed to the MSE-optimal b'-bit step, the last three with Monte Carlo
    estimate, SE and z (seed kinds 3 to 5), and the ratios stale/paper and stale/optimal."""
    rows = []
    for b, bn in drop_pairs(b_max):
        r = theory.stale_vs_renewed(b, bn, sigma)
        steps = (r.stale_step, r.renewed_paper_step, r.renewed_optimal_step)
        errors = (r.stale_error, r.renewed_paper_error, r.renewed_optimal_error)
        row = {"b": b, "b'": bn, "before (b bits)": r.original_error}
        for kind, (name, step, err) in enumerate(zip(ERROR_KINDS, steps, errors), start=3):
            mc, se = theory.mc_expected_sq_error(step, bn, sigma, n=n, seed=mc_seed(seed, kind, b, bn))
            row.update({name: err, f"MC {name}": mc, f"SE {name}": se})
        row.update({"stale/paper": r.ratio_stale_to_paper, "stale/optimal": r.ratio_stale_to_optimal})
        rows.append(row)
    errs = pd.DataFrame(rows)
    for name in ERROR_KINDS:
        errs[f"z {name}"] = (errs[f"MC {name}"] - errs[name]) / errs[f"SE {name}"]
    return errs


def paper_renewal_not_better(errs: pd.DataFrame) -> list[list[int]]:
    """The pairs [b, b'] where renewing to the paper's step s_b' does not lower the error below
    the stale step's (stale/paper <= 1)."""
    return [[int(b), int(bn)] for b, bn, ratio in zip(errs["b"], errs["b'"], errs["stale/paper"])
            if ratio <= 1]


def pairs_text(pairs) -> str:
    """Bit drops [[b, b'], ...] in words: "(b, b') = (2, 1) and (3, 1)" ("no pair" if none)."""
    if not pairs:
        return "no pair"
    shown = [f"({b}, {bn})" for b, bn in pairs]
    return "(b, b') = " + (shown[0] if len(shown) == 1 else
                           ", ".join(shown[:-1]) + " and " + shown[-1])


def error_record(errs: pd.DataFrame) -> dict:
    """The chapter's record of :func:`error_table`."""
    return dict(stale_error=by_pair(errs, "stale"),
                renewed_paper_error=by_pair(errs, "renewed paper"),
                renewed_optimal_error=by_pair(errs, "renewed optimal"),
                original_error=by_pair(errs, "before (b bits)"),
                mc_stale_error=by_pair(errs, "MC stale", "SE stale"),
                paper_renewal_not_better=paper_renewal_not_better(errs))


def error_details(errs: pd.DataFrame, n: int):
    """The whole error table folded under a one-line summary (it backs up the heatmap)."""
    return plotting.show_folded(
        f"The numbers behind the heatmap: every pair's errors in closed form, by Monte Carlo (MC, "
        f"{n:,} samples), their standard errors (SE) and z-scores ({len(errs.columns)} columns)",
        show(errs))


def error_findings(errs: pd.DataFrame) -> str:
    """The three errors after the drop and both ratios per pair, the pairs where the paper's
    renewal does not help, the smallest stale/optimal ratio and the Monte Carlo check."""
    lines = [f"b={r['b']} b'={r[BN]}: stale {r['stale']:.6f}  renewed paper {r['renewed paper']:.6f}"
             f"  renewed optimal {r['renewed optimal']:.6f}  stale/paper {r['stale/paper']:.4f}"
             f"  stale/optimal {r['stale/optimal']:.4f}" for r in errs.to_dict("records")]
    z_cols = [f"z {name}" for name in ERROR_KINDS]
    lines += [
        "pairs where renewing to the paper's step is worse than keeping the stale step: "
        f"{pairs_text(paper_renewal_not_better(errs))}",
        f"smallest stale/optimal ratio: {errs['stale/optimal'].min():.4f}",
        f"Monte Carlo within 5 SE of the closed form: {bool((errs[z_cols].abs() < Z_LIMIT).all().all())}",
    ]
    return "\n".join(lines)


def plot_error_heatmap(errs: pd.DataFrame, b_max: int):
    """Two heatmaps over (b, b'): stale error / error renewed to the paper's step, and / error
    renewed to the MSE-optimal step, coloured by log2 of the ratio (red: renewing helps)."""
    fig, axes = plotting.figure(ncols=2, figsize=(7.6, 3.4), layout="constrained")
    bs, bns = list(range(2, b_max + 1)), list(range(1, b_max))
    limit = float(np.abs(np.log2(errs[["stale/paper", "stale/optimal"]].to_numpy())).max())
    for ax, col, title in zip(axes, ["stale/paper", "stale/optimal"],
                              ["renewed to the paper's step", "renewed to the MSE-optimal step"]):
        # rows: b' from the largest (top) to 1 (bottom); columns: b; pairs with b' >= b stay blank
        grid = errs.pivot(index="b'", columns="b", values=col).reindex(index=bns[::-1], columns=bs)
        plotting.annotated_heatmap(ax, grid, np.log2(grid), cmap="RdBu_r", vmin=-limit, vmax=limit,
                                   cbar=False, annot_size=7 if b_max > 6 else 8)
        ax.set_xlabel("b (before the drop)")
        ax.set_ylabel("b' (after the drop)")
        ax.set_title(f"stale / {title}", fontsize=9)
    fig.colorbar(axes[1].collections[0], ax=axes, label="log2 of the error ratio", shrink=0.8)
    return fig


def plot_error_vs_drop(errs: pd.DataFrame, b0: int):
    """From b = ``b0`` down to every b' < b0: the stale, paper-renewed and optimally renewed
    errors (log scale), the stale error's Monte Carlo 5 SE bars and the error before the drop."""
    drop = errs[errs["b"] == b0].sort_values("b'")
    fig, ax = plotting.figure()
    ax.plot(drop["b'"], drop["stale"], "o-", color=plotting.COLORS["uquant"], label=f"stale step $s_{{{b0}}}$")
    ax.plot(drop["b'"], drop["renewed paper"], "s-", color=plotting.COLORS["paper"],
            label="renewed: paper step $s_{b'}$")
    ax.plot(drop["b'"], drop["renewed optimal"], "^-", color=plotting.COLORS["lbw_renew"],
            label="renewed: MSE-optimal step")
    ax.errorbar(drop["b'"], drop["MC stale"], yerr=5 * drop["SE stale"], fmt="none", ecolor="k")
    ax.axhline(float(drop["before (b bits)"].iloc[0]), color="k", ls=":", label=f"before the drop ({b0} bits)")
    ax.set_yscale("log")
    ax.set_xlabel(f"b' (bits after dropping from b = {b0})")
    ax.set_ylabel(r"$E[(Q - x)^2]$")
    ax.set_xticks(drop["b'"])
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


# ------------------------------------------------------------------ section 4: the drafted formula
GAP = "E[(Qb-Qb')^2]"


def drafted_table(b_max: int, sigma: float, n: int, seed: int) -> pd.DataFrame:
    """Per pair: the paper's drafted E(Err') as written, E[(Q_b - Q_b')^2] with step s_b in closed
    form and by Monte Carlo (SE, z; seed kind 3), the stale error, the error before the drop,
    the exact increase, the cross term 2 E[(Q_b' - Q_b)(Q_b - x)], drafted - increase and
    drafted / stale."""
    rows = []
    for b, bn in drop_pairs(b_max):
        d = theory.drafted_formula_decomposition(b, bn, sigma)
        gap_mc, gap_se = theory.mc_expected_sq_quantized_gap(b, bn, sigma, n=n, seed=mc_seed(seed, 3, b, bn))
        rows.append({
            "b": b, "b'": bn, "drafted formula": d.drafted,
            GAP: theory.expected_sq_quantized_gap(b, bn, sigma),
            f"MC {GAP}": gap_mc, "SE": gap_se,
            "stale error": d.stale_error, "before the drop": d.original_error,
            "increase": d.increase, "cross term": d.cross_term,
            "drafted - increase": d.drafted - d.increase,
            "drafted / stale": d.drafted / d.stale_error,
        })
    dec = pd.DataFrame(rows)
    dec["z"] = (dec[f"MC {GAP}"] - dec[GAP]) / dec["SE"]
    return dec


def drafted_max_gap(dec: pd.DataFrame) -> float:
    """Largest |drafted formula - E[(Q_b - Q_b')^2]| over the pairs."""
    return float((dec["drafted formula"] - dec[GAP]).abs().max())


def drafted_record(dec: pd.DataFrame) -> dict:
    """The chapter's record of :func:`drafted_table`."""
    return dict(drafted_formula=by_pair(dec, "drafted formula"), quantized_gap=by_pair(dec, GAP),
                mc_quantized_gap=by_pair(dec, f"MC {GAP}", "SE"), cross_term=by_pair(dec, "cross term"),
                drafted_max_abs_gap=drafted_max_gap(dec))


def drafted_findings(dec: pd.DataFrame) -> str:
    """Whether the drafted formula equals E[(Q_b - Q_b')^2] and stale - before = drafted + cross
    term to round-off, the Monte Carlo check, the pieces per pair and the pair where the formula
    is furthest from the increase (absolute and relative)."""
    identity = float((dec["increase"] - dec["drafted formula"] - dec["cross term"]).abs().max())
    lines = [
        f"drafted formula equals E[(Q_b - Q_b')^2] for every pair (max |difference| < 1e-12): "
        f"{drafted_max_gap(dec) < EXACT}",
        f"stale - before = drafted + cross term for every pair (< 1e-12): {identity < EXACT}",
        f"Monte Carlo of E[(Q_b - Q_b')^2] within 5 SE: {bool((dec['z'].abs() < Z_LIMIT).all())}",
    ]
    lines += [f"b={r['b']} b'={r[BN]}: drafted {r['drafted formula']:.6f}  increase {r['increase']:.6f}"
              f"  stale {r['stale error']:.6f}  cross {r['cross term']:+.6f}" for r in dec.to_dict("records")]
    worst = dec.loc[dec["drafted - increase"].abs().idxmax()]
    gap = abs(worst["drafted - increase"])
    lines.append(f"largest |drafted - increase|: {gap:.6f} at (b, b') = {(int(worst['b']), int(worst[BN]))},"
                 f" relative to the increase {gap / worst['increase']:.4f}")
    return "\n".join(lines)


def plot_drafted(dec: pd.DataFrame):
    """Per pair, relative to the exact stale error: the exact increase, the drafted formula and
    the Monte Carlo E[(Q_b - Q_b')^2] with 5 SE bars."""
    fig, ax = plotting.figure()
    xpos = np.arange(len(dec))
    ax.axhline(1.0, color=plotting.COLORS["uquant"], label="exact stale error (= 1)")
    ax.plot(xpos, dec["increase"] / dec["stale error"], "^", color=plotting.COLORS["lbw"],
            label="exact increase over the b-bit error")
    ax.plot(xpos, dec["drafted formula"] / dec["stale error"], "x", color="k", ms=8, label="drafted formula")
    ax.errorbar(xpos, dec[f"MC {GAP}"] / dec["stale error"], yerr=5 * dec["SE"] / dec["stale error"],
                fmt="none", ecolor=plotting.COLORS["paper"], label=r"Monte Carlo $E[(Q_b-Q_{b'})^2]$, 5 SE")
    ax.set_xticks(xpos, _pair_labels(dec), rotation=90 if len(dec) > 10 else 0)
    ax.set_xlabel("(b, b')")
    ax.set_ylabel("relative to the exact stale error")
    ax.legend(fontsize=8, ncol=2, loc="lower center", bbox_to_anchor=(0.5, 1.0))
    return fig


# ------------------------------------------------------------------ section 5: the optimal step
def optimal_step_table(b_max: int, sigma: float, n: int, seed: int) -> pd.DataFrame:
    """Per bit width b = 1 .. b_max: the paper's step 3 sigma / (2^b - 1), the MSE-optimal step,
    their ratio, the optimal top level / sigma, both mean squared errors, the optimum's Monte
    Carlo estimate and SE (seed kind 6) and how much larger the paper step's error is (%)."""
    rows = []
    for b in range(1, b_max + 1):
        s_paper, s_opt = theory.paper_step(b, sigma), theory.optimal_step(b, sigma)
        e_paper, e_opt = theory.expected_sq_error(s_paper, b, sigma), theory.expected_sq_error(s_opt, b, sigma)
        mc_opt, se_opt = theory.mc_expected_sq_error(s_opt, b, sigma, n=n, seed=mc_seed(seed, 6, b))
        rows.append({
            "b": b, "paper step": s_paper, "optimal step": s_opt, "paper / optimal": s_paper / s_opt,
            "optimal top level/sigma": s_opt * theory.n_levels(b) / sigma,
            "MSE paper": e_paper, "MSE optimal": e_opt, "MC MSE optimal": mc_opt, "SE": se_opt,
            "paper excess %": 100 * (e_paper / e_opt - 1),
        })
    return pd.DataFrame(rows)


def optimal_record(opt: pd.DataFrame) -> dict:
    """The chapter's record of :func:`optimal_step_table`."""
    return dict(optimal_step=by_bits(opt, "optimal step"), paper_step=by_bits(opt, "paper step"),
                optimal_mse=by_bits(opt, "MSE optimal"), paper_mse=by_bits(opt, "MSE paper"))


def optimal_findings(opt: pd.DataFrame, sigma: float) -> str:
    """Per b the optimal and the paper's step (in sigma) and mean squared error (in sigma^2), and
    whether the Monte Carlo error at the optimum is within 5 SE."""
    lines = [f"b={r['b']}: optimal step {r['optimal step'] / sigma:.4f} sigma  paper {r['paper step'] / sigma:.4f} "
             f"sigma  MSE optimal {r['MSE optimal'] / sigma**2:.6f}  paper {r['MSE paper'] / sigma**2:.6f} sigma^2"
             f"  (paper +{r['paper excess %']:.1f} %)" for r in opt.to_dict("records")]
    within = ((opt["MC MSE optimal"] - opt["MSE optimal"]).abs() < Z_LIMIT * opt["SE"]).all()
    lines.append(f"Monte Carlo MSE at the optimum within 5 SE: {bool(within)}")
    return "\n".join(lines)


def plot_optimal_step(opt: pd.DataFrame, sigma: float):
    """Left: the error against the step (relative to the paper step) per b, normalised by the
    smallest error, with the optimum (o) and the paper step (x).  Right: both steps against b."""
    import matplotlib

    fig, (ax0, ax1) = plotting.figure(ncols=2, figsize=(7.6, 3.2), layout="constrained")
    rel = np.geomspace(0.25, 2.5, 160)
    cmap = matplotlib.colormaps["viridis"]
    rows = opt.to_dict("records")
    for i, r in enumerate(rows):
        b = int(r["b"])
        curve = [theory.expected_sq_error(f * r["paper step"], b, sigma) for f in rel]
        color = cmap(i / max(len(rows) - 1, 1))
        ax0.plot(rel, np.array(curve) / r["MSE optimal"], color=color, label=f"b = {b}")
        ax0.plot(r["optimal step"] / r["paper step"], 1.0, "o", color=color)
        ax0.plot(1.0, r["MSE paper"] / r["MSE optimal"], "x", color=color)
    ax0.set_xscale("log")
    ax0.set_xticks([0.25, 0.5, 1, 2], ["0.25", "0.5", "1", "2"])
    ax0.minorticks_off()
    ax0.set_ylim(0.95, 3.6)
    ax0.set_xlabel(r"step / paper step $3\sigma/(2^b-1)$")
    ax0.set_ylabel("MSE / smallest MSE")
    ax0.legend(fontsize=7)
    ax1.plot(opt["b"], opt["paper step"] / sigma, "x-", color=plotting.COLORS["paper"], label=r"paper $3\sigma/(2^b-1)$")
    ax1.plot(opt["b"], opt["optimal step"] / sigma, "o-", color=plotting.COLORS["lbw_renew"], label="MSE-optimal")
    ax1.set_yscale("log")
    ax1.set_xlabel("bit width b")
    ax1.set_ylabel(r"step / $\sigma$")
    ax1.legend(fontsize=8)
    return fig


# ------------------------------------------------------------------ section 6: T time steps
def t_step_pairs(b_max: int) -> list[tuple[int, int]]:
    """The pairs followed over T steps: (2, 1), and (b_max, b_max - 2) when b_max >= 3."""
    return [(2, 1)] + ([(b_max, b_max - 2)] if b_max >= 3 else [])


def t_step_curves(b_max: int, T_max: int, sigma: float, n: int, seed: int) -> dict:
    """Per pair of :func:`t_step_pairs` ("b,b'"), arrays over T = 1 .. T_max: the paper's
    1 - (1 - p)^T with the paper's p ("paper formula"); per reference neuron of ``REFERENCES``
    the Monte Carlo probability that the stale neuron errs more at some step ("neuron REF",
    seed kinds 7 and 8), its SE ("neuron REF SE") and 1 - (1 - p1)^T from its own T = 1 value
    ("independent REF")."""
    Ts = np.arange(1, T_max + 1)
    out = {}
    for b, bn in t_step_pairs(b_max):
        p_thm = theory.theorem_probability(b, bn, sigma)
        curves = {"paper formula": np.atleast_1d(theory.t_step_probability(p_thm, Ts))}
        for k, ref in enumerate(REFERENCES):
            p, se = theory.mc_neuron_t_step_probability(b, bn, T_max, sigma, n=n,
                                                         seed=mc_seed(seed, 7 + k, b, bn), reference=ref)
            curves[f"neuron {ref}"], curves[f"neuron {ref} SE"] = p, se
            curves[f"independent {ref}"] = np.atleast_1d(theory.t_step_probability(p[0], Ts))
        out[pair_key(b, bn)] = curves
    return out


def t_step_table(curves: dict) -> pd.DataFrame:
    """The curves of :func:`t_step_curves` as a long table: one row per pair, reference and T."""
    rows = []
    for key, c in curves.items():
        b, bn = map(int, key.split(","))
        for ref, label in REFERENCES.items():
            for t in range(len(c["paper formula"])):
                rows.append({"b": b, "b'": bn, "reference": label, "T": t + 1,
                             "neuron (MC)": c[f"neuron {ref}"][t], "SE": c[f"neuron {ref} SE"][t],
                             "independent steps 1-(1-p1)^T": c[f"independent {ref}"][t],
                             "paper 1-(1-p)^T": c["paper formula"][t]})
    return pd.DataFrame(rows)


def t_step_record(curves: dict) -> dict:
    """The curves as lists (JSON), for the chapter's record."""
    return {key: {name: np.asarray(v).tolist() for name, v in c.items()} for key, c in curves.items()}


def t_step_findings(curves: dict) -> str:
    """Per pair: the paper's formula at the largest T and, per reference neuron, its probability
    at T = 1 and the largest T beside what independent steps would give, and whether it stays
    unchanged over T."""
    lines = []
    for key, c in curves.items():
        T_max = len(c["paper formula"])
        lines += [f"(b, b') = ({key}), T = 1 .. {T_max}:",
                  f"  paper 1-(1-p)^T at T = {T_max}: {c['paper formula'][-1]:.4f}"]
        for ref, label in REFERENCES.items():
            p = c[f"neuron {ref}"]
            lines.append(f"  neuron {label}: T=1 {p[0]:.2f}, T={T_max} {p[-1]:.2f}"
                         f" (independent steps would give {c[f'independent {ref}'][-1]:.2f});"
                         f" unchanged over T: {bool(p[-1] == p[0])}")
    return "\n".join(lines)


def plot_t_steps(curves: dict):
    """One panel per pair: the paper's 1 - (1 - p)^T, and per reference neuron the Monte Carlo
    probability (5 SE bars) beside independent steps with its own one-step probability."""
    colors = {"original": plotting.COLORS["uquant"], "paper": plotting.COLORS["lbw"]}
    fig, axes = plotting.figure(ncols=len(curves), figsize=(3.8 * len(curves), 3.3), squeeze=False)
    for ax, (key, c) in zip(axes[0], curves.items()):
        Ts = np.arange(1, len(c["paper formula"]) + 1)
        ax.plot(Ts, c["paper formula"], color=plotting.COLORS["paper"], lw=2, label="paper: $1-(1-p)^T$")
        for ref, label in REFERENCES.items():
            ax.errorbar(Ts, c[f"neuron {ref}"], yerr=5 * c[f"neuron {ref} SE"], fmt="o-", ms=3,
                        color=colors[ref], label=f"neuron {label}")
            ax.plot(Ts, c[f"independent {ref}"], "--", color=colors[ref],
                    label=f"independent steps, $p_1$ of the {('red' if ref == 'original' else 'blue')} neuron curve")
        b, bn = key.split(",")
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("time steps T")
        ax.set_title(f"b = {b} -> b' = {bn}", fontsize=9)
    axes[0][0].set_ylabel("P(some step errs more)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=2, fontsize=7)
    return fig


# ------------------------------------------------------------------ section 7: grid-search renewal
GRID_METHODS = ("grid p=2.4", "grid p=2", "paper")


def grid_search_table(opt: pd.DataFrame, sigma: float, n_grid: int, seed: int) -> tuple[pd.DataFrame, float]:
    """Per bit width of ``opt`` (:func:`optimal_step_table`): the step that
    ``quant.grid_search_step`` (K = 100 ranges, exponent p = 2.4 and p = 2) picks on ``n_grid``
    float32 half-normal samples (seed kind 9), the grid spacing R / (K (2^b - 1)), the closed-form
    error of each step and each error's excess over the optimum (%).  Returns (table, R), R the
    range of the samples.  The search runs on one thread (memory-bound; its float32 sums, hence
    the chosen steps, then do not depend on the machine's thread count)."""
    import torch

    from .. import quant

    rng = np.random.default_rng(mc_seed(seed, 9, 0))
    x = torch.from_numpy(theory.sample_halfnormal(rng, n_grid, sigma)).to(torch.float32)
    R = float(x.max() - x.min())
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    rows = []
    try:
        for r in opt.to_dict("records"):
            b = int(r["b"])
            s24 = float(quant.grid_search_step(x, b, signed=False, K=K_GRID, p=2.4)[0])
            s20 = float(quant.grid_search_step(x, b, signed=False, K=K_GRID, p=2.0)[0])
            rows.append({
                "b": b, "paper step": r["paper step"], "optimal step": r["optimal step"],
                "grid step p=2.4": s24, "grid step p=2": s20, "grid spacing": R / K_GRID / theory.n_levels(b),
                "MSE optimal": r["MSE optimal"],
                "MSE grid p=2.4": theory.expected_sq_error(s24, b, sigma),
                "MSE grid p=2": theory.expected_sq_error(s20, b, sigma),
                "MSE paper": r["MSE paper"],
            })
    finally:
        torch.set_num_threads(threads)
    gs = pd.DataFrame(rows)
    for col in GRID_METHODS:
        gs[f"excess {col} %"] = 100 * (gs[f"MSE {col}"] / gs["MSE optimal"] - 1)
    return gs, R


def grid_record(gs: pd.DataFrame, R: float) -> dict:
    """The chapter's record of :func:`grid_search_table`."""
    return dict(grid_search_range=R, grid_step_p24=by_bits(gs, "grid step p=2.4"),
                grid_step_p2=by_bits(gs, "grid step p=2"), grid_mse_p24=by_bits(gs, "MSE grid p=2.4"))


def grid_findings(gs: pd.DataFrame, R: float, sigma: float) -> str:
    """The sample range in sigma, then per b the four steps (in sigma) and the error excess over
    the optimum of both grid searches and of the paper's step."""
    lines = [f"sample range R = {R / sigma:.2f} sigma, K = {K_GRID} candidates"]
    lines += [f"b={r['b']}: grid step p=2.4 {r['grid step p=2.4'] / sigma:.4f}  p=2 {r['grid step p=2'] / sigma:.4f}"
              f"  optimal {r['optimal step'] / sigma:.4f}  paper {r['paper step'] / sigma:.4f} (sigma);"
              f"  MSE excess: grid p=2.4 {r['excess grid p=2.4 %']:.1f} %, p=2 {r['excess grid p=2 %']:.1f} %,"
              f" paper {r['excess paper %']:.1f} %" for r in gs.to_dict("records")]
    return "\n".join(lines)


def plot_grid_search(gs: pd.DataFrame):
    """Left: the paper's and both grid searches' steps over the MSE-optimal step against b.
    Right: their mean squared errors above the optimum (%, log scale)."""
    fig, (ax0, ax1) = plotting.figure(ncols=2, figsize=(7.6, 3.2), layout="constrained")
    styles = [("x-", plotting.COLORS["paper"]), ("o-", plotting.COLORS["lbw_renew"]), ("s--", plotting.COLORS["lbw"])]
    for col, (style, color) in zip(("paper step", "grid step p=2.4", "grid step p=2"), styles):
        ax0.plot(gs["b"], gs[col] / gs["optimal step"], style, color=color, label=col)
    ax0.axhline(1.0, color="k", ls=":", label="MSE-optimal")
    ax0.set_xlabel("bit width b")
    ax0.set_ylabel("step / MSE-optimal step")
    ax0.legend(fontsize=8)
    for col, (style, color) in zip(("paper", "grid p=2.4", "grid p=2"), styles):
        ax1.plot(gs["b"], np.maximum(gs[f"excess {col} %"], 1e-3), style, color=color, label=col)
    ax1.set_yscale("log")
    ax1.set_xlabel("bit width b")
    ax1.set_ylabel("MSE above the optimum (%)")
    return fig


# ------------------------------------------------------------------ section 8: paper against book
def paper_vs_book(prob: pd.DataFrame, errs: pd.DataFrame, dec: pd.DataFrame, opt: pd.DataFrame,
                  curves: dict, gs: pd.DataFrame, *, sigma: float, b_max: int, n: int, seed: int,
                  n_grid: int) -> pd.DataFrame:
    """One row per claim of the paper (the theorem's event, the lemma, the T-step formula, the
    drafted E(Err'), the "statistically optimal" step, renewal, the grid search): what the paper
    says, what this chapter's tables show, and the setting of the run."""
    setting = f"half-normal, sigma = {sigma:g}; 1 <= b' < b <= {b_max}; Monte Carlo n = {n:,}, seed {seed}"
    lemma = theory.lemma_bound()
    T_max = len(next(iter(curves.values()))["paper formula"])
    p_gap = prob["P paper"] - prob["P exact"]
    one_bit = int((prob["b'"] == prob["b"] - 1).sum())
    smaller = opt[opt["paper step"] < opt["optimal step"]]
    smaller_from = int(smaller["b"].iloc[0]) if len(smaller) else None
    worst_key, worst = max(curves.items(), key=lambda kv: abs(kv[1]["independent original"][-1]
                                                              - kv[1]["neuron original"][-1]))
    first = opt.iloc[0]
    return pd.DataFrame([
        {"claim": "error grows with probability P(x > (2^b'-1)/(2^b-1) 3 sigma)",
         "paper": "this is the probability that the error grows",
         "this book": (f"that event is x above the clip level; the error grows only above the rounding midpoint "
                       f"(2^b'-1/2) s_b; the paper's value is higher by {p_gap.min():.4f} to {p_gap.max():.4f}"),
         "setting": setting},
        {"claim": "lemma: P > 2(1 - Phi(1.5))",
         "paper": f"holds for b' <= b - 1 ({lemma:.4f})",
         "this book": (f"holds strictly for the paper's event (smallest {prob['P paper'].min():.4f}); for the exact "
                       f"event it holds with equality at b' = b - 1 ({one_bit} pairs)"),
         "setting": setting},
        {"claim": "over T steps: 1 - (1 - p)^T",
         "paper": "steps accumulate like independent trials",
         "this book": (f"the neuron re-adds the same x: at (b, b') = ({worst_key}), T = {T_max}, stale vs b-bit "
                       f"neuron gives {worst['neuron original'][-1]:.2f} against "
                       f"{worst['independent original'][-1]:.2f} for independent steps"),
         "setting": setting + f"; T = 1 .. {T_max}"},
        {"claim": "drafted E(Err') with the stale step",
         "paper": "expected error after the drop",
         "this book": (f"equals E[(Q_b - Q_b')^2] exactly (max difference {drafted_max_gap(dec):.1e}); misses the "
                       f"error before the drop and a cross term up to {dec['cross term'].abs().max():.4f}"),
         "setting": "closed form, checked by Monte Carlo"},
        {"claim": "3 sigma / (2^b - 1) is the statistically optimal step",
         "paper": "optimal step",
         "this book": (f"not MSE-optimal: at b = 1 the optimum is {first['optimal step'] / sigma:.4f} sigma, not "
                       f"3 sigma (paper step MSE +{first['paper excess %']:.0f} %); "
                       + (f"the paper step is below the optimum from b = {smaller_from} on" if smaller_from
                          else f"the paper step is above the optimum for every b <= {b_max}")),
         "setting": "closed form"},
        {"claim": "renewing the step after a bit drop lowers the error",
         "paper": "renewal helps",
         "this book": (f"renewing to the MSE-optimal step always helps (stale/optimal >= "
                       f"{errs['stale/optimal'].min():.2f}); renewing to the paper's step is worse than keeping "
                       f"the stale step at {pairs_text(paper_renewal_not_better(errs))}"),
         "setting": setting},
        {"claim": f"grid-search renewal (K = {K_GRID}, p = 2.4)",
         "paper": "Algorithm 1 finds the step",
         "this book": (f"MSE within {gs['excess grid p=2.4 %'].max():.1f} % of the optimum for b = 1 .. {b_max} "
                       f"(paper step: up to {gs['excess paper %'].max():.0f} %)"),
         "setting": f"{n_grid:,} half-normal samples, float32"},
    ])
