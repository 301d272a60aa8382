"""Profiles as data: experiments/configs/NAME.toml -> a validated Profile.

A profile names the diffusion model configs to train (models/configs/*.toml) with overrides, and
the sizes of every later stage (sampling, critics, facade classifiers, simulated study), checked
against the pydantic model `ProfileFile`. Every error names the field
(`sampling.guidance: must include 0 (the unguided reference)`).
"""

from __future__ import annotations

import copy
import hashlib
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from fieldcheck import Bool, Float, Int, Str, one_line
from models.classifiers.protonet import MAX_TEST_SHIFT
from models.config import SAMPLER_NAMES, Config, ConfigError, config_from_dict, load_config

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = Path(__file__).resolve().parent / "configs"
PROFILES = ("tiny", "cpu", "full")


class ProfileError(ValueError):
    """A profile value is missing, unknown or out of range; the message names the field."""


def _at_least(n: int) -> Any:
    return Annotated[Int, Field(ge=n)]


def _with_reference(scales: list[float]) -> list[float]:
    if 0 not in scales:
        raise ValueError("must include 0 (the unguided reference)")
    return scales


Count = _at_least(1)
Archs = Annotated[list[Literal["lenet", "resnet18"]], Field(min_length=1)]
# Every table names only fields a stage reads: a typo would otherwise be silently ignored.
_TABLE = ConfigDict(extra="forbid")


class SamplingSection(BaseModel):
    model_config = _TABLE
    guidance: Annotated[list[Annotated[Float, Field(ge=0)]], Field(min_length=1),
                        AfterValidator(_with_reference)]
    sampler: Literal[SAMPLER_NAMES]
    postprocess: Literal["binarise", "none"]
    steps: Count
    n_per_class: Count
    real_per_class: Count
    max_classes: _at_least(2)
    batch_size: Count


class CriticsSection(BaseModel):
    model_config = _TABLE
    protonet_episodes: Count
    protonet_way: _at_least(2)
    protonet_query: Count
    protonet_rotations: Bool = False
    protonet_affine: Bool = False
    # share of the critic's episodes drawn from one alphabet (needs `Alphabet/character` classes)
    protonet_within_alphabet: Annotated[Float, Field(ge=0, le=1)] = 0.0
    # pixels of test-time shifts the critic's embedding averages over (ProtoNet.embed)
    protonet_test_shift: Annotated[Int, Field(ge=0, le=MAX_TEST_SHIFT)] = 0
    simclr_epochs: Count
    n_way: _at_least(2)


class FacadeSection(BaseModel):
    model_config = _TABLE
    max_per_model: _at_least(10)
    max_pooled: _at_least(10)
    archs: Archs
    sweep_archs: Archs
    batch_size: _at_least(2)
    fractions: Annotated[list[Annotated[Float, Field(gt=0, le=1)]], Field(min_length=1)]
    epochs: Count
    resnet_epochs: Count
    test_fraction: Annotated[Float, Field(ge=0, lt=1)]
    saliency_images: Count


class StudySection(BaseModel):
    model_config = _TABLE
    clickme_participants: _at_least(2)
    realfake_participants: _at_least(2)
    trials_per_participant: _at_least(2)
    observer_dprime: Annotated[Float, Field(ge=0)]
    workers: Count
    n_boot: _at_least(10)
    feedback_epochs: Count


class ModelsSection(BaseModel):
    model_config = _TABLE
    configs: Annotated[list[Str], Field(min_length=1, description="config files, relative to the project")]
    set: Annotated[dict[str, Any], Field(description="SECTION.FIELD = VALUE for every config")] = {}


class ProfileFile(BaseModel):
    """A profile's TOML. `data` overrides the models' data sections (checked with them)."""

    model_config = _TABLE
    name: Str | None = None
    description: Str | None = None
    device: Str = "auto"
    data: dict[str, Any]
    models: ModelsSection
    sampling: SamplingSection
    critics: CriticsSection
    facade: FacadeSection
    study: StudySection


