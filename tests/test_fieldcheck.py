"""fieldcheck: strict types, and a pydantic ValidationError as one `dotted.field: message` line."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from fieldcheck import Bool, Float, Int, dotted, field_error, first_error, one_line, text


class Point(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    x: Annotated[Float, Field(ge=0, le=1)]
    label: text(5) | None = None


class Inner(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lo: Int = 0
    hi: Int = 10
    on: Bool = False
    mode: Literal["a", "b"] = "a"
    points: Annotated[list[Point], Field(min_length=1, max_length=3)] = [Point(x=0.5)]

    @model_validator(mode="after")
    def _ordered(self) -> Inner:
        if self.lo > self.hi:
            raise field_error("lo", "must not exceed hi")
        return self


class Outer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    inner: Inner = Inner()
    rate: Float = 1.0


def _error(raw: Any, **kw: Any) -> tuple[str, str]:
    with pytest.raises(ValidationError) as exc:
        Outer.model_validate(raw)
    return first_error(exc.value, Outer, **kw)


@pytest.mark.parametrize(("raw", "field", "message"), [
    ({"inner": {"lo": "3"}}, "inner.lo", "expected an integer, got '3'"),
    ({"inner": {"lo": 2.0}}, "inner.lo", "expected an integer, got 2.0"),
    ({"inner": {"lo": True}}, "inner.lo", "expected an integer, got True"),
    ({"rate": True}, "rate", "expected a number, got True"),
    ({"rate": "1"}, "rate", "expected a number, got '1'"),
    ({"inner": {"on": 1}}, "inner.on", "expected true or false, got 1"),
    ({"inner": {"mode": "c"}}, "inner.mode", "must be 'a' or 'b', got 'c'"),
    ({"inner": {"lo": 11}}, "inner.lo", "must not exceed hi"),
    ({"inner": {"points": []}}, "inner.points", "must not be empty"),
    ({"inner": {"points": [{"x": 0}] * 4}}, "inner.points", "must have at most 3 items, got 4"),
    ({"inner": {"points": [{"x": 0}, {"x": 1.5}]}}, "inner.points[1].x", "must be <= 1, got 1.5"),
    ({"inner": {"points": [{"x": -1}]}}, "inner.points[0].x", "must be >= 0, got -1"),
    ({"inner": {"points": [{}]}}, "inner.points[0].x", "missing"),
    ({"inner": {"points": [{"x": 0, "label": "  "}]}}, "inner.points[0].label", "must not be blank"),
    ({"inner": {"points": [{"x": 0, "label": "toolong"}]}}, "inner.points[0].label",
     "must be at most 5 characters"),
    ({"inner": {"points": "x"}}, "inner.points", "expected a list, got 'x'"),
    ({"inner": []}, "inner", "expected an object, got []"),
])
def test_each_kind_of_error_names_its_field(raw: dict, field: str, message: str) -> None:
    assert _error(raw) == (field, message)


def test_nan_is_refused_where_the_config_says_so() -> None:
    assert _error({"inner": {"points": [{"x": float("nan")}]}}) == (
        "inner.points[0].x", "expected a finite number, got nan")


def test_unknown_fields_list_the_known_ones_at_their_level() -> None:
    assert _error({"inner": {"points": [{"x": 0, "y": 1}]}}) == (
        "inner.points[0].y", "unknown field (known: label, x)")
    assert _error({"colour": 1}) == ("colour", "unknown field (known: inner, rate)")


def test_the_whole_input_is_named_by_top_and_mappings_by_their_word() -> None:
    assert _error([1], top="config", mapping="a table") == ("config", "expected a table, got [1]")
    assert _error({"inner": 5}, mapping="a table") == ("inner", "expected a table, got 5")


def test_a_value_inside_a_larger_input_is_named_from_there() -> None:
    points = TypeAdapter(list[Point])
    with pytest.raises(ValidationError) as exc:
        points.validate_python([{"x": 0}, {"x": 2}])
    assert one_line(exc.value, at="clicks") == "clicks[1].x: must be <= 1, got 2"
    with pytest.raises(ValidationError) as exc:
        TypeAdapter(Point).validate_python({"x": "a"})
    assert one_line(exc.value, at="body.point") == "body.point.x: expected a number, got 'a'"


def test_long_inputs_are_cut_in_messages() -> None:
    _, message = _error({"inner": {"mode": "m" * 500}})
    assert len(message) < 120 and message.endswith("...")


def test_dotted() -> None:
    assert dotted(("clicks", 3, "x")) == "clicks[3].x"
    assert dotted((0, "a", 1, 2)) == "[0].a[1][2]"
    assert dotted(()) == ""
