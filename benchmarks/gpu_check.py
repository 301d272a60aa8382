"""`make gpu-check`: what a GPU machine must show before the full profile is run on it, as one
command of at most 8 minutes. Each step runs in its own process under its own time limit, so a
step that fails, hangs or crashes is reported and the others still run:

- env: the device, torch, CUDA, cuDNN and NCCL versions, one matrix product on the device;
- tests: the tests marked `device` (they take the torch_device fixture), run with --device;
- amp: training steps of the full profile's CFGDM with and without mixed precision;
- artist: training steps of each full-profile model and one sampling batch of each, extrapolated
  to the full `python -m experiments run artist --profile full` (hours);
- maps: guidance_difference and conditional_gain of a full-size UNet on the device;
- attribution-bench: `python -m benchmarks attribution --device DEVICE`;
- ddp: DistributedDataParallel steps, nccl on CUDA (one process per GPU, up to 2; one GPU forms
  a one-process group), gloo on the CPU (2 processes).

`python -m benchmarks.gpu_check [--device cuda] [--quick] [--budget 480] [--only STEP,...]
[--data PATH] [--threads N] [--no-write] [--md FILE] [--json PATH] [--from-json PATH]`

The CUDA form at full size writes the BENCHMARKS.md section `gpu-check`; any other form (the CPU
at the `--quick` sizes, which CI runs) writes `gpu-check-rehearsal`, so it never replaces GPU
figures. `--json` keeps the results, `--from-json` writes a kept result into BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.report import ROOT, markdown_table, write_section

BUDGET_S = 480
SECTION, REHEARSAL_SECTION = "gpu-check", "gpu-check-rehearsal"
FULL_PROFILE = ROOT / "experiments" / "configs" / "full.toml"
# The tests the `tests` step runs: the `device` tests of the model-side folders (the others need
# the web stack, which a bare GPU machine may lack).
TEST_DIRS = ("tests/models", "tests/attribution", "tests/classifiers")


@dataclass(frozen=True)
class Step:
    name: str
    title: str
    limit_s: int  # at the full sizes; every limit is also cut to what is left of the budget


# The limits add up to less than BUDGET_S, so no step is starved by an earlier one that ran to its
# limit; the order puts the figures the full run depends on before the step most likely to hang.
STEPS = (
    Step("env", "device and versions", 30),
    Step("tests", "pytest -m device", 110),
    Step("amp", "training steps with and without AMP", 60),
    Step("artist", "full-profile artist: timed steps, extrapolated", 110),
    Step("maps", "attribution maps of a full-size UNet", 40),
    Step("attribution-bench", "python -m benchmarks attribution", 60),
    Step("ddp", "DistributedDataParallel steps", 60),
)
STEP_NAMES = tuple(s.name for s in STEPS)


@dataclass(frozen=True)
class Sizes:
    """What one form of the check runs: the full profile's sizes, or the --quick ones."""

    overrides: tuple[str, ...]  # profile overrides (`--set` syntax) on top of full.toml
    train_steps: int  # timed training steps per run
    warmup_steps: int  # untimed steps before them (allocator, kernel selection)
    train_max_s: float  # stop timing a run after this long (a slow device still finishes)
    map_images: int
    map_draws: int | None  # None: the method's default
    map_timesteps: int | None  # None: the default 10 timesteps
    ddp_steps: int
    bench_args: tuple[str, ...]


FULL = Sizes(overrides=(), train_steps=150, warmup_steps=10, train_max_s=15.0, map_images=16,
             map_draws=None, map_timesteps=None, ddp_steps=30, bench_args=())
QUICK = Sizes(
    overrides=("data.size=16", "models.set.model.n_feat=8", "models.set.model.channel_mults=[1, 2]",
               "models.set.model.n_res=1", "models.set.model.set_width=8",
               "models.set.training.batch_size=8", "sampling.batch_size=8", "sampling.steps=4"),
    train_steps=5, warmup_steps=2, train_max_s=15.0, map_images=2, map_draws=2, map_timesteps=3,
    ddp_steps=3, bench_args=("--n", "4", "--n-resnet", "1", "--n-diffusion", "2", "--ddim-steps", "2"),
)


# ---------------------------------------------------------------- the steps (child processes)


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _stand_in_profile(args: argparse.Namespace):
    """The full profile at the form's sizes. Without --data the embedded digits, resized to the
    profile's image size, stand in for Omniglot: a training step costs the same on either."""
    from experiments.profiles import load_profile

    sizes = QUICK if args.quick else FULL
    overrides = list(sizes.overrides)
    if args.data is None:
        # the digits have no alphabets: the critic's episodes mix classes (a step costs the same)
        overrides += ['data.dataset="digits"', "data.heldout_classes=10", "critics.protonet_within_alphabet=0.0"]
    return load_profile("full", data_root=args.data, overrides=overrides)


