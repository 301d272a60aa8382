"""Samplers and guidance: determinism, per-sample noise, guidance algebra, and sampling a
Gaussian data set with its exact (analytic) noise predictor recovers the data's spread."""

import pytest
import torch
from torch import nn

from models.diffusion.guidance import guided_eps
from models.diffusion.samplers import ddim_sample, ddim_timesteps, ddpm_sample
from models.diffusion.schedule import make_schedule
from models.diffusion.unet import UNet


class GaussianOracle(nn.Module):
    """The exact eps predictor for data x0 ~ N(0, s^2) per pixel:
    E[eps | x_t] = sqrt(1 - ab) x_t / (ab s^2 + 1 - ab)."""

    def __init__(self, schedule, s):
        super().__init__()
        self.schedule, self.s, self.image_size = schedule, s, 4

    def null_context(self, context):
        return context

    def forward(self, x, t, context=None):
        ab = self.schedule.coef("alphabar", t, x)
        return (1 - ab).sqrt() * x / (ab * self.s**2 + 1 - ab)


def _net(mode="class"):
    torch.manual_seed(0)
    net = UNet(8, 8, (1, 2), 1, mode, n_classes=3).eval()
    nn.init.normal_(net.conv_out.weight, std=0.1)  # zero-initialised output would hide the context
    return net


@pytest.mark.parametrize("sampler", ["ddpm", "ddim"])
def test_exact_predictor_recovers_data_std(sampler):
    # s = 0.3 keeps the final clamp to [-1, 1] (3.3 sd) from shrinking the spread
    schedule = make_schedule("linear", 500, 1e-4, 0.02)
    oracle = GaussianOracle(schedule, 0.3)
    x_T = torch.randn(2000, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    if sampler == "ddpm":
        x = ddpm_sample(oracle, x_T, schedule, None, generator=torch.Generator().manual_seed(2))
    else:
        x = ddim_sample(oracle, x_T, schedule, None, steps=500)
    assert float(x.std()) == pytest.approx(0.3, rel=0.03)
    assert abs(float(x.mean())) < 0.02


def test_ddim_eta0_is_deterministic_and_eta1_is_not():
    net, s = _net(), make_schedule("linear", 50)
    x_T, ctx = torch.randn(4, 1, 8, 8), torch.tensor([0, 1, 2, 3])
    a = ddim_sample(net, x_T, s, ctx, steps=10, generator=torch.Generator().manual_seed(1))
    b = ddim_sample(net, x_T, s, ctx, steps=10, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b)
    c = ddim_sample(net, x_T, s, ctx, steps=10, eta=1.0, generator=torch.Generator().manual_seed(1))
    d = ddim_sample(net, x_T, s, ctx, steps=10, eta=1.0, generator=torch.Generator().manual_seed(2))
    assert not torch.equal(c, d)


def test_per_sample_generators_make_batch_independent_samples():
    net, s = _net(), make_schedule("linear", 20)
    gens = lambda seeds: [torch.Generator().manual_seed(k) for k in seeds]  # noqa: E731
    x3 = torch.stack([torch.randn(1, 8, 8, generator=g) for g in gens([5, 6, 7])])
    batch = ddpm_sample(net, x3, s, torch.tensor([0, 1, 2]), generator=gens([15, 16, 17]))
    one = ddpm_sample(net, x3[1:2], s, torch.tensor([1]), generator=gens([16]))
    assert torch.allclose(batch[1:2], one, atol=1e-5)


def test_guidance_w0_equals_conditional_and_w_mixes():
    net = _net()
    x, t, ctx = torch.randn(3, 1, 8, 8), torch.tensor([1, 10, 40]), torch.tensor([0, 1, 2])
    eps_c = net(x, t, ctx)
    eps_u = net(x, t, net.null_context(ctx))
    assert not torch.allclose(eps_c, eps_u)
    assert torch.equal(guided_eps(net, x, t, ctx, 0.0), eps_c)
    assert torch.allclose(guided_eps(net, x, t, ctx, 2.0), 3 * eps_c - 2 * eps_u, atol=1e-5)


def test_callback_sees_every_step_with_guided_eps():
    net, s = _net(), make_schedule("linear", 30)
    seen = []
    ddim_sample(net, torch.randn(2, 1, 8, 8), s, torch.tensor([0, 1]), steps=7, w=1.0,
                callback=lambda t, x, eps: seen.append((t, x.shape, eps.shape)))
    assert [t for t, _, _ in seen] == ddim_timesteps(30, 7)
    assert seen[0][0] == 30 and seen[-1][0] == 1 and all(e == (2, 1, 8, 8) for _, _, e in seen)
    seen.clear()
    ddpm_sample(net, torch.randn(1, 1, 8, 8), s, torch.tensor([2]), callback=lambda t, x, e: seen.append(t))
    assert seen == list(range(30, 0, -1))


def test_ddim_timesteps():
    assert ddim_timesteps(500, 50)[0] == 500 and ddim_timesteps(500, 50)[-1] == 1
    assert len(ddim_timesteps(500, 50)) == 50
    assert ddim_timesteps(10, 10) == list(range(10, 0, -1))
    with pytest.raises(ValueError, match="steps"):
        ddim_timesteps(10, 11)
