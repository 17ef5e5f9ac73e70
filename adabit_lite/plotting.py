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
