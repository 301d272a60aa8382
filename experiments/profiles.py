"""Profiles as data: experiments/configs/NAME.toml -> a validated Profile.

A profile names the diffusion model configs to train (models/configs/*.toml) with overrides, and
the sizes of every later stage (sampling, critics, facade classifiers, simulated study). Every
error names the field (`sampling.guidance: expected a list of numbers >= 0`).
"""

from __future__ import annotations

import copy
import hashlib
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.config import Config, ConfigError, config_from_dict, load_config
from models.diffusion.samplers import SAMPLERS

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = Path(__file__).resolve().parent / "configs"
PROFILES = ("tiny", "full")


class ProfileError(ValueError):
    """A profile value is missing, unknown or out of range; the message names the field."""


# field -> (type, minimum) of every section's numbers; lists are checked separately.
_SCHEMA: dict[str, dict[str, tuple[type, float | None]]] = {
    "sampling": {"steps": (int, 1), "n_per_class": (int, 1), "real_per_class": (int, 1),
                 "max_classes": (int, 2), "batch_size": (int, 1)},
    "critics": {"protonet_episodes": (int, 1), "protonet_way": (int, 2), "protonet_query": (int, 1),
                "simclr_epochs": (int, 1), "n_way": (int, 2)},
    "facade": {"max_per_model": (int, 10), "max_pooled": (int, 10), "batch_size": (int, 2), "epochs": (int, 1), "resnet_epochs": (int, 1), "test_fraction": (float, 0.0),
               "saliency_images": (int, 1)},
    "study": {"clickme_participants": (int, 2), "realfake_participants": (int, 2),
              "trials_per_participant": (int, 2), "observer_dprime": (float, 0.0),
              "workers": (int, 1), "n_boot": (int, 10), "feedback_epochs": (int, 1)},
}


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


def _check_number(section: str, field: str, value: Any, kind: type, minimum: float | None) -> None:
    name = f"{section}.{field}"
    if isinstance(value, bool) or not isinstance(value, int | float) or (kind is int and not isinstance(value, int)):
        raise ProfileError(f"{name}: expected {'an integer' if kind is int else 'a number'}, got {value!r}")
    if minimum is not None and value < minimum:
        raise ProfileError(f"{name}: must be >= {minimum:g}, got {value!r}")


def _validate(raw: dict[str, Any]) -> None:
    for section in ("data", "models", *_SCHEMA):
        if not isinstance(raw.get(section), dict):
            raise ProfileError(f"{section}: missing table")
    for section, fields in _SCHEMA.items():
        table = raw[section]
        for field, (kind, minimum) in fields.items():
            if field not in table:
                raise ProfileError(f"{section}.{field}: missing")
            _check_number(section, field, table[field], kind, minimum)
    if raw["facade"]["test_fraction"] >= 1.0:
        raise ProfileError("facade.test_fraction: must be in (0, 1)")
    guidance = raw["sampling"].get("guidance")
    if not isinstance(guidance, list) or not guidance or any(
        isinstance(g, bool) or not isinstance(g, int | float) or g < 0 for g in guidance
    ):
        raise ProfileError(f"sampling.guidance: expected a non-empty list of numbers >= 0, got {guidance!r}")
    if 0 not in guidance:
        raise ProfileError("sampling.guidance: must include 0 (the unguided reference)")
    if raw["sampling"].get("postprocess") not in ("binarise", "none"):
        raise ProfileError(f"sampling.postprocess: must be binarise or none, got {raw['sampling'].get('postprocess')!r}")
    if raw["sampling"].get("sampler") not in SAMPLERS:
        raise ProfileError(f"sampling.sampler: must be one of {', '.join(SAMPLERS)}, got {raw['sampling'].get('sampler')!r}")
    fractions = raw["facade"].get("fractions")
    if not isinstance(fractions, list) or not fractions or any(
        isinstance(f, bool) or not isinstance(f, int | float) or not 0 < f <= 1 for f in fractions
    ):
        raise ProfileError(f"facade.fractions: expected a non-empty list in (0, 1], got {fractions!r}")
    for key in ("archs", "sweep_archs"):
        archs = raw["facade"].get(key)
        if not isinstance(archs, list) or not archs or any(a not in ("lenet", "resnet18") for a in archs):
            raise ProfileError(f"facade.{key}: expected a list of lenet/resnet18, got {archs!r}")
    configs = raw["models"].get("configs")
    if not isinstance(configs, list) or not configs or not all(isinstance(c, str) for c in configs):
        raise ProfileError("models.configs: expected a non-empty list of config file paths")
    if not isinstance(raw["models"].get("set", {}), dict):
        raise ProfileError("models.set: expected a table of SECTION.FIELD = VALUE")


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
