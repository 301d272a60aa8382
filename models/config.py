"""Training configs: TOML -> validated frozen dataclasses (pydantic's, so a config is checked
when built, and `dataclasses.asdict` still gives its plain dict). Every error names the field
(`model.n_feat: expected an integer, got 'big'`)."""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    PlainValidator,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic.dataclasses import dataclass

from fieldcheck import Bool, Float, Int, Str, field_error, one_line
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


def _ints(lo: int, hi: int | None = None) -> Any:
    return Annotated[Int, Field(ge=lo, le=hi)]


def _word(name: str) -> str:
    if not name or not name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"must be a non-empty word of letters, digits, - and _, got {name!r}")
    return name


def _threshold(value: Any) -> float | str | None:
    """None (keep grey levels), "auto" (Otsu) or a fixed threshold in (0, 1)."""
    if value is None or value == "auto":
        return value
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 < value < 1.0:
        raise ValueError(f'must be a number in (0, 1) or "auto", got {value!r}')
    return float(value)


# A TOML table may not name a field the config does not have (a typo would be silently ignored).
_TABLE = ConfigDict(extra="forbid")
Fraction = Annotated[Float, Field(ge=0.0, lt=1.0)]  # [0, 1)


@dataclass(frozen=True, config=_TABLE)
class DataConfig:
    dataset: Literal[SPECS] = "digits"
    root: Str | None = None
    size: _ints(4, 256) = 16
    heldout_classes: _ints(0) = 10
    split_seed: Int = 0
    exemplar_rule: Literal[EXEMPLAR_RULES] = "first"
    threshold: Annotated[float | str | None, PlainValidator(_threshold)] = "auto"
    max_per_class: _ints(1) | None = None

    @model_validator(mode="after")
    def _has_files(self) -> DataConfig:
        if self.dataset not in EMBEDDED and not self.root:
            raise field_error("root", f"the {self.dataset} data set needs a folder")
        return self


@dataclass(frozen=True, config=_TABLE)
class ModelConfig:
    context: Literal[CONTEXT_MODES] = "exemplar"
    n_feat: _ints(1, 512) = 16
    channel_mults: Annotated[list[_ints(1)], Field(min_length=1, max_length=5)] = field(
        default_factory=lambda: [1, 2])
    n_res: _ints(1, 4) = 1
    set_size: _ints(1, 64) = 5
    set_width: _ints(1) = 16


@dataclass(frozen=True, config=_TABLE)
class DiffusionConfig:
    schedule: Literal[SCHEDULES] = "linear"
    T: _ints(1, 10000) = 500
    beta_start: Float = 1e-4
    beta_end: Float = 0.02
    snr_shift: Annotated[Float, Field(gt=0.0)] = 1.0
    prediction: Literal[PREDICTIONS] = "eps"

    @model_validator(mode="after")
    def _betas(self) -> DiffusionConfig:
        if not 0.0 < self.beta_start <= self.beta_end < 1.0:
            raise field_error("beta_start", "need 0 < beta_start <= beta_end < 1")
        return self


@dataclass(frozen=True, config=_TABLE)
class TrainingConfig:
    steps: _ints(1) = 2000
    batch_size: _ints(1) = 64
    lr: Annotated[Float, Field(gt=0.0, lt=1.0)] = 2e-3
    warmup: _ints(0) = 100
    p_uncond: Fraction = 0.0
    ema_decay: Fraction = 0.995
    grad_clip: Annotated[Float, Field(ge=0.0, description="0 turns clipping off")] = 1.0
    amp: Bool = True
    lr_schedule: Literal[LR_SCHEDULES] = "constant"
    loss_weighting: Literal[LOSS_WEIGHTINGS] = "uniform"
    min_snr_gamma: Annotated[Float, Field(gt=0.0)] = 5.0
    ema_warmup: Bool = True
    log_every: _ints(1) = 50
    checkpoint_every: _ints(1) = 500


@dataclass(frozen=True, config=_TABLE)
class SamplingConfig:
    sampler: Literal[SAMPLER_NAMES] = "ddim"
    steps: _ints(1) = 50
    eta: Annotated[Float, Field(ge=0.0)] = 0.0
    guidance: Annotated[list[Annotated[Float, Field(ge=0.0)]], Field(min_length=1)] = field(
        default_factory=lambda: [0.0])


@dataclass(frozen=True, config=_TABLE)
class Config:
    """One model's whole recipe. `name` is the manifest's model column (ddpm, cfgdm, fsdm, ...)."""

    name: Annotated[Str, AfterValidator(_word)]
    kind: Literal["diffusion"] = "diffusion"
    seed: Int = 0
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)

    @model_validator(mode="after")
    def _consistent(self) -> Config:
        """Rules across sections."""
        levels = len(self.model.channel_mults)
        if self.data.size % 2 ** (levels - 1):
            raise field_error("model.channel_mults",
                              f"{levels} levels need data.size divisible by {2 ** (levels - 1)}")
        if self.model.context == "none" and self.training.p_uncond != 0.0:
            raise field_error("training.p_uncond",
                              "context dropout needs a context (model.context is 'none')")
        if self.sampling.steps > self.diffusion.T:
            raise field_error("sampling.steps", f"must be in 1..diffusion.T ({self.diffusion.T})")
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, section: str, **changes: Any) -> Config:
        """A copy with `changes` applied to one section (validated again)."""
        data = self.to_dict()
        data[section].update(changes)
        return config_from_dict(data)


_CONFIG = TypeAdapter(Config)


def config_from_dict(data: dict[str, Any]) -> Config:
    """Build and validate a Config from a plain dict (parsed TOML or a checkpoint's copy)."""
    try:
        return _CONFIG.validate_python(data)
    except ValidationError as exc:
        raise ConfigError(one_line(exc, Config, top="config", mapping="a table")) from None


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
