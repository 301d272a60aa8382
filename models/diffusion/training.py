"""The training loop: MSE on the network's prediction target (eps or v) with t uniform over 1..T,
optionally min-SNR weighted, context dropout, EMA (with or without warm-up), AdamW with linear
warm-up and a constant or cosine learning rate, seeded and resumable, CPU or CUDA (mixed precision on CUDA only), and
DistributedDataParallel when launched with torchrun (gloo on CPU, nccl on CUDA)."""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from models.checkpoint import CheckpointError, config_differences, read_checkpoint, save_checkpoint
from models.config import Config
from models.data import ImageDataset, load_dataset, one_shot_split
from models.device import pick_device
from models.diffusion import ddp
from models.diffusion.context import ContextSampler, drop_context
from models.diffusion.schedule import Schedule, make_schedule, schedule_kwargs
from models.diffusion.unet import UNet

CHECKPOINT_NAME = "checkpoint.pt"


@dataclass
class TrainResult:
    checkpoint: Path
    metrics: dict[str, Any]


def load_training_data(cfg: Config) -> tuple[ImageDataset, ImageDataset, dict[str, Any]]:
    """The config's data set split into (train, heldout, split record)."""
    d = cfg.data
    data = load_dataset(d.dataset, d.root, d.size, threshold=d.threshold, max_per_class=d.max_per_class)
    return one_shot_split(data, d.heldout_classes, d.split_seed, d.exemplar_rule)


def build_network(cfg: Config, n_classes: int) -> UNet:
    """The UNet the config describes (n_classes: number of training classes, for "class" mode)."""
    m = cfg.model
    extra = {}
    if cfg.diffusion.prediction != "eps":
        extra = {"prediction": cfg.diffusion.prediction, "schedule": schedule_kwargs(cfg.diffusion)}
    return UNet(
        image_size=cfg.data.size,
        n_feat=m.n_feat,
        channel_mults=tuple(m.channel_mults),
        n_res=m.n_res,
        context=m.context,
        n_classes=n_classes if m.context == "class" else 0,
        set_width=m.set_width,
        **extra,
    )


