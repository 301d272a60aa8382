"""The study builder's settings form, generated from the settings model itself.

`settings_fields(StudySettings)` walks the pydantic dataclass (and its nested ones): each field's
kind, bounds, choices, default and description come from its declaration, so a setting added to
study/settings.py appears in the form with no change here. `form_settings` reads a submitted form
back into the raw settings object that `StudySettings.from_dict` validates; the model's own
checks stay the only rules. Both are pure functions (no request, no database).

Input names are `settings.` + the dotted field name (`settings.staircase.step_ms`). A check box
is sent with a hidden `false` before it, so an unticked box reads as false and a field missing
from the form altogether keeps its default.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import annotated_types
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

PREFIX = "settings."
KINDS = ("checkbox", "integer", "number", "choice", "text", "json")
MULTILINE_ABOVE = 1_000  # characters: a text field allowing more is a text area


@dataclass(frozen=True)
class SettingField:
    """One input of the form. `name` is the dotted setting (`staircase.step_ms`); `default` is
    the model's default (None: empty); `optional`: an empty input means None."""

    name: str
    label: str
    kind: str  # one of KINDS
    default: Any
    help: str = ""
    optional: bool = False
    minimum: float | None = None
    maximum: float | None = None
    max_length: int | None = None
    choices: tuple[Any, ...] = ()

    @property
    def input_name(self) -> str:
        return PREFIX + self.name

    @property
    def input_id(self) -> str:
        return "setting-" + self.name.replace(".", "-").replace("_", "-")

    @property
    def multiline(self) -> bool:
        """A text longer than a line (e.g. a participant text) gets a text area."""
        return self.kind == "text" and (self.max_length or 0) > MULTILINE_ABOVE

    @property
    def default_text(self) -> str:
        """The default as the help text says it."""
        if self.kind == "checkbox":
            return "on" if self.default else "off"
        return self.shown(self.default) or "empty"

    @property
    def range_text(self) -> str:
        """'from 1 to 10' for a bounded number, else empty."""
        if self.kind not in ("integer", "number") or (self.minimum, self.maximum) == (None, None):
            return ""
        lo = "" if self.minimum is None else f"from {self.shown(self.minimum)}"
        hi = "" if self.maximum is None else f"to {self.shown(self.maximum)}"
        return " ".join(p for p in (lo, hi) if p)

    def shown(self, value: Any) -> str:
        """`value` as the input's text (empty for None)."""
        if value is None:
            return ""
        if self.kind == "json":
            return json.dumps(value)
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)


@dataclass(frozen=True)
class SettingGroup:
    """A nested settings object (a fieldset): its fields, and the help from its docstring."""

    name: str
    label: str
    help: str
    fields: tuple[SettingField, ...]


def _label(name: str) -> str:
    return name.replace("_", " ").capitalize()


def _first_paragraph(text: str | None) -> str:
    return " ".join((text or "").strip().split("\n\n")[0].split())


def _unwrap(annotation: Any, metadata: list[Any]) -> tuple[Any, bool, list[Any], str]:
    """(base type, None allowed, constraints, description) of a possibly Optional, Annotated
    annotation with `metadata` already collected by pydantic."""
    optional = False
    found = list(metadata)
    description = ""
    while True:
        origin = typing.get_origin(annotation)
        if origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            optional = optional or len(args) < len(typing.get_args(annotation))
            if len(args) != 1:
                return annotation, optional, found, description
            annotation = args[0]
        elif origin is typing.Annotated:
            annotation, *extra = typing.get_args(annotation)
            for item in extra:
                if isinstance(item, FieldInfo):
                    found.extend(item.metadata)
                    description = description or (item.description or "")
                else:
                    found.append(item)
        else:
            return annotation, optional, found, description


