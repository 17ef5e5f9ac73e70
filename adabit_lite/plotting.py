"""One figure style and one way to save figures and tables (every chapter goes through here).

    fig, ax = plotting.figure()            # the book's style and size
    plotting.savefig(fig, "fig3_bits_per_epoch", fig_dir)   # PNG under fig_dir, name = paper's figure
    plotting.savetable(df, "table_ablation", fig_dir)       # CSV beside the figures
"""

from __future__ import annotations

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
# fixed decimals (never 1e+04), long text wrapped, inside a div that scrolls horizontally when the
# table is wider than the page (CSS: book/_static/adabit.css, class "adabit-table").
MISSING = "-"
WRAP_AT = 40  # text cells longer than this get the "wrap" class (wrapped at a readable width)


def _auto_decimals(values) -> int:
    """Decimals that show a float column's smallest non-zero magnitude to 2 significant digits
    (2 at least, 8 at most; 0 when every value is a whole number): fixed-point notation without
    losing small values."""
    import math

    small = [abs(v) for v in values if isinstance(v, float) and math.isfinite(v) and v != 0]
    if not small:
        return 2
    if all(float(v).is_integer() for v in small):
        return 0  # counts stored as floats (a column with a missing value)
    lead = -math.floor(math.log10(min(small)))  # 1 for 0.1..0.99, 3 for 0.001..
    return max(2, min(8, lead + 1))


def format_cell(value, decimals: int = 2) -> str:
    """One table cell as text: "-" for None/NaN/NaT, integers with thousands separators, floats with
    ``decimals`` fixed decimals (no scientific notation), tuples as AxB, everything else str()."""
    import math

    import numpy as np
    import pandas as pd

    if value is None or (not isinstance(value, (str, bytes, tuple, list)) and pd.isna(value)):
        return MISSING
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if not math.isfinite(value):
            return "inf" if value > 0 else "-inf"
        text = f"{value:,.{decimals}f}"
        return "0" if text.strip("-0.,") == "" and value == 0 else text
    if isinstance(value, (tuple, list)):
        return "x".join(format_cell(v, decimals) for v in value)
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
    col_dec = []
    for col in range(df.shape[1]):
        key = df.columns[col]
        if isinstance(decimals, dict):
            d = decimals.get(key)
        else:
            d = decimals
        col_dec.append(_auto_decimals(df.iloc[:, col].tolist()) if d is None else d)
    for values in df.itertuples(index=False, name=None):
        cells = []
        for value, d in zip(values, col_dec):
            text = format_cell(value, d)
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
    for two significant digits of its smallest value), ``units`` ({column: unit}) appended to the
    headers as "column (unit)", long text wrapped, and a horizontal scroll when too wide.
    Return it as a cell's last value or pass it to ``display``."""
    return Table(df, decimals, units)


def show_text(markdown: str):
    """A generated sentence (Markdown, may hold ``$...$`` math) as the book renders it."""
    from IPython.display import Markdown

    return Markdown(markdown)
