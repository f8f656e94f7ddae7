"""Avro binary encoding by a writer compiled once per schema, with fastavro as the reference.

fastavro's `schemaless_writer` walks the schema for every datum: a dict lookup and a type switch
per field, a validation of every union candidate in turn to pick a branch, a logical-type lookup
per value. For the contracts' records that walk is most of its cost (about 21 µs for a
`notifications.status` event, measured alone; fastavro's writer was the largest single cost in a
worker's profile and 9 % of the API's). `compile_writer` does the walk once: a schema becomes a
tree of closures, one per field, each of which only encodes, and each record one generated
function that encodes its simple fields in its own body (`streams.kafka.avro_record_writer`)
and calls the closures of the others.

The same bytes as fastavro, by construction and by test (`tests/unit/streams/kafka/
test_avro_writer.py` compares both on generated records of every contract):
- logical types go through fastavro's own conversions (its public `LOGICAL_WRITERS`; an aware
  datetime's milliseconds are computed inline by the same formula);
- a union picks its branch the way fastavro does where only one branch can take the datum's
  Python type (None, bool, int, float, str, datetime, time, UUID), and by name for tuple
  notation; where fastavro would have to choose between several, where it picks by validating
  every value inside (a record, array or map in a union: none of the frequent events has one),
  or for a datum of any other type, the writer raises `UnwritableError` and the caller writes
  that record with fastavro instead;
- a schema with a type the contracts do not use (float, bytes, fixed, other logical types) is
  not compiled: `compile_writer` raises `UnwritableError` and the caller keeps fastavro.
Data that does not fit the schema raises what fastavro's writer would (`ValueError`,
`TypeError`, `KeyError`, `AttributeError`, `OverflowError`), though not always the same one.
"""

from __future__ import annotations

import datetime
import struct
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fastavro.write import LOGICAL_WRITERS

from streams.kafka.avro_record_writer import Field, Inline, Nullable, record_writer
from streams.kafka.avro_schema import SchemaCompiler

# Appends the encoding of a datum to a list of byte strings.
FieldWriter = Callable[[Any, list[bytes]], None]
# A union's branch for a datum of one Python type: (its index, encoded; its writer).
Pick = Callable[[Any], tuple[bytes, FieldWriter]]

INT_MIN, INT_MAX = -(2**31), 2**31 - 1
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1
_SMALL = [bytes(((n << 1),)) for n in range(64)]  # zigzag varints of 0..63: one byte each
_NULL = b"\x00"
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
_DOUBLE = struct.Struct("<d")
# fastavro's own conversions, by (type, logical type): the ones the contracts use.
_LOGICAL: Mapping[tuple[str, str], Callable[[Any, Any], Any]] = {
    (kind, logical): LOGICAL_WRITERS[f"{kind}-{logical}"]
    for kind, logical in (
        ("long", "timestamp-millis"),
        ("int", "time-millis"),
        ("string", "uuid"),
    )
}
_PREPARE_TIMESTAMP_MILLIS = _LOGICAL[("long", "timestamp-millis")]


class UnwritableError(Exception):
    """This writer leaves the schema, or this datum, to fastavro."""


def zigzag(n: int) -> bytes:
    """An Avro int or long: zigzag, then a base-128 varint."""
    if 0 <= n < 64:
        return _SMALL[n]
    if not LONG_MIN <= n <= LONG_MAX:
        raise OverflowError(f"{n} does not fit in a long")
    z = (n << 1) ^ (n >> 63)
    if z < 0x4000:
        return bytes((z & 0x7F | 0x80, z >> 7)) if z >= 0x80 else bytes((z,))
    if 0x8_0000_0000 <= z < 0x400_0000_0000:  # six bytes: a timestamp in ms, 1971 to 2039
        return bytes(
            (
                z & 0x7F | 0x80,
                z >> 7 & 0x7F | 0x80,
                z >> 14 & 0x7F | 0x80,
                z >> 21 & 0x7F | 0x80,
                z >> 28 & 0x7F | 0x80,
                z >> 35,
            )
        )
    out = bytearray()
    while z >= 0x80:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


