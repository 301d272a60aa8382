"""Training configs: TOML -> validated frozen dataclasses. Every error names the field
(`model.n_feat: expected an integer, got 'big'`)."""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.data import EMBEDDED, SPECS
from models.data.splits import EXEMPLAR_RULES
from models.diffusion.samplers import SAMPLERS
from models.diffusion.schedule import SCHEDULES
from models.diffusion.unet import CONTEXT_MODES, PREDICTIONS

LR_SCHEDULES = ("constant", "cosine")
LOSS_WEIGHTINGS = ("uniform", "min_snr")
SAMPLER_NAMES = tuple(SAMPLERS)


class ConfigError(ValueError):
    """A config value is missing, unknown or out of range; the message names the field."""


@dataclass(frozen=True)
class DataConfig:
    dataset: str = "digits"
    root: str | None = None
    size: int = 16
    heldout_classes: int = 10
    split_seed: int = 0
    exemplar_rule: str = "first"
    threshold: float | str | None = "auto"
    max_per_class: int | None = None


@dataclass(frozen=True)
class ModelConfig:
    context: str = "exemplar"
    n_feat: int = 16
    channel_mults: list[int] = field(default_factory=lambda: [1, 2])
    n_res: int = 1
    set_size: int = 5
    set_width: int = 16


@dataclass(frozen=True)
class DiffusionConfig:
    schedule: str = "linear"
    T: int = 500
    beta_start: float = 1e-4
    beta_end: float = 0.02
    snr_shift: float = 1.0
    prediction: str = "eps"


@dataclass(frozen=True)
class TrainingConfig:
    steps: int = 2000
    batch_size: int = 64
    lr: float = 2e-3
    warmup: int = 100
    p_uncond: float = 0.0
    ema_decay: float = 0.995
    grad_clip: float = 1.0
    amp: bool = True
    lr_schedule: str = "constant"
    loss_weighting: str = "uniform"
    min_snr_gamma: float = 5.0
    ema_warmup: bool = True
    log_every: int = 50
    checkpoint_every: int = 500


@dataclass(frozen=True)
class SamplingConfig:
    sampler: str = "ddim"
    steps: int = 50
    eta: float = 0.0
    guidance: list[float] = field(default_factory=lambda: [0.0])


@dataclass(frozen=True)
class Config:
    """One model's whole recipe. `name` is the manifest's model column (ddpm, cfgdm, fsdm, ...)."""

    name: str
    kind: str = "diffusion"
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, section: str, **changes: Any) -> Config:
        """A copy with `changes` applied to one section (validated again)."""
        data = self.to_dict()
        data[section].update(changes)
        return config_from_dict(data)


SECTIONS = {
    "data": DataConfig,
    "model": ModelConfig,
    "diffusion": DiffusionConfig,
    "training": TrainingConfig,
    "sampling": SamplingConfig,
}


