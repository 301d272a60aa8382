"""Models benchmark: our UNet vs diffusers' UNet2DModel (matched parameter count, same batch, same
data, side by side in one run) for training and sampling images/s on this machine's device; and
DDIM-50's quality loss against full DDPM as a Frechet distance in the features of a small encoder
trained here on the same data.

`python -m benchmarks models [--device cpu] [--threads 1] [--batch 64] [--train-steps 600]
[--n-fd 300] [--no-write]`
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
import torch.nn.functional as F
from scipy import linalg
from torch import nn

from benchmarks.report import markdown_table, write_section
from models.config import config_from_dict
from models.data import load_dataset
from models.device import pick_device
from models.diffusion.samplers import ddim_sample, ddpm_sample
from models.diffusion.schedule import make_schedule
from models.diffusion.training import build_network, train

SIZE, T = 16, 500


class DiffusersAdapter(nn.Module):
    """diffusers' UNet2DModel behind our call signature eps = net(x, t, context)."""

    def __init__(self, unet: nn.Module) -> None:
        super().__init__()
        self.unet, self.image_size = unet, SIZE

    def null_context(self, context):
        return context

    def forward(self, x, t, context=None):
        return self.unet(x, t).sample


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def diffusers_unet(widths: tuple[int, int]) -> nn.Module:
    from diffusers import UNet2DModel

    return UNet2DModel(
        sample_size=SIZE, in_channels=1, out_channels=1, layers_per_block=1,
        block_out_channels=widths, down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"), norm_num_groups=4, add_attention=False,
    )


def matched_diffusers(target: int, first: int) -> tuple[DiffusersAdapter, tuple[int, int]]:
    """The diffusers UNet (no attention, 2 levels like ours, the same full-resolution width
    `first`) whose second width (a multiple of 4) gives the parameter count closest to `target`."""
    options = [(first, b) for b in range(first, 4 * first + 1, 4)]
    best = min(options, key=lambda w: abs(n_params(diffusers_unet(w)) - target))
    return DiffusersAdapter(diffusers_unet(best)), best


def time_training(net: nn.Module, data: torch.Tensor, batch: int, steps: int, dev: torch.device) -> float:
    """Images/s of AdamW training steps (forward, MSE, backward, step) after 2 warm-up steps."""
    sched = make_schedule("linear", T)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
    gen = torch.Generator().manual_seed(0)
    net.train()

    def step():
        idx = torch.randint(len(data), (batch,), generator=gen)
        x0, noise = data[idx].to(dev), torch.randn(batch, 1, SIZE, SIZE, generator=gen).to(dev)
        t = torch.randint(1, T + 1, (batch,), generator=gen).to(dev)
        loss = F.mse_loss(net(sched.q_sample(x0, t, noise), t, None), noise)
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(2):
        step()
    _sync(dev)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(dev)
    return batch * steps / (time.perf_counter() - start)


def time_sampling(net: nn.Module, batch: int, sampler: str, dev: torch.device) -> float:
    """Images/s of one sampling run of `batch` images (DDIM 50 steps or DDPM T steps)."""
    sched = make_schedule("linear", T)
    net.eval()
    x = torch.randn(batch, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(0)).to(dev)
    _sync(dev)
    start = time.perf_counter()
    if sampler == "ddim":
        ddim_sample(net, x, sched, None, steps=50)
    else:
        ddpm_sample(net, x, sched, None, generator=torch.Generator().manual_seed(1))
    _sync(dev)
    return batch / (time.perf_counter() - start)


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