class _Enough(Exception):
    """Raised from the clock inside the training loop when a run has been timed long enough."""


def _time_training(cfg, device, sizes: Sizes) -> dict[str, Any]:
    """Train `cfg` for warmup + timed steps with models.diffusion.training.train, stamping the
    time at the end of every step (after a device synchronize); s/step is the mean interval
    after the warm-up. Stops early once `train_max_s` of timed steps have passed."""
    import torch

    import models.diffusion.training as training
    from models.config import config_from_dict
    from models.diffusion.training import train

    total = sizes.warmup_steps + sizes.train_steps
    cfg = config_from_dict({**cfg.to_dict(), "training": {**cfg.to_dict()["training"], "steps": total}})
    stamps: list[float] = []
    ema_update = training.ema_update

    def clocked(ema, net, decay):
        ema_update(ema, net, decay)
        _sync(device)
        stamps.append(time.perf_counter())
        timed = len(stamps) - sizes.warmup_steps
        if timed >= 2 and stamps[-1] - stamps[sizes.warmup_steps - 1] > sizes.train_max_s:
            raise _Enough

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    training.ema_update = clocked
    metrics: dict[str, Any] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            metrics = train(cfg, tmp, device=device, progress=False).metrics
    except _Enough:
        pass
    finally:
        training.ema_update = ema_update
    timed = stamps[sizes.warmup_steps - 1:]  # from the end of the last warm-up step
    if len(timed) < 2:
        raise RuntimeError(f"{cfg.name}: only {len(stamps)} steps ran")
    s_per_step = (timed[-1] - timed[0]) / (len(timed) - 1)
    out = {
        "model": cfg.name, "s_per_step": s_per_step, "steps_timed": len(timed) - 1,
        "batch_size": cfg.training.batch_size, "images_per_s": cfg.training.batch_size / s_per_step,
        "amp": metrics.get("amp"), "loss_last": metrics.get("loss_last"),
    }
    if device.type == "cuda":
        out["peak_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    if out["loss_last"] is not None and not math.isfinite(out["loss_last"]):
        raise RuntimeError(f"{cfg.name}: training loss is {out['loss_last']}")
    return out


def step_env(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from models.device import pick_device

    dev = pick_device(args.device)
    info: dict[str, Any] = {
        "python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
        "device": str(dev), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
    }
    if dev.type == "cuda":
        import torch.cuda.nccl
        import torch.distributed as tdist

        props = torch.cuda.get_device_properties(dev)
        nccl = torch.cuda.nccl.version() if tdist.is_nccl_available() else None
        info.update(
            name=torch.cuda.get_device_name(dev), device_count=torch.cuda.device_count(),
            memory_gib=round(props.total_memory / 2**30, 1), capability=f"{props.major}.{props.minor}",
            multiprocessors=props.multi_processor_count, cudnn=torch.backends.cudnn.version(),
            nccl=".".join(map(str, nccl)) if isinstance(nccl, tuple) else nccl,
            bf16=torch.cuda.is_bf16_supported(), driver=_driver_version(),
        )
    else:
        info["name"] = platform.processor() or platform.machine()
    n = 4096 if dev.type == "cuda" else 512
    a = torch.randn(n, n, device=dev)
    (a @ a).sum().item()  # a kernel runs
    _sync(dev)
    start = time.perf_counter()
    for _ in range(5):
        a @ a
    _sync(dev)
    info["matmul_float32_tflops"] = round(5 * 2 * n**3 / (time.perf_counter() - start) / 1e12, 3)
    versions = f"torch {info['torch']}" + (f", CUDA {info['cuda']}" if dev.type == "cuda" else "")
    return {"summary": f"{info['name']}; {versions}", "details": info}


def _driver_version() -> str | None:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None


def step_amp(args: argparse.Namespace) -> dict[str, Any]:
    from models.config import config_from_dict
    from models.device import pick_device

    dev = pick_device(args.device)
    profile = _stand_in_profile(args)
    cfg = next(m for m in profile.models if m.name == "cfgdm")
    runs = []
    for amp in (True, False):
        c = config_from_dict({**cfg.to_dict(), "training": {**cfg.to_dict()["training"], "amp": amp}})
        r = _time_training(c, dev, QUICK if args.quick else FULL)
        if r["amp"] is not None and r["amp"] is not (amp and dev.type == "cuda"):
            raise RuntimeError(f"training reported amp={r['amp']} with amp={amp} on {dev.type}")
        runs.append({**r, "amp_asked": amp})
    on, off = runs
    dtype = "float32"
    if dev.type == "cuda":
        import torch

        dtype = "bfloat16" if torch.cuda.is_bf16_supported() else "float16 + GradScaler"
    speedup = off["s_per_step"] / on["s_per_step"]
    note = f"autocast {dtype}" if dev.type == "cuda" else "the loop uses autocast on CUDA only"
    return {"summary": f"cfgdm {on['s_per_step'] * 1e3:.1f} ms/step with AMP, {off['s_per_step'] * 1e3:.1f} "
                       f"without ({speedup:.2f}x; {note})",
            "details": {"runs": runs, "amp_dtype": dtype, "speedup": speedup}}


def _sampling_jobs(profile, cfg) -> list[tuple[float, int]]:
    """(guidance, number of samples) per scale of the full run for model `cfg`, as
    models.sample.plan_jobs counts them (a model without context dropout gets w = 0 only)."""
    s = profile.section("sampling")
    real = tomllib.loads(FULL_PROFILE.read_text())
    classes = min(int(s["max_classes"]), int(real["data"]["heldout_classes"]))
    scales = [float(w) for w in s["guidance"]]
    if cfg.training.p_uncond == 0.0:
        scales = [w for w in scales if w == 0]
    return [(w, classes * int(s["n_per_class"])) for w in scales]


def _time_sampling(cfg, data, device, batch: int, steps: int, w: float) -> float:
    """Seconds for one DDIM batch of `batch` samples (after a 1-step warm-up at the same size)."""
    import torch

    from models.diffusion.training import build_network
    from models.sample import exemplar_context, generate, schedule_of

    net = build_network(cfg, len(data.class_names)).to(device).eval()
    torch.nn.init.normal_(net.conv_out.weight, std=0.02)
    ids = [data.ids[i % len(data)] for i in range(batch)]
    ctx = exemplar_context(cfg.model.context, data, ids, 1, [int(data.labels[i % len(data)]) for i in range(batch)])
    seeds = list(range(batch))
    schedule = schedule_of(cfg)
    generate(net, schedule, ctx, seeds, w, "ddim", 1, device=device)
    _sync(device)
    start = time.perf_counter()
    x = generate(net, schedule, ctx, seeds, w, "ddim", steps, device=device)
    _sync(device)
    took = time.perf_counter() - start
    if not bool(torch.isfinite(x).all()):
        raise RuntimeError(f"{cfg.name}: non-finite samples at w = {w}")
    return took


def step_artist(args: argparse.Namespace) -> dict[str, Any]:
    from models.device import pick_device
    from models.diffusion.training import load_training_data

    dev = pick_device(args.device)
    sizes = QUICK if args.quick else FULL
    profile = _stand_in_profile(args)
    s = profile.section("sampling")
    rows = []
    for cfg in profile.models:
        timing = _time_training(cfg, dev, sizes)
        train_set, _heldout, _split = load_training_data(cfg)
        jobs = _sampling_jobs(profile, cfg)
        per_w = {}
        for w in sorted({0.0 if w == 0 else 1.0 for w, _n in jobs}):  # w > 0: two passes a step
            per_w[w] = _time_sampling(cfg, train_set, dev, s["batch_size"], s["steps"], w)
        sample_s = sum(math.ceil(n / s["batch_size"]) * per_w[0.0 if w == 0 else 1.0] for w, n in jobs)
        full_steps = cfg.training.steps  # the profile's; the timed run is a shortened copy
        rows.append({**timing, "full_steps": full_steps, "train_h": full_steps * timing["s_per_step"] / 3600,
                     "samples": sum(n for _w, n in jobs), "sampling_batch": s["batch_size"],
                     "ddim_steps": s["steps"], "batch_s": per_w, "sampling_h": sample_s / 3600})
    total = sum(r["train_h"] + r["sampling_h"] for r in rows)
    return {"summary": f"{total:.2f} h for training and sampling the {len(rows)} models"
                       + (" (quick sizes: not the full profile's hours)" if args.quick else ""),
            "details": {"models": rows, "total_h": total, "data": args.data or "embedded digits (stand-in)"}}


def step_maps(args: argparse.Namespace) -> dict[str, Any]:
    import copy

    import numpy as np
    import torch

    from models.attribution import methods as M
    from models.data import load_dataset
    from models.device import pick_device
    from models.diffusion.training import build_network
    from models.sample import schedule_of

    dev = pick_device(args.device)
    sizes = QUICK if args.quick else FULL
    cfg = next(m for m in _stand_in_profile(args).models if m.name == "cfgdm")
    torch.manual_seed(0)
    net = build_network(cfg, 0).eval()
    torch.nn.init.normal_(net.conv_out.weight, std=0.05)
    schedule = schedule_of(cfg)
    data = load_dataset("digits", size=cfg.data.size)
    images = data.images[: sizes.map_images]
    context = data.images[sizes.map_images : 2 * sizes.map_images]  # another drawing as exemplar
    ts = None if sizes.map_timesteps is None else M.default_timesteps(schedule.T, sizes.map_timesteps)

    # the device's map equals the CPU's on two images, float32 throughout (no TF32)
    with _no_tf32():
        kw = {"timesteps": [40, 250], "n_draws": 1}
        ref = M.guidance_difference(copy.deepcopy(net), schedule, images[:2], context[:2], device="cpu", **kw)
        got = M.guidance_difference(net, schedule, images[:2], context[:2], device=dev, **kw)
    rel = float(np.abs(got - ref).max() / max(float(np.abs(ref).max()), 1e-12))
    if rel > 1e-3:
        raise RuntimeError(f"guidance_difference on {dev} differs from the CPU's by {rel:.2e} (relative)")

    rates = {}
    for name in ("guidance_difference", "conditional_gain"):
        fn = getattr(M, name)
        kw = {"timesteps": ts} | ({} if sizes.map_draws is None else {"n_draws": sizes.map_draws})
        fn(net, schedule, images[:2], context[:2], device=dev, **{**kw, "n_draws": 1})  # warm-up
        _sync(dev)
        start = time.perf_counter()
        maps = fn(net, schedule, images, context, device=dev, **kw)
        _sync(dev)
        took = time.perf_counter() - start
        if maps.shape != (len(images), cfg.data.size, cfg.data.size) or not (np.isfinite(maps).all()
                                                                              and maps.max() > 0):
            raise RuntimeError(f"{name}: maps of shape {maps.shape}, finite {np.isfinite(maps).all()}, "
                               f"largest {maps.max()}")
        rates[name] = {"maps": len(images), "seconds": took, "maps_per_s": len(images) / took}
    summary = ", ".join(f"{k} {v['maps_per_s']:.1f} maps/s" for k, v in rates.items())
    return {"summary": f"{summary} ({cfg.data.size} px, n_feat {cfg.model.n_feat}); device = CPU within {rel:.1e}",
            "details": {"rates": rates, "parity_rel": rel, "size": cfg.data.size, "n_feat": cfg.model.n_feat}}


@contextlib.contextmanager
def _no_tf32() -> Iterator[None]:
    import torch

    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


def step_ddp(args: argparse.Namespace) -> dict[str, Any]:
    """Launch the DDP workers (this module with --ddp-worker) on a free port and read their results."""
    import torch

    from models.device import pick_device

    dev = pick_device(args.device)
    world = min(2, torch.cuda.device_count()) if dev.type == "cuda" else 2
    port = _free_port()
    procs = []
    with tempfile.TemporaryDirectory() as tmp:
        for rank in range(world):
            env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank),
                   "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_WORLD_SIZE": str(world)}
            if dev.type == "cpu":
                env["OMP_NUM_THREADS"] = "1"
            cmd = [sys.executable, "-m", "benchmarks.gpu_check", "--ddp-worker", "--device", args.device,
                   "--result", str(Path(tmp) / f"rank{rank}.json")] + (["--quick"] if args.quick else [])
            with open(Path(tmp) / f"rank{rank}.log", "w") as log:
                procs.append(subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))
        # A rank that fails leaves the others waiting for it in a collective: end them at once
        # (the step's own limit bounds the wait for ranks that hang together).
        while any(p.poll() is None for p in procs):
            if any(p.returncode not in (None, 0) for p in procs):
                for p in procs:
                    if p.poll() is None:
                        p.kill()
                        p.wait()
                break
            time.sleep(0.2)
        ranks = []
        for rank, p in enumerate(procs):
            path = Path(tmp) / f"rank{rank}.json"
            result = json.loads(path.read_text()) if path.exists() else None
            ranks.append((rank, p.returncode, result, (Path(tmp) / f"rank{rank}.log").read_text()))
    for rank, _rc, result, _out in ranks:  # a rank's own error first: the others died of it
        if result and "error" in result:
            raise RuntimeError(f"rank {rank}: {result['error']}")
    for rank, rc, result, out in sorted(ranks, key=lambda r: r[1] == -signal.SIGKILL):  # killed here: last
        if result is None:
            raise RuntimeError(f"rank {rank} exited {rc}:\n{_tail(out)}")
        if rc != 0 or result["teardown"] != "ok":
            raise RuntimeError(f"rank {rank} exited {rc} in the teardown (barrier, destroy_process_group) "
                               f"after its steps: {result}\n{_tail(out)}")
    results = [result for _rank, _rc, result, _out in ranks]
    r0 = results[0]
    bad = [r for r in results if not (r["all_reduce_ok"] and r["params_in_sync"] and r["gathered_ok"])]
    if bad:
        raise RuntimeError(f"ranks disagree: {bad}")
    summary = (f"{r0['backend']}, {world} process(es) on {r0['device_type']}: init {r0['init_s']:.1f} s, "
               f"{r0['s_per_step'] * 1e3:.1f} ms/step (batch {r0['batch_size']} per rank); all_reduce and "
               "parameters in sync")
    return {"summary": summary, "details": {"ranks": results, "world_size": world}}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ddp_worker(args: argparse.Namespace) -> dict[str, Any]:
    """One rank: join the group (models.diffusion.ddp.setup for 2+ processes; a one-process
    group otherwise, which setup leaves alone), then DDP training steps of the full profile's
    CFGDM network on random data, with the training loop's mixed precision."""
    from datetime import timedelta

    import torch
    import torch.distributed as tdist

    from models.device import pick_device
    from models.diffusion import ddp
    from models.diffusion.training import build_network, diffusion_loss
    from models.sample import schedule_of

    start = time.perf_counter()
    world, rank = int(os.environ["WORLD_SIZE"]), int(os.environ["RANK"])
    if world > 1:
        dist = ddp.setup(args.device)
    else:
        base = pick_device(args.device)
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0"))) if base.type == "cuda" else base
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        tdist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo", timeout=timedelta(seconds=60))
        dist = ddp.DistState(True, rank, world, dev)
    dev = dist.device
    cfg = next(m for m in _stand_in_profile(args).models if m.name == "cfgdm")
    torch.manual_seed(0)
    net = build_network(cfg, 0).to(dev)
    model = dist.wrap(net)
    _sync(dev)
    init_s = time.perf_counter() - start
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    use_amp = dev.type == "cuda"
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)
    schedule = schedule_of(cfg)
    gen = torch.Generator().manual_seed(100 + rank)  # each rank its own batches
    b, size = cfg.training.batch_size, cfg.data.size
    sizes = QUICK if args.quick else FULL
    stamps = []
    for _ in range(sizes.warmup_steps + sizes.ddp_steps):
        x0 = torch.sign(torch.randn(b, 1, size, size, generator=gen)).to(dev)
        ctx = torch.sign(torch.randn(b, 1, size, size, generator=gen)).to(dev)
        noise = torch.randn(b, 1, size, size, generator=gen).to(dev)
        t = torch.randint(1, schedule.T + 1, (b,), generator=gen).to(dev)
        with torch.autocast(device_type=dev.type, dtype=amp_dtype, enabled=use_amp):
            loss = diffusion_loss(model, x0, t, noise, ctx, schedule)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        _sync(dev)
        stamps.append(time.perf_counter())
    timed = stamps[sizes.warmup_steps - 1:]
    total = torch.tensor([float(rank + 1)], device=dev)
    tdist.all_reduce(total)
    result = {
        "rank": rank, "backend": tdist.get_backend(), "device_type": dev.type, "device": str(dev),
        "init_s": init_s, "s_per_step": (timed[-1] - timed[0]) / (len(timed) - 1), "batch_size": b,
        "loss": float(loss.detach()), "all_reduce_ok": float(total) == world * (world + 1) / 2,
        "params_in_sync": dist.params_in_sync(net), "gathered_ok": dist.gather_objects(rank) == list(range(world)),
    }
    # written before the teardown too, so that a rank that dies in it still reports its steps
    Path(args.result).write_text(json.dumps({**result, "teardown": "not finished"}))
    dist.teardown()
    return {**result, "teardown": "ok"}


