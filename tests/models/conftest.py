"""Model tests run torch on one thread: on the shared 2-core machine two OpenMP threads that spin
while other processes hold the cores were measured 10-20x slower than one thread."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
