"""The performance appendix (nb/10_performance.ipynb) run by papermill on a smoke results file.

The notebook only reads a benchmark results file.  Here it reads a fresh
``python -m benchmarks --smoke --out FILE`` run in a temp folder (never the stored
benchmarks/results/latest.json), once with a compiled and a book section added in the schema that
benchmarks/bench_compiled.py and bench_book.py write (the smoke mode leaves those opt-ins out), and
once with only some sections, one of them in the schema of the runs before ALGORITHM_VERSION 2.
The numbers it records are checked against the file.
"""

from __future__ import annotations

import ast
import copy
import json
import statistics
import sys
from pathlib import Path

import pytest
import torch

from nbrun import assert_stops_on_bad_parameter, run_chapter

pytest.importorskip("snntorch")
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # benchmarks/ is not installed: found from the repository root
    sys.path.insert(0, str(ROOT))

from adabit_lite import fused  # noqa: E402
from benchmarks import cli  # noqa: E402

NB = ROOT / "nb" / "10_performance.ipynb"
OLD_COLUMNS = ("prototype",)  # the eager draft of the neuron (ALGORITHM_VERSION 1's runs)


def compiled_section(res: dict) -> dict:
    """A compiled section (bench_compiled.run's fields) built from the smoke rows at T = 4, Bs = 4."""
    T, Bs = cli.LAYER_T, 4
    neuron_rows, layer_rows = [], []
    for i, r in enumerate(r for r in res["benchmarks"]["neuron"]["rows"] if r["T"] == T and r["Bs"] == Bs):
        neuron_rows.append({"shape": r["shape"], "input": r["input"], "T": T, "Bs": Bs,
                            "compile_s": 10.0 + i, "compiled_max_rel_diff": 1e-6,
                            "ours_ms": r["ours_ms"], "compiled_ms": r["ours_ms"] / 4,
                            "snntorch_ms": r["snntorch_ms"],
                            "ours_vs_snntorch": r["ours_vs_snntorch"],
                            "compiled_vs_snntorch": r["ours_vs_snntorch"] / 4})
    for r in (r for r in res["benchmarks"]["layer"]["rows"] if r["T"] == T):
        layer_rows.append({"shape": r["shape"], "input": r["input"], "T": T,
                           "squeezed_ms": r["squeezed_ms"], "compiled_ms": r["ann_ms"] * 1.2,
                           "multistep_ms": r["multistep_ms"], "ann_ms": r["ann_ms"],
                           "squeezed_vs_multistep": r["squeezed_vs_multistep"],
                           "squeezed_vs_ann": r["squeezed_vs_ann"],
                           "compiled_vs_multistep": 1.2 * r["ann_ms"] / r["multistep_ms"], "compiled_vs_ann": 1.2})
    sec = {k: v for k, v in res["benchmarks"]["layer"].items() if k not in ("rows", "config")}
    return {**sec, "benchmark": "compiled", "T": T, "Bs": Bs, "neuron_rows": neuron_rows,
            "layer_rows": layer_rows}


def book_section(res: dict) -> dict:
    sec = {k: v for k, v in res["benchmarks"]["meter"].items()
           if k in ("started", "finished", "seconds", "load_start", "load_end", "machine", "smoke", "note")}
    return {**sec, "benchmark": "book", "source": "HEAD " + "0" * 40, "profile": "default",
            "returncode": 0, "ok": True, "wall_s": 61.5, "build_s": 60.0, "checkout_s": 0.25,
            "notebooks": [{"notebook": "01_cost", "seconds": 20.0, "share_percent": 33.0},
                          {"notebook": "02_theorem", "seconds": 28.0, "share_percent": 47.0}],
            "sphinx_s": 12.0, "output_tail": ""}


@pytest.fixture(scope="module")
def smoke(benchmark_smoke) -> dict:
    return copy.deepcopy(benchmark_smoke[0])  # the session's one smoke run (conftest.py)


@pytest.fixture(scope="module")
def full(smoke, tmp_path_factory):
    """The smoke results with a compiled and a book section, run through the notebook."""
    tmp = tmp_path_factory.mktemp("nb10")
    res = copy.deepcopy(smoke)
    res["benchmarks"]["compiled"] = compiled_section(res)
    res["benchmarks"]["book"] = book_section(res)
    res["targets"] = cli.targets(res)
    path = tmp / "results.json"
    path.write_text(json.dumps(res))
    rec, figs = run_chapter("10_performance", tmp, results_path=str(path))
    return res, rec, figs, json.loads((tmp / "out.ipynb").read_text())


def outputs(nb: dict) -> str:
    text = []
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            text.append("".join(out.get("text", "")))
            for value in out.get("data", {}).values():
                if isinstance(value, (str, list)):
                    text.append("".join(value))
    return "\n".join(text)


def test_parameters_cell():
    nb = json.loads(NB.read_text())
    cells = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1
    tree = ast.parse("".join(cells[0]["source"]))
    assert all(isinstance(s, ast.Assign) and isinstance(s.value, ast.Constant) for s in tree.body)
    names = {s.targets[0].id for s in tree.body}
    assert {"results_path", "fig_dir", "record_path"} <= names


def test_no_eager_prototype_left():
    """The eager prototype columns are gone from the schema, and from the notebook's code."""
    nb = json.loads(NB.read_text())
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    for column in ("prototype_ms", "prototype_vs", "prototype_agrees", "squeezed_prototype_ms"):
        assert column not in code, column


