"""Avro binary decoding by a reader compiled once per schema, with fastavro as the reference.

The mirror of `streams.kafka.avro_writer`. fastavro's `schemaless_reader` walks the schema for
every record (a type switch and a dict lookup per field, a file object read per value) and was
the largest single cost left in a worker's profile that one module could remove (4.1 % of its
samples at 400 notifications/s; about 23 µs for a `notifications.status` event, timed alone).
`compile_reader` does the walk once. A record becomes one generated Python function whose body
decodes its fields in order, straight through: a string, number, boolean, enum, logical type or
`[null, T]` of those is read inline (about two thirds of the time of a tree of closures, one per
field, which the first version was); anything else (a nested record, another union, an array or
map) is a call to a closure compiled for it. The source is generated from the schema's field
names and kinds only (constants are passed in, never written into it).

It reads what the codec asks fastavro for (`return_record_name=True`,
`return_record_name_override=True`, no reader schema: the record was written with the schema it
is read with) and gives the same values, by test (`tests/unit/streams/kafka/
test_avro_reader.py` compares both on generated records of every contract and on their
truncations and corruptions):
- logical types go through fastavro's own conversions (its public `LOGICAL_READERS`), but for
  a `timestamp-millis` (every event has two or three) a record's body computes fastavro's
  formula itself (the epoch plus as many milliseconds);
- a union gives `(full name, value)` for a record branch, or a branch naming an earlier named
  type, unless the union has a single record, as fastavro does with those options;
- bytes that end too early raise `EOFError`; bytes that do not follow the schema raise
  `ValueError` (fastavro reads a negative union or enum index from the end of the list, a
  negative length as empty and a varint of more than 64 bits wrapped around; this reader
  refuses them);
- a schema with a type the contracts do not use (float, bytes, fixed, other logical types) is
  not compiled: `compile_reader` raises `UnreadableError` and the caller keeps fastavro.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from fastavro.read import LOGICAL_READERS

from streams.kafka.avro_schema import SchemaCompiler

# Decodes one value at an offset of a byte string: the value, and the offset after it. Inside,
# running out of bytes shows as the `IndexError` of indexing past the end (no check per byte);
# `compile_reader`'s reader turns it into `EOFError`, so nothing else may raise `IndexError`.
FieldReader = Callable[[bytes, int], tuple[Any, int]]

_DOUBLE = struct.Struct("<d")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LOGICAL_KINDS = frozenset({"long-timestamp-millis", "int-time-millis", "string-uuid"})
_INLINE_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "string", "double"})
# Every type name fastavro knows without a definition: a union branch named otherwise is a
# named type's reference.
_AVRO_TYPES = frozenset(
    {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}
    | {"record", "enum", "array", "map", "fixed", "union", "error", "request", "error_union"}
)


class UnreadableError(Exception):
    """This reader leaves the schema to fastavro."""


def compile_reader(schema: Any) -> FieldReader:
    """The decoder of `schema` (parsed by fastavro, so named types are full names)."""
    read = _Compiler().compile(schema)

    def decode(buf: bytes, pos: int) -> tuple[Any, int]:
        try:
            return read(buf, pos)
        except IndexError:
            raise EOFError("the body ends early") from None

    return decode


def read_long(buf: bytes, pos: int) -> tuple[int, int]:
    """An Avro int or long: a base-128 varint, then zigzag."""
    byte = buf[pos]
    n = byte & 0x7F
    shift = 7
    while byte >= 0x80:
        pos += 1
        byte = buf[pos]
        n |= (byte & 0x7F) << shift
        shift += 7
    if n >> 64:
        raise ValueError("a varint of more than 64 bits")  # fastavro's wraps around
    return (n >> 1) ^ -(n & 1), pos + 1


def bad_index(index: int, count: int, what: str) -> ValueError:
    return ValueError(f"{what} index {index} of {count}")


def bad_length(size: int, left: int) -> Exception:
    """A negative length is corrupt; one longer than what is left, bytes that end early."""
    if size < 0:
        return ValueError(f"a length of {size} bytes")
    return IndexError(f"{size} bytes announced, {left} left")


class _Compiler(SchemaCompiler[FieldReader]):
    def __init__(self) -> None:
        self._named: dict[str, FieldReader] = {}
        self._enums: dict[str, Mapping[str, Any]] = {}

    def inline(self, schema: Any) -> bool:
        """Whether a record's generated body reads `schema` itself (`_RecordSource.read`)."""
        if isinstance(schema, str):
            return schema in _INLINE_PRIMITIVES or schema in self._enums
        if isinstance(schema, list):
            if len(schema) != 2 or "null" not in schema:
                return False
            other = schema[1 - schema.index("null")]
            return (
                not isinstance(other, list)
                and _union_names(schema) == [None, None]
                and self.inline(other)
            )
        kind = schema["type"]
        logical = schema.get("logicalType")
        if logical is not None:
            return f"{kind}-{logical}" in _LOGICAL_KINDS
        return kind == "enum" or (isinstance(kind, str) and kind in _INLINE_PRIMITIVES)

    def enum_schema(self, schema: Any) -> Mapping[str, Any] | None:
        """The enum `schema` defines or names (a definition is registered, so that later uses
        of its name are read inline too); None for any other type."""
        if isinstance(schema, str):
            return self._enums.get(schema)
        if isinstance(schema, dict) and schema["type"] == "enum":
            self._enums.setdefault(schema["name"], schema)
            self._named.setdefault(schema["name"], _enum(schema))
            return schema
        return None

    def by_name(self, name: str) -> FieldReader:
        primitive = _PRIMITIVES.get(name)
        if primitive is not None:
            return primitive
        named = self._named.get(name)
        if named is None:
            raise UnreadableError(f"type {name!r}")
        return named

    def logical(self, schema: Any, kind: str, logical: str) -> FieldReader:
        name = f"{kind}-{logical}"
        if name not in _LOGICAL_KINDS:
            raise UnreadableError(f"logical type {logical} on {kind}")
        convert = LOGICAL_READERS[name]
        read = self.by_name(kind)

        def read_logical(buf: bytes, pos: int) -> tuple[Any, int]:
            value, pos = read(buf, pos)
            return convert(value, schema, None), pos

        return read_logical

    def enum(self, schema: Mapping[str, Any]) -> FieldReader:
        self.enum_schema(schema)
        return self._named[schema["name"]]

    def record(self, schema: Mapping[str, Any]) -> FieldReader:
        compiled: list[FieldReader] = []

        def read_named(buf: bytes, pos: int) -> tuple[Any, int]:
            return compiled[0](buf, pos)

        # Registered before its fields compile, so a field may name the record itself.
        self._named[schema["name"]] = read_named
        source = _RecordSource(self)
        for field in schema["fields"]:
            source.field(field["name"], field["type"])
        compiled.append(source.function(schema["name"]))
        return compiled[0]

    def array(self, items: FieldReader) -> FieldReader:
        return _array(items)

    def map(self, values: FieldReader) -> FieldReader:
        return _map(values)

    def union(self, branches: Sequence[Any]) -> FieldReader:
        if any(isinstance(branch, list) for branch in branches):
            raise UnreadableError("a union directly inside a union")
        names = _union_names(branches)
        readers = [
            (self.compile(branch), name) for branch, name in zip(branches, names, strict=True)
        ]
        count = len(readers)

        def read_union(buf: bytes, pos: int) -> tuple[Any, int]:
            index, pos = read_long(buf, pos)
            if not 0 <= index < count:
                raise bad_index(index, count, "union")
            read, name = readers[index]
            value, pos = read(buf, pos)
            return ((name, value) if name is not None else value), pos

        return read_union


