"""Data shaped by an Avro schema, for comparing the compiled writer and reader with fastavro:
mostly valid, in every branch of every union, tuple notation included."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from fastavro import parse_schema
from hypothesis import strategies as st

from streams.kafka.avro_writer import INT_MAX, INT_MIN, LONG_MAX, LONG_MIN


def shaped_by(schema: Any) -> st.SearchStrategy[Any]:
    return _data(schema, {})


def _data(schema: Any, named: dict[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
    if isinstance(schema, list):
        return st.one_of([_branch(branch, named, depth) for branch in schema])
    if isinstance(schema, str):
        return _PRIMITIVE_DATA[schema] if schema in _PRIMITIVE_DATA else named[schema]
    kind, logical = schema["type"], schema.get("logicalType")
    if logical is not None:
        return _LOGICAL_DATA[(kind, logical)]
    if kind == "record":
        fields = {
            field["name"]: _data(field["type"], named, depth + 1) for field in schema["fields"]
        }
        named[schema["name"]] = record = st.fixed_dictionaries(fields)
        return record
    if kind == "enum":
        named[schema["name"]] = symbols = st.sampled_from(schema["symbols"])
        return symbols
    if kind == "array":
        return st.lists(_data(schema["items"], named, depth + 1), max_size=3)
    if kind == "map":
        return st.dictionaries(
            st.text(max_size=5), _data(schema["values"], named, depth + 1), max_size=3
        )
    return _data(kind, named, depth)


def _branch(branch: Any, named: dict[str, Any], depth: int) -> st.SearchStrategy[Any]:
    plain = _data(branch, named, depth + 1)
    if isinstance(branch, dict) and branch.get("type") in ("record", "enum"):
        name = branch["name"]
        return st.one_of(plain, plain.map(lambda datum: (name, datum)))
    return plain


_LONG = st.integers(min_value=LONG_MIN, max_value=LONG_MAX)
_ZONES = st.sampled_from([UTC, timezone(timedelta(hours=1)), timezone(timedelta(hours=-5))])
_PRIMITIVE_DATA: dict[str, st.SearchStrategy[Any]] = {
    "null": st.none(),
    "boolean": st.booleans(),
    "int": st.integers(min_value=INT_MIN, max_value=INT_MAX),
    "long": _LONG,
    "string": st.text(max_size=12),
    "double": st.floats(width=64) | st.integers(min_value=-(2**53), max_value=2**53),
    "float": st.floats(width=32),  # not in the contracts: left to fastavro
    "bytes": st.binary(max_size=4),
}
_LOGICAL_DATA: dict[tuple[str, str], st.SearchStrategy[Any]] = {
    ("long", "timestamp-millis"): st.one_of(
        st.datetimes(min_value=datetime(1900, 1, 1), timezones=_ZONES),
        st.datetimes(min_value=datetime(1900, 1, 1)),  # naive: fastavro's local time
        st.integers(min_value=-(2**50), max_value=2**50),
    ),
    ("string", "uuid"): st.one_of(st.uuids(), st.uuids().map(str)),
    ("int", "time-millis"): st.one_of(st.times(), st.integers(min_value=0, max_value=86_399_999)),
}


# Small schemas for the unions' and containers' cases.


def record_schema(*fields: tuple[str, Any]) -> Any:
    """A parsed record `test.R` of the given (name, type) fields."""
    return parse_schema(
        {
            "type": "record",
            "name": "test.R",
            "fields": [{"name": name, "type": kind} for name, kind in fields],
        }
    )


def union_schema(*branches: Any) -> Any:
    """A record whose one field `u` is the union of `branches`."""
    return record_schema(("u", list(branches)))


E_SCHEMA = {"type": "enum", "name": "test.E", "symbols": ["a", "b"]}
S_SCHEMA = {"type": "record", "name": "test.S", "fields": [{"name": "x", "type": "long"}]}
T_SCHEMA = {"type": "record", "name": "test.T", "fields": [{"name": "y", "type": "string"}]}
# Types the contracts do not use, which the compiled writer and reader leave to fastavro.
NOT_COMPILED: list[Any] = [
    "float",
    "bytes",
    {"type": "fixed", "name": "test.F", "size": 2},
    {"type": "bytes", "logicalType": "decimal", "precision": 4, "scale": 2},
    {"type": "int", "logicalType": "date"},
    {"type": "long", "logicalType": "timestamp-micros"},
]
