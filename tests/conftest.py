"""Shared fixtures.  ADABIT_TEST_DEVICE=cuda runs the device-aware tests on a GPU."""

import os

import pytest
import torch


@pytest.fixture
def device() -> torch.device:
    name = os.environ.get("ADABIT_TEST_DEVICE", "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        pytest.fail("ADABIT_TEST_DEVICE asks for CUDA but torch sees no GPU")
    return torch.device(name)


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models are overhead-bound: one thread is as fast, and far faster on a busy CPU.
    A test module opts in with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def benchmark_smoke(tmp_path_factory):
    """One in-process ``python -m benchmarks --smoke --out FILE`` run for the whole session:
    (its results as a dict, the file)."""
    import json
    import sys
    from pathlib import Path

    pytest.importorskip("snntorch")
    root = str(Path(__file__).resolve().parent.parent)
    if root not in sys.path:  # benchmarks/ is not installed: found from the repository root
        sys.path.insert(0, root)
    from benchmarks import cli

    out = tmp_path_factory.mktemp("bench") / "smoke.json"
    threads = torch.get_num_threads()
    try:
        assert cli.main(["--smoke", "--out", str(out)]) == 0
    finally:
        torch.set_num_threads(threads)  # the smoke run uses one thread; leave the session as it was
    return json.loads(out.read_text()), out


SMOKE_OUTPUT = "_build/smoke"  # book/build.py --output: the smoke book never replaces make book's
SMOKE_INPUTS = ("nb", "book", "adabit_lite", "results", "benchmarks/results")  # what a build reads
SMOKE_SKIP = {"chapters", "_static", "_build", "__pycache__", ".ipynb_checkpoints"}  # what it writes


def _newest_input(root) -> float:
    newest = 0.0
    for folder in SMOKE_INPUTS:
        for path in (root / folder).rglob("*"):
            if path.is_file() and not SMOKE_SKIP.intersection(path.relative_to(root).parts):
                newest = max(newest, path.stat().st_mtime)
    return newest


@pytest.fixture(scope="session")
def smoke_book():
    """The book built with the ``smoke`` parameter profile into _build/smoke/_build (book/build.py:
    every chapter notebook run by papermill, the claims ledger last, then jupyter-book with warnings
    as errors): (the HTML folder, the folder of the chapters' records).  Built once per session; a
    smoke book already there is reused when it is newer than every file the build reads."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    build = root / SMOKE_OUTPUT / "_build"
    index = build / "html" / "index.html"
    if not (index.exists() and index.stat().st_mtime > _newest_input(root)):
        subprocess.run([sys.executable, "book/build.py", "--profile", "smoke", "--output", SMOKE_OUTPUT],
                       cwd=root, check=True)
    assert index.exists()
    return build / "html", build / "records"