def test_sections_and_targets(full):
    res, rec, _, _ = full
    assert rec["smoke"] is True and rec["old_sections"] == []
    assert rec["sections"] == sorted(res["benchmarks"])
    assert rec["targets"] == {t["id"]: t["met"] for t in res["targets"]}
    assert {"layer_vs_multistep_compiled", "layer_vs_ann_compiled",
            "neuron_vs_snntorch_compiled"} <= set(rec["targets"])


def test_neuron_numbers(full):
    res, rec, _, _ = full
    rows = res["benchmarks"]["neuron"]["rows"]
    assert rec["neuron_cases"] == len(rows)
    assert rec["neuron_faster"] == sum(r["ours_vs_snntorch"] < 1 for r in rows)
    for shape in {r["shape"] for r in rows}:
        for T in (1, 2, 4, 8):
            med = statistics.median(r["ours_vs_snntorch"] for r in rows if r["shape"] == shape and r["T"] == T)
            assert rec["neuron_by_T"][shape][str(T)] == pytest.approx(med)
            if fused.library() is not None:  # the compiled step loop against the eager one
                med = statistics.median(r["ours_vs_eager"] for r in rows if r["shape"] == shape and r["T"] == T)
                assert rec["fused_vs_eager"][shape][str(T)] == pytest.approx(med)
        at = {r["T"]: r for r in rows if r["shape"] == shape and r["Bs"] == 4}
        assert rec["neuron_growth"][shape]["package"] == pytest.approx(at[8]["ours_ms"] / at[1]["ours_ms"])
        assert rec["neuron_growth"][shape]["snntorch"] == pytest.approx(
            at[8]["snntorch_ms"] / at[1]["snntorch_ms"])


def test_layer_and_memory_numbers(full):
    res, rec, _, _ = full
    at_T = {r["shape"]: r for r in res["benchmarks"]["layer"]["rows"] if r["T"] == cli.LAYER_T}
    assert set(rec["layer_at_T"]) == set(at_T)
    for shape, r in at_T.items():
        assert rec["layer_at_T"][shape] == pytest.approx({"vs_multistep": r["squeezed_vs_multistep"],
                                                          "vs_ann": r["squeezed_vs_ann"]})
    ours = [r for r in res["benchmarks"]["memory"]["rows"] if r["variant"] == "ours"]
    assert rec["memory_saved"] == {s: {str(r["T"]): r["saved"] for r in ours if r["shape"] == s}
                                   for s in dict.fromkeys(r["shape"] for r in ours)}
    assert rec["memory_same_for_every_T"] is True
    assert rec["memory_largest"] == pytest.approx(
        max(max(r["saved_max_tensor"] for r in ours), max(r["alloc_max"] or 0 for r in ours)))


def test_compiled_book_and_figures(full):
    res, rec, figs, nb = full
    comp = res["benchmarks"]["compiled"]
    assert rec["compiled_agrees"] is True
    assert rec["compiled_layer"] == {r["shape"]: {"package_vs_ann": r["squeezed_vs_ann"],
                                                  "compiled_vs_ann": r["compiled_vs_ann"]}
                                     for r in comp["layer_rows"]}  # floats survive JSON exactly
    assert 61.5 in rec["times"].values()  # the book build's wall time
    for name in ("neuron_ratio.png", "layer_time.png", "machine.csv", "targets.csv", "neuron.csv",
                 "layer.csv", "memory.csv", "times.csv", "book.csv", "compiled_neuron.csv",
                 "compiled_layer.csv"):
        assert (figs / f"10_performance_{name}").stat().st_size > 0, name
    text = outputs(nb)
    assert "smoke-mode results" in text and "not measured" not in text
    rows = res["benchmarks"]["neuron"]["rows"]
    assert f"faster than `snntorch.Leaky` in {rec['neuron_faster']} of the {len(rows)} cases" in text
    assert f"after {min(r['compile_s'] for r in comp['neuron_rows']):.0f} to" in text
    for word in OLD_COLUMNS:
        assert word not in text.lower(), word


def test_some_sections_and_an_old_one(smoke, tmp_path):
    """Sections not measured are said so; a section in the schema of the runs before ALGORITHM_VERSION 2
    (with the eager draft's rows) is flagged and its old rows are not shown."""
    res = copy.deepcopy(smoke)
    for name in ("neuron", "layer"):
        del res["benchmarks"][name]
    mem = res["benchmarks"]["memory"]["rows"]
    mem += [{**r, "variant": "prototype"} for r in mem if r["variant"] == "ours"]
    res["targets"] = cli.targets(res)
    path = tmp_path / "results.json"
    path.write_text(json.dumps(res))
    rec, _ = run_chapter("10_performance", tmp_path, results_path=str(path))
    assert rec["old_sections"] == ["memory"]
    assert not {"neuron_by_T", "layer_at_T", "neuron_growth", "compiled_layer"} & set(rec)
    text = outputs(json.loads((tmp_path / "out.ipynb").read_text()))
    for line in ("neuron benchmark: not measured", "layer benchmark: not measured",
                 "compiled variant: not measured", "book build: not measured"):
        assert line in text, line
    assert "the memory section was measured with the package's old neuron" in text
    assert "prototype " not in text.split("NOTE: the memory section")[1]


def test_bad_parameter_stops_with_one_line(tmp_path):
    assert_stops_on_bad_parameter("10_performance", tmp_path, "results_path", "results.csv", "ending in .json")