def _check_type(value: Any, hint: Any, name: str) -> Any:
    """Coerce/check one TOML value against a type hint; raise ConfigError naming the field."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for opt in options:
            if opt is type(None):
                continue
            try:
                return _check_type(value, opt, name)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{name}: unexpected value {value!r}")
    if origin is list:
        (inner,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise ConfigError(f"{name}: expected a list, got {value!r}")
        return [_check_type(v, inner, f"{name}[{i}]") for i, v in enumerate(value)]
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{name}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{name}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{name}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{name}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{name}: unsupported type {hint!r}")


def _section(cls: type, table: Any, prefix: str) -> Any:
    if not isinstance(table, dict):
        raise ConfigError(f"{prefix}: expected a table, got {table!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(table) - names)
    if unknown:
        raise ConfigError(f"{prefix}.{unknown[0]}: unknown field (known: {', '.join(sorted(names))})")
    values = {k: _check_type(v, hints[k], f"{prefix}.{k}") for k, v in table.items()}
    return cls(**values)


def _require(ok: bool, name: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"{name}: {message}")


def validate(cfg: Config) -> Config:
    """Range and choice checks across fields; returns cfg unchanged when valid."""
    d, m, f, t, s = cfg.data, cfg.model, cfg.diffusion, cfg.training, cfg.sampling
    _require(bool(cfg.name) and cfg.name.replace("_", "").replace("-", "").isalnum(), "name",
             f"must be a non-empty word of letters, digits, - and _, got {cfg.name!r}")
    _require(cfg.kind == "diffusion", "kind", f"must be 'diffusion', got {cfg.kind!r}")
    _require(d.dataset in SPECS, "data.dataset", f"{d.dataset!r} is not one of {SPECS}")
    _require(d.dataset in EMBEDDED or bool(d.root), "data.root",
             f"the {d.dataset} data set needs a folder")
    _require(4 <= d.size <= 256, "data.size", f"must be in 4..256, got {d.size}")
    _require(d.heldout_classes >= 0, "data.heldout_classes", "must be >= 0")
    _require(d.exemplar_rule in EXEMPLAR_RULES, "data.exemplar_rule", f"must be one of {EXEMPLAR_RULES}")
    _require(d.threshold is None or d.threshold == "auto" or isinstance(d.threshold, float)
             and 0.0 < d.threshold < 1.0, "data.threshold", "must be a number in (0, 1) or \"auto\"")
    _require(d.max_per_class is None or d.max_per_class >= 1, "data.max_per_class", "must be >= 1")
    _require(m.context in CONTEXT_MODES, "model.context", f"{m.context!r} is not one of {CONTEXT_MODES}")
    _require(1 <= m.n_feat <= 512, "model.n_feat", f"must be in 1..512, got {m.n_feat}")
    _require(1 <= len(m.channel_mults) <= 5 and all(c >= 1 for c in m.channel_mults),
             "model.channel_mults", "must be 1-5 positive integers")
    _require(d.size % 2 ** (len(m.channel_mults) - 1) == 0, "model.channel_mults",
             f"{len(m.channel_mults)} levels need data.size divisible by {2 ** (len(m.channel_mults) - 1)}")
    _require(1 <= m.n_res <= 4, "model.n_res", "must be in 1..4")
    _require(1 <= m.set_size <= 64, "model.set_size", "must be in 1..64")
    _require(m.set_width >= 1, "model.set_width", "must be >= 1")
    _require(f.schedule in SCHEDULES, "diffusion.schedule", f"{f.schedule!r} is not one of {SCHEDULES}")
    _require(1 <= f.T <= 10000, "diffusion.T", f"must be in 1..10000, got {f.T}")
    _require(0.0 < f.beta_start <= f.beta_end < 1.0, "diffusion.beta_start",
             "need 0 < beta_start <= beta_end < 1")
    _require(f.snr_shift > 0.0, "diffusion.snr_shift", f"must be > 0, got {f.snr_shift}")
    _require(f.prediction in PREDICTIONS, "diffusion.prediction", f"{f.prediction!r} is not one of {PREDICTIONS}")
    _require(t.steps >= 1, "training.steps", "must be >= 1")
    _require(t.batch_size >= 1, "training.batch_size", "must be >= 1")
    _require(0.0 < t.lr < 1.0, "training.lr", "must be in (0, 1)")
    _require(t.warmup >= 0, "training.warmup", "must be >= 0")
    _require(0.0 <= t.p_uncond < 1.0, "training.p_uncond", "must be in [0, 1)")
    _require(m.context != "none" or t.p_uncond == 0.0, "training.p_uncond",
             "context dropout needs a context (model.context is 'none')")
    _require(0.0 <= t.ema_decay < 1.0, "training.ema_decay", "must be in [0, 1)")
    _require(t.grad_clip >= 0.0, "training.grad_clip", "must be >= 0 (0 turns clipping off)")
    _require(t.lr_schedule in LR_SCHEDULES, "training.lr_schedule", f"{t.lr_schedule!r} is not one of {LR_SCHEDULES}")
    _require(t.loss_weighting in LOSS_WEIGHTINGS, "training.loss_weighting",
             f"{t.loss_weighting!r} is not one of {LOSS_WEIGHTINGS}")
    _require(t.min_snr_gamma > 0.0, "training.min_snr_gamma", "must be > 0")
    _require(t.log_every >= 1, "training.log_every", "must be >= 1")
    _require(t.checkpoint_every >= 1, "training.checkpoint_every", "must be >= 1")
    _require(s.sampler in SAMPLER_NAMES, "sampling.sampler", f"must be one of {', '.join(SAMPLER_NAMES)}")
    _require(1 <= s.steps <= f.T, "sampling.steps", f"must be in 1..diffusion.T ({f.T})")
    _require(s.eta >= 0.0, "sampling.eta", "must be >= 0")
    _require(len(s.guidance) >= 1 and all(g >= 0 for g in s.guidance), "sampling.guidance",
             "must be a non-empty list of scales >= 0")
    return cfg


def config_from_dict(data: dict[str, Any]) -> Config:
    """Build and validate a Config from a plain dict (parsed TOML or a checkpoint's copy)."""
    if not isinstance(data, dict):
        raise ConfigError("config: expected a table at the top level")
    known = {f.name for f in dataclasses.fields(Config)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown field (known: {', '.join(sorted(known))})")
    if "name" not in data:
        raise ConfigError("name: missing (the model's name, e.g. 'cfgdm')")
    top = {
        "name": _check_type(data["name"], str, "name"),
        "kind": _check_type(data.get("kind", "diffusion"), str, "kind"),
        "seed": _check_type(data.get("seed", 0), int, "seed"),
    }
    sections = {k: _section(cls, data.get(k, {}), k) for k, cls in SECTIONS.items()}
    return validate(Config(**top, **sections))


def load_config(path: Path | str) -> Config:
    """Read and validate a TOML config file (a relative data.root is relative to the working folder)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config: file {str(path)!r} does not exist")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config: {path.name} is not valid TOML ({exc})") from exc
    return config_from_dict(data)