class _RecordSource:
    """The source of one record's reader: its fields read in order into locals `v0`, `v1`...,
    then returned as one dict. Temporaries: `b` a byte, `n` a number, `end` an offset; `size`
    the buffer's length."""

    def __init__(self, compiler: _Compiler) -> None:
        self._compiler = compiler
        self._lines: list[str] = ["size = len(buf)"]
        self._names: list[str] = []
        self._env: dict[str, Any] = {
            "read_long": read_long,
            "bad_index": bad_index,
            "bad_length": bad_length,
            "unpack_double": _DOUBLE.unpack_from,
            "epoch": _EPOCH,
            "timedelta": timedelta,
        }

    def field(self, name: str, schema: Any) -> None:
        target = f"v{len(self._names)}"
        self._names.append(name)
        if self._compiler.inline(schema):
            self.read(schema, target, "")
        else:
            reader = self._constant(self._compiler.compile(schema))
            self._lines.append(f"{target}, pos = {reader}(buf, pos)")

    def function(self, record_name: str) -> FieldReader:
        fields = ", ".join(f"{name!r}: v{i}" for i, name in enumerate(self._names))
        body = "\n".join(f"    {line}" for line in [*self._lines, f"return {{{fields}}}, pos"])
        code = compile(
            f"def read_record(buf, pos):\n{body}\n", f"<avro reader {record_name}>", "exec"
        )
        exec(code, self._env)  # noqa: S102 - the source holds field names (repr) and our names
        function: FieldReader = self._env["read_record"]
        return function

    def read(self, schema: Any, target: str, indent: str) -> None:
        """Lines reading `schema` (one `_Compiler.inline` accepts) into `target`."""
        enum = self._compiler.enum_schema(schema)
        if enum is not None:
            self._enum(enum, target, indent)
        elif isinstance(schema, list):
            self._optional(schema, target, indent)
        elif isinstance(schema, dict) and schema.get("logicalType") == "timestamp-millis":
            self.read(schema["type"], target, indent)  # fastavro's formula, without its call
            self._emit(indent, f"{target} = epoch + timedelta(0, 0, 0, {target})")
        elif isinstance(schema, dict) and schema.get("logicalType") is not None:
            self.read(schema["type"], target, indent)
            convert = self._constant(LOGICAL_READERS[f"{schema['type']}-{schema['logicalType']}"])
            self._emit(indent, f"{target} = {convert}({target}, {self._constant(schema)}, None)")
        elif isinstance(schema, dict):
            self.read(schema["type"], target, indent)
        else:
            self._primitive(schema, target, indent)

    def _primitive(self, kind: str, target: str, indent: str) -> None:
        if kind == "null":
            self._emit(indent, f"{target} = None")
        elif kind == "boolean":
            self._emit(indent, f"{target} = buf[pos] != 0", "pos += 1")
        elif kind == "double":
            self._emit(
                indent,
                "if pos + 8 > size: raise bad_length(8, size - pos)",
                f"{target} = unpack_double(buf, pos)[0]",
                "pos += 8",
            )
        elif kind == "string":
            self._long("n", indent)
            self._emit(
                indent,
                "end = pos + n",
                "if n < 0 or end > size: raise bad_length(n, size - pos)",
                f"{target} = buf[pos:end].decode()",
                "pos = end",
            )
        else:  # int, long
            self._long(target, indent)

    def _long(self, target: str, indent: str) -> None:
        """A varint of one byte (a number from -64 to 63) inline, longer ones by a call."""
        self._emit(
            indent,
            "b = buf[pos]",
            "if b < 0x80:",
            f"    {target} = (b >> 1) ^ -(b & 1)",
            "    pos += 1",
            "else:",
            f"    {target}, pos = read_long(buf, pos)",
        )

    def _enum(self, schema: Mapping[str, Any], target: str, indent: str) -> None:
        symbols = self._constant(list(schema["symbols"]))
        count = len(schema["symbols"])
        self._long("n", indent)
        self._emit(
            indent,
            f"if not 0 <= n < {count}: raise bad_index(n, {count}, 'enum')",
            f"{target} = {symbols}[n]",
        )

    def _optional(self, branches: Sequence[Any], target: str, indent: str) -> None:
        """The branch index as any varint (fastavro reads one longer than it needs to be)."""
        other = 1 - branches.index("null")
        self._long("n", indent)
        self._emit(indent, f"if n == {1 - other}:", f"    {target} = None", f"elif n == {other}:")
        self.read(branches[other], target, indent + "    ")
        self._emit(indent, "else:", "    raise bad_index(n, 2, 'union')")

    def _emit(self, indent: str, *lines: str) -> None:
        self._lines.extend(indent + line for line in lines)

    def _constant(self, value: Any) -> str:
        name = f"c{len(self._env)}"
        self._env[name] = value
        return name