def step_tests(args: argparse.Namespace, limit_s: float) -> dict[str, Any]:
    # a module that cannot be imported (a package missing on the machine) fails the step but does
    # not stop the other modules' tests
    cmd = [sys.executable, "-m", "pytest", *TEST_DIRS, "-m", "device", "--device", args.device, "-q",
           "-p", "no:cacheprovider", "-rfE", "--continue-on-collection-errors"]
    rc, out = _run(cmd, limit_s, _child_env(args))
    counts = dict((k, int(v)) for v, k in re.findall(r"(\d+) (passed|failed|errors?|skipped|deselected)", _last_summary(out)))
    summary = ", ".join(f"{v} {k}" for k, v in counts.items()) or "no summary line"
    if rc is None:
        raise TimeoutError(f"pytest ran past {limit_s:.0f} s\n{_tail(out)}")
    if rc != 0:
        raise RuntimeError(f"pytest exited {rc}: {summary}\n{_tail(out, 40)}")
    return {"summary": summary, "details": {"counts": counts, "command": " ".join(cmd[1:])}}


def _last_summary(out: str) -> str:
    lines = [ln for ln in out.splitlines() if re.search(r"\d+ (passed|failed|errors?)", ln)]
    return lines[-1] if lines else ""


def step_attribution_bench(args: argparse.Namespace, limit_s: float) -> dict[str, Any]:
    sizes = QUICK if args.quick else FULL
    cmd = [sys.executable, "-m", "benchmarks", "attribution", "--device", args.device, "--no-write",
           *sizes.bench_args]
    rc, out = _run(cmd, limit_s, _child_env(args))
    if rc is None:
        raise TimeoutError(f"the attribution benchmark ran past {limit_s:.0f} s\n{_tail(out)}")
    if rc != 0:
        raise RuntimeError(f"the attribution benchmark exited {rc}\n{_tail(out)}")
    table = _first_table(out)
    if not table:
        raise RuntimeError(f"the attribution benchmark printed no table\n{_tail(out)}")
    rows = len(table.splitlines()) - 2
    return {"summary": f"{rows} methods timed", "details": {"table": table, "command": " ".join(cmd[3:])}}


