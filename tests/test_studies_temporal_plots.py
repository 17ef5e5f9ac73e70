"""Chapter 8's figures and captions (adabit_lite.studies.temporal, the papers' table headers):
legends under the panels, clear of the data, and source lines that end in whole phrases.
(The rest of the chapter's functions: tests/test_studies_temporal.py.)"""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from adabit_lite import paper  # noqa: E402
from adabit_lite.studies import temporal as tm  # noqa: E402
from figures import legend_under  # noqa: E402


def _result(acc, W=1.0, S=1.0, T=8, bb=8.0, target="1/1/8", fp=False):
    return {"metrics": {"accuracy": acc, "W": W, "S": S, "T": T, "bit_budget": bb, "s_ace_g": 0.001},
            "parameters": {"target": target, "full_precision": fp}}


def _history(W, S):
    return [{"epoch": e, "W": w, "S": s, "T": 8, "test_accuracy": 50.0} for e, (w, s) in enumerate(zip(W, S))]


def test_learned_bits_one_legend_of_the_T_under_both_panels():
    groups = {8: {"learned": [{"history": _history([4, 2], [4, 1])}]},
              4: {"learned": [{"history": _history([4, 2], [4, 3])}]}}
    fig = tm.plot_learned_bits(groups, budget=8)
    w_ax, s_ax = fig.axes
    assert w_ax.get_legend() is None and s_ax.get_legend() is None and len(fig.legends) == 1
    # the lines of the right panel reach its right edge at 1 to 3 bits: the old legend sat there
    assert legend_under(fig, fig.legends[0], fig.axes) == ["T=8", "T=4"]
    plt.close(fig)


@pytest.mark.parametrize("name", ["shen_table3", "yao_spikformer_dvs"])
def test_the_chapters_source_lines_end_in_whole_phrases(name):
    """The chapter prints ``table_source`` under its paper-vs-book table; the Yao table's
    description once ended "..., and the paper's" (cut short in the data file)."""
    source = paper.table_source(name)
    last = source.rstrip(").").split()[-1]
    assert not last.endswith("'s") and last not in {"and", "the", "of", "a", "with", "at"}, source
    if name == "yao_spikformer_dvs":
        assert source.endswith("and the paper's own models with learned bit widths at each T (Ours)")