def compile_writer(schema: Any) -> Callable[[Any], bytes]:
    """The encoder of `schema` (parsed by fastavro, so named types are full names)."""
    write = _Compiler().compile(schema)

    def encode(datum: Any) -> bytes:
        out: list[bytes] = []
        write(datum, out)
        return b"".join(out)

    return encode


class _Compiler(SchemaCompiler[FieldWriter]):
    def __init__(self) -> None:
        self._named: dict[str, FieldWriter] = {}
        self._kinds: dict[str, str] = {}  # named type -> record / enum
        self._symbols: dict[str, Mapping[str, bytes]] = {}  # enum -> symbol -> encoded index

    def kind(self, schema: Any) -> str:
        """What a union branch is: a primitive's name, record, enum, array, map, or
        `<primitive>-<logical type>`."""
        if isinstance(schema, str):
            return self._kinds.get(schema, schema)
        if isinstance(schema, list):
            raise UnwritableError("a union directly inside a union")
        logical = schema.get("logicalType")
        kind = self.kind(schema["type"]) if not isinstance(schema["type"], dict) else "?"
        return f"{kind}-{logical}" if logical is not None else kind

    def by_name(self, name: str) -> FieldWriter:
        primitive = _PRIMITIVES.get(name)
        if primitive is not None:
            return primitive
        if name in self._named:
            return self._named[name]
        raise UnwritableError(f"type {name!r}")

    def logical(self, schema: Mapping[str, Any], kind: str, logical: str) -> FieldWriter:
        prepare = _LOGICAL.get((kind, logical))
        if prepare is None:
            raise UnwritableError(f"logical type {logical} on {kind}")
        if (kind, logical) == ("long", "timestamp-millis"):
            return _timestamp_millis(schema)
        write = self.by_name(kind)

        def write_logical(datum: Any, out: list[bytes]) -> None:
            write(prepare(datum, schema), out)

        return write_logical

    def record(self, schema: Mapping[str, Any]) -> FieldWriter:
        """One generated function (`streams.kafka.avro_record_writer`); a use of the record
        inside its own fields goes through `generated`, set once the function exists."""
        name = schema["name"]
        generated: list[FieldWriter] = []

        def write_record(datum: Any, out: list[bytes]) -> None:
            generated[0](datum, out)

        # Registered before its fields compile, so a field may name the record itself.
        self._named[name] = write_record
        self._kinds[name] = "record"
        fields = [
            Field(field["name"], field.get("default"), self._encoding(field["type"]))
            for field in schema["fields"]
        ]
        write = record_writer(name, fields, zigzag=zigzag, small=_SMALL)
        generated.append(write)
        self._named[name] = write
        return write

    def _encoding(self, schema: Any) -> Inline | Nullable:
        """How a field of type `schema` is written in its record's function."""
        compiled = self.compile(schema)
        if not isinstance(schema, list):
            return self._inline(schema, compiled)
        kinds = [self.kind(branch) for branch in schema]
        other = _nullable_branch(kinds)
        if other is None:
            return Inline("call", compiled)
        branch = schema[other]
        writer = (
            _timestamp_millis(branch)
            if kinds[other] == "long-timestamp-millis"
            else self.compile(branch)  # again: the union's own closure holds its branches'
        )
        python_type = _UNCHECKED[kinds[other]]
        inline = self._inline(branch, writer)
        return Nullable(zigzag(1 - other), zigzag(other), python_type, inline, compiled)

    def _inline(self, schema: Any, compiled: FieldWriter) -> Inline:
        kind = self.kind(schema)
        if kind == "enum":
            name = schema if isinstance(schema, str) else schema["name"]
            return Inline("enum", compiled, self._symbols[name])
        return Inline(_INLINE_KINDS.get(kind, "call"), compiled)

    def enum(self, schema: Mapping[str, Any]) -> FieldWriter:
        indexes = {symbol: zigzag(i) for i, symbol in enumerate(schema["symbols"])}
        self._symbols[schema["name"]] = indexes

        def write_enum(datum: Any, out: list[bytes]) -> None:
            out.append(indexes[datum])

        self._named[schema["name"]] = write_enum
        self._kinds[schema["name"]] = "enum"
        return write_enum

    def union(self, branches: Sequence[Any]) -> FieldWriter:
        writers = [(zigzag(i), self.compile(branch)) for i, branch in enumerate(branches)]
        kinds = [self.kind(branch) for branch in branches]
        names = [_branch_name(branch, kind) for branch, kind in zip(branches, kinds, strict=True)]
        by_name = {name: writers[i] for i, name in reversed(list(enumerate(names)))}
        by_type = self._branches_by_type(kinds, writers)

        def write_union(datum: Any, out: list[bytes]) -> None:
            kind = type(datum)
            if kind is tuple:  # fastavro's tuple notation: (branch name, datum)
                name, datum = datum
                index, write = by_name[name] if name in by_name else _unknown_branch(name)
            else:
                found = by_type.get(kind)
                if found is None:
                    raise UnwritableError(f"{kind.__name__} in a union")
                index, write = found(datum)
            out.append(index)
            write(datum, out)

        return _optional(kinds, writers, write_union) or write_union

    def array(self, items: FieldWriter) -> FieldWriter:
        return _array(items)

    def map(self, values: FieldWriter) -> FieldWriter:
        return _map(values)

    def _branches_by_type(
        self,
        kinds: Sequence[str],
        writers: Sequence[tuple[bytes, FieldWriter]],
    ) -> dict[type, Pick]:
        """For each Python type one branch alone can take, how the branch is picked; a type
        two branches could take is left out (fastavro's choice between them is its
        validation's)."""
        takes: dict[type, list[int]] = {}
        for i, kind in enumerate(kinds):
            for python_type in _TAKES.get(kind, ()):
                takes.setdefault(python_type, []).append(i)
        picks: dict[type, Pick] = {}
        for python_type, candidates in takes.items():
            if len(candidates) == 1:
                i = candidates[0]
                picks[python_type] = self._pick(kinds[i], writers[i])
        return picks

    def _pick(self, kind: str, branch: tuple[bytes, FieldWriter]) -> Pick:
        """Checks what fastavro's validation of the one candidate would, beyond the type: a
        number's range. A record, array or map is left to fastavro, whose validation of every
        value inside picks it (none of the contracts' frequent events has one in a union)."""
        if kind == "int" or kind.startswith("int-"):
            return _ranged(branch, INT_MIN, INT_MAX)
        if kind == "long" or kind.startswith("long-"):
            return _ranged(branch, LONG_MIN, LONG_MAX)
        if kind in ("record", "array", "map"):
            return _left_to_fastavro
        return lambda datum: branch


