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
