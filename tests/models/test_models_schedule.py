"""Noise schedules: golden values against numpy, the forward process, bad arguments."""

import numpy as np
import pytest
import torch

from models.diffusion.schedule import make_schedule


def test_linear_alphabar_matches_numpy_cumprod():
    s = make_schedule("linear", 500, 1e-4, 0.02)
    betas = np.linspace(1e-4, 0.02, 500)
    alphabar = np.cumprod(1.0 - betas)
    for t in (1, 2, 10, 100, 250, 499, 500):
        assert float(s.alphabar[t]) == pytest.approx(alphabar[t - 1], rel=1e-12)
    assert float(s.alphabar[0]) == 1.0 and float(s.betas[0]) == 0.0


def test_linear_golden_values_by_hand():
    s = make_schedule("linear", 500, 1e-4, 0.02)
    assert float(s.betas[1]) == pytest.approx(1e-4)
    assert float(s.betas[500]) == pytest.approx(0.02)
    assert float(s.alphabar[1]) == pytest.approx(1 - 1e-4)
    # beta_2 = 1e-4 + (0.02 - 1e-4) / 499
    assert float(s.alphabar[2]) == pytest.approx((1 - 1e-4) * (1 - (1e-4 + 0.0199 / 499)), rel=1e-12)
    # pinned: prod_{t=1}^{500} (1 - beta_t) for this schedule
    assert float(s.alphabar[500]) == pytest.approx(0.0063527, rel=1e-4)  # ~exp(-sum beta) = exp(-5.025)
    assert float(s.alphabar[250]) == pytest.approx(0.2806853, rel=1e-5)


def test_cosine_schedule_shape():
    s = make_schedule("cosine", 100)
    ab = s.alphabar.numpy()
    assert ab[0] == 1.0 and np.all(np.diff(ab) < 0) and ab[-1] < 1e-3
    assert float(s.betas[1:].max()) <= 0.999
    f = lambda t: np.cos(((t / 100 + 0.008) / 1.008) * np.pi / 2) ** 2  # noqa: E731
    assert ab[50] == pytest.approx(f(50) / f(0), rel=1e-9)


def test_q_sample_formula():
    s = make_schedule("linear", 500)
    gen = torch.Generator().manual_seed(0)
    x0 = torch.randn(3, 1, 4, 4, generator=gen)
    noise = torch.randn(3, 1, 4, 4, generator=gen)
    t = torch.tensor([1, 250, 500])
    xt = s.q_sample(x0, t, noise)
    for i, ti in enumerate(t.tolist()):
        ab = float(s.alphabar[ti])  # the formula in float64, held to float32's tolerances
        expected = ab**0.5 * x0[i].double() + (1 - ab) ** 0.5 * noise[i].double()
        torch.testing.assert_close(xt[i].double(), expected, rtol=1.3e-6, atol=1e-5)
    assert torch.equal(s.q_sample(x0, torch.zeros(3, dtype=torch.long), noise), x0)


@pytest.mark.parametrize(
    "kwargs, field",
    [({"kind": "sigmoid", "T": 10}, "diffusion.schedule"), ({"kind": "linear", "T": 0}, "diffusion.T"),
     ({"kind": "linear", "T": 10, "beta_start": 0.1, "beta_end": 0.01}, "beta_start")],
)
def test_bad_arguments_raise_naming_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        make_schedule(**kwargs)
