"""One figure style and one way to save figures and tables (every chapter goes through here).

    fig, ax = plotting.figure()            # the book's style and size
    plotting.savefig(fig, "fig3_bits_per_epoch", fig_dir)   # PNG under fig_dir, name = paper's figure
    plotting.savetable(df, "table_ablation", fig_dir)       # CSV beside the figures
    plotting.seed_comparison(ax, {"U-quant": accs_u, "LBW": accs_l})  # seeds, mean, 95 % CI
    plotting.annotated_heatmap(ax, grid)   # numbers white on dark cells, black on light ones
    plotting.label_points(ax, x, y, labels)  # point labels placed clear of every marker
    plotting.legend_below(fig)             # one legend under the panels, clear of the data

The drawing helpers draw on an axes made by :func:`figure` (the book's one style, ``STYLE``);
the first two with seaborn.  ``show_table``, ``show_folded`` and ``show_text`` render tables,
folded details and generated sentences as the book shows them.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib.pyplot as plt

STYLE = {
    "figure.figsize": (6.4, 3.6), "figure.dpi": 110, "savefig.dpi": 130, "savefig.bbox": "tight",
    "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False,
    "font.size": 10, "axes.titlesize": 11, "legend.frameon": False, "svg.hashsalt": "adabit",
}
COLORS = {"paper": "#7f7f7f", "uquant": "#d62728", "lbw": "#1f77b4", "lbw_renew": "#2ca02c",
          "control": "#9467bd", "fp": "#000000"}


def apply_style() -> None:
    plt.rcParams.update(STYLE)


def figure(ncols: int = 1, nrows: int = 1, **kwargs):
    """A new figure in the book's style: returns (fig, axes)."""
    apply_style()
    if ncols * nrows > 1 and "figsize" not in kwargs:
        kwargs["figsize"] = (3.4 * ncols, 3.0 * nrows)
    return plt.subplots(nrows, ncols, **kwargs)


def t_interval(values, level: float = 0.95) -> tuple[float, float]:
    """The ``level`` confidence interval of the mean of ``values`` (Student's t, n - 1 degrees of
    freedom): (low, high); (mean, mean) for a single value."""
    import numpy as np
    from scipy import stats

    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return (float("nan"), float("nan"))
    mean = float(v.mean())
    if v.size < 2:
        return (mean, mean)
    half = float(stats.t.ppf(0.5 + level / 2, v.size - 1) * v.std(ddof=1) / np.sqrt(v.size))
    return (mean - half, mean + half)


def seed_comparison(ax, groups, order=None, palette=None, *, level: float = 0.95, jitter: float = 0.15,
                    size: float = 4.5, value_label: str | None = None, seed: int = 0):
    """Groups of runs over seeds, one row per group (``ax``'s y axis): every seed as a point
    (a jittered strip), and the mean with its ``level`` confidence interval (Student's t,
    :func:`t_interval`) as a black bar with whiskers drawn over them.

    ``groups``: {name: values}, one value per seed (a group may be empty: its row stays blank).
    ``order``: the rows, top to bottom (default: the dict's order); ``palette``: {name: colour} or
    one colour for all (default: the book's LBW colour).  ``seed`` fixes the jitter.  Returns
    ``ax``."""
    import numpy as np
    import pandas as pd
    import seaborn as sns

    apply_style()
    order = list(groups) if order is None else list(order)
    long = pd.DataFrame([(name, float(v)) for name in order for v in groups.get(name, [])],
                        columns=["group", "value"])
    if isinstance(palette, dict):
        colours = {n: palette.get(n, COLORS["lbw"]) for n in order}
    else:
        colours = {n: palette or COLORS["lbw"] for n in order}
    state = np.random.get_state()  # seaborn's strip jitter draws from numpy's global generator
    np.random.seed(seed)
    try:
        sns.stripplot(data=long, x="value", y="group", order=order, hue="group", hue_order=order,
                      palette=colours, jitter=jitter, size=size, alpha=0.75, linewidth=0,
                      legend=False, ax=ax)
    finally:
        np.random.set_state(state)
    sns.pointplot(data=long, x="value", y="group", order=order, estimator="mean",
                  errorbar=lambda v: t_interval(v, level), color="black", markers="|",
                  markersize=12, linestyle="none", capsize=0.25, err_kws={"linewidth": 1.3},
                  ax=ax)
    ax.set_ylabel("")
    ax.set_xlabel(value_label or f"value: points = seeds, bar = mean with {100 * level:g} % CI")
    ax.grid(True, axis="x")
    ax.grid(False, axis="y")
    return ax


