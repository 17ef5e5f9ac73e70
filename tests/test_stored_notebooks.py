"""The committed notebooks are what nbval compares a fresh run against: their outputs must not
depend on the machine or folder that executed them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "nb").glob("*.ipynb"))


def outputs(path: Path):
    for i, cell in enumerate(json.loads(path.read_text())["cells"]):
        for out in cell.get("outputs", []):
            yield i, out


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 10


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_stderr_and_no_machine_path_in_outputs(path):
    """A warning printed to stderr names the file it came from, so a clone in another folder
    fails nbval on it (this happened: scipy's precision warning from a Welch test)."""
    for i, out in outputs(path):
        assert not (out["output_type"] == "stream" and out["name"] == "stderr"), \
            f"{path.name} cell {i} printed to stderr: {''.join(out['text'])[:200]}"
        text = json.dumps(out.get("text", out.get("data", {}).get("text/plain", "")))
        assert str(ROOT) not in text, f"{path.name} cell {i} shows this checkout's path"
        assert str(Path.home()) + "/" not in text, f"{path.name} cell {i} shows this machine's home folder"
