"""Training-recipe pieces: the shifted schedule, v-prediction, min-SNR weights, the learning-rate
schedule, the EMA warm-up, DPM-Solver++(2M) against the exact probability-flow solution, one
sampler signature, and pinned full-loop sampler values."""

import inspect
import math

import pytest
import torch
from torch import nn

from models.config import ConfigError, config_from_dict
from models.diffusion.samplers import SAMPLERS, ddim_sample, dpmpp_2m_sample, get_sampler
from models.diffusion.schedule import make_schedule, shift_alphabar
from models.diffusion.store import load_diffusion
from models.diffusion.training import (
    diffusion_loss,
    ema_decay_at,
    learning_rate,
    loss_weights,
    train,
)
from models.diffusion.unet import UNet
from models.sample import generate, schedule_of


class GaussianOracle(nn.Module):
    """Exact eps for data x0 ~ N(0, s^2) per pixel: E[eps | x_t] = sqrt(1 - ab) x_t / (ab s^2 + 1 - ab)."""

    def __init__(self, schedule, s):
        super().__init__()
        self.schedule, self.s = schedule, s

    def null_context(self, context):
        return context

    def forward(self, x, t, context=None):
        ab = self.schedule.coef("alphabar", t, x)
        return (1 - ab).sqrt() * x / (ab * self.s**2 + 1 - ab)


@pytest.mark.parametrize("kind", ["linear", "cosine"])
@pytest.mark.parametrize("shift", [0.5, 2.0])
def test_shift_divides_the_snr_and_keeps_betas_consistent(kind, shift):
    base, shifted = make_schedule(kind, 100), make_schedule(kind, 100, snr_shift=shift)
    def snr(ab):
        return ab[1:] / (1 - ab[1:])

    assert torch.allclose(snr(shifted.alphabar), snr(base.alphabar) / shift**2, rtol=1e-9)
    assert float(shifted.alphabar[0]) == 1.0
    assert torch.allclose(torch.cumprod(1 - shifted.betas, 0), shifted.alphabar, rtol=1e-9)
    with pytest.raises(ValueError, match="snr_shift"):
        shift_alphabar(base.alphabar, 0.0)


def test_v_prediction_network_returns_eps_from_its_v_output():
    sched = {"kind": "cosine", "T": 50}
    torch.manual_seed(0)
    net = UNet(8, 4, (1, 2), 1, "class", n_classes=2, prediction="v", schedule=sched).eval()
    nn.init.normal_(net.conv_out.weight, std=0.1)
    x, t, c = torch.randn(3, 1, 8, 8), torch.tensor([1, 25, 50]), torch.tensor([0, 1, 2])
    ab = make_schedule(**sched).alphabar.float()[t].view(-1, 1, 1, 1)
    v = net(x, t, c, raw=True)
    assert torch.allclose(net(x, t, c), ab.sqrt() * v + (1 - ab).sqrt() * x, atol=1e-6)
    with pytest.raises(ValueError, match="prediction"):
        UNet(8, 4, prediction="x0", schedule=sched)
    with pytest.raises(ValueError, match="schedule"):
        UNet(8, 4, prediction="v")


@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_loss_is_zero_for_the_exact_target_and_weights_follow_min_snr(prediction):
    schedule = make_schedule("linear", 100)
    x0, noise = torch.randn(6, 1, 4, 4), torch.randn(6, 1, 4, 4)
    t = torch.tensor([1, 10, 30, 50, 80, 100])
    ab = schedule.coef("alphabar", t, x0)
    target = noise if prediction == "eps" else ab.sqrt() * noise - (1 - ab).sqrt() * x0

    class Exact(nn.Module):
        def forward(self, x, tt, context=None, raw=False):
            return target

    for weighting in ("uniform", "min_snr"):
        assert float(diffusion_loss(Exact(), x0, t, noise, None, schedule, prediction, weighting)) == 0.0

    w = loss_weights(schedule, t, prediction, "min_snr", 5.0, x0)
    ab64 = schedule.alphabar[t]
    snr = ab64 / (1 - ab64)
    expect = snr.clamp(max=5.0) / (snr if prediction == "eps" else snr + 1)
    assert torch.allclose(w, expect.float(), rtol=1e-6)
    # low-noise steps (SNR > gamma) are down-weighted, high-noise ones are not for eps
    assert float(w[0]) < 0.01
    if prediction == "eps":
        assert float(w[-1]) == pytest.approx(1.0)
    assert loss_weights(schedule, t, prediction, "uniform", 5.0, x0) is None


