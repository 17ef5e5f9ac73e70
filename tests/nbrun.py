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
