"""pick_device: the one place a device argument (None, name or torch.device) is validated."""

import pytest
import torch

from models.device import pick_device


def test_pick_device_passes_a_torch_device_through():
    dev = torch.device("cpu")
    assert pick_device(dev) == dev
    assert pick_device("cpu") == dev
    assert pick_device(None).type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert pick_device("auto") == pick_device(None)


@pytest.mark.parametrize("bad", ["gpu0", "nonsense", 3.5])
def test_pick_device_rejects_a_bad_name_naming_the_field(bad):
    with pytest.raises(ValueError, match=r"^device: "):
        pick_device(bad)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_pick_device_rejects_cuda_without_cuda_even_as_a_torch_device():
    with pytest.raises(ValueError, match=r"^device: 'cuda:0' asked for but CUDA is not available"):
        pick_device(torch.device("cuda", 0))
    with pytest.raises(ValueError, match=r"^device: 'cuda' asked for"):
        pick_device("cuda")


def test_pick_device_rejects_an_unsupported_torch_device_type():
    with pytest.raises(ValueError, match=r"^device: unsupported device type 'meta'"):
        pick_device(torch.device("meta"))
