"""The book's display helpers (adabit_lite.plotting.show_table / show_text)."""

import math

import numpy as np
import pandas as pd

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