def _first_table(text: str) -> str:
    """The first markdown table in `text` (its consecutive lines that start with '|')."""
    lines: list[str] = []
    for ln in text.splitlines():
        if ln.startswith("|"):
            lines.append(ln)
        elif lines:
            break
    return "\n".join(lines)


CHILD_STEPS: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "env": step_env, "amp": step_amp, "artist": step_artist, "maps": step_maps, "ddp": step_ddp,
}
PARENT_STEPS: dict[str, Callable[[argparse.Namespace, float], dict[str, Any]]] = {
    "tests": step_tests, "attribution-bench": step_attribution_bench,
}


# ---------------------------------------------------------------- running the steps


def _child_env(args: argparse.Namespace) -> dict[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # Torch's OpenMP threads spin while they wait; on a shared CPU that costs several times over.
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    return env


def _run(cmd: list[str], limit_s: float, env: dict[str, str]) -> tuple[int | None, str]:
    """(exit status or None when killed at `limit_s`, stdout + stderr). The command runs in a
    process group of its own (in this session), so a timeout, or this process being stopped,
    ends what it started too (DDP ranks)."""
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, process_group=0)
    try:
        out, _ = proc.communicate(timeout=limit_s)
        return proc.returncode, out
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        out, _ = proc.communicate()
        return None, out
    except BaseException:
        _kill_group(proc)
        raise