class Encoder(nn.Module):
    """A small CNN digit classifier; its 64-d penultimate layer is the feature space of the FD."""

    def __init__(self, n_classes: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * (SIZE // 4) ** 2, 64), nn.ReLU(),
        )
        self.head = nn.Linear(64, n_classes)

    def forward(self, x):
        return self.head(self.body(x))


def train_encoder(images: torch.Tensor, labels: torch.Tensor, steps: int = 300) -> tuple[Encoder, float]:
    """Train on 80% of the images; return the encoder and its accuracy on the other 20%."""
    gen = torch.Generator().manual_seed(0)
    perm = torch.randperm(len(images), generator=gen)
    cut = int(0.8 * len(images))
    tr, te = perm[:cut], perm[cut:]
    enc = Encoder(int(labels.max()) + 1)
    opt = torch.optim.Adam(enc.parameters(), lr=2e-3)
    for _ in range(steps):
        idx = tr[torch.randint(len(tr), (128,), generator=gen)]
        loss = F.cross_entropy(enc(images[idx]), labels[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    enc.eval()
    with torch.no_grad():
        acc = float((enc(images[te]).argmax(1) == labels[te]).float().mean())
    return enc, acc


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """FD between Gaussians fitted to feature sets a (N, D) and b (M, D)."""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean, _ = linalg.sqrtm(s1 @ s2, disp=False)
    covmean = covmean.real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks models", description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1, help="torch threads (the dev machine's cores are shared)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--timing-steps", type=int, default=15)
    p.add_argument("--repeats", type=int, default=5,
                   help="alternating timing rounds; the best round is kept (least disturbed by other jobs)")
    p.add_argument("--train-steps", type=int, default=600, help="training of the model used for the FD")
    p.add_argument("--n-fd", type=int, default=300, help="samples per sampler for the FD")
    p.add_argument("--no-write", action="store_true", help="print only, leave BENCHMARKS.md alone")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    dev = pick_device(args.device)
    load_start = os.getloadavg()[0]
    t0 = time.perf_counter()
    data = load_dataset("digits10", None, SIZE)
    base = config_from_dict({"name": "bench", "data": {"dataset": "digits10", "size": SIZE, "heldout_classes": 0},
                             "model": {"context": "none", "n_feat": 16, "channel_mults": [1, 2]},
                             "diffusion": {"T": T}})
    torch.manual_seed(0)
    ours = build_network(base, 0).to(dev)
    theirs, width = matched_diffusers(n_params(ours), base.model.n_feat)
    theirs = theirs.to(dev)
    nets = {"ours": ours, "diffusers": theirs}
    res: dict[str, dict[str, list[float]]] = {k: {"train": [], "ddim": [], "ddpm": []} for k in nets}
    for _ in range(args.repeats):  # alternate so both see the same machine load
        for name, net in nets.items():
            res[name]["train"].append(time_training(net, data.images, args.batch, args.timing_steps, dev))
            res[name]["ddim"].append(time_sampling(net, args.batch, "ddim", dev))
    for _ in range(2):
        for name, net in nets.items():
            res[name]["ddpm"].append(time_sampling(net, args.batch, "ddpm", dev))
    med = {k: {m: max(v) for m, v in r.items()} for k, r in res.items()}
    po, pd = n_params(ours), n_params(theirs)

    # quality: a model trained here, sampled with DDPM-500 and DDIM-50 from the same x_T
    qcfg = config_from_dict({**base.to_dict(), "seed": 0, "training": {
        "steps": args.train_steps, "batch_size": 64, "lr": 3e-3, "warmup": 50, "ema_decay": 0.995,
        "log_every": 50, "checkpoint_every": args.train_steps}})
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        result = train(qcfg, tmp, device=dev, progress=False)
        from models.diffusion.store import load_diffusion

        model, _, _ = load_diffusion(result.checkpoint, dev)
    sched = make_schedule("linear", T)
    x_T = torch.randn(args.n_fd, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(5)).to(dev)
    ddpm_x = ddpm_sample(model, x_T, sched, None, generator=torch.Generator().manual_seed(6)).cpu()
    ddim_x = ddim_sample(model, x_T, sched, None, steps=50).cpu()
    enc, enc_acc = train_encoder(data.images, data.labels)
    with torch.no_grad():
        feats = {k: enc.body(torch.sign(v)).numpy() for k, v in
                 {"ddpm": ddpm_x, "ddim": ddim_x}.items()}
        perm = torch.randperm(len(data), generator=torch.Generator().manual_seed(7))
        real_a = enc.body(data.images[perm[: args.n_fd]]).numpy()
        real_b = enc.body(data.images[perm[args.n_fd : 2 * args.n_fd]]).numpy()
    fd = {
        "real vs real (noise floor, two disjoint draws)": frechet_distance(real_a, real_b),
        "real vs DDPM-500": frechet_distance(real_a, feats["ddpm"]),
        "real vs DDIM-50": frechet_distance(real_a, feats["ddim"]),
        "DDPM-500 vs DDIM-50": frechet_distance(feats["ddpm"], feats["ddim"]),
    }
    elapsed = time.perf_counter() - t0
    load = f"load average {load_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end"

    def per_param(v: float, n: int) -> float:
        return v * n / 1e6

    rows = [
        ["parameters", f"{po:,}", f"{pd:,} (widths {width[0]}, {width[1]})", f"{pd / po:.2f}"],
        ["training images/s", f"{med['ours']['train']:.0f}", f"{med['diffusers']['train']:.0f}",
         f"{med['ours']['train'] / med['diffusers']['train']:.2f}x"],
        ["training images/s x M params", f"{per_param(med['ours']['train'], po):.1f}",
         f"{per_param(med['diffusers']['train'], pd):.1f}",
         f"{per_param(med['ours']['train'], po) / per_param(med['diffusers']['train'], pd):.2f}x"],
        ["sampling images/s, DDIM 50 steps", f"{med['ours']['ddim']:.1f}", f"{med['diffusers']['ddim']:.1f}",
         f"{med['ours']['ddim'] / med['diffusers']['ddim']:.2f}x"],
        ["sampling images/s, DDPM 500 steps", f"{med['ours']['ddpm']:.2f}", f"{med['diffusers']['ddpm']:.2f}",
         f"{med['ours']['ddpm'] / med['diffusers']['ddpm']:.2f}x"],
        ["sampling images/s x M params, DDIM 50", f"{per_param(med['ours']['ddim'], po):.2f}",
         f"{per_param(med['diffusers']['ddim'], pd):.2f}",
         f"{per_param(med['ours']['ddim'], po) / per_param(med['diffusers']['ddim'], pd):.2f}x"],
    ]
    qrows = [[k, f"{v:.2f}"] for k, v in fd.items()]
    cmd = "python -m benchmarks models " + " ".join(argv)
    md = "\n".join([
        "### Models: our UNet vs diffusers' UNet2DModel, and DDIM-50 vs DDPM-500",
        "",
        f"Command: `{cmd.strip()}` ({elapsed:.0f} s). Device: **{dev}** with {args.threads} torch "
        f"thread(s), {load}; no GPU was lent to this session, so there are no GPU figures. Both networks: "
        f"16x16 digits, 2 resolution levels, 1 residual block per level, no attention, batch {args.batch}, "
        f"T = {T}; timings alternate between the two nets (best of {args.repeats} rounds; DDPM best of 2) because the "
        "development machine's 2 cores are shared with other jobs. Ratio = ours / diffusers.",
        "",
        markdown_table(["measure", "ours (models.diffusion.unet)", "diffusers UNet2DModel", "ratio"], rows),
        "",
        f"Quality: an unconditional model ({pc(po)} params) trained here for {args.train_steps} steps, "
        f"{args.n_fd} samples per sampler from the same initial noise; Frechet distance in the 64-d "
        f"penultimate features of a small CNN trained here on the digits (held-out accuracy "
        f"{enc_acc:.2f}); samples binarised like the data.",
        "",
        markdown_table(["Frechet distance", "value"], qrows),
    ])
    print(md)
    if not args.no_write:
        write_section("models", md)
    return 0


def pc(n: int) -> str:
    return f"{n / 1e3:.0f}k"
