"""Diffusion attribution: the guided-noise score and the denoising-loss gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from attribution_synthetic import TinyEps, mass_in_region, region_task

from models.attribution import methods as M
from models.diffusion.samplers import ddim_sample
from models.diffusion.schedule import make_schedule
from models.diffusion.unet import UNet

SCHEDULE = make_schedule("linear", 50)


@pytest.fixture(scope="module")
def batch():
    images, labels = region_task(6, seed=3)
    return images, labels % 2


def _methods(net, images, context, **over):
    kw = {"device": "cpu"}
    return {
        "diffusion_score": M.diffusion_score(net, SCHEDULE, context, len(context), w=2.0, steps=10,
                                             image_shape=(1, 16, 16), seeds=over.get("seeds"), device="cpu")[0],
        "diffusion_score_noised": M.diffusion_score_noised(net, SCHEDULE, images, context, w=2.0, n_draws=2,
                                                           seeds=over.get("seeds"), **kw),
        "denoising_loss_saliency": M.denoising_loss_saliency(net, SCHEDULE, images, context, n_draws=2,
                                                             seeds=over.get("seeds"), **kw),
        "denoising_loss_ig": M.denoising_loss_ig(net, SCHEDULE, images, context, n_draws=1, n_steps=8,
                                                 seeds=over.get("seeds"), **kw),
        "guidance_difference": M.guidance_difference(net, SCHEDULE, images, context, n_draws=2,
                                                     seeds=over.get("seeds"), **kw),
        "conditional_gain": M.conditional_gain(net, SCHEDULE, images, context, n_draws=2,
                                               seeds=over.get("seeds"), **kw),
    }


class NoisyEps(TinyEps):
    """TinyEps plus a large context-free term that follows x_t everywhere, as a trained denoiser's
    prediction does: |eps| then tracks the noise draw at every pixel, while what the class
    changes still lies in REGION only."""

    def forward(self, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        return 3.0 * x + super().forward(x, t, context)


def test_guided_noise_score_matches_the_formula(batch):
    images, labels = batch
    net = TinyEps().eval()
    gen = torch.Generator().manual_seed(0)
    path = [(t, torch.randn(images.shape, generator=gen)) for t in (5, 20, 45)]
    got = M.guided_noise_score(net, SCHEDULE, labels, path, w=1.5)
    want = torch.zeros(images.shape[0], 16, 16)
    with torch.no_grad():
        for t, x in path:
            tt = torch.full((len(x),), t)
            e_c, e_u = net(x, tt, labels), net(x, tt, net.null_context(labels))
            want += ((1 - SCHEDULE.alphabar[t]).sqrt().float() * (2.5 * e_c - 1.5 * e_u)).abs()[:, 0]
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-5, atol=1e-6)


def test_diffusion_score_sums_over_the_samplers_own_path(batch):
    _images, labels = batch
    net = TinyEps().eval()
    maps, samples = M.diffusion_score(net, SCHEDULE, labels, 6, w=1.0, steps=8, t_range=(10, 50),
                                      seeds=list(range(100, 106)), image_shape=(1, 16, 16), device="cpu")
    gens = [torch.Generator().manual_seed(s) for s in range(100, 106)]
    x_T = torch.stack([torch.randn((1, 16, 16), generator=g) for g in gens])
    want = torch.zeros(6, 16, 16, dtype=torch.float64)

    def record(t, x_t, eps):
        if t >= 10:
            want.add_(((1 - SCHEDULE.alphabar[t]).sqrt() * eps.double()).abs()[:, 0])

    ref = ddim_sample(net, x_T, SCHEDULE, labels, steps=8, w=1.0, generator=gens, callback=record)
    torch.testing.assert_close(samples, ref)
    np.testing.assert_allclose(maps, want.float().numpy(), rtol=1e-5, atol=1e-6)


ALL = ["diffusion_score", "diffusion_score_noised", "denoising_loss_saliency", "denoising_loss_ig",
       "guidance_difference", "conditional_gain"]


@pytest.mark.parametrize("name", ALL)
def test_maps_concentrate_where_the_class_acts(batch, name):
    """TinyEps reads and writes the class only inside REGION (a quarter of the image)."""
    images, labels = batch
    maps = _methods(TinyEps().eval(), images, labels)[name]
    assert maps.shape == (6, 16, 16) and maps.dtype == np.float32 and (maps >= 0).all()
    assert float(mass_in_region(maps).mean()) > 0.6


def test_condition_contrasts_match_their_formulas(batch):
    images, labels = batch
    net = TinyEps().eval()
    ts, seeds = [3, 17, 40], [5, 6, 7, 8, 9, 10]
    gd = M.guidance_difference(net, SCHEDULE, images, labels, timesteps=ts, n_draws=2, seeds=seeds, device="cpu")
    gain = M.conditional_gain(net, SCHEDULE, images, labels, timesteps=ts, n_draws=2, seeds=seeds, device="cpu")
    want_gd = torch.zeros(6, 16, 16, dtype=torch.float64)
    want_gain = torch.zeros(6, 16, 16, dtype=torch.float64)
    with torch.no_grad():
        for i, s in enumerate(seeds):
            noise = torch.randn((2 * len(ts), 1, 16, 16), generator=torch.Generator().manual_seed(s))
            for d in range(2):
                for j, t in enumerate(ts):
                    eps = noise[d * len(ts) + j : d * len(ts) + j + 1]
                    tt = torch.tensor([t])
                    x_t = SCHEDULE.q_sample(images[i : i + 1], tt, eps)
                    e_c = net(x_t, tt, labels[i : i + 1])
                    e_u = net(x_t, tt, net.null_context(labels[i : i + 1]))
                    scale = float((1 - SCHEDULE.alphabar[t]).sqrt())
                    want_gd[i] += (scale * (e_c - e_u)).abs()[0, 0].double() / 2
                    want_gain[i] += ((eps - e_u) ** 2 - (eps - e_c) ** 2)[0, 0].double() / 2
    np.testing.assert_allclose(gd, want_gd.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gain, want_gain.clamp(min=0).numpy(), rtol=1e-4, atol=1e-6)


def test_condition_contrasts_find_the_region_where_the_guided_noise_score_cannot(batch):
    """Known truth: NoisyEps's class acts in REGION only (a quarter of the pixels). The guided-noise
    magnitude is dominated by the context-free prediction, which follows the noise draw, so its
    mass spreads over the image; the condition contrasts are exactly 0 outside REGION."""
    images, labels = batch
    net = NoisyEps().eval()
    gd = M.guidance_difference(net, SCHEDULE, images, labels, n_draws=2, device="cpu")
    gain = M.conditional_gain(net, SCHEDULE, images, labels, n_draws=2, device="cpu")
    noised = M.diffusion_score_noised(net, SCHEDULE, images, labels, w=1.0, n_draws=2, device="cpu")
    np.testing.assert_allclose(mass_in_region(gd).numpy(), 1.0, atol=1e-6)
    np.testing.assert_allclose(mass_in_region(gain).numpy(), 1.0, atol=1e-6)
    assert float(mass_in_region(noised).mean()) < 0.5  # chance: 0.25


def test_condition_contrasts_need_a_condition(batch):
    images, labels = batch
    with pytest.raises(ValueError, match="context"):
        M.guidance_difference(TinyEps(), SCHEDULE, images, None, device="cpu")
    with pytest.raises(ValueError, match="n_draws"):
        M.conditional_gain(TinyEps(), SCHEDULE, images, labels, n_draws=0, device="cpu")


def test_batched_maps_equal_per_image_maps(batch):
    images, labels = batch
    net = TinyEps().eval()
    seeds = [11, 12, 13]
    batched = _methods(net, images[:3], labels[:3], seeds=seeds)
    single = [_methods(net, images[i : i + 1], labels[i : i + 1], seeds=[seeds[i]]) for i in range(3)]
    for name, maps in batched.items():
        np.testing.assert_allclose(maps, np.concatenate([s[name] for s in single]), rtol=1e-4, atol=1e-6, err_msg=name)


def test_maps_change_when_the_weights_are_reinitialised(batch):
    images, labels = batch
    trained = _methods(TinyEps(seed=0).eval(), images, labels, seeds=[1] * 6)
    random = _methods(TinyEps(seed=99).eval(), images, labels, seeds=[1] * 6)
    for name in trained:
        a = trained[name] / trained[name].sum((1, 2), keepdims=True)
        b = random[name] / random[name].sum((1, 2), keepdims=True)
        assert float(np.abs(a - b).sum((1, 2)).mean()) > 0.1, name


def test_loss_gradient_ig_internal_batch_size_and_context_expansion(batch):
    # 2 images x 10 timesteps x 2 draws = 40 rows; 100 makes Captum run 2 of the 6 steps at a time
    images, labels = batch
    net = TinyEps().eval()
    a = M.denoising_loss_ig(net, SCHEDULE, images[:2], labels[:2], n_draws=2, n_steps=6, device="cpu")
    b = M.denoising_loss_ig(net, SCHEDULE, images[:2], labels[:2], n_draws=2, n_steps=6,
                            internal_batch_size=100, device="cpu")
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("context_mode", ["class", "exemplar"])
def test_every_diffusion_method_runs_on_the_projects_unet(batch, context_mode):
    images, labels = batch
    torch.manual_seed(0)
    net = UNet(image_size=16, n_feat=8, channel_mults=(1, 2), context=context_mode, n_classes=2)
    torch.nn.init.normal_(net.conv_out.weight, std=0.05)  # the UNet starts at eps = 0
    context = labels if context_mode == "class" else images.flip(0)
    maps = _methods(net.eval(), images[:2], context[:2])
    for name, m in maps.items():
        assert m.shape == (2, 16, 16) and np.isfinite(m).all() and (m >= 0).all() and m.sum() > 0, name
    one = _methods(net, images[1:2], context[1:2], seeds=[1])
    for name, m in one.items():
        np.testing.assert_allclose(m[0], maps[name][1], rtol=1e-3, atol=1e-5, err_msg=name)


def test_bad_arguments_name_the_field(batch):
    images, labels = batch
    net = TinyEps()
    with pytest.raises(ValueError, match="timesteps"):
        M.denoising_loss_saliency(net, SCHEDULE, images, labels, timesteps=[0, 60], device="cpu")
    with pytest.raises(ValueError, match="seeds"):
        M.diffusion_score_noised(net, SCHEDULE, images, labels, seeds=[1], device="cpu")
    with pytest.raises(ValueError, match="context"):
        M.denoising_loss_saliency(net, SCHEDULE, images, labels[:2], device="cpu")
    with pytest.raises(ValueError, match="t_range"):
        M.diffusion_score(net, SCHEDULE, labels, 6, t_range=(40, 30), image_shape=(1, 16, 16), device="cpu")
    with pytest.raises(ValueError, match="sampler"):
        M.diffusion_score(net, SCHEDULE, labels, 6, sampler="euler", image_shape=(1, 16, 16), device="cpu")