def _union_names(branches: Sequence[Any]) -> list[str | None]:
    """The name fastavro pairs each branch's value with (`return_record_name`), or None where
    it gives the value bare: a record, or a branch naming an earlier named type, is named,
    unless the union holds one such branch (`return_record_name_override`)."""
    kinds = [branch["type"] if isinstance(branch, dict) else branch for branch in branches]
    by_name = [isinstance(kind, str) and kind not in _AVRO_TYPES for kind in kinds]
    records = sum(kind == "record" or named for kind, named in zip(kinds, by_name, strict=True))
    if records == 1:
        return [None] * len(branches)
    return [
        str(branch["name"]) if kind == "record" else str(kind) if named else None
        for branch, kind, named in zip(branches, kinds, by_name, strict=True)
    ]


def _enum(schema: Mapping[str, Any]) -> FieldReader:
    symbols = list(schema["symbols"])
    count = len(symbols)

    def read_enum(buf: bytes, pos: int) -> tuple[Any, int]:
        index, pos = read_long(buf, pos)
        if not 0 <= index < count:
            raise bad_index(index, count, "enum")
        return symbols[index], pos

    return read_enum


def _read_null(buf: bytes, pos: int) -> tuple[Any, int]:
    return None, pos


def _read_boolean(buf: bytes, pos: int) -> tuple[Any, int]:
    return buf[pos] != 0, pos + 1