def annotated_heatmap(ax, grid, color_values=None, *, fmt: str = ".2f", cmap: str = "RdBu_r",
                      center: float | None = None, vmin: float | None = None, vmax: float | None = None,
                      cbar_label: str | None = None, cbar: bool = True, annot_size: float | None = None,
                      cbar_ax=None):
    """A heatmap of ``grid`` (a DataFrame: its index labels the rows, top to bottom, its columns
    the columns) with every finite cell's value written in it, in white on dark cells and near
    black on light ones (seaborn picks the colour from the cell's luminance, so the numbers keep
    their contrast).  ``color_values`` (same shape; default ``grid``) sets the colours, e.g. a
    log ratio while the cells print the ratio.  Missing (NaN) cells stay blank.  Returns ``ax``."""
    import numpy as np
    import pandas as pd
    import seaborn as sns

    apply_style()
    colours = np.asarray(grid if color_values is None else color_values, dtype=float)
    with warnings.catch_warnings():  # seaborn 0.13 calls cmap.set_bad, which matplotlib 3.11 deprecates
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        sns.heatmap(pd.DataFrame(colours, index=grid.index, columns=grid.columns),
                    annot=np.asarray(grid, dtype=float), fmt=fmt, cmap=cmap, center=center, vmin=vmin, vmax=vmax, cbar=cbar, cbar_ax=cbar_ax,
                    cbar_kws={"label": cbar_label} if cbar and cbar_label else None,
                    mask=~np.isfinite(colours), annot_kws={"fontsize": annot_size} if annot_size else {},
                    linewidths=0.5, linecolor="white", ax=ax)
    ax.grid(False)
    ax.tick_params(length=0)
    ax.set_yticklabels(ax.get_yticklabels(), rotation=0)
    return ax


# directions tried for a point's label, in order: right, left, above, below, then the diagonals
_LABEL_DIRECTIONS = ((1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, 1), (1, -1), (-1, -1))


def label_points(ax, x, y, labels, colors=None, *, fontsize: float | None = None,
                 distances=(5, 10, 16, 24), pad: float = 1.0, leader_from: float = 12, avoid=()):
    """Write ``labels`` beside the points (``x``, ``y``) of ``ax`` where they cover no marker of
    the axes (every scatter point drawn so far), no other label and stay inside the axes.

    For each point in turn, the label is tried to the right, left, above and below of it and on the
    diagonals, at each of ``distances`` (points) from it; the first place that is free wins, or,
    where none is, the one that covers the least.  Labels placed ``leader_from`` points or farther
    from their point get a thin line to it.  ``avoid``: other artists the labels keep clear of
    (a legend).  Draw the markers first, and call this after the axis limits and scales are set.
    Returns the annotations, in the order of ``labels``."""
    import numpy as np

    fig = ax.figure
    fig.canvas.draw()  # the layout and the axes' final transform
    renderer = fig.canvas.get_renderer()
    px = fig.dpi / 72.0
    boxes = []  # (x0, y0, x1, y1) in display pixels that labels must not cover
    for coll in ax.collections:
        offsets = np.asarray(coll.get_offsets(), dtype=float)
        if offsets.size == 0:
            continue
        sizes = np.asarray(coll.get_sizes(), dtype=float)
        sizes = np.broadcast_to(sizes if sizes.size else np.array([36.0]), (len(offsets),))
        for (dx, dy), size in zip(coll.get_offset_transform().transform(offsets), sizes):
            r = np.sqrt(size) / 2 * px + pad
            boxes.append((dx - r, dy - r, dx + r, dy + r))
    for artist in avoid:
        e = artist.get_window_extent(renderer)
        boxes.append((e.x0, e.y0, e.x1, e.y1))
    frame = ax.get_window_extent(renderer)
    colors = [None] * len(labels) if colors is None else list(colors)
    fontsize = fontsize or plt.rcParams["font.size"] * 0.7

    def covered(b):
        total = 0.0
        for o in boxes:
            w = min(b[2], o[2]) - max(b[0], o[0])
            h = min(b[3], o[3]) - max(b[1], o[1])
            if w > 0 and h > 0:
                total += w * h
        outside = (max(0.0, frame.x0 - b[0]) + max(0.0, b[2] - frame.x1)) * (b[3] - b[1]) + \
                  (max(0.0, frame.y0 - b[1]) + max(0.0, b[3] - frame.y1)) * (b[2] - b[0])
        return total + 10 * outside

    out = []
    for xi, yi, text, color in zip(x, y, labels, colors):
        best = None
        for d in distances:
            for ux, uy in _LABEL_DIRECTIONS:
                norm = np.hypot(ux, uy)
                off = (d * ux / norm, d * uy / norm)
                ann = ax.annotate(str(text), (xi, yi), xytext=off, textcoords="offset points",
                                  ha="left" if ux > 0 else "right" if ux < 0 else "center",
                                  va="bottom" if uy > 0 else "top" if uy < 0 else "center",
                                  fontsize=fontsize, color=color)
                e = ann.get_window_extent(renderer)
                box = (e.x0 - pad, e.y0 - pad, e.x1 + pad, e.y1 + pad)
                cost = covered(box)
                if best is None or cost < best[0]:
                    if best is not None:
                        best[1].remove()
                    best = (cost, ann, box, d)
                else:
                    ann.remove()
                if cost == 0:
                    break
            if best[0] == 0:
                break
        _, ann, box, d = best
        if d >= leader_from:
            ann.remove()
            ann = ax.annotate(str(text), (xi, yi), xytext=ann.xyann, textcoords="offset points",
                              ha=ann.get_ha(), va=ann.get_va(), fontsize=fontsize, color=color,
                              arrowprops=dict(arrowstyle="-", lw=0.5, color=color or "0.4",
                                              shrinkA=0, shrinkB=3))
        boxes.append(box)
        out.append(ann)
    return out


