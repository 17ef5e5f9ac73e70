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