def _kill_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def run_step(step: Step, args: argparse.Namespace, limit_s: float) -> dict[str, Any]:
    """Run one step under `limit_s` and return its record: name, status (ok, failed, timeout),
    seconds, limit, summary, details or error."""
    start = time.perf_counter()
    record: dict[str, Any] = {"name": step.name, "title": step.title, "limit_s": round(limit_s)}
    try:
        if step.name in PARENT_STEPS:  # these run a command of their own under the limit
            record.update(PARENT_STEPS[step.name](args, limit_s), status="ok")
        else:
            with tempfile.TemporaryDirectory() as tmp:
                result = Path(tmp) / "result.json"
                cmd = [sys.executable, "-m", "benchmarks.gpu_check", "--step", step.name, "--device", args.device,
                       "--result", str(result)] + (["--quick"] if args.quick else []) \
                    + (["--data", args.data] if args.data else []) \
                    + (["--threads", str(args.threads)] if args.threads else [])
                rc, out = _run(cmd, limit_s, _child_env(args))
                payload = json.loads(result.read_text()) if result.exists() else None
            if rc is None:
                record.update(status="timeout", error=f"killed at its {limit_s:.0f} s limit\n{_tail(out)}")
            elif payload is None or rc != 0:
                error = payload["error"] if payload else f"exited {rc} without a result\n{_tail(out)}"
                record.update(status="failed", error=error)
            else:
                record.update(payload, status="ok")
    except TimeoutError as exc:
        record.update(status="timeout", error=str(exc))
    except Exception as exc:  # a failed step is reported; the next one still runs
        record.update(status="failed", error=f"{type(exc).__name__}: {exc}")
    record["seconds"] = round(time.perf_counter() - start, 1)
    return record