def legend_below(where, handles=None, labels=None, *, ncol: int | None = None, fontsize: float = 8,
                 title: str | None = None, pad: float = 4.0):
    """A legend under the axes, where it covers no data (a legend inside a panel covers lines or
    markers as soon as the data fill the panel).

    ``where``: a Figure (one legend for all its panels, centred under them) or one Axes (a legend
    under that panel only, for panels whose entries differ).  ``handles``/``labels``: default, the
    labelled artists of the panel(s), each label once in the order first drawn.  Legends already
    drawn on those panels are removed.  ``ncol``: default, as many columns as fit the figure's
    width (a Figure) or the panel's (an Axes), the rows then filled evenly.  ``pad``: points
    between the lowest tick or axis label and the legend.  A figure with ``layout="constrained"``
    keeps the legend inside itself (room is made below the panels); otherwise the legend hangs
    below the figure's edge and ``savefig`` (bbox "tight") takes it in.  Returns the legend, or
    None when there is nothing to show."""
    from matplotlib.axes import Axes
    from matplotlib.layout_engine import ConstrainedLayoutEngine
    from matplotlib.transforms import ScaledTranslation

    if isinstance(where, Axes):
        fig, axes = where.figure, [where]
    else:
        fig, axes = where, [ax for ax in where.axes if ax.get_label() != "<colorbar>"]
    if handles is None:
        seen = {}
        for ax in axes:
            for handle, label in zip(*ax.get_legend_handles_labels()):
                seen.setdefault(label, handle)
        handles, labels = list(seen.values()), list(seen)
    elif labels is None:
        labels = [h.get_label() for h in handles]
    for ax in axes:
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    if not handles:
        return None
    constrained = isinstance(fig.get_layout_engine(), ConstrainedLayoutEngine)
    fig.canvas.draw()  # final tick labels and, under constrained layout, final positions
    renderer = fig.canvas.get_renderer()
    options = dict(fontsize=fontsize, title=title, title_fontsize=fontsize)

    if isinstance(where, Axes):
        ax = where
        # from the axes' bottom edge down past its tick and axis labels, in inches (so that the
        # gap survives constrained layout resizing the panel)
        below = (ax.get_window_extent(renderer).y0
                 - ax.get_tightbbox(renderer, bbox_extra_artists=[]).y0) / fig.dpi + pad / 72
        anchor = ax.transAxes + ScaledTranslation(0, -below, fig.dpi_scale_trans)
        width = ax.get_tightbbox(renderer, bbox_extra_artists=[]).width

        def make(n):
            return ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0),
                             bbox_transform=anchor, ncol=n, **options)
    else:
        width = fig.bbox.width
        if constrained:
            def make(n):
                return fig.legend(handles, labels, loc="outside lower center", ncol=n, **options)
        else:
            boxes = [ax.get_tightbbox(renderer, bbox_extra_artists=[]) for ax in axes]
            frames = [ax.get_window_extent(renderer) for ax in axes]
            to_fig = fig.transFigure.inverted()
            x = to_fig.transform(((min(f.x0 for f in frames) + max(f.x1 for f in frames)) / 2, 0))[0]
            y = to_fig.transform((0, min(b.y0 for b in boxes) - pad * fig.dpi / 72))[1]

            def make(n):
                return fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(x, y),
                                  bbox_transform=fig.transFigure, ncol=n, **options)

    n = ncol or len(handles)
    legend = make(n)
    while ncol is None and n > 1 and legend.get_window_extent(renderer).width > width:
        legend.remove()
        n -= 1
        legend = make(n)
    balanced = -(-len(handles) // -(-len(handles) // n))  # as many rows, filled evenly: 3 + 3, not 5 + 1
    if ncol is None and balanced < n:
        legend.remove()
        legend = make(balanced)
    return legend


def savefig(fig, name: str, fig_dir: str | Path = "_build/figures") -> Path:
    """Save ``fig`` as fig_dir/name.png and return the path."""
    path = Path(fig_dir) / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def savetable(df, name: str, fig_dir: str | Path = "_build/figures") -> Path:
    """Save a pandas DataFrame as fig_dir/name.csv and return the path."""
    path = Path(fig_dir) / f"{name}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False)
    return path


# --- tables and generated text in the book ------------------------------------------------------
# show_table renders a DataFrame as the book shows every table: no index, "-" for missing values,
# fixed decimals (never 1e+04), one format per column (a zero beside 0.25 is 0.00), shapes as
# 32x14x14 and other sequences as "a, b, c", long text wrapped, inside a div that scrolls horizontally when the
# table is wider than the page (CSS: book/_static/adabit.css, class "adabit-table").  Two
# exceptions to fixed decimals: p-value columns (:func:`is_p_column`) are written as the book's
# sentences write p-values (:func:`format_p`), and a column of tiny values, or of values too far
# apart for one fixed format (:func:`_is_scientific`), in scientific notation ("1.2e-05").
MISSING = "-"
WRAP_AT = 40  # text cells longer than this get the "wrap" class (wrapped at a readable width)
#: automatic decimals (:func:`_is_scientific`): a column goes scientific when all its non-zero
#: magnitudes are below SCIENTIFIC_BELOW, or its smallest is below SCIENTIFIC_SMALLEST, or its
#: smallest is below SCIENTIFIC_BELOW and its largest more than SCIENTIFIC_SPAN times larger
SCIENTIFIC_BELOW = 1e-3
SCIENTIFIC_SMALLEST = 1e-4  # fixed point would need 6 or more decimals: "0.0000169"
SCIENTIFIC_SPAN = 1e4  # 0.64832 beside 0.00060 (1080 times) stays fixed point, like its neighbours
#: the headers of p-value columns: exactly "p", or starting with one of P_STARTS, or holding "Holm"
P_STARTS = ("p vs ", "p (", "p-value", "Welch p")


def _floats(values) -> list[float]:
    """The finite floats among ``values``, those inside lists and tuples included (a cell that
    holds a sequence of values is formatted like a cell that holds one)."""
    import math

    import numpy as np

    out = []
    for v in values:
        if isinstance(v, (list, tuple)):
            out += _floats(v)
        elif isinstance(v, (float, np.floating)) and math.isfinite(v):
            out.append(float(v))
    return out


def is_p_column(name) -> bool:
    """Whether a column holds p-values, by its header (the header as shown, a tuple's parts joined
    by spaces): "p", or starting with "p vs ", "p (", "p-value" or "Welch p", or holding "Holm"
    ("p vs U-quant", "p (Holm)").  Case matters: "P exact" (a probability) is no p-value, nor is
    "MSE grid p=2" (an exponent)."""
    name = " ".join(str(c) for c in name if str(c)) if isinstance(name, tuple) else str(name)
    return name == "p" or name.startswith(P_STARTS) or "Holm" in name


def format_p(value) -> str:
    """A p-value in a table cell as the book's sentences write it (``reproduce.p_text`` without its
    "p "): "< 0.001" below 0.001, else 3 decimals ("0.015"); "-" for None/NaN.  Anything that is
    not a number (a "best" in a p column) is formatted as :func:`format_cell` does."""
    import numpy as np

    from .reproduce import p_text

    if isinstance(value, (float, np.floating, int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        if np.isnan(float(value)):
            return MISSING
        text = p_text(float(value))  # "p < 0.001" or "p = 0.015"
        return text.removeprefix("p = ").removeprefix("p ")
    return format_cell(value)


def _is_scientific(values) -> bool:
    """Whether a float column is written in scientific notation by automatic decimals (2 significant
    digits, "1.2e-05"), judged on its non-zero magnitudes: all below ``SCIENTIFIC_BELOW`` (1e-3:
    "0.00047" is "4.7e-04"), or the smallest below ``SCIENTIFIC_SMALLEST`` (1e-4: fixed point would
    need 6 or more decimals, "0.0000169" and "0.0692790" beside it), or the smallest below 1e-3
    and the largest more than ``SCIENTIFIC_SPAN`` (1e4) times larger ("0.00050" beside
    "24.88500").  Columns whose smallest value is 0.001 or more keep fixed point, however wide
    their range (0.17 s beside 289.34 s), and so do columns of 0.00031 to 0.19 (5 decimals)."""
    small = [abs(v) for v in _floats(values) if v != 0]
    if not small or all(float(v).is_integer() for v in small):
        return False
    low, high = min(small), max(small)
    return low < SCIENTIFIC_SMALLEST or \
        low < SCIENTIFIC_BELOW and (high < SCIENTIFIC_BELOW or high > SCIENTIFIC_SPAN * low)


def _auto_decimals(values) -> int:
    """Decimals that show a float column's smallest non-zero magnitude to 2 significant digits
    (2 at least, 8 at most; 0 when every value is a whole number): fixed-point notation without
    losing small values."""
    import math

    small = [abs(v) for v in _floats(values) if v != 0]
    if not small:
        return 2
    if all(float(v).is_integer() for v in small):
        return 0  # counts stored as floats (a column with a missing value)
    lead = -math.floor(math.log10(min(small)))  # 1 for 0.1..0.99, 3 for 0.001..
    return max(2, min(8, lead + 1))


def _is_int(v) -> bool:
    import numpy as np

    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def is_shape(value) -> bool:
    """Whether ``value`` is a tensor shape: a non-empty tuple of integers (``tuple(x.shape)``,
    ``torch.Size``).  Lists, and tuples that hold anything else, are sequences of values."""
    return isinstance(value, tuple) and len(value) > 0 and all(_is_int(v) for v in value)


def format_cell(value, decimals: int = 2, *, bare_zero: bool = True, scientific: bool = False) -> str:
    """One table cell as text: "-" for None/NaN/NaT, integers with thousands separators, floats with
    ``decimals`` fixed decimals (no scientific notation), a shape (:func:`is_shape`, a tuple of
    integers) as AxBxC, any other list, tuple or array as its values joined by ", " (each formatted
    as a cell: per-epoch accuracies "50.0, 88.8, 100.0"), everything else str().  An exact zero is
    "0" when ``bare_zero`` (a column of zeros), else written with ``decimals`` like its column's
    other values ("0.00").  ``scientific``: floats in scientific notation with 2 significant digits
    ("1.2e-05", ``decimals`` unused), an exact zero "0"."""
    import math

    import numpy as np
    import pandas as pd

    if value is None or (not isinstance(value, (str, bytes, tuple, list, np.ndarray)) and pd.isna(value)):
        return MISSING
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if _is_int(value):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if not math.isfinite(value):
            return "inf" if value > 0 else "-inf"
        if value == 0:
            return "0" if bare_zero or scientific else f"{0.0:.{decimals}f}"  # never "-0.00"
        return f"{value:.1e}" if scientific else f"{value:,.{decimals}f}"
    if is_shape(value):
        return "x".join(str(int(v)) for v in value)
    if isinstance(value, np.ndarray):
        value = value.ravel().tolist()
    if isinstance(value, (tuple, list)):
        return ", ".join(format_cell(v, decimals, bare_zero=bare_zero, scientific=scientific)
                         for v in value) or MISSING
    return str(value)


def table_html(df, decimals: int | dict | None = None, units: dict | None = None) -> str:
    """The HTML of :func:`show_table` (a string)."""
    import html

    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        df = pd.DataFrame(df)
    unnamed = all(n is None for n in df.index.names)
    if unnamed and pd.api.types.is_integer_dtype(df.index):
        df = df.reset_index(drop=True)  # a row number is no information
    elif not (unnamed and isinstance(df.index, pd.RangeIndex)):
        df = df.reset_index()  # row labels (a named index, or the rows of a transposed table)
        if unnamed:
            df = df.rename(columns={"index": ""})
    units = units or {}
    head, rows = [], []
    for col in df.columns:
        name = " ".join(str(c) for c in col if str(c)) if isinstance(col, tuple) else str(col)
        unit = units.get(col, units.get(name))
        head.append(html.escape(f"{name} ({unit})" if unit else name))
    col_dec, sci, p_col = [], [], []
    for col in range(df.shape[1]):
        key = df.columns[col]
        if isinstance(decimals, dict):
            d = decimals.get(key)
        else:
            d = decimals
        values = df.iloc[:, col].tolist()
        col_dec.append(_auto_decimals(values) if d is None else d)
        sci.append(d is None and _is_scientific(values))  # explicit decimals stay fixed point
        p_col.append(is_p_column(key))  # p-values: always as the book writes them
    # a zero is "0" only in a column of zeros; beside other values it takes their decimals
    bare = [not any(v != 0 for v in _floats(df.iloc[:, col].tolist())) for col in range(df.shape[1])]
    for values in df.itertuples(index=False, name=None):
        cells = []
        for value, d, bare_zero, scientific, is_p in zip(values, col_dec, bare, sci, p_col):
            text = format_p(value) if is_p else \
                format_cell(value, d, bare_zero=bare_zero, scientific=scientific)
            numeric = isinstance(value, (int, float)) and not isinstance(value, bool) or \
                type(value).__module__ == "numpy" and not isinstance(value, str)
            cls = "num" if numeric else ("wrap" if len(text) > WRAP_AT else "")
            cells.append(f'<td class="{cls}">{html.escape(text)}</td>' if cls else f"<td>{html.escape(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return ('<div class="adabit-table" style="overflow-x: auto; max-width: 100%;">'
            '<table class="adabit-table">'
            "<thead><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr></thead>"
            "<tbody>" + "".join(rows) + "</tbody></table></div>")


class Table:
    """A DataFrame shown as the book's HTML table (``_repr_html_``) with a plain-text twin."""

    def __init__(self, df, decimals=None, units=None):
        self.html = table_html(df, decimals, units)
        self._text = df.to_string(index=False, na_rep=MISSING) if hasattr(df, "to_string") else str(df)

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return self._text


def show_table(df, decimals: int | dict | None = None, units: dict | None = None) -> Table:
    """A DataFrame as the book shows tables: no index (a named index becomes columns), "-" for
    NaN/None, ``decimals`` fixed decimals (an int, a dict per column, or None: per column, enough
    for two significant digits of its smallest value; a column of values all below 0.001, or with
    one below 0.0001, or with values below 0.001 beside ones over 10,000 times larger, in
    scientific notation "1.2e-05": :func:`_is_scientific`),
    p-value columns (:func:`is_p_column`) as the book writes p-values ("< 0.001", "0.015"; whatever
    ``decimals`` says), ``units`` ({column: unit}) appended to the
    headers as "column (unit)", long text wrapped, and a horizontal scroll when too wide.
    Return it as a cell's last value or pass it to ``display``."""
    return Table(df, decimals, units)


class Folded:
    """HTML shown folded (``<details>``) under a one-line ``summary`` the reader clicks to open."""

    def __init__(self, summary: str, content):
        import html

        import pandas as pd

        if isinstance(content, pd.DataFrame):
            inner = table_html(content)  # the book's table, not pandas' own HTML
        else:
            inner = content if isinstance(content, str) else content._repr_html_()
        self.html = (f'<details class="adabit-folded"><summary>{html.escape(summary)}</summary>'
                     f"{inner}</details>")
        self._text = f"{summary}\n{content!r}"

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return self._text


def show_folded(summary: str, content) -> Folded:
    """``content`` (a :func:`show_table` table, a DataFrame, or an HTML string) folded under the
    one-line ``summary``: the page shows the summary, a click shows the rest.  For details that
    back up a figure or a short table (each result is shown once, the rest on demand)."""
    return Folded(summary, content)


def show_text(markdown: str):
    """A generated sentence (Markdown, may hold ``$...$`` math) as the book renders it."""
    from IPython.display import Markdown

    return Markdown(markdown)
