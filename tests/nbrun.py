"""Run a chapter notebook with papermill for a test: outputs and records go into a temp folder."""

from __future__ import annotations

import json
from pathlib import Path

import papermill

ROOT = Path(__file__).resolve().parent.parent


def run_chapter(name: str, tmp: Path, **params) -> tuple[dict, Path]:
    """Execute nb/NAME.ipynb with ``params`` (figures and the record file under ``tmp``), from the
    project root; return (the recorded key numbers, the figure folder)."""
    values = dict(fig_dir=str(tmp / "fig"), record_path=str(tmp / "rec" / f"{name}.json"))
    values.update(params)
    papermill.execute_notebook(str(ROOT / "nb" / f"{name}.ipynb"), str(tmp / "out.ipynb"),
                               parameters=values, cwd=str(ROOT), kernel_name="python3",
                               progress_bar=False)
    return json.loads(Path(values["record_path"]).read_text()), Path(values["fig_dir"])


def assert_stops_on_bad_parameter(name: str, tmp: Path, parameter: str, value, words: str) -> None:
    """A bad parameter value stops nb/NAME.ipynb with a one-line ValueError that names the
    parameter and what is allowed, before anything is recorded."""
    record = tmp / "rec.json"
    params = {"fig_dir": str(tmp / "fig"), "record_path": str(record), parameter: value}
    try:
        papermill.execute_notebook(str(ROOT / "nb" / f"{name}.ipynb"), str(tmp / "out.ipynb"),
                                   parameters=params, cwd=str(ROOT), kernel_name="python3",
                                   progress_bar=False)
    except papermill.PapermillExecutionError as err:
        assert err.ename == "ValueError", err.ename
        assert "\n" not in err.evalue and parameter in err.evalue and words in err.evalue, err.evalue
        assert not record.exists()  # stopped before anything ran
    else:
        raise AssertionError(f"nb/{name}.ipynb accepted {parameter} = {value!r}")


def assert_saved(figs: Path, chapter: str, figures=(), tables=()) -> None:
    """Every figure (a real PNG, > 5 kB) and table (CSV) that a chapter saves is in ``figs``
    under the chapter's own name (``<chapter>_<name>``), so no two chapters overwrite a file."""
    for name in figures:
        assert (figs / f"{chapter}_{name}.png").stat().st_size > 5_000, name
    for name in tables:
        assert (figs / f"{chapter}_{name}.csv").exists(), name
