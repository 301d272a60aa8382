"""One batched function per attribution method. Every map function returns a non-negative
float32 numpy array (N, H, W) on the input's image grid; the device is chosen by the caller (or
models.device.pick_device), never hard-coded.

Classifier methods take `model` (images (N, C, H, W) in [-1, 1] -> logits (N, K)), `images` and
`target` (an int or (N,) class indices): Captum Saliency, IntegratedGradients, NoiseTunnel
(SmoothGrad), LayerGradCam (upsampled) and Occlusion.

Diffusion methods take a noise-prediction network `eps = net(x_t, t, context)` with
`net.null_context(context)` and a `models.diffusion.schedule.Schedule`:
- the guided-noise score phi = sum over kept t of |sqrt(1 - alphabar_t) ((1 + w) eps_c - w eps_u)|
  along a sampling path (`diffusion_score`) or along forward-noised copies of any image
  (`diffusion_score_noised`);
- the gradient of the class-conditional denoising loss ||eps - net(x_t, t, c)||^2 with respect to
  the image, averaged over timesteps and noise draws, through Captum Saliency
  (`denoising_loss_saliency`) or IntegratedGradients (`denoising_loss_ig`);
- condition contrasts on forward-noised copies, whose expected value depends on the image and
  its condition: the guidance difference |sqrt(1 - alphabar_t) (eps_c - eps_u)|
  (`guidance_difference`) and the per-pixel drop of the squared denoising error that the
  condition brings (`conditional_gain`).
Per-image random draws come from per-image seeds, so a batch gives the same maps as one image at
a time.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Sequence

import numpy as np
import torch
from captum.attr import (
    IntegratedGradients,
    LayerAttribution,
    LayerGradCam,
    NoiseTunnel,
    Occlusion,
    Saliency,
)
from torch import nn

from models.classifiers.backbones import gradcam_layer
from models.device import pick_device

Context = torch.Tensor


def _prepare(
    model: nn.Module, images: torch.Tensor, target: int | torch.Tensor, device: torch.device | str | None
) -> tuple[torch.device, torch.Tensor, torch.Tensor]:
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[0] == 0:
        shape = tuple(images.shape) if hasattr(images, "shape") else type(images).__name__
        raise ValueError(f"images: expected a non-empty (N, C, H, W) tensor, got {shape}")
    dev = pick_device(device)
    model.to(dev).eval()
    n = images.shape[0]
    tgt = torch.as_tensor(target, dtype=torch.long).flatten()
    if tgt.numel() == 1:
        tgt = tgt.expand(n)
    if tgt.numel() != n:
        raise ValueError(f"target: expected one class per image ({n}), got {tgt.numel()}")
    x = images.detach().float().to(dev).requires_grad_(True)
    return dev, x, tgt.to(dev).contiguous()


def _to_maps(attr: torch.Tensor, absolute: bool = True) -> np.ndarray:
    """(N, C, H, W) attributions -> (N, H, W) float32: |a| summed over channels (or signed sum)."""
    a = attr.detach().float()
    a = a.abs().sum(1) if absolute else a.sum(1)
    return a.cpu().numpy().astype(np.float32)


def saliency(
    model: nn.Module, images: torch.Tensor, target: int | torch.Tensor, *, device: torch.device | str | None = None
) -> np.ndarray:
    """Captum Saliency: |d logit_target / d x| summed over channels; (N, H, W)."""
    dev, x, tgt = _prepare(model, images, target, device)
    return _to_maps(Saliency(model).attribute(x, target=tgt, abs=True))


def integrated_gradients(
    model: nn.Module,
    images: torch.Tensor,
    target: int | torch.Tensor,
    *,
    n_steps: int = 32,
    baseline: float = -1.0,
    internal_batch_size: int | None = None,
    signed: bool = False,
    device: torch.device | str | None = None,
) -> np.ndarray:
    """Captum IntegratedGradients (Gauss-Legendre, n_steps) from a constant `baseline` image
    (-1 = blank canvas): |attribution| summed over channels, (N, H, W). With `signed` the signed
    sum, whose total over pixels approximates f(x) - f(baseline) (completeness)."""
    dev, x, tgt = _prepare(model, images, target, device)
    attr = IntegratedGradients(model).attribute(
        x, baselines=baseline, target=tgt, n_steps=n_steps, internal_batch_size=internal_batch_size
    )
    return _to_maps(attr, absolute=not signed)


@contextlib.contextmanager
def _seeded(seed: int, device: torch.device):
    """Run with the global torch RNG seeded, restoring it afterwards (Captum draws noise with it)."""
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def smoothgrad(
    model: nn.Module,
    images: torch.Tensor,
    target: int | torch.Tensor,
    *,
    nt_samples: int = 16,
    stdev: float = 0.3,
    nt_samples_batch_size: int | None = None,
    seed: int = 0,
    device: torch.device | str | None = None,
) -> np.ndarray:
    """Captum NoiseTunnel(Saliency), SmoothGrad: the mean of |gradient| over `nt_samples` copies
    with Gaussian noise of std `stdev` (in [-1, 1] image units); (N, H, W). Noise is drawn from
    the torch RNG seeded with `seed` for the whole batch."""
    dev, x, tgt = _prepare(model, images, target, device)
    with _seeded(seed, dev):
        attr = NoiseTunnel(Saliency(model)).attribute(
            x, nt_type="smoothgrad", nt_samples=nt_samples, stdevs=stdev,
            nt_samples_batch_size=nt_samples_batch_size, target=tgt, abs=True,
        )
    return _to_maps(attr)


def gradcam(
    model: nn.Module,
    images: torch.Tensor,
    target: int | torch.Tensor,
    *,
    layer: nn.Module | None = None,
    device: torch.device | str | None = None,
) -> np.ndarray:
    """Captum LayerGradCam on `layer` (default: the model's `gradcam_layer_name`), ReLU'd and
    upsampled bilinearly to the image grid; (N, H, W)."""
    dev, x, tgt = _prepare(model, images, target, device)
    layer = layer if layer is not None else gradcam_layer(model)
    cam = LayerGradCam(model, layer).attribute(x, target=tgt, relu_attributions=True)
    up = LayerAttribution.interpolate(cam, tuple(x.shape[-2:]), interpolate_mode="bilinear")
    return _to_maps(up.clamp(min=0))


def occlusion(
    model: nn.Module,
    images: torch.Tensor,
    target: int | torch.Tensor,
    *,
    window: int = 3,
    stride: int = 1,
    baseline: float = -1.0,
    perturbations_per_eval: int = 16,
    device: torch.device | str | None = None,
) -> np.ndarray:
    """Captum Occlusion: the drop of the target logit when a window x window patch is set to
    `baseline`, averaged over the windows covering each pixel; |drop| summed over channels."""
    dev, x, tgt = _prepare(model, images, target, device)
    if not 1 <= window <= min(x.shape[-2:]) or stride < 1:
        raise ValueError(f"window: need 1 <= window <= image side and stride >= 1, got {window}, {stride}")
    attr = Occlusion(model).attribute(
        x, sliding_window_shapes=(x.shape[1], window, window), strides=(x.shape[1], stride, stride),
        baselines=baseline, target=tgt, perturbations_per_eval=perturbations_per_eval,
    )
    return _to_maps(attr)


# ---- diffusion attribution -------------------------------------------------------------------


def _check_timesteps(timesteps: Sequence[int], T: int) -> list[int]:
    ts = [int(t) for t in timesteps]
    if not ts or any(not 1 <= t <= T for t in ts):
        raise ValueError(f"timesteps: need a non-empty list of steps in 1..{T}, got {list(timesteps)}")
    return ts


def default_draws(method: str) -> int:
    """The noise draws per timestep a diffusion method runs with when none are given (its
    `n_draws` default, chosen from measured map reliability)."""
    return int(inspect.signature(globals()[method]).parameters["n_draws"].default)


def default_timesteps(T: int, n: int = 10) -> list[int]:
    """n timesteps evenly spaced over 1..T (the kept timesteps when none are given)."""
    return sorted({int(round(v)) for v in np.linspace(1, T, n)})


def _per_image_noise(
    shape: tuple[int, ...], n_draws: int, seeds: Sequence[int]
) -> torch.Tensor:
    """(N, n_draws, *shape) standard normal noise, image i drawn from a generator seeded seeds[i]."""
    out = []
    for s in seeds:
        gen = torch.Generator().manual_seed(int(s))
        out.append(torch.randn((n_draws, *shape), generator=gen))
    return torch.stack(out)


def _seeds_for(n: int, seeds: Sequence[int] | None, seed: int) -> list[int]:
    if seeds is None:
        return [seed + i for i in range(n)]
    if len(seeds) != n:
        raise ValueError(f"seeds: expected one seed per image ({n}), got {len(seeds)}")
    return [int(s) for s in seeds]


def _expand_context(context: Context | None, n: int, repeats: int) -> Context | None:
    if context is None:
        return None
    if not isinstance(context, torch.Tensor) or context.shape[0] != n:
        raise ValueError(
            "context: expected a tensor with one entry per image (class labels (N,) or exemplars (N, C, H, W))"
        )
    return context.repeat_interleave(repeats, dim=0)


@torch.no_grad()
def guided_noise_score(
    net: nn.Module,
    schedule,
    context: Context | None,
    path: Sequence[tuple[int, torch.Tensor]],
    *,
    w: float,
) -> np.ndarray:
    """phi = sum over (t, x_t) in `path` of |sqrt(1 - alphabar_t) ((1 + w) eps(x_t, t, c) -
    w eps(x_t, t, null))|, summed over channels (guidance by models.diffusion.guidance).
    x_t: (N, C, H, W); returns (N, H, W) float32."""
    from models.diffusion.guidance import guided_eps

    if not path:
        raise ValueError("path: no timesteps kept")
    total = None
    for t, x_t in path:
        tt = torch.full((x_t.shape[0],), int(t), dtype=torch.long, device=x_t.device)
        eps = guided_eps(net, x_t, tt, context, w)
        term = (float(1.0 - schedule.alphabar[int(t)]) ** 0.5 * eps).abs().sum(1)
        total = term if total is None else total + term
    return total.float().cpu().numpy()


def diffusion_score(
    net: nn.Module,
    schedule,
    context: Context | None,
    n: int,
    *,
    w: float = 1.0,
    sampler: str = "ddim",
    steps: int = 50,
    eta: float = 0.0,
    t_range: tuple[int, int] | None = None,
    seeds: Sequence[int] | None = None,
    seed: int = 0,
    image_shape: tuple[int, int, int] | None = None,
    device: torch.device | str | None = None,
) -> tuple[np.ndarray, torch.Tensor]:
    """The guided-noise score along the sampling path of `n` samples: x_T is drawn from a
    generator seeded seeds[i] per sample (so each sample is the one the sampling CLI makes from
    that seed, whatever the batch), `sampler` (a name in models.diffusion.samplers.SAMPLERS) runs with guidance `w`, and
    phi = sum over the path's t in `t_range` (inclusive, default all) of
    sqrt(1 - alphabar_t) |eps_guided(x_t, t)|, eps_guided being the one the sampler used.
    Returns (maps (n, H, W) float32, samples (n, C, H, W) in [-1, 1] on the CPU)."""
    from models.diffusion.samplers import get_sampler, initial_noise

    run = get_sampler(sampler)
    dev = pick_device(device)
    net.to(dev).eval()
    if image_shape is None:
        arch = getattr(net, "arch", {})
        if "image_size" not in arch:
            raise ValueError("image_shape: not given and the network records no image_size")
        image_shape = (1, int(arch["image_size"]), int(arch["image_size"]))
    lo, hi = t_range if t_range is not None else (1, schedule.T)
    if not 1 <= lo <= hi <= schedule.T:
        raise ValueError(f"t_range: need 1 <= lo <= hi <= {schedule.T}, got {t_range}")
    gens = [torch.Generator().manual_seed(s) for s in _seeds_for(n, seeds, seed)]
    x_T = initial_noise((n, *image_shape), gens, dev)
    total = torch.zeros((n, *image_shape[-2:]), dtype=torch.float64, device=dev)
    kept: list[int] = []

    def callback(t: int, x_t: torch.Tensor, eps: torch.Tensor) -> None:
        if lo <= t <= hi:
            kept.append(t)
            total.add_((float(1.0 - schedule.alphabar[t]) ** 0.5 * eps.double()).abs().sum(1))

    ctx = None if context is None else context.to(dev)
    steps = schedule.T if sampler == "ddpm" else steps
    samples = run(net, x_T, schedule, ctx, steps=steps, w=w, eta=eta, generator=gens, callback=callback)
    if not kept:
        raise ValueError(f"t_range: no step of the {sampler} path lies in {lo}..{hi}")
    return total.float().cpu().numpy(), samples.cpu()


def diffusion_score_noised(
    net: nn.Module,
    schedule,
    images: torch.Tensor,
    context: Context | None,
    *,
    w: float = 1.0,
    timesteps: Sequence[int] | None = None,
    n_draws: int = 4,
    seeds: Sequence[int] | None = None,
    seed: int = 0,
    device: torch.device | str | None = None,
) -> np.ndarray:
    """The guided-noise score along forward-noised copies x_t = q(x_t | x_0 = image) of any image
    (real or generated): phi summed over `timesteps`, averaged over `n_draws` noise draws per
    image; (N, H, W). Images (N, C, H, W) in [-1, 1]; context one entry per image."""
    dev = pick_device(device)
    net.to(dev).eval()
    n = images.shape[0]
    ts = _check_timesteps(timesteps or default_timesteps(schedule.T), schedule.T)
    noise = _per_image_noise(tuple(images.shape[1:]), n_draws * len(ts), _seeds_for(n, seeds, seed))
    x0 = images.float().to(dev)
    ctx = None if context is None else context.to(dev)
    maps = np.zeros((n, *images.shape[-2:]), dtype=np.float32)
    for d in range(n_draws):
        path = []
        for j, t in enumerate(ts):
            tt = torch.full((n,), t, dtype=torch.long, device=dev)
            path.append((t, schedule.q_sample(x0, tt, noise[:, d * len(ts) + j].to(dev))))
        maps += guided_noise_score(net, schedule, ctx, path, w=w)
    return maps / n_draws


@torch.no_grad()
def _condition_effect(
    net: nn.Module,
    schedule,
    images: torch.Tensor,
    context: Context | None,
    timesteps: Sequence[int] | None,
    n_draws: int,
    seeds: Sequence[int] | None,
    seed: int,
    device: torch.device | str | None,
    reduce: Callable[[torch.Tensor, torch.Tensor, torch.Tensor, float], torch.Tensor],
) -> np.ndarray:
    """Shared loop of the condition-contrast maps: for every noise draw and kept timestep, the
    conditional and unconditional predictions eps_c, eps_u on the same forward-noised copy
    x_t = q(x_t | x_0 = image) (one batched call per draw), reduced per pixel by
    reduce(eps_c, eps_u, noise, sqrt(1 - alphabar_t)) -> (N, C, H, W), summed over timesteps and
    channels, averaged over draws; (N, H, W) float32."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[0] == 0:
        raise ValueError("images: expected a non-empty (N, C, H, W) tensor")
    if context is None:
        raise ValueError("context: a condition-contrast map needs a condition (class labels or exemplars)")
    if n_draws < 1:
        raise ValueError(f"n_draws: must be >= 1, got {n_draws}")
    dev = pick_device(device)
    net.to(dev).eval()
    n = images.shape[0]
    ts = _check_timesteps(timesteps or default_timesteps(schedule.T), schedule.T)
    k = len(ts)
    noise = _per_image_noise(tuple(images.shape[1:]), n_draws * k, _seeds_for(n, seeds, seed))
    x0 = images.float().to(dev).repeat_interleave(k, dim=0)  # (N * k, C, H, W), image-major
    tt = torch.tensor(ts, dtype=torch.long, device=dev).repeat(n)
    scale = (1.0 - schedule.alphabar.to(dev)[tt]).sqrt().float().view(-1, 1, 1, 1)
    ctx = _expand_context(context, n, k).to(dev)
    null = net.null_context(ctx)
    total = torch.zeros((n, *images.shape[-2:]), dtype=torch.float64, device=dev)
    for d in range(n_draws):
        eps = noise[:, d * k : (d + 1) * k].flatten(0, 1).to(dev)
        x_t = schedule.q_sample(x0, tt, eps)
        both = net(torch.cat([x_t, x_t]), torch.cat([tt, tt]), torch.cat([ctx, null]))
        eps_c, eps_u = both.float().chunk(2)
        per = reduce(eps_c, eps_u, eps, scale).sum(1)  # (N * k, H, W)
        total += per.view(n, k, *per.shape[-2:]).sum(1).double()
    return (total / n_draws).float().cpu().numpy()


def guidance_difference(
    net: nn.Module,
    schedule,
    images: torch.Tensor,
    context: Context | None,
    *,
    timesteps: Sequence[int] | None = None,
    n_draws: int = 8,
    seeds: Sequence[int] | None = None,
    seed: int = 0,
    device: torch.device | str | None = None,
) -> np.ndarray:
    """What the condition contributes to the denoiser's prediction, pixel by pixel:
    sum over `timesteps` of |sqrt(1 - alphabar_t) (eps(x_t, t, c) - eps(x_t, t, null))| on
    forward-noised copies of each image, averaged over `n_draws` noise draws; (N, H, W).

    The guided-noise score's w-scaled part: (1 + w) eps_c - w eps_u = eps_c + w (eps_c - eps_u),
    so this is the term that guidance amplifies, without the conditional prediction eps_c itself,
    whose magnitude tracks the noise draw rather than the image."""

    def reduce(eps_c, eps_u, _noise, scale):
        return (scale * (eps_c - eps_u)).abs()

    return _condition_effect(net, schedule, images, context, timesteps, n_draws, seeds, seed, device, reduce)


def conditional_gain(
    net: nn.Module,
    schedule,
    images: torch.Tensor,
    context: Context | None,
    *,
    timesteps: Sequence[int] | None = None,
    n_draws: int = 16,
    seeds: Sequence[int] | None = None,
    seed: int = 0,
    device: torch.device | str | None = None,
) -> np.ndarray:
    """How much the condition helps the denoiser explain each pixel: the drop of the squared
    denoising error, (eps - eps(x_t, t, null))^2 - (eps - eps(x_t, t, c))^2, summed over
    `timesteps`, averaged over `n_draws` noise draws, negative values set to 0; (N, H, W).

    Summed over pixels and timesteps this is the Monte-Carlo estimate of the difference of the
    conditional and unconditional denoising losses, the evidence a diffusion classifier uses for
    the class (Li et al. 2023); the map shows where that evidence lies."""

    def reduce(eps_c, eps_u, noise, _scale):
        return (noise - eps_u).pow(2) - (noise - eps_c).pow(2)

    out = _condition_effect(net, schedule, images, context, timesteps, n_draws, seeds, seed, device, reduce)
    return np.maximum(out, 0.0)


class DenoisingLoss(nn.Module):
    """Wraps `net` as loss(x0, t, noise, context) -> (B,) per-example denoising loss
    mean((noise - net(sqrt(ab_t) x0 + sqrt(1 - ab_t) noise, t, context))^2), so Captum can
    attribute the loss to the clean image x0. Extra arguments are tensors with a batch dim, which
    Captum's additional_forward_args expansion repeats correctly."""

    def __init__(self, net: nn.Module, schedule) -> None:
        super().__init__()
        self.net = net
        self.schedule = schedule

    def forward(
        self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, context: Context | None
    ) -> torch.Tensor:
        x_t = self.schedule.q_sample(x0, t, noise)
        return (noise - self.net(x_t, t, context)).pow(2).flatten(1).mean(1)


def _loss_attribution(
    attribute: Callable[[DenoisingLoss, torch.Tensor, tuple], torch.Tensor],
    net: nn.Module,
    schedule,
    images: torch.Tensor,
    context: Context | None,
    timesteps: Sequence[int] | None,
    n_draws: int,
    seeds: Sequence[int] | None,
    seed: int,
    device: torch.device | str | None,
) -> np.ndarray:
    dev = pick_device(device)
    net.to(dev).eval()
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[0] == 0:
        raise ValueError("images: expected a non-empty (N, C, H, W) tensor")
    n = images.shape[0]
    ts = _check_timesteps(timesteps or default_timesteps(schedule.T), schedule.T)
    k = len(ts) * n_draws
    noise = _per_image_noise(tuple(images.shape[1:]), k, _seeds_for(n, seeds, seed))
    x0 = images.float().to(dev).repeat_interleave(k, dim=0).requires_grad_(True)
    t = torch.tensor(ts * n_draws, dtype=torch.long).repeat(n).to(dev)
    ctx = _expand_context(context, n, k)
    args = (t, noise.flatten(0, 1).to(dev), None if ctx is None else ctx.to(dev))
    grads = attribute(DenoisingLoss(net, schedule), x0, args)
    mean_grad = grads.view(n, k, *images.shape[1:]).mean(1)  # gradient of the expected loss
    return _to_maps(mean_grad)


def denoising_loss_saliency(
    net: nn.Module,
    schedule,
    images: torch.Tensor,
    context: Context | None,
    *,
    timesteps: Sequence[int] | None = None,
    n_draws: int = 4,
    seeds: Sequence[int] | None = None,
    seed: int = 0,
    device: torch.device | str | None = None,
) -> np.ndarray:
    """|d E_{t, eps}[loss] / d x0| via Captum Saliency over the wrapped loss: the gradient is
    averaged over `timesteps` x `n_draws` (t, noise) pairs before the absolute value; (N, H, W)."""

    def attribute(fn: DenoisingLoss, x0: torch.Tensor, args: tuple) -> torch.Tensor:
        return Saliency(fn).attribute(x0, additional_forward_args=args, abs=False)

    return _loss_attribution(attribute, net, schedule, images, context, timesteps, n_draws, seeds, seed, device)


def denoising_loss_ig(
    net: nn.Module,
    schedule,
    images: torch.Tensor,
    context: Context | None,
    *,
    timesteps: Sequence[int] | None = None,
    n_draws: int = 2,
    n_steps: int = 16,
    baseline: float = -1.0,
    internal_batch_size: int | None = None,
    seeds: Sequence[int] | None = None,
    seed: int = 0,
    device: torch.device | str | None = None,
) -> np.ndarray:
    """Captum IntegratedGradients of the wrapped denoising loss from a constant `baseline` image,
    averaged over (t, noise) pairs (IG is linear in the function, so this is IG of the expected
    loss), absolute value summed over channels; (N, H, W). `internal_batch_size` bounds memory: it
    counts rows of the (N x timesteps x draws) batch times steps run at once, so it is at least
    N x len(timesteps) x n_draws; Captum repeats (t, noise, context) along with the interpolated
    images."""

    def attribute(fn: DenoisingLoss, x0: torch.Tensor, args: tuple) -> torch.Tensor:
        return IntegratedGradients(fn).attribute(
            x0, baselines=baseline, additional_forward_args=args, n_steps=n_steps,
            internal_batch_size=internal_batch_size,
        )

    return _loss_attribution(attribute, net, schedule, images, context, timesteps, n_draws, seeds, seed, device)