def test_learning_rate_warms_up_then_decays_by_cosine():
    def lr(step, kind="cosine"):
        return learning_rate(1.0, step, 110, 10, kind)

    assert lr(0) == pytest.approx(0.1) and lr(9) == pytest.approx(1.0)
    assert lr(10) == pytest.approx(1.0) and lr(60) == pytest.approx(0.5) and lr(110) == pytest.approx(0.0)
    assert lr(60, "constant") == 1.0
    assert all(lr(s) >= lr(s + 1) for s in range(10, 110))


def test_ema_warmup_only_when_asked():
    assert ema_decay_at(0.999, 0, True) == pytest.approx(0.1)
    assert ema_decay_at(0.999, 0, False) == 0.999
    assert ema_decay_at(0.999, 10**6, True) == 0.999


def test_samplers_share_one_signature():
    sigs = {name: inspect.signature(fn) for name, fn in SAMPLERS.items()}
    params = {name: [(p.name, p.kind) for p in s.parameters.values()] for name, s in sigs.items()}
    assert len({tuple(p) for p in params.values()}) == 1, params
    with pytest.raises(ValueError, match="sampler"):
        get_sampler("euler")


def test_dpmpp_2m_is_closer_to_the_exact_ode_solution_than_ddim_at_few_steps():
    # For x0 ~ N(0, s^2) the probability-flow ODE maps x_T to x_T * s / sqrt(ab_T s^2 + 1 - ab_T).
    s = 0.3
    schedule = make_schedule("linear", 500)
    oracle = GaussianOracle(schedule, s)
    x_T = torch.randn(500, 1, 4, 4, generator=torch.Generator().manual_seed(3))
    ab_T = float(schedule.alphabar[-1])
    exact = x_T * s / math.sqrt(ab_T * s**2 + 1 - ab_T)
    errors = {}
    for steps in (10, 15, 25):
        d = float((dpmpp_2m_sample(oracle, x_T, schedule, None, steps=steps) - exact).abs().mean())
        e = float((ddim_sample(oracle, x_T, schedule, None, steps=steps) - exact).abs().mean())
        assert d < e, (steps, d, e)
        errors[steps] = d
    assert errors[25] < errors[15] < errors[10]
    assert errors[25] < 0.05 * float(exact.abs().mean())


# Pinned full-loop values of a fixed tiny network on the CPU: a change in noise order, timestep grid
# or update rule changes every stimulus, so it must change these numbers on purpose.
PINNED = {"ddpm": (0.1288, 158.047), "ddim": (0.0699, 134.924), "dpmpp_2m": (0.0677, 135.7528)}


@pytest.mark.parametrize("name", sorted(PINNED))
def test_full_loop_values_are_pinned(name):
    torch.manual_seed(0)
    net = UNet(8, 8, (1, 2), 1, "class", n_classes=3).eval()
    nn.init.normal_(net.conv_out.weight, std=0.1)
    schedule = make_schedule("linear", 50)
    x_T = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    steps = 50 if name == "ddpm" else 10
    x = SAMPLERS[name](net, x_T, schedule, torch.tensor([0, 1, 2]), steps=steps, w=1.0,
                       generator=torch.Generator().manual_seed(1))
    mean, abs_sum = PINNED[name]
    assert float(x.mean()) == pytest.approx(mean, abs=2e-4)
    assert float(x.abs().sum()) == pytest.approx(abs_sum, rel=2e-4)