def child_main(args: argparse.Namespace) -> int:
    """Run one step (or one DDP rank) in this process and write its result to --result."""
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    try:
        payload = ddp_worker(args) if args.ddp_worker else CHILD_STEPS[args.step](args)
        rc = 0
    except Exception as exc:
        payload = {"error": f"{type(exc).__name__}: {exc}\n{_tail(traceback.format_exc(), 12)}"}
        rc = 1
    Path(args.result).write_text(json.dumps(payload, default=str))
    return rc


def run_all(args: argparse.Namespace) -> dict[str, Any]:
    chosen = [s for s in STEPS if s.name in args.only]
    sizes = "quick" if args.quick else "full"
    started = time.perf_counter()
    results: dict[str, Any] = {
        "command": _command(args), "device_arg": args.device, "sizes": sizes, "budget_s": args.budget,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "steps": [],
    }
    print(f"gpu-check: {len(chosen)} steps on {args.device} ({sizes} sizes), budget {args.budget:.0f} s", flush=True)
    env_failed = False
    for step in chosen:
        left = args.budget - (time.perf_counter() - started)
        limit = min(step.limit_s, left)
        if env_failed or limit < 10:
            why = "the device is not usable (see env)" if env_failed else "no time left in the budget"
            record = {"name": step.name, "title": step.title, "status": "skipped", "seconds": 0.0,
                      "limit_s": round(max(limit, 0)), "error": why}
        else:
            record = run_step(step, args, limit)
        results["steps"].append(record)
        env_failed = env_failed or (step.name == "env" and record["status"] in ("failed", "timeout"))
        line = record.get("summary") or record.get("error", "").splitlines()[0]
        print(f"[{record['status']:>7}] {step.name:<18} {record['seconds']:6.1f} s  {line}", flush=True)
        if record["status"] not in ("ok", "skipped"):
            print(_indent(record["error"]), flush=True)
    results["total_s"] = round(time.perf_counter() - started, 1)
    return results


