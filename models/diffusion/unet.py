"""A small UNet for epsilon prediction, conditioned on the timestep and on a context.

Context modes (one network class, chosen by `context`):
- "none": unconditional; `context` is ignored (pass None).
- "class": LongTensor (B,) of class indices; index `n_classes` is the null token.
- "exemplar": (B, 1, H, W) exemplar image stacked as an extra input channel (the seed's "stack"
  mode); the null context is an all-zero image (real images are binarised to -1/+1, so zero never
  occurs in data).
- "set": (B, K, 1, H, W) context set pooled by a SetEncoder into a vector (FSDM); an all-zero set is
  the null context and maps to a learned null vector.
The timestep and context vectors are summed and applied in every residual block by FiLM
(scale and shift after GroupNorm).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from models.diffusion.schedule import make_schedule
from models.diffusion.set_encoder import SetEncoder

CONTEXT_MODES = ("none", "class", "exemplar", "set")
PREDICTIONS = ("eps", "v")


def _groups(ch: int) -> int:
    return next(g for g in (8, 4, 2, 1) if ch % g == 0)


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of integer timesteps t (B,) -> (B, dim) (Vaswani et al.)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=1)
    return F.pad(emb, (0, dim % 2))


class ResBlock(nn.Module):
    """GN-SiLU-conv, FiLM from the embedding, GN-SiLU-conv, residual (1x1 when widths differ)."""

    def __init__(self, in_ch: int, out_ch: int, emb_dim: int) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(_groups(in_ch), in_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.film = nn.Linear(emb_dim, 2 * out_ch)
        self.norm2 = nn.GroupNorm(_groups(out_ch), out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.film(emb)[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(F.silu(h))
        return h + self.skip(x)


class UNet(nn.Module):
    """eps = net(x, t, context): x (B, 1, H, W), t LongTensor (B,) in 1..T -> eps (B, 1, H, W).

    Widths n_feat * channel_mults per resolution level (each level after the first halves H, W),
    `n_res` residual blocks per level. `arch` holds the constructor arguments (for checkpoints).

    `prediction` is what the last layer is trained to output: "eps" (the noise) or "v"
    (v = sqrt(alphabar_t) eps - sqrt(1 - alphabar_t) x0, Salimans & Ho 2022). Either way the
    call returns eps, so samplers and attribution need not know; with "v" the network holds the
    schedule (`schedule`: make_schedule's keyword arguments) to convert
    eps = sqrt(alphabar_t) v + sqrt(1 - alphabar_t) x_t. `net(x, t, context, raw=True)` returns
    the unconverted output, which the training loss compares with its target.
    """

    def __init__(
        self,
        image_size: int = 16,
        n_feat: int = 16,
        channel_mults: tuple[int, ...] | list[int] = (1, 2),
        n_res: int = 1,
        context: str = "class",
        n_classes: int = 0,
        set_width: int = 16,
        prediction: str = "eps",
        schedule: dict | None = None,
    ) -> None:
        super().__init__()
        if prediction not in PREDICTIONS:
            raise ValueError(f"diffusion.prediction: {prediction!r} is not one of {PREDICTIONS}")
        if prediction == "v" and schedule is None:
            raise ValueError("diffusion.prediction: v-prediction needs the schedule to return eps")
        if context not in CONTEXT_MODES:
            raise ValueError(f"model.context: {context!r} is not one of {CONTEXT_MODES}")
        if context == "class" and n_classes < 1:
            raise ValueError("model.n_classes: class conditioning needs at least one class")
        levels = len(channel_mults)
        if levels < 1 or image_size % (2 ** (levels - 1)):
            raise ValueError(
                f"model.channel_mults: image size {image_size} is not divisible by 2^{levels - 1}"
            )
        self.arch = {
            "image_size": image_size,
            "n_feat": n_feat,
            "channel_mults": list(channel_mults),
            "n_res": n_res,
            "context": context,
            "n_classes": n_classes,
            "set_width": set_width,
        }
        self.prediction = prediction
        if prediction != "eps":
            self.arch.update(prediction=prediction, schedule=dict(schedule))
            alphabar = make_schedule(**schedule).alphabar.float()
            self.register_buffer("sqrt_ab", alphabar.sqrt(), persistent=False)
            self.register_buffer("sqrt_1mab", (1.0 - alphabar).sqrt(), persistent=False)
        self.context_mode = context
        self.n_classes = n_classes
        self.image_size = image_size
        emb_dim = 4 * n_feat
        self.time_dim = n_feat
        self.time_mlp = nn.Sequential(nn.Linear(n_feat, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        if context == "class":
            self.class_emb = nn.Embedding(n_classes + 1, emb_dim)
        elif context == "set":
            self.set_encoder = SetEncoder(emb_dim, set_width)
            self.null_set = nn.Parameter(torch.zeros(emb_dim))
        in_ch = 2 if context == "exemplar" else 1
        chs = [n_feat * m for m in channel_mults]
        self.conv_in = nn.Conv2d(in_ch, chs[0], 3, padding=1)
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        c = chs[0]
        for i, ch in enumerate(chs):
            self.down.append(nn.ModuleList([ResBlock(c if j == 0 else ch, ch, emb_dim) for j in range(n_res)]))
            c = ch
            last = i == levels - 1
            self.downsample.append(nn.Identity() if last else nn.Conv2d(ch, ch, 3, stride=2, padding=1))
        self.mid = ResBlock(c, c, emb_dim)
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for i in reversed(range(levels)):
            ch = chs[i]
            blocks = [ResBlock(c + ch, ch, emb_dim)] + [ResBlock(ch, ch, emb_dim) for _ in range(n_res - 1)]
            self.up.append(nn.ModuleList(blocks))
            c = ch
            self.upsample.append(nn.Identity() if i == 0 else nn.Conv2d(ch, chs[i - 1], 3, padding=1))
            c = ch if i == 0 else chs[i - 1]
        self.norm_out = nn.GroupNorm(_groups(c), c)
        self.conv_out = nn.Conv2d(c, 1, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def null_context(self, context: torch.Tensor | None) -> torch.Tensor | None:
        """The unconditional context for the same batch (null token / zero exemplar / zero set)."""
        if self.context_mode == "none" or context is None:
            return context
        if self.context_mode == "class":
            return torch.full_like(context, self.n_classes)
        return torch.zeros_like(context)

    def _context_embedding(self, context: torch.Tensor | None, batch: int) -> torch.Tensor | None:
        if self.context_mode == "class":
            if context is None or context.shape != (batch,):
                raise ValueError("context: class conditioning needs a LongTensor of shape (B,)")
            return self.class_emb(context)
        if self.context_mode == "set":
            if context is None or context.shape[0] != batch:
                raise ValueError("context: set conditioning needs a (B, K, 1, H, W) tensor")
            vec = self.set_encoder(context)
            is_null = context.flatten(1).abs().amax(dim=1) == 0
            return torch.where(is_null[:, None], self.null_set.to(vec.dtype).expand_as(vec), vec)
        return None

    def forward(
        self, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor | None = None, raw: bool = False
    ) -> torch.Tensor:
        out = self._body(x, t, context)
        if raw or self.prediction == "eps":
            return out
        shape = (-1, *([1] * (x.ndim - 1)))
        return self.sqrt_ab[t].view(shape) * out + self.sqrt_1mab[t].view(shape) * x

    def _body(self, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
        emb = self.time_mlp(timestep_embedding(t, self.time_dim).to(x.dtype))
        ctx = self._context_embedding(context, x.shape[0])
        if ctx is not None:
            emb = emb + ctx
        if self.context_mode == "exemplar":
            if context is None or context.shape != x.shape:
                raise ValueError("context: exemplar conditioning needs a (B, 1, H, W) image like x")
            x = torch.cat([x, context.to(x.dtype)], dim=1)
        h = self.conv_in(x)
        skips = []
        for blocks, down in zip(self.down, self.downsample, strict=True):
            for block in blocks:
                h = block(h, emb)
            skips.append(h)
            h = down(h)
        h = self.mid(h, emb)
        for blocks, up in zip(self.up, self.upsample, strict=True):
            h = torch.cat([h, skips.pop()], dim=1)
            for block in blocks:
                h = block(h, emb)
            if not isinstance(up, nn.Identity):
                h = up(F.interpolate(h, scale_factor=2, mode="nearest"))
        return self.conv_out(F.silu(self.norm_out(h)))
