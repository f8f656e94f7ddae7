"""The compiled Avro writer must write what fastavro writes, or hand the datum back to it."""

from __future__ import annotations

import enum
import io
import uuid
from datetime import UTC, datetime, time
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_writer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import examples
from schemas.registry import SchemaSet
from streams.kafka.avro_writer import (
    INT_MAX,
    INT_MIN,
    LONG_MAX,
    LONG_MIN,
    UnwritableError,
    compile_writer,
    zigzag,
)
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

# What the codec turns into `UnencodableEventError`: data that does not fit the schema.
DOES_NOT_FIT = (ValueError, TypeError, KeyError, AttributeError, OverflowError)
BOOK = SchemaBook.local(SchemaSet.load())
SUBJECTS = sorted(SchemaSet.load().subjects)


def fastavro_bytes(schema: Any, datum: Any) -> bytes:
    buffer = io.BytesIO()
    schemaless_writer(buffer, schema, datum)
    return buffer.getvalue()


def assert_writes_like_fastavro(schema: Any, datum: Any) -> None:
    """Our bytes are fastavro's; data that does not fit fails both; the rest is fastavro's."""
    try:
        ours = compile_writer(schema)(datum)
    except UnwritableError:
        return  # the caller encodes it with fastavro
    except DOES_NOT_FIT:
        with pytest.raises(DOES_NOT_FIT):
            fastavro_bytes(schema, datum)
        return
    assert ours == fastavro_bytes(schema, datum)


@pytest.mark.parametrize("subject", SUBJECTS)
@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_contract_is_written_as_fastavro_writes_it(subject: str, data: st.DataObject) -> None:
    schema = BOOK.reader(subject)
    datum = data.draw(shaped_by(schema))
    assert_writes_like_fastavro(schema, datum)


# Events with a record, array or map in a union (`quiet_hours`), which fastavro's validation picks.
LEFT_TO_FASTAVRO = {"user.preferences-updated"}


@pytest.mark.parametrize("event_type", sorted(examples.PAYLOADS))
def test_the_codecs_own_records_take_the_compiled_path(event_type: str) -> None:
    """Every contract's example, dumped as the codec dumps it, is written as fastavro writes it,
    and all but those with a container in a union without fastavro."""
    subject, record = avro_record(examples.event(event_type))
    schema = BOOK.reader(subject)
    assert BOOK.write(subject, record) == fastavro_bytes(schema, record)
    if event_type in LEFT_TO_FASTAVRO:
        with pytest.raises(UnwritableError):
            compile_writer(schema)(record)
    else:
        assert compile_writer(schema)(record) == fastavro_bytes(schema, record)


# Unions


def test_a_branch_named_in_tuple_notation_is_written() -> None:
    schema = union_schema("null", S_SCHEMA, T_SCHEMA)
    for datum in ({"u": ("test.T", {"y": "z"})}, {"u": ("test.S", {"x": 7})}, {"u": None}):
        assert compile_writer(schema)(datum) == fastavro_bytes(schema, datum)


def test_an_unknown_branch_name_does_not_fit() -> None:
    schema = union_schema("null", S_SCHEMA, T_SCHEMA)
    with pytest.raises(ValueError, match=r"test\.U"):
        compile_writer(schema)({"u": ("test.U", {})})


def test_a_container_in_a_union_is_left_to_fastavro() -> None:
    """fastavro picks it by validating every value inside; so does the codec, through it."""
    for schema, datum in (
        (union_schema("null", S_SCHEMA), {"u": {"x": 7}}),
        (union_schema("null", {"type": "array", "items": "long"}), {"u": [1, 2]}),
        (union_schema("null", {"type": "map", "values": "long"}), {"u": {"k": 1}}),
    ):
        with pytest.raises(UnwritableError):
            compile_writer(schema)(datum)


def test_a_datum_two_branches_could_take_is_left_to_fastavro() -> None:
    schema = union_schema("null", S_SCHEMA, T_SCHEMA)
    with pytest.raises(UnwritableError):
        compile_writer(schema)({"u": {"x": 7}})
    strings = union_schema("string", E_SCHEMA)
    with pytest.raises(UnwritableError):
        compile_writer(strings)({"u": "a"})


