"""The book's display helpers (adabit_lite.plotting.show_table / show_text)."""

import math

import numpy as np
import pandas as pd
import pytest

from adabit_lite import plotting


def _cells(html):
    import re
    return re.findall(r"<td[^>]*>(.*?)</td>", html)


def test_show_table_has_no_index_dash_for_missing_and_fixed_decimals():
    df = pd.DataFrame({"method": ["LBW", "U-quant"], "acc": [91.234, np.nan], "n": [3, 4],
                       "other": [None, 14660.0]}, index=[7, 9])
    html = plotting.show_table(df, decimals=2, units={"acc": "%"})._repr_html_()
    assert _cells(html) == ["LBW", "91.23", "3", "-", "U-quant", "-", "4", "14,660.00"]
    assert "acc (%)" in html and "NaN" not in html and "None" not in html
    assert ">7<" not in html and ">9<" not in html  # the index is not shown
    assert 'overflow-x: auto' in html


def test_show_table_uses_fixed_point_for_ordinary_and_large_values():
    # no value below 0.001: fixed point, however wide the range (0.17 s beside 289.34 s)
    df = pd.DataFrame({"huge": [1.466e4, 3.2e9], "seconds": [0.17, 289.34], "acc": [0.0012, 0.5]})
    html = plotting.show_table(df)._repr_html_()
    assert "e+" not in html and "e-" not in html
    assert _cells(html) == ["14,660", "0.17", "0.0012", "3,200,000,000", "289.34", "0.5000"]


def test_show_table_writes_tiny_or_far_apart_values_in_scientific_notation():
    df = pd.DataFrame({
        # every non-zero magnitude below 0.001: 2 significant digits, an exact zero (signed or
        # not) "0", values inside lists alike
        "tiny": [7.9e-06, 8.0e-05, 0.0, -0.0],
        # a value below 0.0001 beside larger ones (fixed point: "0.0000079" and "0.0692790")
        "R": [0.0692790, 0.0000079, 0.0839565, 0.0],
        # below 0.001 (not 0.0001) beside a value over 10,000 times larger (24.885 / 0.0005 = 49770)
        "span": [0.0005, 24.885, 1.0, 0.0],
        # 0.0006 and 0.64832 are only 1080 times apart: fixed point, 2 significant digits of 0.0006
        "near": [0.0006, 0.64832, 0.1, 0.0],
        "lists": [[1.2e-05, -3.456e-04], [0.0, 5e-07], [9.99e-04], []],
    })
    assert _cells(plotting.show_table(df)._repr_html_()) == [
        "7.9e-06", "6.9e-02", "5.0e-04", "0.00060", "1.2e-05, -3.5e-04",
        "8.0e-05", "7.9e-06", "2.5e+01", "0.64832", "0, 5.0e-07",
        "0", "8.4e-02", "1.0e+00", "0.10000", "1.0e-03",
        "0", "0", "0", "0.00000", "-"]
    # below 0.0001 beside values only 169 times larger (fixed point: "0.0000169" and "0.0028600")
    mse = pd.DataFrame({"MSE before": [1.69e-05, 0.00286, 0.0005, 0.0]})
    assert _cells(plotting.show_table(mse)._repr_html_()) == ["1.7e-05", "2.9e-03", "5.0e-04", "0"]
    # the edges: 0.0001 itself, and a span of exactly 10,000, stay fixed point
    edges = pd.DataFrame({"smallest": [0.0001, 0.5], "span": [0.0005, 5.0]})
    assert _cells(plotting.show_table(edges)._repr_html_()) == ["0.00010", "0.00050", "0.50000", "5.00000"]
    # explicit decimals keep fixed point
    assert _cells(plotting.show_table(df[["tiny"]], decimals=6)._repr_html_()) == [
        "0.000008", "0.000080", "0.000000", "0.000000"]
    assert _cells(plotting.show_table(df[["tiny", "R"]], decimals={"R": 3})._repr_html_())[:4] == [
        "7.9e-06", "0.069", "8.0e-05", "0.000"]
    assert plotting.format_cell(1.23e-05, 2, scientific=True) == "1.2e-05"
    assert plotting.format_cell(-0.0, 2, bare_zero=False, scientific=True) == "0"


