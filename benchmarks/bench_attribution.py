"""Attribution benchmark: maps per second for IntegratedGradients (n_steps 32) on a classifier
and for the diffusion guided-noise score along DDIM sampling paths, one batched call against a
loop of per-image calls, side by side in one run on one device.

`python -m benchmarks attribution [--device cpu] [--threads 1] [--n 64] [--n-resnet 8] [--n-diffusion 16]
[--critic-checkpoint PATH] [--no-write]`

`--critic-checkpoint` adds the one-shot critic's error on the 20 Omniglot runs, read from the
checkpoint `python -m models classifier protonet ... --eval-runs all_runs.zip` wrote.
"""

from __future__ import annotations

import argparse
import platform
import re
import time
from collections.abc import Callable
from pathlib import Path

import torch

from benchmarks.report import ROOT, markdown_table, write_section
from models.attribution import methods as M
from models.classifiers.backbones import build_classifier
from models.data import load_dataset
from models.device import pick_device
from models.diffusion.schedule import make_schedule
from models.diffusion.unet import UNet

CRITIC = re.compile(r"<!-- critic -->.*?<!-- /critic -->", re.S)


def _rate(fn: Callable[[], object], n: int, repeats: int = 2) -> float:
    """Best of `repeats` timings of fn(), as maps per second for n maps."""
    fn()  # warm-up (allocator, kernels)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return n / best


def bench_ig(device: torch.device, n: int, arch: str) -> list[object]:
    data = load_dataset("digits10", size=16)
    x, y = data.images[:n], data.labels[:n]
    torch.manual_seed(0)
    net = build_classifier(arch, 10).to(device).eval()
    batched = _rate(lambda: M.integrated_gradients(net, x, y, n_steps=32, device=device), n)
    loop = _rate(lambda: [M.integrated_gradients(net, x[i : i + 1], y[i : i + 1], n_steps=32, device=device)
                          for i in range(n)], n)
    return [f"IntegratedGradients, n_steps 32, {arch} 16 px", n, f"{batched:.1f}", f"{loop:.1f}", f"{batched / loop:.1f}x"]


def bench_diffusion(device: torch.device, n: int, steps: int) -> list[object]:
    torch.manual_seed(0)
    net = UNet(image_size=16, n_feat=16, channel_mults=(1, 2), context="class", n_classes=10).to(device).eval()
    torch.nn.init.normal_(net.conv_out.weight, std=0.05)  # untrained nets predict 0; timing only
    schedule = make_schedule("linear", 500)
    labels = torch.arange(n) % 10
    seeds = list(range(n))

    def batched() -> None:
        M.diffusion_score(net, schedule, labels, n, w=1.0, steps=steps, seeds=seeds, device=device)

    def loop() -> None:
        for i in range(n):
            M.diffusion_score(net, schedule, labels[i : i + 1], 1, w=1.0, steps=steps, seeds=seeds[i : i + 1],
                              device=device)

    b, lp = _rate(batched, n), _rate(loop, n)
    return [f"diffusion score, DDIM {steps} steps, w 1, UNet n_feat 16, 16 px", n, f"{b:.1f}", f"{lp:.1f}", f"{b / lp:.1f}x"]


def critic_block(path: Path) -> str:
    from models.classifiers.omniglot_runs import HUMAN_ERROR
    from models.classifiers.store import load_classifier

    _net, cfg, meta = load_classifier(path, device="cpu")
    if "one_shot_runs_error" not in meta:
        raise SystemExit(f"--critic-checkpoint: {path} was trained without --eval-runs")
    return (
        "<!-- critic -->\n"
        "One-shot critic (ProtoNet, Conv-4) on the 20 within-alphabet runs of Lake et al. (2015), "
        "20-way 1-shot, trained on the minimal background splits (images_background_small1/2) with "
        f"90-degree rotations as extra classes, {cfg.get('episodes')} episodes of {cfg.get('n_way')}-way "
        f"1-shot with {cfg.get('n_query')} queries, {cfg.get('size')} px, CPU:\n\n"
        + markdown_table(["", "error on the 20 runs"],
                         [["ProtoNet (this repo)", f"{100 * meta['one_shot_runs_error']:.1f}%"],
                          ["people (Lake et al. 2015)", f"{100 * HUMAN_ERROR:.1f}%"]])
        + "\n\nCommand: `python -m models classifier protonet --data omniglot --data-root "
        f"../shared/data/omniglot --size {cfg.get('size')} --episodes {cfg.get('episodes')} --n-way "
        f"{cfg.get('n_way')} --n-query {cfg.get('n_query')} --rotations --eval-runs "
        "../shared/data/omniglot/all_runs.zip --out critic.pt` (then `python -m benchmarks attribution "
        "--critic-checkpoint critic.pt`).\n<!-- /critic -->"
    )


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks attribution")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: steady on a shared machine)")
    p.add_argument("--n", type=int, default=64, help="images for IntegratedGradients")
    p.add_argument("--n-resnet", type=int, default=8, help="images for IntegratedGradients on ResNet-18")
    p.add_argument("--n-diffusion", type=int, default=16, help="samples for the diffusion score")
    p.add_argument("--ddim-steps", type=int, default=20)
    p.add_argument("--critic-checkpoint", type=Path, default=None)
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    rows = [bench_ig(device, args.n, "lenet"), bench_ig(device, args.n_resnet, "resnet18"),
            bench_diffusion(device, args.n_diffusion, args.ddim_steps)]
    table = markdown_table(["method", "maps", "batched maps/s", "per-image loop maps/s", "batched / loop"], rows)
    print(table)
    old = (ROOT / "BENCHMARKS.md").read_text()
    kept = CRITIC.search(old.split("<!-- section:attribution -->")[-1].split("<!-- /section:attribution -->")[0])
    critic = critic_block(args.critic_checkpoint) if args.critic_checkpoint else (kept.group(0) if kept else "")
    if critic:
        print(critic)
    cmd = "python -m benchmarks attribution" + (f" --device {args.device}" if args.device != "cpu" else "")
    md = (
        f"### Attribution maps per second ({device.type}, {args.threads} torch thread(s), "
        f"{platform.processor() or platform.machine()})\n\n"
        "One batched call against a loop of one-image calls, same maps (the tests check that they are "
        "equal), best of two timings after a warm-up."
        + (f" GPU figures come from `{cmd} --device cuda` on a GPU machine (also run by `make gpu-check`)."
           if device.type == "cpu" else "") + "\n\n"
        f"{table}\n\nCommand: `{cmd}`\n\n{critic}"
    )
    if not args.no_write:
        write_section("attribution", md)
    return 0