def _cfg(**sections):
    base = {
        "name": "recipe", "seed": 0,
        "data": {"dataset": "digits10", "size": 8, "heldout_classes": 2, "max_per_class": 10},
        "model": {"context": "class", "n_feat": 4, "channel_mults": [1, 2]},
        "diffusion": {"T": 20, "schedule": "cosine", "prediction": "v", "snr_shift": 2.0},
        "training": {"steps": 4, "batch_size": 8, "log_every": 1, "p_uncond": 0.1,
                     "lr_schedule": "cosine", "loss_weighting": "min_snr", "ema_warmup": False},
        "sampling": {"sampler": "dpmpp_2m", "steps": 5},
    }
    for key, value in sections.items():
        base[key] = {**base[key], **value}
    return config_from_dict(base)


def test_a_v_prediction_checkpoint_round_trips_and_samples(tmp_path):
    result = train(_cfg(), tmp_path, device="cpu", progress=False)
    net, cfg, _ = load_diffusion(result.checkpoint, "cpu")
    assert net.prediction == "v" and cfg.diffusion.snr_shift == 2.0
    x = generate(net, schedule_of(cfg), torch.tensor([0, 1]), [1, 2], w=1.0, sampler="dpmpp_2m", steps=5)
    assert x.shape == (2, 1, 8, 8) and torch.isfinite(x).all()


@pytest.mark.parametrize(("section", "field", "value", "match"), [
    ("diffusion", "prediction", "x0", "diffusion.prediction"),
    ("diffusion", "snr_shift", 0.0, "diffusion.snr_shift"),
    ("training", "lr_schedule", "step", "training.lr_schedule"),
    ("training", "loss_weighting", "p2", "training.loss_weighting"),
    ("training", "min_snr_gamma", -1.0, "training.min_snr_gamma"),
    ("sampling", "sampler", "euler", "sampling.sampler"),
])
def test_bad_recipe_fields_name_the_field(section, field, value, match):
    with pytest.raises(ConfigError, match=match):
        _cfg(**{section: {field: value}})


def test_training_steps_draw_reproducible_batches_and_update_net_and_ema():
    from models.diffusion.context import ContextSampler
    from models.diffusion.training import (
        amp_settings,
        draw_batch,
        load_training_data,
        new_state,
        optimisation_step,
    )

    cfg = _cfg(diffusion={"prediction": "eps", "snr_shift": 1.0})
    train_set, _, _ = load_training_data(cfg)
    contexts = ContextSampler(train_set, cfg.model.context, cfg.model.set_size)
    state = new_state(cfg, len(train_set.class_names), torch.device("cpu"), 0)
    twin = new_state(cfg, len(train_set.class_names), torch.device("cpu"), 0)
    a = draw_batch(train_set, contexts, state.net, cfg, 20, state.gen)
    b = draw_batch(train_set, contexts, twin.net, cfg, 20, twin.gen)
    assert all(torch.equal(x, y) for x, y in zip((a.x0, a.t, a.noise, a.context), (b.x0, b.t, b.noise, b.context), strict=True))
    assert a.x0.shape == (cfg.training.batch_size, 1, 8, 8) and 1 <= int(a.t.min()) and int(a.t.max()) <= 20
    amp_dtype, scaler = amp_settings(cfg, torch.device("cpu"))
    assert amp_dtype is None
    before = [p.detach().clone() for p in state.net.parameters()]
    ema_before = [p.detach().clone() for p in state.ema.parameters()]
    loss = optimisation_step(state, state.net, a, make_schedule("cosine", 20, snr_shift=1.0), cfg, scaler, amp_dtype)
    assert state.step == 1 and torch.isfinite(loss)
    assert any(not torch.equal(p, q) for p, q in zip(state.net.parameters(), before, strict=True))
    # no EMA warm-up in this config: ema = 0.995 ema + 0.005 net
    for e0, e1, p1 in zip(ema_before, state.ema.parameters(), state.net.parameters(), strict=True):
        torch.testing.assert_close(e1, 0.995 * e0 + 0.005 * p1.detach())