def test_p_columns_are_written_as_the_book_writes_p_values():
    names = ["p", "p vs U-quant", "p vs LBW + renewal", "p (Holm)", "Welch p", "p-value",
             "Holm-adjusted p", ("p vs", "default")]
    not_p = ["P exact", "paper 1-(1-p)^T", "MSE grid p=2", "p=2", "spike levels", "ps", "step",
             "paper", "P(L(T+1) < L(T))"]
    assert all(plotting.is_p_column(n) for n in names)
    assert not any(plotting.is_p_column(n) for n in not_p)
    # "< 0.001" below 0.001, else 3 decimals, "-" for NaN, whatever the column's decimals
    df = pd.DataFrame({"method": ["a", "b", "c", "d", "e", "f"],
                       "p vs U-quant": [np.nan, 0.000259, 0.009911, 0.059139, 0.000013, 0.001],
                       "p (Holm)": [0.1938, 0.0154, 0.025, 1.0, 0.0004999, 0.72698],
                       "P exact": [0.1938, 0.0154, 0.025, 1.0, 0.0015, 0.72698]})
    for decimals in (None, 5, {"p (Holm)": 1}):
        cells = _cells(plotting.show_table(df, decimals=decimals)._repr_html_())
        assert cells[1::4] == ["-", "&lt; 0.001", "0.010", "0.059", "&lt; 0.001", "0.001"]
        assert cells[2::4] == ["0.194", "0.015", "0.025", "1.000", "&lt; 0.001", "0.727"]
    # a probability column is no p column: automatic decimals (2 significant digits of 0.0015)
    assert _cells(plotting.show_table(df)._repr_html_())[3::4] == [
        "0.1938", "0.0154", "0.0250", "1.0000", "0.0015", "0.7270"]
    # the same words as the book's sentences (reproduce.p_text without its "p ")
    from adabit_lite.reproduce import p_text
    assert [plotting.format_p(p) for p in (0.000259, 0.0009999, 0.001, 0.0154, 0.5)] == [
        "< 0.001", "< 0.001", "0.001", "0.015", "0.500"]
    for p in (0.000259, 0.0154, 0.5, 0.0009999, 0.001):
        text = plotting.format_p(p)
        assert p_text(p) == ("p " if text.startswith("<") else "p = ") + text
    assert plotting.format_p(np.float32(0.25)) == "0.250" and plotting.format_p(None) == "-"
    assert plotting.format_p("best") == "best"


def test_show_table_named_index_becomes_columns_and_long_text_wraps():
    df = pd.DataFrame({"T": [1, 2], "x": [0.5, 1.5], "note": ["a" * 80, "b"]}).set_index("T")
    html = plotting.show_table(df, decimals={"x": 1})._repr_html_()
    assert "<th>T</th>" in html and _cells(html)[:2] == ["1", "0.5"]
    assert 'class="wrap"' in html and "..." not in html and "a" * 80 in html


def test_format_cell():
    assert plotting.format_cell(float("nan")) == "-"
    assert plotting.format_cell(None) == "-"
    assert plotting.format_cell((28, 28)) == "28x28"
    assert plotting.format_cell(math.pi, 3) == "3.142"
    assert plotting.format_cell(True) == "yes"


def test_format_cell_writes_shapes_as_AxB_and_other_sequences_as_values():
    import torch

    # a shape is a tuple of integers (tuple(x.shape), torch.Size): no thousands separators
    assert plotting.format_cell((64, 32, 14, 14)) == "64x32x14x14"
    assert plotting.format_cell(torch.zeros(2, 1024, 3).shape) == "2x1024x3"
    assert plotting.format_cell((np.int64(8), 2)) == "8x2"
    # lists are values, never a shape: per-epoch accuracies, load averages (1, 5, 15 minutes)
    assert plotting.format_cell([50.0, 88.8, 100.0], 1) == "50.0, 88.8, 100.0"
    assert plotting.format_cell([0.23, 0.73, 0.97]) == "0.23, 0.73, 0.97"
    assert plotting.format_cell([3, 4]) == "3, 4"
    assert plotting.format_cell([1.0, float("nan")], 1) == "1.0, -"
    # a tuple that holds anything but integers is values too
    assert plotting.format_cell((1.5, 2.0)) == "1.50, 2.00"
    assert plotting.format_cell(("a", 2)) == "a, 2"
    assert plotting.format_cell(np.array([0.5, 1.25])) == "0.50, 1.25"
    assert plotting.format_cell([]) == plotting.format_cell(()) == "-"
    assert plotting.is_shape((3, 4)) and not plotting.is_shape([3, 4]) and not plotting.is_shape((True, 2))