def test_a_subclass_is_left_to_fastavro() -> None:
    class Letter(enum.StrEnum):
        A = "a"

    schema = union_schema("null", E_SCHEMA)
    with pytest.raises(UnwritableError):
        compile_writer(schema)({"u": Letter.A})
    assert fastavro_bytes(schema, {"u": Letter.A}) == fastavro_bytes(schema, {"u": "a"})


def test_an_int_out_of_range_does_not_fit_a_union() -> None:
    schema = union_schema("null", "int")
    for datum in ({"u": INT_MAX + 1}, {"u": INT_MIN - 1}):
        with pytest.raises(ValueError, match="out of range"):
            compile_writer(schema)(datum)
        with pytest.raises(ValueError, match=r"do not match"):
            fastavro_bytes(schema, datum)


def test_a_symbol_not_in_the_enum_does_not_fit() -> None:
    schema = union_schema("null", E_SCHEMA)
    assert_writes_like_fastavro(schema, {"u": "c"})
    with pytest.raises(KeyError):
        compile_writer(schema)({"u": "c"})


@given(
    st.one_of(
        st.none(), st.booleans(), st.integers(min_value=INT_MIN, max_value=INT_MAX), st.text()
    )
)
def test_a_union_of_primitives_picks_fastavros_branch(value: object) -> None:
    assert_writes_like_fastavro(union_schema("null", "boolean", "int", "string"), {"u": value})


# Primitives and containers


@given(st.integers(min_value=LONG_MIN, max_value=LONG_MAX))
def test_zigzag_varints_are_avros(n: int) -> None:
    assert zigzag(n) == fastavro_bytes("long", n)


# The edges of zigzag's six-byte shortcut (zigzag values 2**35 .. 2**42 - 1), either sign, and
# a millisecond timestamp of today.
@pytest.mark.parametrize(
    "n",
    [
        *(2**34 - 1, 2**34, 2**41 - 1, 2**41),
        *(-(2**34), -(2**34) - 1, -(2**41), -(2**41) - 1),
        *(1_796_000_000_000, -1_796_000_000_000),
    ],
)
def test_zigzag_six_byte_varints_are_avros(n: int) -> None:
    assert zigzag(n) == fastavro_bytes("long", n)


@pytest.mark.parametrize("n", [LONG_MIN - 1, LONG_MAX + 1])
def test_a_long_out_of_range_does_not_fit(n: int) -> None:
    with pytest.raises(OverflowError):
        zigzag(n)
    with pytest.raises(DOES_NOT_FIT):
        fastavro_bytes("long", n)


@given(
    st.lists(st.text(max_size=4), max_size=4),
    st.dictionaries(st.text(max_size=4), st.integers(min_value=-5, max_value=500), max_size=4),
)
def test_arrays_and_maps_are_written_in_one_block(items: list[str], values: dict[str, int]) -> None:
    schema = record_schema(
        ("a", {"type": "array", "items": "string"}), ("m", {"type": "map", "values": "long"})
    )
    datum = {"a": items, "m": values}
    assert compile_writer(schema)(datum) == fastavro_bytes(schema, datum)


def test_a_missing_field_takes_its_default() -> None:
    schema = parse_schema(
        {
            "type": "record",
            "name": "test.D",
            "fields": [
                {"name": "a", "type": ["null", "string"], "default": None},
                {"name": "b", "type": "string", "default": "x"},
            ],
        }
    )
    assert compile_writer(schema)({}) == fastavro_bytes(schema, {})


def test_logical_types_use_fastavros_conversions() -> None:
    schema = record_schema(
        ("at", {"type": "long", "logicalType": "timestamp-millis"}),
        ("id", {"type": "string", "logicalType": "uuid"}),
        ("t", {"type": "int", "logicalType": "time-millis"}),
    )
    datum = {
        "at": datetime(1969, 12, 31, 23, 59, 59, 999_500, tzinfo=UTC),
        "id": uuid.UUID(int=42),
        "t": time(23, 59, 59, 999_999),
    }
    assert compile_writer(schema)(datum) == fastavro_bytes(schema, datum)


@pytest.mark.parametrize("field_type", NOT_COMPILED)
def test_a_schema_with_a_type_it_does_not_know_is_left_to_fastavro(field_type: Any) -> None:
    schema = record_schema(("f", field_type))
    with pytest.raises(UnwritableError):
        compile_writer(schema)
