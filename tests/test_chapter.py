"""The chapter runner (python -m adabit_lite.chapter): one line and exit 2 for a bad request, one
line and exit 1 for a failing cell, exit 0 and the executed notebook otherwise."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from adabit_lite import chapter

ROOT = Path(__file__).resolve().parent.parent


def run_runner(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "adabit_lite.chapter", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.mark.parametrize("args, words", [
    (["99"], "unknown chapter '99'"),
    (["05a", "-p", "epoch", "3"], "05a_allocation has no parameter 'epoch'"),
    (["05a", "-y", "seeds: [0]", "-y", "nope: 1"], "05a_allocation has no parameter 'nope'"),
    (["02", "--profile", "nope"], "unknown profile 'nope'"),
    (["02", "-o", "nb/02_theorem.ipynb"], "refusing to write into nb/"),
    (["02", "-p", "sigma"], "expected 2 arguments"),
])
def test_bad_request_is_one_line_and_runs_nothing(args, words):
    proc = run_runner(*args)
    assert proc.returncode == 2
    assert words in one_line(proc.stderr)
    assert proc.stdout == ""  # refused before anything ran


def test_bad_value_stops_with_the_notebooks_own_message(tmp_path):
    out = tmp_path / "out.ipynb"
    proc = run_runner("05a", "-p", "epochs", "-3", "-o", str(out))
    assert proc.returncode == 2
    assert one_line(proc.stderr) == "parameter epochs must be an integer from 1 to 1000, got -3"
    assert not out.exists() and not list(tmp_path.glob(".*"))  # no half-run notebook left behind


@pytest.mark.parametrize("args, line", [
    (["09", "-p", "device", "tpu"], "parameter device must be cpu, cuda, cuda:N or auto, got 'tpu'"),
    (["10", "-p", "results_path", "nowhere.json"],
     "parameter results_path must be an existing file ending in .json (run `python -m benchmarks` from the "
     "repository root to create it), got 'nowhere.json'"),
])
def test_a_declared_parameter_is_refused_in_one_line(tmp_path, args, line):
    """Chapters checked by their declaration (adabit_lite.params) stop in the runner's one line."""
    out = tmp_path / "out.ipynb"
    proc = run_runner(*args, "-o", str(out))
    assert proc.returncode == 2
    assert one_line(proc.stderr) == line
    assert not out.exists()


def test_failing_cell_names_the_cell_and_keeps_the_traceback(tmp_path):
    empty = tmp_path / "empty.json"
    empty.write_text("{}")  # passes the results_path check, then lacks every benchmark
    out = tmp_path / "out.ipynb"
    proc = run_runner("10", "-p", "results_path", str(empty), "-o", str(out))
    assert proc.returncode == 1
    line = one_line(proc.stderr)
    assert line.startswith("10_performance: cell In [") and "KeyError" in line and str(out) in line
    errors = [o for c in json.loads(out.read_text())["cells"] for o in c.get("outputs", [])
              if o["output_type"] == "error"]
    assert [e["ename"] for e in errors] == ["KeyError"] and errors[0]["traceback"]


def test_smoke_run_from_a_subfolder_writes_the_notebook(tmp_path):
    out = tmp_path / "theorem.ipynb"
    proc = run_runner("02", "--profile", "smoke", "-p", "sigma", "2.0", "-o", str(out), cwd=ROOT / "tests")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert f"executed notebook: {out}" in proc.stdout
    cells = json.loads(out.read_text())["cells"]
    injected = next(c for c in cells if "injected-parameters" in c["metadata"].get("tags", []))
    assert "sigma = 2.0" in "".join(injected["source"]) and "b_max = 3" in "".join(injected["source"])
    assert (tmp_path / "theorem" / "record.json").is_file()  # not the book's _build/records
    assert any((tmp_path / "theorem" / "figures").glob("*.png"))


def test_list_shows_every_chapter_with_its_defaults():
    proc = run_runner("--list", "--profile", "smoke")
    assert proc.returncode == 0, proc.stderr
    for stem in ("00_data", "02_theorem", "05a_allocation", "10_performance"):
        assert stem in proc.stdout
    assert "epochs = 10  [smoke: 1]" in proc.stdout


def test_values_are_read_like_papermill_and_chapters_by_prefix():
    values = [chapter.parse_value(v) for v in ("-3", "2.0", "True", "None", "1/1/1")]
    assert values == [-3, 2.0, True, None, "1/1/1"]
    stems = ["02_theorem", "05a_allocation", "05b_stability"]
    assert chapter.resolve_chapter("05a", stems) == "05a_allocation"
    assert chapter.resolve_chapter("nb/05b_stability.ipynb", stems) == "05b_stability"
    with pytest.raises(chapter.UsageError):
        chapter.resolve_chapter("05", stems)