def test_show_table_writes_sequence_columns_with_their_values_decimals():
    df = pd.DataFrame({"run": ["frames", "average"], "per epoch": [[50.0, 88.8, 100.0], [50.0, 50.0, 50.0]],
                       "shape": [(8, 2, 16, 16), (8, 2, 16, 16)]})
    assert _cells(plotting.show_table(df, decimals=1)._repr_html_()) == [
        "frames", "50.0, 88.8, 100.0", "8x2x16x16", "average", "50.0, 50.0, 50.0", "8x2x16x16"]
    # automatic decimals look into the lists: 0.0042 needs 4 decimals for two significant digits
    html = plotting.show_table(pd.DataFrame({"x": [[0.0042, 1.5]]}))._repr_html_()
    assert _cells(html) == ["0.0042, 1.5000"]


def test_show_table_gives_a_zero_its_columns_decimals():
    df = pd.DataFrame({"std": [8.02, 0.0, 0.22], "zeros": [0.0, 0.0, 0.0], "n": [1, 0, 2],
                       "tiny": [6e-08, 0.0, -0.0]})
    cells = _cells(plotting.show_table(df)._repr_html_())
    # std: 2 decimals for all three; a column of zeros keeps "0"; integers stay integers;
    # tiny (below 0.001): scientific notation, an exact zero, negative or not, "0"
    assert cells == ["8.02", "0", "1", "6.0e-08",
                     "0.00", "0", "0", "0",
                     "0.22", "0", "2", "0"]
    assert plotting.format_cell(0.0, 2) == "0"  # alone, a zero is "0"
    assert plotting.format_cell(-0.0, 1, bare_zero=False) == "0.0"


def test_show_text_keeps_math_for_the_book():
    md = plotting.show_text("At $T = 8$ the error is $1/(2T)$.")
    assert md._repr_markdown_() == "At $T = 8$ the error is $1/(2T)$."


def test_show_table_keeps_row_labels_of_a_transposed_table():
    df = pd.DataFrame({"target": ["1/1/1", "2/2/1"], "acc": [90.0, 91.5]}).set_index("target").T
    html = plotting.show_table(df, decimals=1)._repr_html_()
    assert _cells(html) == ["acc", "90.0", "91.5"] and "<th>1/1/1</th>" in html


# ---------------------------------------------------------------- the seaborn figure helpers
def test_seed_comparison_draws_one_point_per_seed_and_the_t_interval_of_the_mean():
    from scipy import stats

    groups = {"U-quant": [92.1, 93.0, 91.5, 92.8, 92.4], "LBW": [94.0, 94.5, 93.9], "not run": []}
    fig, ax = plotting.figure()
    plotting.seed_comparison(ax, groups, palette={"U-quant": plotting.COLORS["uquant"]})
    strips = [c.get_offsets() for c in ax.collections]
    assert [len(s) for s in strips] == [5, 3, 0]  # one point per seed, in the given order
    for s, (name, values) in zip(strips, groups.items()):
        if values:
            assert sorted(np.asarray(s)[:, 0]) == pytest.approx(sorted(values))  # x = the values
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == list(groups)  # the empty group keeps its row
    # the mean marker and the whiskers: Student's t interval, not a bootstrap
    means = ax.lines[0]
    assert list(means.get_xdata()) == pytest.approx([np.mean(v) for v in list(groups.values())[:2]])
    for line, values in zip(ax.lines[1:], list(groups.values())[:2]):
        x = np.asarray(line.get_xdata(), dtype=float)
        half = stats.t.ppf(0.975, len(values) - 1) * np.std(values, ddof=1) / np.sqrt(len(values))
        assert np.nanmin(x) == pytest.approx(np.mean(values) - half)
        assert np.nanmax(x) == pytest.approx(np.mean(values) + half)
    import matplotlib.pyplot as plt
    plt.close(fig)