@torch.no_grad()
def ema_update(ema: nn.Module, net: nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * net, parameters and float buffers."""
    for e, p in zip(ema.parameters(), net.parameters(), strict=True):
        e.lerp_(p.detach(), 1.0 - decay)
    for e, b in zip(ema.buffers(), net.buffers(), strict=True):
        e.copy_(b)


def loss_weights(schedule: Schedule, t: torch.Tensor, prediction: str, weighting: str, gamma: float,
                 like: torch.Tensor) -> torch.Tensor | None:
    """Per-sample loss weights (B,) or None for uniform. "min_snr" (Hang et al. 2023) weights the
    eps-MSE by min(SNR_t, gamma) / SNR_t and the v-MSE by min(SNR_t, gamma) / (SNR_t + 1), which
    is the same weight on the x0 error in both cases."""
    if weighting == "uniform":
        return None
    if weighting != "min_snr":
        raise ValueError(f"training.loss_weighting: unknown weighting {weighting!r}")
    snr = schedule.snr(t, like)
    clipped = snr.clamp(max=gamma)
    return clipped / snr if prediction == "eps" else clipped / (snr + 1.0)


def diffusion_loss(net: nn.Module, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor,
                   context: torch.Tensor | None, schedule: Schedule, prediction: str = "eps",
                   weighting: str = "uniform", gamma: float = 5.0) -> torch.Tensor:
    """Mean over the batch of the (weighted) MSE between the network's raw output on
    x_t = q_sample(x0, t, noise) and its target: the noise for "eps", and
    v = sqrt(alphabar_t) noise - sqrt(1 - alphabar_t) x0 for "v". t (B,) in 1..T."""
    x_t = schedule.q_sample(x0, t, noise)
    out = net(x_t, t, context, raw=True) if prediction != "eps" else net(x_t, t, context)
    if prediction == "eps":
        target = noise
    else:
        ab = schedule.coef("alphabar", t, x0)
        target = ab.sqrt() * noise - (1.0 - ab).sqrt() * x0
    per_sample = (out.float() - target.float()).pow(2).flatten(1).mean(1)
    weights = loss_weights(schedule, t, prediction, weighting, gamma, x0)
    return per_sample.mean() if weights is None else (weights * per_sample).mean()


def learning_rate(base: float, step: int, total: int, warmup: int, kind: str) -> float:
    """The learning rate of optimisation step `step` (0-based): linear warm-up over `warmup` steps,
    then `base` ("constant") or a cosine decay from `base` to 0 at step `total` ("cosine")."""
    ramp = min(1.0, (step + 1) / max(1, warmup))
    if kind == "constant" or step < warmup:
        return base * ramp
    if kind != "cosine":
        raise ValueError(f"training.lr_schedule: unknown schedule {kind!r}")
    progress = (step - warmup) / max(1, total - warmup)
    return base * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def ema_decay_at(decay: float, step: int, warmup: bool) -> float:
    """The EMA decay of step `step`: `decay`, or with warm-up min(decay, (1 + step) / (10 + step))
    so that the average does not keep the random initial weights for long."""
    return min(decay, (1 + step) / (10 + step)) if warmup else decay


@dataclass
class TrainingState:
    """What a training run changes as it goes: the network, its EMA, the optimiser, the noise
    generator, the step count and the logged (step, mean loss) history."""

    net: UNet
    ema: UNet
    opt: torch.optim.Optimizer
    gen: torch.Generator
    step: int = 0
    history: list = field(default_factory=list)


@dataclass
class Batch:
    """One training batch: clean images x0 (B, 1, H, W), timesteps t (B,) in 1..T, noise like x0,
    and the (possibly dropped) context."""

    x0: torch.Tensor
    t: torch.Tensor
    noise: torch.Tensor
    context: torch.Tensor | None

    def to(self, dev: torch.device) -> Batch:
        ctx = None if self.context is None else self.context.to(dev)
        return Batch(self.x0.to(dev), self.t.to(dev), self.noise.to(dev), ctx)


def new_state(cfg: Config, n_classes: int, dev: torch.device, rank: int) -> TrainingState:
    """A fresh, seeded training state (the network is built from the config's seed; each DDP rank
    draws its batches from its own generator)."""
    torch.manual_seed(cfg.seed)
    net = build_network(cfg, n_classes).to(dev)
    ema = copy.deepcopy(net).requires_grad_(False)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.training.lr, weight_decay=0.0)
    return TrainingState(net, ema, opt, torch.Generator().manual_seed(cfg.seed * 1000 + rank))


def restore_state(state: TrainingState, ckpt_path: Path, cfg: Config, dataset_hash: str, rank: int) -> None:
    """Continue from `ckpt_path`: refuse (CheckpointError naming the fields) a checkpoint of another
    config or other data, then load weights, EMA, optimiser, step, history and this rank's RNG."""
    payload = read_checkpoint(ckpt_path)
    diffs = config_differences(payload["config"], cfg.to_dict())
    if diffs:
        raise CheckpointError(f"--resume: {ckpt_path} was trained with another config: " + "; ".join(diffs))
    if payload["meta"].get("dataset_hash") != dataset_hash:
        raise CheckpointError(f"--resume: {ckpt_path} was trained on other data (data set hash differs)")
    saved = payload.get("train_state") or {}
    state.net.load_state_dict(payload["state_dict"])
    state.ema.load_state_dict(payload["ema_state_dict"])
    if saved:
        state.opt.load_state_dict(saved["optimizer"])
        state.step = int(saved["step"])
        state.history = list(saved["history"])
        rng = saved["rng"]
        state.gen.set_state(rng[rank] if rank < len(rng) else rng[0])


def draw_batch(train_set: ImageDataset, contexts: ContextSampler, net: nn.Module, cfg: Config,
               T: int, gen: torch.Generator) -> Batch:
    """A batch drawn from `gen` in a fixed order (indices, t, noise, context, dropout), so a
    resumed run draws exactly what an uninterrupted one would."""
    tc = cfg.training
    idx = torch.randint(len(train_set), (tc.batch_size,), generator=gen)
    x0 = train_set.images[idx]
    t = torch.randint(1, T + 1, (tc.batch_size,), generator=gen)
    noise = torch.randn(x0.shape, generator=gen)
    context = contexts(idx, gen)
    if tc.p_uncond > 0:
        context = drop_context(net, context, torch.rand(tc.batch_size, generator=gen) < tc.p_uncond)
    return Batch(x0, t, noise, context)


def optimisation_step(state: TrainingState, model: nn.Module, batch: Batch, schedule: Schedule, cfg: Config,
                      scaler: torch.amp.GradScaler, amp_dtype: torch.dtype | None) -> torch.Tensor:
    """One step at this step's learning rate: loss (under autocast when `amp_dtype`), backward,
    gradient clipping, AdamW, EMA update. `model` is the network or its DDP wrapper. Returns the loss."""
    tc = cfg.training
    for group in state.opt.param_groups:
        group["lr"] = learning_rate(tc.lr, state.step, tc.steps, tc.warmup, tc.lr_schedule)
    dev_type = batch.x0.device.type
    with torch.autocast(device_type=dev_type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
        loss = diffusion_loss(model, batch.x0, batch.t, batch.noise, batch.context, schedule,
                              cfg.diffusion.prediction, tc.loss_weighting, tc.min_snr_gamma)
    state.opt.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    if tc.grad_clip > 0:
        scaler.unscale_(state.opt)
        nn.utils.clip_grad_norm_(state.net.parameters(), tc.grad_clip)
    scaler.step(state.opt)
    scaler.update()
    ema_update(state.ema, state.net, ema_decay_at(tc.ema_decay, state.step, tc.ema_warmup))
    state.step += 1
    return loss


def amp_settings(cfg: Config, dev: torch.device) -> tuple[torch.dtype | None, torch.amp.GradScaler]:
    """Mixed precision on CUDA only when the config asks: bfloat16 where supported (no scaler
    needed), else float16 with a gradient scaler. Returns (autocast dtype or None, scaler)."""
    if not (cfg.training.amp and dev.type == "cuda"):
        return None, torch.amp.GradScaler("cuda", enabled=False)
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return dtype, torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)


def train(
    cfg: Config,
    out_dir: Path | str,
    device: str | torch.device | None = None,
    resume: bool = False,
    progress: bool = True,
) -> TrainResult:
    """Train the config's model; writes `out_dir/checkpoint.pt` every `checkpoint_every` steps and
    at the end (rank 0 only under DDP). `resume` continues from that file after checking that its
    config matches (else CheckpointError naming the fields). Returns the checkpoint path + metrics."""
    ckpt_path = Path(out_dir) / CHECKPOINT_NAME
    dist = ddp.setup(device)
    dev = dist.device if dist.active else pick_device(device)
    tc = cfg.training

    train_set, _heldout, split = load_training_data(cfg)
    if len(train_set) == 0:
        raise ValueError("data.heldout_classes: no training classes left")
    schedule = make_schedule(**schedule_kwargs(cfg.diffusion))
    contexts = ContextSampler(train_set, cfg.model.context, cfg.model.set_size)
    state = new_state(cfg, len(train_set.class_names), dev, dist.rank)
    if resume and ckpt_path.exists():
        restore_state(state, ckpt_path, cfg, split["dataset_hash"], dist.rank)
    model = dist.wrap(state.net)
    amp_dtype, scaler = amp_settings(cfg, dev)
    t_start, images_seen, window = time.perf_counter(), 0, []

    def metrics() -> dict[str, Any]:
        elapsed = time.perf_counter() - t_start
        history = state.history
        return {
            "steps": state.step,
            "loss_first": history[0][1] if history else None,
            "loss_last": history[-1][1] if history else None,
            "loss_history": history,
            "images_per_s": images_seen * dist.world_size / elapsed if elapsed > 0 else None,
            "world_size": dist.world_size,
            "device": str(dev),
            "amp": amp_dtype is not None,
        }

    def save() -> None:
        rng_states = dist.gather_objects(state.gen.get_state())
        if dist.rank != 0:
            return
        meta = {"dataset": train_set.name, "dataset_hash": split["dataset_hash"],
                "train_hash": train_set.content_hash(), "split": split,
                "train_classes": train_set.class_names, "metrics": metrics()}
        train_state = {"optimizer": state.opt.state_dict(), "step": state.step, "history": state.history,
                       "rng": rng_states}
        save_checkpoint(ckpt_path, state.net, cfg, meta, ema=state.ema, train_state=train_state)

    bar = tqdm(total=tc.steps, initial=state.step, disable=not progress or dist.rank != 0,
               desc=f"train {cfg.name}", dynamic_ncols=True)
    model.train()
    while state.step < tc.steps:
        batch = draw_batch(train_set, contexts, state.net, cfg, schedule.T, state.gen).to(dev)
        loss = optimisation_step(state, model, batch, schedule, cfg, scaler, amp_dtype)
        images_seen += tc.batch_size
        window.append(float(loss.detach()))
        if state.step % tc.log_every == 0 or state.step == tc.steps:
            state.history.append((state.step, sum(window) / len(window)))
            bar.set_postfix(loss=f"{state.history[-1][1]:.4f}")
            window = []
        bar.update(1)
        if state.step % tc.checkpoint_every == 0 and state.step < tc.steps:
            save()
    bar.close()
    if dist.active and not dist.params_in_sync(state.net):
        raise RuntimeError("DDP: parameters differ across ranks after training")
    save()
    result = TrainResult(ckpt_path, metrics())
    dist.teardown()
    return result