def _bounds(constraints: list[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for c in constraints:
        if isinstance(c, annotated_types.Ge | annotated_types.Gt):
            out["minimum"] = c.ge if isinstance(c, annotated_types.Ge) else c.gt
        elif isinstance(c, annotated_types.Le | annotated_types.Lt):
            out["maximum"] = c.le if isinstance(c, annotated_types.Le) else c.lt
        elif isinstance(c, annotated_types.MaxLen):
            out["max_length"] = c.max_length
    return out


def _kind(base: Any) -> tuple[str, tuple[Any, ...]]:
    if typing.get_origin(base) is Literal:
        return "choice", typing.get_args(base)
    if base is bool:
        return "checkbox", ()
    if base is int:
        return "integer", ()
    if base is float:
        return "number", ()
    if base is str:
        return "text", ()
    return "json", ()  # anything else (a list, a mapping) is edited as JSON text


def _default(info: FieldInfo) -> Any:
    if info.default_factory is not None:
        return info.default_factory()
    return None if info.default is PydanticUndefined else info.default


def _is_model(base: Any) -> bool:
    return isinstance(base, type) and dataclasses.is_dataclass(base) and hasattr(
        base, "__pydantic_fields__")


def settings_fields(model: type, prefix: str = "") -> tuple[SettingField | SettingGroup, ...]:
    """The form of `model` (a pydantic dataclass), in declaration order: a SettingField per
    scalar field and a SettingGroup per nested settings object."""
    out: list[SettingField | SettingGroup] = []
    for name, info in model.__pydantic_fields__.items():
        base, optional, constraints, inner_help = _unwrap(info.annotation, info.metadata)
        dotted = prefix + name
        help_text = info.description or inner_help
        if _is_model(base):
            nested = settings_fields(base, dotted + ".")
            group_help = help_text or _first_paragraph(base.__doc__)
            out.append(SettingGroup(dotted, _label(name), group_help, nested))  # type: ignore[arg-type]
            continue
        kind, choices = _kind(base)
        out.append(SettingField(dotted, _label(name), kind, _default(info), help_text, optional,
                                choices=choices, **_bounds(constraints)))
    return tuple(out)


def all_fields(form: tuple[SettingField | SettingGroup, ...]) -> list[SettingField]:
    """Every SettingField of the form, groups flattened."""
    out: list[SettingField] = []
    for item in form:
        out.extend(all_fields(item.fields) if isinstance(item, SettingGroup) else [item])
    return out


def value_at(settings: Mapping[str, Any] | None, dotted: str, default: Any) -> Any:
    """The value of dotted key `dotted` in a nested settings dict, else `default`."""
    node: Any = settings or {}
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    return node


class FieldInputError(ValueError):
    """A submitted text that is not of the field's kind (before the model's own checks)."""


def _number(text: str, whole: bool) -> int | float:
    """An integer when the text is one (as JSON would give it), else a float if allowed."""
    try:
        return int(text)
    except ValueError:
        if whole:
            raise FieldInputError("expected a whole number") from None
    try:
        value = float(text)
    except ValueError:
        raise FieldInputError("expected a number") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise FieldInputError("expected a finite number")
    return value


def _parse(field: SettingField, values: list[str]) -> Any:
    """The JSON value of one submitted input (all the values sent under its name)."""
    if field.kind == "checkbox":
        return "true" in values
    text = values[-1].strip()
    if text == "":
        if field.optional:
            return None
        raise FieldInputError("must not be empty")
    if field.kind in ("integer", "number"):
        return _number(text, field.kind == "integer")
    if field.kind == "choice":
        for choice in field.choices:
            if str(choice) == text:
                return choice
        raise FieldInputError(f"must be one of {', '.join(map(str, field.choices))}")
    if field.kind == "json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise FieldInputError(f"is not valid JSON ({exc.msg})") from None
    return text


def _put(raw: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    node = raw
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value


def form_settings(form: tuple[SettingField | SettingGroup, ...],
                  submitted: Mapping[str, list[str]]) -> tuple[dict[str, Any], dict[str, str]]:
    """The raw settings object of a submitted form (`submitted`: input name -> its values), and
    the inputs that are not of their field's kind (dotted name -> message). A field not in the
    submission is left out, so it takes its default."""
    raw: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for field in all_fields(form):
        values = submitted.get(field.input_name)
        if not values:
            continue
        try:
            _put(raw, field.name, _parse(field, values))
        except FieldInputError as exc:
            errors[field.name] = str(exc)
    return raw, errors


def deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """`base` with `top`'s keys on top, nested objects merged key by key."""
    out = dict(base)
    for key, value in top.items():
        if isinstance(out.get(key), dict) and isinstance(value, dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def field_values(form: tuple[SettingField | SettingGroup, ...], settings: Mapping[str, Any] | None,
                 submitted: Mapping[str, list[str]] | None = None) -> dict[str, Any]:
    """What each input shows (dotted name -> text, or bool for a check box): the submitted text
    when the form comes back with errors, else the value in `settings`, else the default."""
    out: dict[str, Any] = {}
    for field in all_fields(form):
        sent = (submitted or {}).get(field.input_name)
        if field.kind == "checkbox":
            out[field.name] = ("true" in sent) if sent else bool(
                value_at(settings, field.name, field.default))
        elif sent:
            out[field.name] = sent[-1]
        else:
            out[field.name] = field.shown(value_at(settings, field.name, field.default))
    return out