@dataclass(frozen=True)
class Profile:
    """A loaded profile: `raw` is the whole TOML table (after --set overrides), `models` the
    validated diffusion configs with the profile's data and overrides applied."""

    name: str
    raw: dict[str, Any]
    models: tuple[Config, ...]
    device: str

    def section(self, name: str) -> dict[str, Any]:
        return dict(self.raw[name])

    def to_dict(self) -> dict[str, Any]:
        return {"profile": self.raw, "models": [m.to_dict() for m in self.models]}

    def digest(self) -> str:
        """sha256 of the profile and model configs (identifies what a run computed)."""
        text = json.dumps(self.to_dict(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()


def _set_dotted(table: dict[str, Any], key: str, value: Any, where: str) -> None:
    parts = key.split(".")
    node = table
    for p in parts[:-1]:
        if not isinstance(node.get(p, {}), dict):
            raise ProfileError(f"{where}{key}: {p} is not a table")
        node = node.setdefault(p, {})
    node[parts[-1]] = value


def parse_override(text: str) -> tuple[str, Any]:
    """`section.field=VALUE` (VALUE parsed as TOML, else kept as a string) -> (key, value)."""
    if "=" not in text:
        raise ProfileError(f"--set: expected SECTION.FIELD=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    key = key.strip()
    if not key or any(not p for p in key.split(".")):
        raise ProfileError(f"--set: bad field name {key!r}")
    try:
        parsed = tomllib.loads(f"v = {value.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value.strip()
    return key, parsed


def _validate(raw: dict[str, Any]) -> None:
    try:
        ProfileFile.model_validate(raw)
    except ValidationError as exc:
        raise ProfileError(one_line(exc, ProfileFile, top="profile", mapping="a table")) from None
    dataset = raw["data"].get("dataset", "digits")
    if raw["critics"].get("protonet_within_alphabet", 0.0) > 0 and dataset != "omniglot":
        raise ProfileError(f"critics.protonet_within_alphabet: needs alphabets (omniglot), not {dataset}")


def _model_configs(raw: dict[str, Any], data_root: str | None) -> tuple[Config, ...]:
    out = []
    overrides = dict(raw["models"].get("set", {}))
    for key, value in raw["data"].items():
        overrides[f"data.{key}"] = value
    if data_root is not None:
        overrides["data.root"] = str(Path(data_root).expanduser().resolve())
    for rel in raw["models"]["configs"]:
        path = Path(rel) if Path(rel).is_absolute() else PROJECT_ROOT / rel
        try:
            cfg = load_config(path).to_dict()
            for key, value in overrides.items():
                _set_dotted(cfg, key, value, "models.set.")
            out.append(config_from_dict(cfg))
        except ConfigError as exc:
            raise ProfileError(f"models.configs ({rel}): {exc}") from exc
    names = [c.name for c in out]
    if len(set(names)) != len(names):
        raise ProfileError(f"models.configs: two configs share a model name ({names})")
    return tuple(out)


def load_profile(
    name_or_path: str,
    data_root: str | None = None,
    overrides: list[str] | None = None,
    seed: int | None = None,
) -> Profile:
    """Load `tiny`, `full` or a TOML path; `overrides` are `section.field=VALUE` strings; `seed`
    replaces every model config's seed (the run's seed drives all later stages too)."""
    path = CONFIG_DIR / f"{name_or_path}.toml" if name_or_path in PROFILES else Path(name_or_path)
    if not path.is_file():
        raise ProfileError(f"--profile: {name_or_path!r} is neither {' nor '.join(PROFILES)} nor a TOML file")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"--profile: {path.name} is not valid TOML ({exc})") from exc
    raw = copy.deepcopy(raw)
    for text in overrides or []:
        key, value = parse_override(text)
        if key.startswith("models.set."):  # the model overrides' own keys are dotted strings
            raw.setdefault("models", {}).setdefault("set", {})[key[len("models.set."):]] = value
        else:
            _set_dotted(raw, key, value, "--set ")
    _validate(raw)
    if raw["data"].get("dataset", "digits") not in ("digits", "digits10") and data_root is None:
        raise ProfileError(
            f"--data: the {raw.get('name', path.stem)} profile reads {raw['data']['dataset']} from a folder; "
            "pass --data PATH (e.g. ../shared/data/omniglot)"
        )
    models = _model_configs(raw, data_root)
    if seed is not None:
        models = tuple(config_from_dict({**m.to_dict(), "seed": int(seed)}) for m in models)
    return Profile(name=str(raw.get("name", path.stem)), raw=raw, models=models,
                   device=str(raw.get("device", "auto")))
