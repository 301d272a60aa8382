"""The UNet's context modes, null contexts and the set encoder."""

import pytest
import torch
from torch import nn

from models.diffusion.set_encoder import SetEncoder
from models.diffusion.unet import UNet


def _randomise_output(net):
    nn.init.normal_(net.conv_out.weight, std=0.1)  # zero-initialised output would hide the context
    return net.eval()


@pytest.mark.parametrize("mults", [(1,), (1, 2), (1, 2, 2)])
def test_output_shape_and_t_dependence(mults):
    torch.manual_seed(0)
    net = _randomise_output(UNet(16, 8, mults, 2, "none"))
    x = torch.randn(3, 1, 16, 16)
    eps = net(x, torch.tensor([1, 2, 3]), None)
    assert eps.shape == x.shape
    assert not torch.allclose(eps, net(x, torch.tensor([400, 2, 3]), None))


def test_class_null_token_and_context_changes_output():
    torch.manual_seed(0)
    net = _randomise_output(UNet(8, 8, (1, 2), 1, "class", n_classes=4))
    ctx = torch.tensor([0, 3])
    assert net.null_context(ctx).tolist() == [4, 4]
    x, t = torch.randn(2, 1, 8, 8), torch.tensor([5, 5])
    assert not torch.allclose(net(x, t, ctx), net(x, t, torch.tensor([1, 2])))
    with pytest.raises(ValueError, match="context"):
        net(x, t, None)


def test_exemplar_is_stacked_channel():
    torch.manual_seed(0)
    net = _randomise_output(UNet(8, 8, (1, 2), 1, "exemplar"))
    assert net.conv_in.in_channels == 2
    ex = torch.randn(2, 1, 8, 8)
    assert torch.equal(net.null_context(ex), torch.zeros_like(ex))
    x, t = torch.randn(2, 1, 8, 8), torch.tensor([5, 5])
    assert not torch.allclose(net(x, t, ex), net(x, t, -ex))


def test_set_encoder_is_order_invariant_and_any_size():
    torch.manual_seed(0)
    enc = SetEncoder(12, 4)
    sets = torch.randn(2, 5, 1, 8, 8)
    assert torch.allclose(enc(sets), enc(sets[:, [4, 2, 0, 1, 3]]), atol=1e-6)
    assert enc(sets[:, :1]).shape == (2, 12)


def test_set_null_context_uses_learned_null_vector():
    torch.manual_seed(0)
    net = _randomise_output(UNet(8, 8, (1, 2), 1, "set"))
    with torch.no_grad():
        net.null_set.normal_()
    sets = torch.randn(2, 3, 1, 8, 8)
    null = net.null_context(sets)
    emb = net._context_embedding(null, 2)
    assert torch.allclose(emb, net.null_set.expand(2, -1))
    mixed = torch.cat([sets[:1], null[1:]])
    assert torch.allclose(net._context_embedding(mixed, 2)[1], net.null_set)


def test_bad_architecture_raises_naming_field():
    with pytest.raises(ValueError, match="model.channel_mults"):
        UNet(10, 8, (1, 2, 2), 1, "none")
    with pytest.raises(ValueError, match="model.context"):
        UNet(8, 8, (1,), 1, "text")
