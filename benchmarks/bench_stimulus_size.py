"""Stimulus size: train the embedded digits' models larger, or render the 16-px stimuli smoothly?

`python -m benchmarks stimulus_size [--rounds 3] [--no-write]`

Two measurements decide how a participant gets to see a drawing instead of 16x16 blocks:

1. Cost. CPU time (both torch threads; robust to other jobs on a shared machine, unlike wall
   time) per image of the tiny profile's UNets (models/configs/tiny_cfgdm.toml and
   tiny_fsdm.toml) at 16, 24 and 32 px: an AdamW training step at batch 64, and DDIM sampling
   (20 steps, guidance w = 1, so two passes per step) of a batch of 64. Best of `--rounds`
   interleaved rounds, on random data (the cost does not depend on the pixels).
2. Fidelity. Each of the 1,797 scikit-learn digits as a drawing: its 8x8 grid enlarged
   bilinearly to 512 px and thresholded at half ink. Against it, the share of wrong pixels of
   what a participant sees: the training image at 16, 24 or 32 px (8 -> N bilinear, threshold,
   models.data.digits) enlarged nearest-neighbour, or the 16-px image rendered by the study's
   `smooth` display (study/display.py) at several blur widths, with its cost per image.

Writes the section `stimulus-size` of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from benchmarks.report import ROOT, markdown_table, write_section  # noqa: E402

SIZES = (16, 24, 32)
BLURS = (0.0, 0.5, 0.7, 0.9, 1.2)
DISPLAY_PX = 512


def _cost(rounds: int) -> dict[tuple[int, str], tuple[float, float]]:
    """{(size, model): (training images per CPU-s, sampled images per CPU-s)}, best of rounds."""
    from models.config import config_from_dict, load_config
    from models.diffusion.samplers import ddim_sample
    from models.diffusion.schedule import make_schedule
    from models.diffusion.training import build_network, diffusion_loss

    best: dict[tuple[int, str], tuple[float, float]] = {}
    batch = 64
    schedule = make_schedule("linear", 500, 1e-4, 0.02)
    for _ in range(rounds):
        for size in SIZES:
            for name in ("cfgdm", "fsdm"):
                raw = load_config(ROOT / "models" / "configs" / f"tiny_{name}.toml").to_dict()
                raw["data"]["size"] = size
                cfg = config_from_dict(raw)
                torch.manual_seed(0)
                net = build_network(cfg, 30)
                opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
                x0 = torch.randn(batch, 1, size, size)
                shape = (batch, cfg.model.set_size, 1, size, size) if cfg.model.context == "set" else (batch, 1, size, size)
                ctx = torch.randn(shape)

                def step() -> None:
                    t = torch.randint(1, 501, (batch,))
                    loss = diffusion_loss(net, x0, t, torch.randn_like(x0), ctx, schedule)  # noqa: B023
                    opt.zero_grad()  # noqa: B023
                    loss.backward()
                    opt.step()  # noqa: B023

                for _ in range(3):
                    step()
                n = 20
                t0 = time.process_time()
                for _ in range(n):
                    step()
                train = n * batch / (time.process_time() - t0)
                net.eval()
                with torch.no_grad():
                    t0 = time.process_time()
                    ddim_sample(net, torch.randn(batch, 1, size, size), schedule, ctx, steps=20, w=1.0)
                    sample = batch / (time.process_time() - t0)
                old = best.get((size, name), (0.0, 0.0))
                best[(size, name)] = (max(old[0], train), max(old[1], sample))
    return best


def _fidelity() -> tuple[dict[str, float], dict[float, tuple[float, float, float]], float]:
    """({display: error}, {blur: (error, ms per image, PNG bytes)}, truth's ink share)."""
    from models.data.digits import load_digits, read_sklearn_digits
    from models.data.preprocess import tensor_to_png_array
    from study.display import png_bytes, render
    from study.settings import DisplaySettings

    img8, _ = read_sklearn_digits()
    x = torch.from_numpy((img8 / 16.0).astype(np.float32)).unsqueeze(1)
    up = torch.nn.functional.interpolate(x, size=(DISPLAY_PX, DISPLAY_PX), mode="bilinear", align_corners=False)
    truth = (up[:, 0] >= 0.5).numpy()
    errors = {}
    stored16 = []
    for size in SIZES:
        data = load_digits(size, augment=("id",))
        stored = [Image.fromarray(tensor_to_png_array(im)) for im in data.images]
        if size == 16:
            stored16 = stored
        shown = np.stack([np.asarray(s.resize((DISPLAY_PX,) * 2, Image.Resampling.NEAREST)) < 128 for s in stored])
        errors[f"{size} px, nearest-neighbour"] = float(np.mean(shown != truth))
    smooth = {}
    for blur in BLURS:
        display = DisplaySettings(size=DISPLAY_PX, blur=blur)
        t0 = time.perf_counter()
        rendered = [render(s, display) for s in stored16]
        ms = (time.perf_counter() - t0) / len(rendered) * 1e3
        shown = np.stack([np.asarray(r) < 128 for r in rendered])
        n_bytes = float(np.mean([len(png_bytes(r)) for r in rendered[:100]]))
        smooth[blur] = (float(np.mean(shown != truth)), ms, n_bytes)
    return errors, smooth, float(truth.mean())


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks stimulus_size", description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--no-write", action="store_true", help="print only, leave BENCHMARKS.md alone")
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    cost = _cost(args.rounds)
    errors, smooth, ink = _fidelity()

    rows = []
    for (size, name), (train, sample) in sorted(cost.items()):
        base_train, base_sample = cost[(16, name)]
        rows.append([name, f"{size} px", f"{train:,.0f}", f"{base_train / train:.1f}x", f"{sample:,.1f}",
                     f"{base_sample / sample:.1f}x"])
    cost_md = markdown_table(["model", "size", "training images per CPU-s", "training cost vs 16 px",
                              "DDIM-20 samples per CPU-s", "sampling cost vs 16 px"], rows)
    fid_rows = [[k, f"{v:.4f}", "-", "-"] for k, v in errors.items()]
    fid_rows += [[f"16 px, smooth display, blur {b:g}", f"{e:.4f}", f"{ms:.1f}", f"{nb:,.0f}"]
                 for b, (e, ms, nb) in smooth.items()]
    fid_md = markdown_table(["what the participant sees", "wrong pixels", "render ms per image", "PNG bytes"],
                            fid_rows)
    train32 = max(cost[(16, n)][0] / cost[(32, n)][0] for n in ("cfgdm", "fsdm"))
    sample32 = max(cost[(16, n)][1] / cost[(32, n)][1] for n in ("cfgdm", "fsdm"))
    best_blur = min(smooth, key=lambda b: smooth[b][0])
    md = f"""
### Stimulus size: train at 24-32 px, or render the 16-px stimuli smoothly?

Command: `python -m benchmarks stimulus_size` ({platform.machine()}, 2 torch threads, OMP_WAIT_POLICY
{os.environ.get("OMP_WAIT_POLICY")}, best of {args.rounds} interleaved rounds; CPU time of the process,
so other jobs on the shared cores change the figures little). The tiny profile's UNets on random data:

{cost_md}

Fidelity: each of the 1,797 digits' 8x8 drawings enlarged bilinearly to {DISPLAY_PX} px and thresholded
at half ink (ink covers {ink:.1%} of it) is the drawing; the share of its pixels that what the
participant sees gets wrong:

{fid_md}

Decision: the models stay at 16 px and the study renders every stimulus, real or generated, with
the same `smooth` display (default blur 0.7; the best above is {best_blur:g}, at
{smooth[best_blur][0]:.4f}). Training at 32 px
would cost up to {train32:.1f}x the training and {sample32:.1f}x the sampling CPU time of the tiny
pipelines for {errors["32 px, nearest-neighbour"]:.3f} wrong pixels against the smooth
display's {smooth[0.7][0]:.3f} (about what 24 px gives, {errors["24 px, nearest-neighbour"]:.3f}), and
the blocks of a 32-px image would still show at 512 px. The rendering costs {smooth[0.7][1]:.0f} ms once per
stimulus and display setting (cached under STIMULI_ROOT/display).
"""
    print(md)
    if not args.no_write:
        write_section("stimulus-size", md)
    return 0