def _nullable_branch(kinds: Sequence[str]) -> int | None:
    """T's index in a union `[null, T]` (either order) whose T takes a single Python type with
    no further check (`_UNCHECKED`); None for any other union."""
    if len(kinds) != 2 or "null" not in kinds:
        return None
    other = 1 - kinds.index("null")
    return other if kinds[other] in _UNCHECKED else None


def _optional(
    kinds: Sequence[str], writers: Sequence[tuple[bytes, FieldWriter]], general: FieldWriter
) -> FieldWriter | None:
    """For `[null, T]` where T takes a single Python type with no further check (a string, an
    enum, a boolean, a timestamp given as a datetime), the two usual cases first; None if the
    union is not one of those."""
    other = _nullable_branch(kinds)
    if other is None:
        return None
    null_index = writers[1 - other][0]
    expected = _UNCHECKED[kinds[other]]
    index, write = writers[other]

    def write_optional(datum: Any, out: list[bytes]) -> None:
        if datum is None:
            out.append(null_index)
        elif type(datum) is expected:
            out.append(index)
            write(datum, out)
        else:
            general(datum, out)

    return write_optional


def _branch_name(branch: Any, kind: str) -> str:
    """The name tuple notation gives a branch: a named type's full name, else its type."""
    if isinstance(branch, dict):
        if branch.get("type") in ("record", "enum", "fixed"):
            return str(branch["name"])
        return str(branch["type"]) if isinstance(branch["type"], str) else kind
    return str(branch)


