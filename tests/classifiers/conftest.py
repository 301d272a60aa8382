"""Torch on one thread in these tests: on the shared 2-core machine two OpenMP threads that
spin while other processes hold the cores run many times slower than one. Module scope, so
the module-scoped training fixtures run on one thread too."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
