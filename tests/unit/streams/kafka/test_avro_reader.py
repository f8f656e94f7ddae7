"""The compiled Avro reader must read what fastavro reads, fail where it fails, and say why."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_reader, schemaless_writer
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from schemas import examples
from schemas.registry import SchemaSet
from streams.kafka.avro_reader import UnreadableError, compile_reader
from streams.kafka.avro_writer import zigzag
from streams.kafka.wire import SchemaBook, avro_record
from tests.unit.streams.kafka.avro_data import (
    E_SCHEMA,
    NOT_COMPILED,
    S_SCHEMA,
    T_SCHEMA,
    record_schema,
    shaped_by,
    union_schema,
)

BOOK = SchemaBook.local(SchemaSet.load())
SUBJECTS = sorted(SchemaSet.load().subjects)
READERS = {subject: compile_reader(BOOK.reader(subject)) for subject in SUBJECTS}
# What the codec turns into `SchemaMismatchError`: bytes that do not follow the schema.
CORRUPT = (ValueError, IndexError, KeyError, TypeError, OverflowError)
GENERATED = settings(max_examples=30, suppress_health_check=[HealthCheck.too_slow])


def fastavro_read(schema: Any, body: bytes, start: int = 0) -> tuple[Any, int]:
    buffer = io.BytesIO(body)
    buffer.seek(start)
    value = schemaless_reader(
        buffer, schema, None, return_record_name=True, return_record_name_override=True
    )
    return value, buffer.tell()


def fastavro_bytes(schema: Any, datum: Any) -> bytes:
    buffer = io.BytesIO()
    try:
        schemaless_writer(buffer, schema, datum)
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError):
        assume(False)  # data the strategy made that does not fit: nothing to read
    return buffer.getvalue()


def written(subject: str, data: st.DataObject) -> tuple[Any, bytes]:
    schema = BOOK.reader(subject)
    return schema, fastavro_bytes(schema, data.draw(shaped_by(schema)))


def readable(subject: str, data: st.DataObject) -> tuple[Any, bytes]:
    """A body fastavro reads back (a timestamp written as a long may be past year 9999)."""
    schema, body = written(subject, data)
    assume(outcome(lambda: fastavro_read(schema, body))[0] == "read")
    return schema, body


def outcome(read: Callable[[], tuple[Any, int]]) -> tuple[str, Any]:
    """What a read gives: its value and end (as their repr, so that a NaN equals a NaN), or how
    it failed (ended early, or corrupt: the codec's two errors) and the message."""
    try:
        return "read", repr(read())
    except EOFError as exc:
        return "ends early", str(exc)
    except CORRUPT as exc:
        return "corrupt", str(exc)


@pytest.mark.parametrize("subject", SUBJECTS)
@GENERATED
@given(data=st.data(), header=st.binary(max_size=6))
def test_every_contract_is_read_as_fastavro_reads_it(
    subject: str, data: st.DataObject, header: bytes
) -> None:
    """The same values, or (a long too large for a timestamp, say) the same failure."""
    schema, body = written(subject, data)
    framed = header + body
    ours = outcome(lambda: READERS[subject](framed, len(header)))
    theirs = outcome(lambda: fastavro_read(schema, framed, len(header)))
    assert ours == theirs if ours[0] == "read" else ours[0] == theirs[0]


@pytest.mark.parametrize("subject", SUBJECTS)
@GENERATED
@given(data=st.data())
def test_a_body_cut_short_ends_early_in_both(subject: str, data: st.DataObject) -> None:
    schema, body = readable(subject, data)
    cut = body[: data.draw(st.integers(min_value=0, max_value=len(body) - 1))]
    with pytest.raises((EOFError, IndexError)):  # fastavro's map reader runs off the end
        fastavro_read(schema, cut)
    with pytest.raises(EOFError):
        READERS[subject](cut, 0)


@pytest.mark.parametrize("subject", SUBJECTS)
@GENERATED
@given(data=st.data())
def test_a_corrupted_body_is_never_read_as_something_else(
    subject: str, data: st.DataObject
) -> None:
    """One byte changed: what this reader returns, fastavro returns too; what it refuses is
    refused as the codec expects (ended early, or corrupt), and where fastavro reads it all the
    same, the refusal is of a negative index or length, or of a varint too long for a long."""
    schema, body = readable(subject, data)
    at = data.draw(st.integers(min_value=0, max_value=len(body) - 1))
    changed = body[:at] + bytes([data.draw(st.integers(0, 255))]) + body[at + 1 :]
    ours = outcome(lambda: READERS[subject](changed, 0))
    theirs = outcome(lambda: fastavro_read(schema, changed))
    if ours[0] == "read":
        assert ours == theirs
    elif theirs[0] == "read":
        assert ours[0] == "corrupt"
        assert re.search(r"(index|length of) -\d|more than 64 bits", ours[1])


@pytest.mark.parametrize("event_type", sorted(examples.PAYLOADS))
def test_every_contracts_example_is_read_as_fastavro_reads_it(event_type: str) -> None:
    subject, record = avro_record(examples.event(event_type))
    schema = BOOK.reader(subject)
    body = BOOK.write(subject, record)
    assert compile_reader(schema)(body, 0) == fastavro_read(schema, body)


# Unions


def assert_reads_like_fastavro(schema: Any, body: bytes) -> Any:
    ours = compile_reader(schema)(body, 0)
    assert ours == fastavro_read(schema, body)
    return ours[0]


@pytest.mark.parametrize("branches", [("null", "string"), ("string", "null")])
def test_an_optional_fields_index_in_more_bytes_than_needed_is_read_as_fastavro_reads_it(
    branches: tuple[str, str],
) -> None:
    """A varint may take more bytes than its value needs (0x80 0x00 is 0, 0x82 0x00 is 1):
    fastavro reads such a union index, so the reader does too (a changed byte found it)."""
    schema = union_schema(*branches)
    string = branches.index("string")
    assert assert_reads_like_fastavro(schema, bytes([0x80 | 2 * string, 0x00, 0x02, 0x7A])) == {
        "u": "z"
    }
    assert assert_reads_like_fastavro(schema, bytes([0x80 | 2 * (1 - string), 0x00])) == {"u": None}
    with pytest.raises(ValueError, match="union index 2 of 2"):
        compile_reader(schema)(bytes([0x84, 0x00]), 0)


def test_a_union_of_records_names_the_branch_and_a_single_record_does_not() -> None:
    several = union_schema("null", S_SCHEMA, T_SCHEMA)
    assert assert_reads_like_fastavro(several, b"\x04\x02z") == {"u": ("test.T", {"y": "z"})}
    assert assert_reads_like_fastavro(several, b"\x00") == {"u": None}
    single = union_schema("null", S_SCHEMA)
    assert assert_reads_like_fastavro(single, b"\x02\x0e") == {"u": {"x": 7}}


def test_a_branch_naming_an_earlier_type_is_named_as_fastavro_names_it() -> None:
    schema = record_schema(("e", E_SCHEMA), ("u", ["null", "test.E", S_SCHEMA]))
    assert assert_reads_like_fastavro(schema, b"\x02\x02\x00") == {"e": "b", "u": ("test.E", "a")}
    alone = record_schema(("e", E_SCHEMA), ("u", ["null", "test.E"]))
    assert assert_reads_like_fastavro(alone, b"\x00\x02\x02") == {"e": "a", "u": "b"}


def test_an_optional_value_is_read_in_either_order() -> None:
    for branches, null, body, value in (
        (["null", "string"], b"\x00", b"\x02\x02k", "k"),
        (["long", "null"], b"\x02", b"\x00\x0e", 7),
    ):
        schema = union_schema(*branches)
        assert assert_reads_like_fastavro(schema, null) == {"u": None}
        assert assert_reads_like_fastavro(schema, body) == {"u": value}


def test_a_union_or_enum_index_out_of_range_is_corrupt() -> None:
    schema = record_schema(
        ("o", ["null", "string"]), ("u", ["null", "long", "string"]), ("e", E_SCHEMA)
    )
    for body, message in (
        (b"\x04", "union index 2 of 2"),
        (b"\x00\x06", "union index 3 of 3"),
        (b"\x00\x00\x04", "enum index 2 of 2"),
    ):
        with pytest.raises(ValueError, match=message):
            compile_reader(schema)(body, 0)
        with pytest.raises(CORRUPT):
            fastavro_read(schema, body)


def test_a_negative_index_or_length_is_corrupt_though_fastavro_reads_it() -> None:
    """fastavro takes a negative union or enum index from the end of the list."""
    for schema, body in (
        (union_schema("null", "long", "string"), b"\x01\x02k"),
        (record_schema(("e", E_SCHEMA)), b"\x01"),
    ):
        fastavro_read(schema, body)
        with pytest.raises(ValueError, match="index -1 of"):
            compile_reader(schema)(body, 0)
    with pytest.raises(ValueError, match="length of -1 bytes"):
        compile_reader(record_schema(("s", "string")))(b"\x01", 0)


# Primitives and containers


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_varints_are_read_as_avro_writes_them(n: int) -> None:
    schema = record_schema(("n", "long"), ("o", ["null", "long"]))
    body = zigzag(n) + b"\x02" + zigzag(n)
    assert assert_reads_like_fastavro(schema, body) == {"n": n, "o": n}


@given(st.floats(width=64, allow_nan=False), st.booleans(), st.text(max_size=80))
def test_doubles_booleans_and_long_strings(x: float, flag: bool, text: str) -> None:
    schema = record_schema(("x", "double"), ("b", "boolean"), ("s", "string"), ("n", "null"))
    datum = {"x": x, "b": flag, "s": text, "n": None}
    assert assert_reads_like_fastavro(schema, fastavro_bytes(schema, datum)) == datum


def test_arrays_and_maps_are_read_in_blocks_with_or_without_their_byte_size() -> None:
    schema = record_schema(
        ("a", {"type": "array", "items": "string"}), ("m", {"type": "map", "values": "long"})
    )
    one_block = b"\x04\x02x\x02y\x00" + b"\x02\x02k\x0e\x00"
    sized_blocks = b"\x01\x04\x02x\x01\x04\x02y\x00" + b"\x01\x06\x02k\x0e\x00"
    for body in (one_block, sized_blocks):
        assert assert_reads_like_fastavro(schema, body) == {"a": ["x", "y"], "m": {"k": 7}}


def test_a_record_may_contain_itself() -> None:
    schema = parse_schema(
        {
            "type": "record",
            "name": "test.Node",
            "fields": [
                {"name": "v", "type": "long"},
                {"name": "next", "type": ["null", "test.Node"]},
            ],
        }
    )
    body = b"\x02\x02\x04\x02\x06\x00"
    assert assert_reads_like_fastavro(schema, body) == {
        "v": 1,
        "next": {"v": 2, "next": {"v": 3, "next": None}},
    }


def test_invalid_utf8_is_corrupt() -> None:
    with pytest.raises(UnicodeDecodeError):
        compile_reader(record_schema(("s", "string")))(b"\x02\xff", 0)


@pytest.mark.parametrize("field_type", NOT_COMPILED)
def test_a_schema_with_a_type_it_does_not_know_is_left_to_fastavro(field_type: Any) -> None:
    with pytest.raises(UnreadableError):
        compile_reader(record_schema(("f", field_type)))
