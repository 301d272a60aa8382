"""The diffusion side on the device the run names (`--device`, cpu unless told; `make gpu-check`
runs these on CUDA): losses, gradients and DDIM samples match the CPU's, autocast stays close to
float32, and training on the device records it, learns, and leaves a checkpoint the CPU loads."""

import math

import pytest
import torch
from torch import nn

from models.config import config_from_dict
from models.diffusion.schedule import make_schedule
from models.diffusion.store import load_diffusion
from models.diffusion.training import diffusion_loss, train
from models.diffusion.unet import UNet
from models.sample import generate

SCHEDULE = make_schedule("linear", 100)
MODES = ["none", "class", "exemplar", "set"]


def _net(mode: str) -> UNet:
    torch.manual_seed(0)
    net = UNet(16, 8, (1, 2), 1, mode, n_classes=3 if mode == "class" else 0, set_width=8)
    nn.init.normal_(net.conv_out.weight, std=0.1)  # a zero output layer would hide every other layer
    return net


def _context(mode: str, n: int, gen: torch.Generator) -> torch.Tensor | None:
    if mode == "class":
        return torch.randint(0, 3, (n,), generator=gen)
    if mode == "exemplar":
        return torch.sign(torch.randn(n, 1, 16, 16, generator=gen))
    if mode == "set":
        return torch.sign(torch.randn(n, 3, 1, 16, 16, generator=gen))
    return None


def _to(x: torch.Tensor | None, device) -> torch.Tensor | None:
    return None if x is None else x.to(device)


@pytest.mark.parametrize("mode", MODES)
def test_loss_and_gradients_on_the_device_match_the_cpu(torch_device, mode):
    gen = torch.Generator().manual_seed(1)
    x0 = torch.sign(torch.randn(4, 1, 16, 16, generator=gen))
    noise = torch.randn(4, 1, 16, 16, generator=gen)
    t = torch.randint(1, SCHEDULE.T + 1, (4,), generator=gen)
    ctx = _context(mode, 4, gen)

    def loss_and_grads(device):
        net = _net(mode).to(device)
        loss = diffusion_loss(net, x0.to(device), t.to(device), noise.to(device), _to(ctx, device), SCHEDULE)
        loss.backward()
        grads = {n: p.grad.cpu() for n, p in net.named_parameters() if p.grad is not None}
        return float(loss.detach()), grads

    ref_loss, ref_grads = loss_and_grads("cpu")
    loss, grads = loss_and_grads(torch_device)
    assert math.isfinite(loss) and loss > 0.1  # the random output layer predicts far from the noise
    assert loss == pytest.approx(ref_loss, rel=1e-4)
    assert grads.keys() == ref_grads.keys() and len(grads) > 20
    for name, g in ref_grads.items():
        assert g.abs().sum() > 0 or name.startswith(("class_emb", "null_set")), f"{name}: no gradient"
        torch.testing.assert_close(grads[name], g, rtol=1e-3, atol=1e-5 * float(g.abs().max()) + 1e-8,
                                   msg=lambda m, name=name: f"{name}: {m}")


@pytest.mark.parametrize("w", [0.0, 1.5])
def test_ddim_samples_on_the_device_match_the_cpu_and_do_not_depend_on_the_batch(torch_device, w):
    labels, seeds = torch.tensor([0, 1, 2, 0]), [5, 6, 7, 8]
    ref = generate(_net("class").eval(), SCHEDULE, labels, seeds, w=w, steps=10, device="cpu")
    net = _net("class").eval().to(torch_device)
    got = generate(net, SCHEDULE, labels, seeds, w=w, steps=10, device=torch_device)
    assert got.device.type == torch_device.type and got.shape == (4, 1, 16, 16)
    assert float(got.abs().max()) <= 1.0 and float(got.std()) > 0.05
    torch.testing.assert_close(got.cpu(), ref, rtol=0, atol=1e-3)
    alone = generate(net, SCHEDULE, labels[2:3], seeds[2:3], w=w, steps=10, device=torch_device)
    torch.testing.assert_close(alone, got[2:3], rtol=0, atol=1e-4)  # per-sample noise generators


def test_the_unet_under_bfloat16_autocast_stays_close_to_float32(torch_device):
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(8, 1, 16, 16, generator=gen).to(torch_device)
    t = torch.randint(1, SCHEDULE.T + 1, (8,), generator=gen).to(torch_device)
    for mode in MODES:
        net = _net(mode).eval().to(torch_device)
        ctx = _to(_context(mode, 8, gen), torch_device)
        with torch.no_grad():
            ref = net(x, t, ctx)
            with torch.autocast(torch_device.type, dtype=torch.bfloat16):
                low = net(x, t, ctx)
        assert low.dtype == torch.bfloat16, f"{mode}: autocast did not run the convolutions in bfloat16"
        err = float((low.float() - ref).norm() / ref.norm())
        assert err < 0.05, f"{mode}: bfloat16 output {err:.3f} (relative) from float32"


def test_training_on_the_device_learns_and_its_checkpoint_loads_on_the_cpu(torch_device, tmp_path):
    cfg = config_from_dict({
        "name": "device", "seed": 3,
        "data": {"dataset": "digits10", "size": 8, "heldout_classes": 2, "max_per_class": 40},
        "model": {"context": "exemplar", "n_feat": 8, "channel_mults": [1, 2]},
        "diffusion": {"T": 50},
        "training": {"steps": 80, "batch_size": 32, "lr": 3e-3, "warmup": 5, "log_every": 10,
                     "p_uncond": 0.1},
    })
    result = train(cfg, tmp_path, device=torch_device, progress=False)
    m = result.metrics
    assert m["device"].split(":")[0] == torch_device.type
    assert m["amp"] is (torch_device.type == "cuda")  # mixed precision on CUDA only
    assert m["loss_last"] < 0.75 * m["loss_first"], m["loss_history"]
    net, loaded_cfg, _ = load_diffusion(result.checkpoint, "cpu")
    assert loaded_cfg == cfg and {p.device.type for p in net.parameters()} == {"cpu"}
    x = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        out = net(x, torch.tensor([10, 40]), torch.sign(torch.randn(2, 1, 8, 8)))
    assert torch.isfinite(out).all() and float(out.abs().max()) > 0