def _read_double(buf: bytes, pos: int) -> tuple[Any, int]:
    if pos + 8 > len(buf):
        raise bad_length(8, len(buf) - pos)
    return _DOUBLE.unpack_from(buf, pos)[0], pos + 8


def _read_string(buf: bytes, pos: int) -> tuple[Any, int]:
    size, pos = read_long(buf, pos)
    end = pos + size
    if size < 0 or end > len(buf):
        raise bad_length(size, len(buf) - pos)
    return buf[pos:end].decode(), end


_PRIMITIVES: Mapping[str, FieldReader] = {
    "null": _read_null,
    "boolean": _read_boolean,
    "int": read_long,
    "long": read_long,
    "string": _read_string,
    "double": _read_double,
}


def _blocks(buf: bytes, pos: int) -> tuple[int, int]:
    """The item count of the next block of an array or map, past its byte size if given."""
    count, pos = read_long(buf, pos)
    if count < 0:
        count = -count
        _, pos = read_long(buf, pos)
    return count, pos


def _array(read_item: FieldReader) -> FieldReader:
    def read_array(buf: bytes, pos: int) -> tuple[Any, int]:
        items = []
        count, pos = _blocks(buf, pos)
        while count:
            for _ in range(count):
                item, pos = read_item(buf, pos)
                items.append(item)
            count, pos = _blocks(buf, pos)
        return items, pos

    return read_array


def _map(read_value: FieldReader) -> FieldReader:
    def read_map(buf: bytes, pos: int) -> tuple[Any, int]:
        values = {}
        count, pos = _blocks(buf, pos)
        while count:
            for _ in range(count):
                key, pos = _read_string(buf, pos)
                values[key], pos = read_value(buf, pos)
            count, pos = _blocks(buf, pos)
        return values, pos

    return read_map