def _unknown_branch(name: object) -> tuple[bytes, FieldWriter]:
    raise ValueError(f"provided union type name {name} not found in the union")


def _left_to_fastavro(datum: Any) -> tuple[bytes, FieldWriter]:
    raise UnwritableError(f"a {type(datum).__name__} picking a union's branch")


def _ranged(branch: tuple[bytes, FieldWriter], low: int, high: int) -> Pick:
    def pick(datum: Any) -> tuple[bytes, FieldWriter]:
        if type(datum) is int and not low <= datum <= high:
            raise ValueError(f"{datum} is out of range for the union")
        return branch

    return pick


# Which exact Python types each branch kind can take (fastavro validates by isinstance; a
# subclass, such as an enum member, is left to fastavro).
_TAKES: Mapping[str, tuple[type, ...]] = {
    "null": (type(None),),
    "boolean": (bool,),
    "int": (int,),
    "long": (int,),
    "double": (float, int),
    "string": (str,),
    "enum": (str,),
    "record": (dict,),
    "map": (dict,),
    "array": (list,),
    "long-timestamp-millis": (int, datetime.datetime),
    "int-time-millis": (int, datetime.time),
    "string-uuid": (str, uuid.UUID),
}


def _timestamp_millis(schema: Mapping[str, Any]) -> FieldWriter:
    """fastavro's conversion of an aware datetime, inline (every event has two or three);
    anything else goes through fastavro's own."""

    def write_timestamp_millis(datum: Any, out: list[bytes]) -> None:
        if type(datum) is datetime.datetime and datum.tzinfo is not None:
            delta = datum - _EPOCH
            millis = (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000
            out.append(zigzag(millis))
        else:
            out.append(zigzag(_PREPARE_TIMESTAMP_MILLIS(datum, schema)))

    return write_timestamp_millis


# The kinds a record's generated function encodes in its own body (`avro_record_writer.Inline`).
_INLINE_KINDS: Mapping[str, str] = {
    "string": "string",
    "int": "long",
    "long": "long",
    "boolean": "boolean",
    "long-timestamp-millis": "timestamp",
}


# The Python type a branch kind takes with no check beyond it (fastavro's validation of it
# is the type, or the enum's own lookup, which fails as fastavro's does).
_UNCHECKED: Mapping[str, type] = {
    "string": str,
    "enum": str,
    "boolean": bool,
    "long-timestamp-millis": datetime.datetime,
    "string-uuid": uuid.UUID,
}


def _write_null(datum: Any, out: list[bytes]) -> None:
    """Nothing, whatever the datum (as fastavro: only a union checks for None)."""


def _write_boolean(datum: Any, out: list[bytes]) -> None:
    out.append(b"\x01" if datum else _NULL)


def _write_long(datum: Any, out: list[bytes]) -> None:
    out.append(zigzag(datum))


def _write_double(datum: Any, out: list[bytes]) -> None:
    out.append(_DOUBLE.pack(datum))


def _write_string(datum: Any, out: list[bytes]) -> None:
    encoded = datum.encode()
    size = len(encoded)
    out.append(_SMALL[size] if size < 64 else zigzag(size))
    out.append(encoded)


_PRIMITIVES: Mapping[str, FieldWriter] = {
    "null": _write_null,
    "boolean": _write_boolean,
    "int": _write_long,
    "long": _write_long,
    "string": _write_string,
    "double": _write_double,
}


def _array(write_item: FieldWriter) -> FieldWriter:
    def write_array(datum: Any, out: list[bytes]) -> None:
        if len(datum):
            out.append(zigzag(len(datum)))
            for item in datum:
                write_item(item, out)
        out.append(_NULL)

    return write_array


def _map(write_value: FieldWriter) -> FieldWriter:
    def write_map(datum: Any, out: list[bytes]) -> None:
        if len(datum):
            out.append(zigzag(len(datum)))
            for key, value in datum.items():
                _write_string(key, out)
                write_value(value, out)
        out.append(_NULL)

    return write_map