def test_seed_comparison_jitter_is_reproducible_and_leaves_numpy_alone():
    import matplotlib.pyplot as plt

    np.random.seed(123)
    expected_next = np.random.random()
    np.random.seed(123)
    points = []
    for _ in range(2):
        fig, ax = plotting.figure()
        plotting.seed_comparison(ax, {"a": [1.0, 2.0, 3.0]})
        points.append(np.asarray(ax.collections[0].get_offsets()).copy())
        plt.close(fig)
    assert np.array_equal(points[0], points[1])
    assert np.random.random() == expected_next  # the global generator is restored


def test_t_interval():
    assert plotting.t_interval([5.0]) == (5.0, 5.0)
    low, high = plotting.t_interval([1.0, 3.0])  # mean 2, s = sqrt 2, t(0.975, 1) = 12.706
    assert (low + high) / 2 == pytest.approx(2.0) and high - 2 == pytest.approx(12.7062, rel=1e-4)


def test_annotated_heatmap_keeps_contrast_and_leaves_missing_cells_blank():
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_rgb

    grid = pd.DataFrame([[0.25, 1.05], [np.nan, 4.0]], index=[2, 1], columns=[2, 3])
    fig, ax = plotting.figure()
    plotting.annotated_heatmap(ax, grid, np.log2(grid), center=0.0, cbar_label="log2 ratio")
    texts = {t.get_text(): to_rgb(t.get_color()) for t in ax.texts}
    assert set(texts) == {"0.25", "1.05", "4.00"}  # the printed values, NaN left out
    mesh = ax.collections[0]
    mesh.update_scalarmappable()
    faces = mesh.get_facecolors()[:, :3]

    def luminance(rgb):
        return 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2]

    # dark cells (the far ends of the diverging map) get white numbers, the pale middle dark ones
    assert texts["0.25"] == texts["4.00"] == (1.0, 1.0, 1.0)
    assert luminance(texts["1.05"]) < 0.3
    assert min(luminance(f) for f in faces) < 0.3 and max(luminance(f) for f in faces) > 0.8
    # rows top to bottom as the index, columns as the columns
    assert [t.get_text() for t in ax.get_yticklabels()] == ["2", "1"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["2", "3"]
    plt.close(fig)


def test_show_folded_wraps_a_table_under_its_summary():
    df = pd.DataFrame({"b": [2, 3], "stale": [0.2088, 0.4841]})
    html = plotting.show_folded("the numbers <behind> it", plotting.show_table(df))._repr_html_()
    assert html.startswith('<details class="adabit-folded"><summary>the numbers &lt;behind&gt; it</summary>')
    assert html.endswith("</details>") and _cells(html) == ["2", "0.21", "3", "0.48"]
    assert _cells(plotting.show_folded("raw", df)._repr_html_()) == ["2", "0.21", "3", "0.48"]


def test_label_points_covers_no_marker_and_no_other_label():
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(1)
    x = np.concatenate([[1.0, 1.1, 1.2, 1.15], rng.uniform(0, 3, 10)])
    y = np.concatenate([[5.0, 5.05, 4.95, 5.1], rng.uniform(3, 7, 10)])
    fig, ax = plotting.figure()
    ax.scatter(x, y, s=30)
    ax.set_xlim(-0.5, 3.5)
    ax.set_ylim(2, 8)
    labels = [f"{a:.2f}/{b:.2f}/1" for a, b in zip(x, y)]
    anns = plotting.label_points(ax, x, y, labels, fontsize=7)
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    from matplotlib.text import Text

    boxes = [Text.get_window_extent(a, r) for a in anns]  # the text, not its leader line
    assert [a.get_text() for a in anns] == labels
    centres = ax.transData.transform(np.column_stack([x, y]))
    radius = np.sqrt(30) / 2 * fig.dpi / 72
    for i, b in enumerate(boxes):
        for cx, cy in centres:  # no label over a marker (its own included)
            assert not (b.x0 < cx + radius and b.x1 > cx - radius and b.y0 < cy + radius and b.y1 > cy - radius)
        for other in boxes[i + 1:]:
            assert not b.overlaps(other)
        frame = ax.get_window_extent(r)
        assert frame.x0 <= b.x0 and b.x1 <= frame.x1 and frame.y0 <= b.y0 and b.y1 <= frame.y1
    plt.close(fig)


# ---------------------------------------------------------------- legends under the panels
def _two_panels(**kwargs):
    fig, axes = plotting.figure(ncols=2, **kwargs)
    for ax in axes:
        ax.plot([0, 1, 2], [0, 1, 4], label="quadratic")
        ax.plot([0, 1, 2], [4, 1, 0], label="falling")
        ax.set_xlabel("x")
    axes[1].plot([0, 2], [2, 2], label="level")
    axes[0].legend()  # an inside legend that legend_below replaces
    return fig, axes


def _below_everything(fig, legend, axes):
    """The legend's box lies under every panel's box with its tick and axis labels."""
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    box = legend.get_window_extent(r)
    for ax in axes:
        panel = ax.get_tightbbox(r, bbox_extra_artists=[])
        assert box.y1 <= panel.y0 + 0.5, (box, panel)
    return box


@pytest.mark.parametrize("layout", [None, "constrained"])
def test_legend_below_a_figure_lists_each_label_once_under_every_panel(layout):
    import matplotlib.pyplot as plt

    fig, axes = _two_panels(layout=layout)
    legend = plotting.legend_below(fig, fontsize=7)
    assert fig.legends == [legend]
    assert all(ax.get_legend() is None for ax in axes)  # the inside legend is gone
    assert [t.get_text() for t in legend.get_texts()] == ["quadratic", "falling", "level"]
    box = _below_everything(fig, legend, axes)
    # centred under the panels (constrained layout: under the figure, which they fill)
    frames = [ax.get_window_extent(fig.canvas.get_renderer()) for ax in axes]
    centre = fig.bbox.width / 2 if layout else (frames[0].x0 + frames[1].x1) / 2
    assert (box.x0 + box.x1) / 2 == pytest.approx(centre, abs=2)
    # the saved figure takes it in (bbox "tight")
    tight = fig.get_tightbbox(fig.canvas.get_renderer())
    assert tight.y0 * fig.dpi <= box.y0 + 1
    if layout == "constrained":  # inside the figure: constrained layout made room for it
        assert box.y0 >= 0
    plt.close(fig)


def test_legend_below_one_panel_and_balanced_columns():
    import matplotlib.pyplot as plt

    fig, axes = _two_panels()
    legend = plotting.legend_below(axes[1], fontsize=7)
    assert axes[1].get_legend() is legend and axes[0].get_legend() is not None  # the other stays
    assert [t.get_text() for t in legend.get_texts()] == ["quadratic", "falling", "level"]
    _below_everything(fig, legend, [axes[1]])
    plt.close(fig)

    # six long entries on a narrow figure: not all on one row, and the rows filled evenly
    fig, ax = plotting.figure(figsize=(3.0, 2.0))
    for i in range(6):
        ax.plot([0, 1], [i, i], label=f"a rather long label number {i}")
    legend = plotting.legend_below(fig)
    fig.canvas.draw()
    assert legend.get_window_extent(fig.canvas.get_renderer()).width <= fig.bbox.width
    assert legend._ncols in (1, 2, 3)  # 6 entries: 6 x 1, 3 x 2 or 2 x 3, never 5 + 1
    assert plotting.legend_below(fig, ncol=4)._ncols == 4  # asked for: kept
    plt.close(fig)

    fig, ax = plotting.figure()
    ax.plot([0, 1], [0, 1])  # nothing labelled
    assert plotting.legend_below(fig) is None and fig.legends == []
    plt.close(fig)
