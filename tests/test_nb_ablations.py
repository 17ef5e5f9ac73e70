"""The ablation chapter (nb/06_ablations.ipynb), run by papermill on tiny settings that train its
runs into a temporary results folder; its numbers are recomputed here from the stored run files.
The study module on hand-made runs: tests/test_studies_ablations.py."""

import math
import warnings

import numpy as np
import pytest
from nbrun import assert_saved, assert_stops_on_bad_parameter, run_chapter
from scipy import stats

from adabit_lite import paper, sweeps
from adabit_lite.results import find_result
from adabit_lite.studies import ablations as ab

SEEDS, TARGET = [0, 1], "1/1/1"
SUBSET = ["default", "renewal none", "old neuron", "T fixed"]
BASE = dict(dataset="digits", data_options="size=8", width=8, epochs=2)
FIGURES = ["ablation_accuracy", "fig3_bits_per_epoch_renewal"]
TABLES = ["ablations", "claims", "comparisons_not_in_the_paper", "paper_vs_book"]


@pytest.fixture(scope="module")
def chapter(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("nb06")
    with pytest.MonkeyPatch.context() as mp:
        # the runs train in the notebook's kernel: one torch thread there (tiny models are
        # overhead-bound, and far faster so on a busy CPU)
        mp.setenv("OMP_NUM_THREADS", "1")
        rec, figs = run_chapter("06_ablations", tmp, results_dir=str(tmp / "results"),
                                seeds=SEEDS, ablations=SUBSET, train_missing=True, **BASE)
    return rec, figs, tmp / "results"


def stored_groups(results):
    """The runs the chapter should show, read back from the files the notebook trained."""
    settings = sweeps.ablation_groups(SEEDS, TARGET, **BASE)
    groups = {ab.UQUANT: [find_result(results / "allocation", c.uquant())
                          for c in settings["default"]]}
    for name in SUBSET:
        groups[name] = [find_result(results / "ablations", c) for c in settings[name]]
    return groups


def test_every_wanted_run_is_trained_stored_and_shown(chapter):
    rec, figs, results = chapter
    groups = stored_groups(results)
    assert all(r is not None for g in groups.values() for r in g)
    assert rec["runs_found"] == rec["runs_wanted"] == len(SEEDS) * (len(SUBSET) + 1) == 10
    # shown in the sections' order, U-quant first; the others are not in the table
    assert [row["ablation"] for row in rec["table"]] == [ab.UQUANT] + SUBSET
    assert_saved(figs, "06_ablations", FIGURES, TABLES)


def test_the_runs_are_the_ablations_they_claim_to_be(chapter):
    _, _, results = chapter
    groups = stored_groups(results)
    for r in groups[ab.UQUANT]:  # uniform 1/1/1 from the start, nothing learned
        assert (r["metrics"]["W"], r["metrics"]["S"], r["metrics"]["T"]) == (1.0, 1.0, 1.0)
        assert not r["parameters"]["learn_w"] and r["parameters"]["renewal"] == "none"
    for r in groups["old neuron"]:
        p = r["parameters"]
        assert (p["tau"], p["firing"], p["amplitude"], p["renewal"]) == (2.0, "floor", True,
                                                                        "activation")
    for r in groups["T fixed"]:
        assert not r["parameters"]["learn_T"] and r["parameters"]["init"] == "4/4/1"
        assert all(layer["T"] == 1 for layer in r["metrics"]["layers"])
    assert all(r["parameters"]["renewal"] == "none" for r in groups["renewal none"])
    assert [r["parameters"]["seed"] for r in groups["default"]] == SEEDS


def test_the_table_is_recomputed_from_the_stored_runs(chapter):
    rec, _, results = chapter
    table = {row["ablation"]: row for row in rec["table"]}
    groups = stored_groups(results)
    ref = [r["metrics"]["accuracy"] for r in groups["default"]]
    for name, runs in groups.items():
        row = table[name]
        acc = np.array([r["metrics"]["accuracy"] for r in runs])
        assert row["runs"] == len(runs) == len(SEEDS)
        assert row["section"] == next(s for s, names in ab.SECTIONS.items() if name in names)
        assert row["accuracy"] == pytest.approx(acc.mean())
        assert row["std"] == pytest.approx(acc.std(ddof=1))
        for k in "WST":
            assert row[k] == pytest.approx(np.mean([r["metrics"][k] for r in runs]))
        for kind, col in (("w_renewals", "weight renewals"), ("s_renewals", "spike renewals")):
            per_run = [sum(layer[kind] for layer in r["metrics"]["renewals"].values())
                       for r in runs]
            assert row[col] == pytest.approx(np.mean(per_run))
        drops = [any(b["test_accuracy"] < a["test_accuracy"] - 5
                     for a, b in zip(r["history"], r["history"][1:])) for r in runs]
        assert row["runs with a drop > 5"] == sum(drops)
        if name == "default" or (acc.std() == 0 and np.std(ref) == 0):
            assert math.isnan(row["p vs default"])
        else:
            with warnings.catch_warnings():  # a group whose seeds agree exactly
                warnings.simplefilter("ignore", RuntimeWarning)
                p = stats.ttest_ind(acc, ref, equal_var=False).pvalue
            assert row["p vs default"] == pytest.approx(p)


def test_claims_follow_the_table_and_the_papers_numbers(chapter):
    rec, _, _ = chapter
    table = {row["ablation"]: row for row in rec["table"]}
    tables = {n: paper.paper_table(n).set_index("target") for n in ab.PAPER_COLUMNS}
    assert len(rec["claims"]) == len(ab.CLAIMS)
    seen = set()
    for c, (name, col_a, col_b, _) in zip(rec["claims"], ab.CLAIMS):
        assert c["paper a"] == tables[name].loc[TARGET, col_a]
        assert c["paper b"] == tables[name].loc[TARGET, col_b]
        if c["a"] not in table or c["b"] not in table:
            assert c["verdict"] == "not in the sweep"
            continue
        diff = table[c["a"]]["accuracy"] - table[c["b"]]["accuracy"]
        assert c["ours a - b"] == pytest.approx(diff)
        same = (diff > 0) == (c["paper a - b"] > 0)
        if c["p"] < 0.05:  # the ledger's rule: at least half the paper's difference reproduces it
            big = abs(diff) >= abs(c["paper a - b"]) / 2
            assert c["verdict"] == ("reversed" if not same else "reproduces" if big
                                    else "same direction, weaker")
        else:
            assert c["verdict"] == "no significant difference"
        seen.add(c["factor"])
    # the subset holds both members of two claims only: renewal vs none, LBW vs U-quant
    assert seen == {"activation renewal vs none", "learned bits (no renewal) vs U-quant"}
    extra = {e["a"]: e for e in rec["extra"]}
    t_fixed = extra["T fixed"]
    assert t_fixed["difference"] == pytest.approx(table["T fixed"]["accuracy"]
                                                  - table["default"]["accuracy"])
    assert extra["running extrema"]["outcome"] == "not in the sweep"


def test_paper_vs_book_reads_the_papers_rows(chapter):
    rec, _, _ = chapter
    table = {row["ablation"]: row for row in rec["table"]}
    rows = rec["paper_vs_book"]
    assert len(rows) == sum(len(c) for c in ab.PAPER_COLUMNS.values()) == 10
    for row in rows:
        published = paper.paper_table(row["paper table"]).set_index("target").loc[TARGET]
        col = next(c for c, v in ab.PAPER_COLUMNS[row["paper table"]].items()
                   if v[0] == row["paper column"])
        assert row["paper accuracy"] == published[col]
        if row["ours"] in table:
            t = table[row["ours"]]
            assert row["ours: accuracy"] == f"{t['accuracy']:.2f} +- {t['std']:.2f}"
            assert row["ours: runs"] == len(SEEDS)
        else:
            assert row["ours: accuracy"] == "not in the sweep" and row["ours: runs"] == 0
        assert "CIFAR-10" in row["paper setting"] and "digits" in row["our setting"]
    act = next(r for r in rows if r["ours"] == "default" and r["paper table"] == "yao_ablation")
    assert act["paper W/S/T"] == paper.paper_table("yao_ablation").set_index("target").loc[
        TARGET, "act_renew_wst"]


def test_bad_ablation_name_stops_with_one_line(tmp_path):
    assert_stops_on_bad_parameter("06_ablations", tmp_path, "ablations", ["default", "no renewal"],
                                  "renewal none")


def test_fractional_target_stops_with_one_line(tmp_path):
    assert_stops_on_bad_parameter("06_ablations", tmp_path, "target", "1.5/1.5/1", "whole W and S")


def test_the_runs_shared_with_chapter_5a_are_recorded(chapter):
    rec, _, _ = chapter
    same = rec["chapter_5a"]
    assert set(same) == set(ab.CHAPTER5_METHODS)  # the three groups chapter 5a also shows
    # U-quant is read from chapter 5a's sweep: the very same runs; the others live in `ablations`
    assert same[ab.UQUANT]["shared"] == same[ab.UQUANT]["n ours"] == len(SEEDS)
    assert same[ab.UQUANT]["only theirs"] == [] and same[ab.UQUANT]["as"] == "U-quant"
    assert same["default"]["n theirs"] == 0


def test_the_committed_page_names_the_papers_tables_by_caption():
    import json
    from pathlib import Path

    nb = json.loads((Path(__file__).resolve().parent.parent / "nb" / "06_ablations.ipynb").read_text())
    shown = []
    for c in nb["cells"]:
        if c["cell_type"] != "code" or {"remove-output", "remove-cell"} & set(c["metadata"].get("tags", [])):
            continue
        for o in c.get("outputs", []):
            data = o.get("data", {})
            shown.append("".join(o.get("text", "")) + "".join(data.get("text/html", ""))
                         + "".join(data.get("text/markdown", "")))
    import html

    text = html.unescape("\n".join(shown))
    for key in ab.PAPER_COLUMNS:  # internal keys never reach the reader; the captions do
        assert key not in text
        assert paper.table_citation(key) in text
    assert "Why chapter 5a shows other numbers" in text
    for words in ab.PAPER_VS_BOOK_WORDS.values():
        assert words in text