def _indent(text: str) -> str:
    return "\n".join("          " + ln for ln in text.splitlines())


def _command(args: argparse.Namespace) -> str:
    if args.device == "cuda" and not args.quick and set(args.only) == set(STEP_NAMES) and not args.data:
        return "make gpu-check"
    parts = ["python -m benchmarks.gpu_check", f"--device {args.device}"] + (["--quick"] if args.quick else [])
    if set(args.only) != set(STEP_NAMES):
        parts.append("--only " + ",".join(args.only))
    if args.data:
        parts.append(f"--data {args.data}")
    if args.threads:
        parts.append(f"--threads {args.threads}")
    return " ".join(parts)


# ---------------------------------------------------------------- the report


def _step(results: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((s for s in results["steps"] if s["name"] == name and s["status"] == "ok"), None)


def section_name(results: dict[str, Any]) -> str:
    return SECTION if results["device_arg"].startswith("cuda") and results["sizes"] == "full" else REHEARSAL_SECTION


def render(results: dict[str, Any]) -> str:
    """The BENCHMARKS.md section of one run, as markdown."""
    env = (_step(results, "env") or {}).get("details", {})
    ok = sum(s["status"] == "ok" for s in results["steps"])
    rehearsal = section_name(results) == REHEARSAL_SECTION
    head = ("### GPU check rehearsal: the same steps at the `--quick` sizes" if results["sizes"] == "quick"
            else "### GPU check") + f" ({env.get('name', results['device_arg'])})"
    out = [head, ""]
    if rehearsal:
        out += ["The steps of `make gpu-check`, run so that they cannot rot (CI runs this form, without "
                "writing it, in `tests/benchmarks/test_gpu_check.py`); its times say nothing of a GPU.", ""]
    machine = [f"torch {env['torch']}"] if env else []
    if env.get("cuda") and env.get("device", "").startswith("cuda"):
        machine += [f"CUDA {env['cuda']}", f"cuDNN {env.get('cudnn')}", f"NCCL {env.get('nccl')}",
                    f"driver {env.get('driver')}", f"{env.get('memory_gib')} GiB, compute capability "
                    f"{env.get('capability')}, {env.get('multiprocessors')} SMs",
                    f"bf16 {'yes' if env.get('bf16') else 'no'}"]
    elif env:
        machine += [f"{env.get('cpu_count')} CPU cores", f"torch threads: {env.get('torch_threads')}"]
    out += [f"Command: `{results['command']}` on {results['date']}: {ok} of {len(results['steps'])} steps "
            f"passed in {results['total_s']:.0f} s (budget {results['budget_s']:.0f} s)."
            + (f" {'; '.join(machine)}." if machine else ""), ""]
    rows = [[s["name"], s["status"], f"{s['seconds']:.1f}", s["limit_s"],
             (s.get("summary") or s.get("error", "").splitlines()[0]).replace("|", "/")] for s in results["steps"]]
    out += [markdown_table(["step", "status", "s", "limit s", "result"], rows), ""]

    amp = _step(results, "amp")
    if amp:
        d = amp["details"]
        when_on = (f"{d['amp_dtype']} when on" if d["amp_dtype"] != "float32"
                   else "the loop runs float32 either way off CUDA")
        sized = " at the --quick sizes" if results["sizes"] == "quick" else ""
        out += [f"**AMP** (the full profile's CFGDM{sized}, {d['runs'][0]['batch_size']} images a step, mean of "
                f"{d['runs'][0]['steps_timed']} steps after a warm-up; {when_on}):", ""]
        out += [markdown_table(["AMP", "ms/step", "images/s", "peak GiB"],
                               [["on" if r["amp_asked"] else "off", f"{r['s_per_step'] * 1e3:.1f}",
                                 f"{r['images_per_s']:.0f}", _gib(r)] for r in d["runs"]]), ""]
    artist = _step(results, "artist")
    if artist:
        d = artist["details"]
        out += [f"**The full `artist` run, extrapolated** (data: {d['data']}; training at the profile's "
                "batch with its AMP setting; sampling: DDIM batches of the profile's size, two network passes "
                "a step when w > 0; the later stages -- critics, facade classifiers, study -- are not "
                "included):", ""]
        rows = []
        for m in d["models"]:
            batch_s = " / ".join(f"{v:.2f}" for _w, v in sorted(m["batch_s"].items(), key=lambda kv: float(kv[0])))
            rows.append([m["model"], f"{m['s_per_step'] * 1e3:.1f}", _gib(m), f"{m['full_steps']:,}",
                         f"{m['train_h']:.2f}", f"{m['samples']:,}", batch_s, f"{m['sampling_h']:.2f}",
                         f"{m['train_h'] + m['sampling_h']:.2f}"])
        out += [markdown_table(["model", "ms/step", "peak GiB", "steps", "training h", "samples",
                                f"s per batch of {d['models'][0]['sampling_batch']} (w = 0 / w > 0)",
                                "sampling h", "total h"], rows), "",
                f"All models: **{d['total_h']:.2f} h**" + (" (quick sizes: not the full profile's)."
                                                           if results["sizes"] == "quick" else "."), ""]
    bench = _step(results, "attribution-bench")
    if bench:
        out += [f"**Attribution benchmark** (`python -m benchmarks {bench['details']['command']}`):", "",
                bench["details"]["table"], ""]
    failed = [s for s in results["steps"] if s["status"] not in ("ok",)]
    for s in failed:
        out += [f"`{s['name']}` {s['status']}:", "", "```", _tail(s.get("error", ""), 12), "```", ""]
    return "\n".join(out).strip()


def _gib(r: dict[str, Any]) -> str:
    return f"{r['peak_gib']:.2f}" if r.get("peak_gib") is not None else "-"


# ---------------------------------------------------------------- command line


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.gpu_check", description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda", help="cuda (the default), cuda:N or cpu")
    p.add_argument("--quick", action="store_true", help="tiny sizes: every step in seconds on a CPU")
    p.add_argument("--budget", type=float, default=BUDGET_S, help="seconds for all steps together")
    p.add_argument("--only", default=",".join(STEP_NAMES), help=f"steps to run, of {','.join(STEP_NAMES)}")
    p.add_argument("--data", default=None, help="the full profile's data folder (default: digits stand in)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads in each step (0: torch's default)")
    p.add_argument("--no-write", action="store_true", help="leave BENCHMARKS.md alone")
    p.add_argument("--md", type=Path, default=ROOT / "BENCHMARKS.md",
                   help="the markdown file whose section the results replace (default: BENCHMARKS.md)")
    p.add_argument("--json", type=Path, default=None, help="also write the results as JSON here")
    p.add_argument("--from-json", type=Path, default=None, help="write a saved result into BENCHMARKS.md, run nothing")
    p.add_argument("--step", choices=tuple(CHILD_STEPS), help=argparse.SUPPRESS)
    p.add_argument("--ddp-worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--result", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(args.only) - set(STEP_NAMES))
    if unknown or not args.only:
        p.error(f"--only: unknown step(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(STEP_NAMES)}")
    if args.budget <= 0:
        p.error("--budget: must be > 0 seconds")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.ddp_worker:  # its result is written: skip gloo's abort-prone finalization
        from models.diffusion.ddp import exit_rank

        exit_rank(child_main(args))
    if args.step:
        return child_main(args)
    if args.from_json:
        results = json.loads(args.from_json.read_text())
    else:
        # stopped from outside (a machine's time limit): end the running step's processes too
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        results = run_all(args)
        if args.json:
            args.json.write_text(json.dumps(results, indent=1, default=str))
    md = render(results)
    print("\n" + md)
    env_ok = _step(results, "env") is not None
    if not args.no_write and env_ok:
        if not args.md.exists():
            args.md.write_text("")
        write_section(section_name(results), md, args.md)
        print(f"\nwrote section {section_name(results)} of {args.md}")
    elif not env_ok:
        print(f"\nno usable device: {args.md} left alone")
    if args.from_json:
        return 0
    return 0 if all(s["status"] == "ok" for s in results["steps"]) else 1


if __name__ == "__main__":
    sys.exit(main())
