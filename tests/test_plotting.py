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


def test_show_table_never_uses_scientific_notation():
    df = pd.DataFrame({"tiny": [7.9e-06, 8.0e-05], "huge": [1.466e4, 3.2e9]})
    html = plotting.show_table(df)._repr_html_()
    assert "e+" not in html and "e-" not in html
    assert "0.0000079" in html and "14,660<" in html and "3,200,000,000" in html


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
