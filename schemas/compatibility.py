"""Is a new schema backward compatible: can it read everything written with an older one?

Rather than re-implementing Avro's resolution rules, the check writes sample data with the old
(writer) schema and reads it back through the new (reader) schema with fastavro, which applies the
real rules. The samples cover every branch of every union, every enum symbol, and both the null
and the non-null side of optional fields, so a new field without a default, a removed union branch
or enum symbol, or an incompatible type change in any payload is caught.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from typing import Any

from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.read import SchemaResolutionError
from fastavro.schema import SchemaParseException, UnknownType

# Keeps the check fast whatever the schema: the digits of the sample index choose union branches.
MAX_SAMPLES = 20_000
_NAMED = {"record", "enum", "fixed", "error"}
_SAMPLE_LOGICAL = {"uuid": "00000000-0000-4000-8000-000000000000", "time-millis": 0}
_SAMPLE_PRIMITIVE: dict[str, Any] = {
    "null": None,
    "boolean": True,
    "int": 1,
    "long": 1,
    "float": 1.0,
    "double": 1.0,
    "string": "s",
    "bytes": b"b",
}


class IncompatibleSchemaError(ValueError):
    """A schema change that would make data already written unreadable."""


def parsed(schema: Mapping[str, Any]) -> dict[str, Any]:
    """fastavro's parsed form of `schema`; a schema that does not parse is incompatible anyway."""
    try:
        result = parse_schema(dict(schema))
    except (SchemaParseException, UnknownType, ValueError, TypeError, KeyError) as exc:
        raise IncompatibleSchemaError(f"not a valid Avro schema: {exc}") from exc
    if not isinstance(result, dict):
        raise IncompatibleSchemaError("a topic's value schema must be a record")
    return result


def check_backward_compatible(writer: Mapping[str, Any], reader: Mapping[str, Any]) -> None:
    """Raises `IncompatibleSchemaError` if `reader` cannot read some datum written with `writer`."""
    writer_parsed, reader_parsed = parsed(writer), parsed(reader)
    for datum in sample_data(writer):
        buffer = io.BytesIO()
        schemaless_writer(buffer, writer_parsed, datum)
        buffer.seek(0)
        try:
            schemaless_reader(buffer, writer_parsed, reader_parsed)
        except (SchemaResolutionError, ValueError, TypeError, KeyError) as exc:
            raise IncompatibleSchemaError(
                f"{reader.get('name')} cannot read data written with the older schema: {exc}"
            ) from exc


def sample_data(schema: Mapping[str, Any]) -> Iterator[Any]:
    """Data valid for `schema` that, taken together, visits every union branch and enum symbol.

    Sample `k` chooses, in a union or enum nested `d` unions deep, option `(k // base**d) % n`, so
    the samples run through every combination of choices across nesting levels.
    """
    expanded = parse_schema(dict(schema), expand=True)
    base, depth = _widest_choice(expanded), _deepest_union(expanded)
    count = min(base ** (depth + 1), MAX_SAMPLES)
    for k in range(count):
        yield _sample(expanded, k, base, 0)


def _sample(schema: Any, k: int, base: int, depth: int) -> Any:
    if isinstance(schema, list):
        branch = schema[(k // base**depth) % len(schema)]
        value = _sample(branch, k, base, depth + 1)
        # Tuple notation names the branch, so fastavro cannot pick a look-alike record instead.
        if isinstance(branch, dict) and branch.get("type") in _NAMED:
            return (branch["name"], value)
        return value
    if isinstance(schema, str):
        return _SAMPLE_PRIMITIVE[schema]
    kind = schema["type"]
    if schema.get("logicalType") in _SAMPLE_LOGICAL:
        return _SAMPLE_LOGICAL[schema["logicalType"]]
    if kind in ("record", "error"):
        return {field["name"]: _sample(field["type"], k, base, depth) for field in schema["fields"]}
    if kind == "enum":
        symbols = schema["symbols"]
        return symbols[(k // base**depth) % len(symbols)]
    if kind == "array":
        return [_sample(schema["items"], k, base, depth)]
    if kind == "map":
        return {"k": _sample(schema["values"], k, base, depth)}
    if kind == "fixed":
        return b"\0" * schema["size"]
    return _sample(kind, k, base, depth)


def _children(schema: Any) -> list[Any]:
    if isinstance(schema, list):
        return schema
    if not isinstance(schema, dict):
        return []
    if schema["type"] in ("record", "error"):
        return [field["type"] for field in schema["fields"]]
    return [schema[key] for key in ("items", "values") if key in schema] + (
        [schema["type"]] if isinstance(schema["type"], (dict, list)) else []
    )


def _widest_choice(schema: Any) -> int:
    own = 2
    if isinstance(schema, list):
        own = len(schema)
    elif isinstance(schema, dict) and schema.get("type") == "enum":
        own = len(schema["symbols"])
    return max([own, *(_widest_choice(child) for child in _children(schema))])


def _deepest_union(schema: Any) -> int:
    below = max((_deepest_union(child) for child in _children(schema)), default=-1)
    return below + 1 if isinstance(schema, list) else below
