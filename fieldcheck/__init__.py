"""The project's conventions on top of pydantic, shared by every validated input: the study
settings, the API bodies, the model configs and the experiment profiles.

- Strict scalar types: a bool is not a number, a string is not an integer, NaN is refused.
- `field_error(at, message)` is what a cross-field check raises, naming the field at fault
  relative to the model that checks it.
- `first_error(exc)` turns a pydantic ValidationError into the field's dotted path
  (`staircase.min_ms`, `clicks[3].x`) and one message, e.g. `expected an integer, got 'big'`;
  `one_line(exc)` joins them as `dotted.field: message`, the form every CLI and API error takes.
"""

from __future__ import annotations

import typing
from typing import Annotated, Any

from pydantic import Field, Strict, StrictBool, StrictInt, StrictStr, ValidationError
from pydantic_core import PydanticCustomError

# Scalars as they arrive from JSON or TOML: no coercion between kinds (an int is accepted where
# a number is expected, and becomes a float).
Int = StrictInt
Float = Annotated[float, Strict()]
Bool = StrictBool
Str = StrictStr

NOT_BLANK = r"\S"  # a pattern (also in the JSON Schema): at least one non-space character


def text(max_length: int) -> Any:
    """A string of 1 to `max_length` characters, not all of them spaces."""
    return Annotated[str, Strict(), Field(min_length=1, max_length=max_length, pattern=NOT_BLANK)]

_REFUSED = "refused"


def field_error(at: str, message: str) -> PydanticCustomError:
    """An error for a model validator to raise: `at` is the dotted field at fault, relative to
    the model being validated (`min_ms`, or `staircase.min_ms` from the parent)."""
    return PydanticCustomError(_REFUSED, "{message}", {"at": at, "message": message})


def dotted(loc: tuple[int | str, ...]) -> str:
    """('clicks', 3, 'x') -> 'clicks[3].x'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:g}" if isinstance(value, float) else str(value)


_EXPECTED = {
    "int_type": "expected an integer", "int_from_float": "expected an integer",
    "int_parsing": "expected an integer",
    "float_type": "expected a number", "float_parsing": "expected a number",
    "finite_number": "expected a finite number",
    "bool_type": "expected true or false", "bool_parsing": "expected true or false",
    "string_type": "expected a string",
    "list_type": "expected a list",
    "uuid_type": "expected a UUID", "uuid_parsing": "expected a UUID",
    "uuid_version": "expected a UUID",
}
_MAPPINGS = {"dict_type", "model_type", "model_attributes_type", "dataclass_type",
             "dataclass_args_type", "typed_dict_type"}
_BOUNDS = {"greater_than_equal": ("ge", ">="), "greater_than": ("gt", ">"),
           "less_than_equal": ("le", "<="), "less_than": ("lt", "<")}


def _message(err: dict[str, Any], mapping: str) -> str:
    kind, ctx = err["type"], err.get("ctx") or {}
    got = f", got {_shown(err['input'])}"
    if kind == "missing":
        return "missing"
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):
        return "unknown field"
    if kind in _EXPECTED:
        return _EXPECTED[kind] + got
    if kind in _MAPPINGS:
        return f"expected {mapping}{got}"
    if kind in _BOUNDS:
        key, op = _BOUNDS[kind]
        return f"must be {op} {_number(ctx[key])}{got}"
    if kind in ("literal_error", "enum"):
        return f"must be {ctx['expected']}{got}"
    if kind == "string_too_short":
        return ("must not be empty" if ctx["min_length"] == 1
                else f"must be at least {ctx['min_length']} characters")
    if kind == "string_pattern_mismatch" and ctx.get("pattern") == NOT_BLANK:
        return "must not be blank"
    if kind == "string_too_long":
        return f"must be at most {ctx['max_length']} characters"
    if kind == "too_short":
        n = ctx["min_length"]
        return "must not be empty" if n == 1 else f"must have at least {n} items"
    if kind == "too_long":
        return f"must have at most {ctx['max_length']} items, got {ctx.get('actual_length', '?')}"
    if kind == _REFUSED:
        return ctx["message"]
    if kind == "value_error":  # a validator's ValueError: pydantic prefixes "Value error, "
        return err["msg"].removeprefix("Value error, ")
    return err["msg"][:1].lower() + err["msg"][1:] + got


def _pydantic_class(annotation: Any) -> Any:
    """The first pydantic model or dataclass inside `annotation` (X, X | None, list[X], ...)."""
    if isinstance(annotation, type) and hasattr(annotation, "__pydantic_fields__"):
        return annotation
    for arg in typing.get_args(annotation):
        found = _pydantic_class(arg)
        if found is not None:
            return found
    return None


def _known_fields(root: Any, loc: tuple[int | str, ...]) -> list[str] | None:
    """The field names (JSON/TOML spelling) of the model at `loc` below `root`, if one is."""
    cls = _pydantic_class(root)
    for part in loc:
        if cls is None:
            return None
        if isinstance(part, int):
            continue  # a list's item: _pydantic_class already looked inside the list
        info = cls.__pydantic_fields__.get(part)
        cls = _pydantic_class(info.annotation) if info is not None else None
    if cls is None:
        return None
    return sorted(info.alias or name for name, info in cls.__pydantic_fields__.items())


def first_error(exc: ValidationError, root: Any = None, *, at: str = "", top: str = "",
                mapping: str = "an object") -> tuple[str, str]:
    """(dotted field, message) of the first error in `exc`.

    `root`, the validated type, lets an unknown field's message list the known ones. `at` is
    the dotted path of the validated value inside a larger input (`clicks` for a list of
    points). `top` names the whole input when the error is about it (an empty location).
    `mapping` is how a message calls a mapping: "an object" (JSON) or "a table" (TOML).
    """
    err = exc.errors(include_url=False)[0]
    loc = tuple(err["loc"])
    if err["type"] == _REFUSED:
        loc += tuple(err["ctx"]["at"].split("."))
    message = _message(err, mapping)
    if err["type"] in ("extra_forbidden", "unexpected_keyword_argument") and root is not None:
        known = _known_fields(root, loc[:-1])
        if known:
            message += f" (known: {', '.join(known)})"
    path = dotted(loc)
    if at:
        path = at + ("." if path and not path.startswith("[") else "") + path
    return path or top, message


def one_line(exc: ValidationError, root: Any = None, *, at: str = "", top: str = "",
             mapping: str = "an object") -> str:
    """`dotted.field: message` of the first error in `exc` (see first_error)."""
    field, message = first_error(exc, root, at=at, top=top, mapping=mapping)
    return f"{field}: {message}" if field else message
