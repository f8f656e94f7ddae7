"""Events as record values in the Confluent wire format: byte 0, a schema id, an Avro body.

This is the framing every Confluent-compatible client expects (4-byte big-endian schema id after
a zero magic byte, then Avro binary without a container header), so analytics consumers and
producers in any language read and write our topics with stock serializers. The schema id names
the WRITER schema; decoding resolves it against our current (reader) schema of the topic, which
is how data written with an older released version is still read after an upgrade.

The payload is an Avro union with one record per event type. Records are encoded with fastavro's
`(record name, value)` tuple notation, so the branch is the one `event_type` names and never a
look-alike record that happens to accept the same fields.

Everything that can go wrong with a record's bytes is an `UndecodableEventError` (a
`PoisonError`): retrying will not help, the record belongs on the dead-letter topic.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime
from enum import Enum
from functools import cache
from typing import Any, TypeVar, cast
from uuid import UUID

from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.read import SchemaResolutionError
from pydantic import BaseModel, ValidationError

from schemas.contracts import Contract, contract_for_model
from schemas.registry import SchemaSet
from streams.errors import PoisonError
from streams.kafka.avro_reader import FieldReader, UnreadableError, compile_reader
from streams.kafka.avro_writer import UnwritableError, compile_writer

ModelT = TypeVar("ModelT", bound=BaseModel)

MAGIC_BYTE = 0
_HEADER = struct.Struct(">bI")
HEADER_BYTES = _HEADER.size
# What fastavro raises on bytes that do not follow the schema (bad union index, enum index,
# negative length, invalid UTF-8 or UUID...), as opposed to bytes that merely end too early.
_CORRUPT_BODY_ERRORS = (ValueError, IndexError, KeyError, TypeError, OverflowError)

ParsedSchema = dict[str, Any]
SchemaFetcher = Callable[[int], Mapping[str, Any]]


class UndecodableEventError(PoisonError):
    """A record value that is not a valid event of the topic's contract."""


class TruncatedRecordError(UndecodableEventError):
    """The value ends before its header or its Avro body does."""


class BadMagicByteError(UndecodableEventError):
    """The value is not in the Confluent wire format at all (JSON, another serializer...)."""


class UnknownSchemaIdError(UndecodableEventError):
    """The header names a schema id that no registry we know of has ever given out."""


class SchemaMismatchError(UndecodableEventError):
    """The body does not follow the schema its id names, or that schema is another topic's."""


class ContractViolationError(UndecodableEventError):
    """The body decodes, but the event breaks a rule of its contract (pydantic validation)."""


class UnencodableEventError(PoisonError):
    """An event that does not fit its own Avro schema: the models and the schemas disagree."""


class SchemaBook:
    """The schemas one process writes with, and every schema it may find named in a header.

    Built once at start. Ids come either from the project's schema set or from a Schema Registry
    (`streams.kafka.schema_registry`); schemas are parsed once, since parsing per record would cost
    more than the encoding itself.
    """

    def __init__(
        self,
        readers: Mapping[str, Mapping[str, Any]],
        writer_ids: Mapping[str, int],
        known: Mapping[int, tuple[str | None, Mapping[str, Any]]],
        fetch: SchemaFetcher | None = None,
    ) -> None:
        self._readers = {subject: _parse(schema) for subject, schema in readers.items()}
        self._compiled = {
            subject: writer
            for subject, schema in self._readers.items()
            if (writer := _compiled_writer(schema)) is not None
        }
        self._compiled_readers = {
            subject: reader
            for subject, schema in self._readers.items()
            if (reader := _compiled_reader(schema)) is not None
        }
        self._writer_ids = dict(writer_ids)
        self._writers: dict[int, tuple[str | None, ParsedSchema]] = {}
        for schema_id, (subject, schema) in known.items():
            # The id we write with names the reader schema itself: sharing the parsed object lets
            # `_read` skip schema resolution for every record we wrote ourselves.
            if subject is not None and self._writer_ids.get(subject) == schema_id:
                self._writers[schema_id] = (subject, self._readers[subject])
            else:
                self._writers[schema_id] = (subject, _parse(schema))
        self._fetch = fetch

    @classmethod
    def local(cls, schema_set: SchemaSet) -> SchemaBook:
        """Ids from the project's own manifest: identical on every machine and every start."""
        return cls(
            readers={subject: schema_set.latest(subject).schema for subject in schema_set.subjects},
            writer_ids={subject: schema_set.latest(subject).id for subject in schema_set.subjects},
            known={entry.id: (entry.subject, entry.schema) for entry in schema_set.all()},
        )

    def writer_id(self, subject: str) -> int:
        return self._writer_ids[subject]

    def write(self, subject: str, record: Mapping[str, Any]) -> bytes:
        """The Avro body of `record` in `subject`'s schema: by the schema's compiled writer
        (`streams.kafka.avro_writer`), or fastavro's where that writer leaves it."""
        compiled = self._compiled.get(subject)
        if compiled is not None:
            try:
                return compiled(record)
            except UnwritableError:
                pass
        buffer = io.BytesIO()
        schemaless_writer(buffer, self._readers[subject], record)
        return buffer.getvalue()

    def read(self, raw: bytes, start: int, writer: ParsedSchema, subject: str) -> tuple[Any, int]:
        """The Avro body from `start` in `raw`, written with `writer` (`self.writer`), as
        `subject`'s schema reads it, and the offset where it ends: by the schema's compiled
        reader (`streams.kafka.avro_reader`) when it was written with that very schema, else by
        fastavro's, which resolves an older schema against the current one."""
        reader = self._readers[subject]
        if writer is reader:
            compiled = self._compiled_readers.get(subject)
            if compiled is not None:
                return compiled(raw, start)
        body = io.BytesIO(raw)
        body.seek(start)
        record = schemaless_reader(
            body,
            writer,
            None if writer is reader else reader,
            return_record_name=True,
            return_record_name_override=True,
        )
        return record, body.tell()

    def reader(self, subject: str) -> ParsedSchema:
        return self._readers[subject]

    def writer(self, schema_id: int, subject: str) -> ParsedSchema:
        """The schema `schema_id` names, checked to belong to `subject` when that is known."""
        found = self._writers.get(schema_id)
        if found is None:
            found = self._learn(schema_id)
        owner, schema = found
        if owner is not None and owner != subject:
            raise SchemaMismatchError(f"schema id {schema_id} is {owner}'s, not {subject}'s")
        return schema

    def _learn(self, schema_id: int) -> tuple[str | None, ParsedSchema]:
        if self._fetch is None:
            raise UnknownSchemaIdError(f"unknown schema id {schema_id}")
        learned: tuple[str | None, ParsedSchema] = (None, _parse(self._fetch(schema_id)))
        self._writers[schema_id] = learned
        return learned


def _parse(schema: Mapping[str, Any]) -> ParsedSchema:
    try:
        parsed = parse_schema(dict(schema))
    except (ValueError, TypeError, KeyError) as exc:
        raise SchemaMismatchError(f"not a usable Avro schema: {exc}") from exc
    if not isinstance(parsed, dict):
        raise SchemaMismatchError("a value schema must be a record")
    return parsed


# How many decoded records a codec keeps for the next agent that decodes the same record.
RECENT_DECODES = 2048
# How many events a worker's codec keeps of those it encoded, for when the process reads them
# back: between this and twice this, the last ones (two generations). About 2.8 KB each (a status
# event and its bytes): up to about 45 MB, some 8 s of a worker's encoding at 400 notifications/s
# offered. Other processes (the API, the CLI) never read back what they write and keep none.
RECENT_ENCODES = 8192


class WireCodec:
    """Envelope models to Confluent-framed Avro and back, for every family in the contracts.

    Faust hands one record's value (the same `bytes` object) to every agent on its topic, and
    several decode it as the same model (`users.events`: the router, the preferences view and the
    metrics collector). The codec keeps its last `recent_decodes` results by that object, so a
    record is read once per process: the models are frozen, sharing them is safe, and a kept
    result holds its bytes, so their identity cannot be another record's meanwhile.

    Most records a worker reads it wrote itself moments before: topics keyed alike are assigned
    alike, so the worker that dispatches a notification also tracks it and reads back the
    statuses it published. The codec keeps the events it encoded by their bytes, and a record
    read with the same bytes is that event, not decoded again; only events whose decoding
    would give them back exactly are kept (`round_trips`: a timestamp finer than a millisecond or in
    another zone than UTC, a decimal's scale or a float would not be; `wire_now` stamps events
    that are).
    """

    def __init__(
        self,
        book: SchemaBook,
        *,
        recent_decodes: int = RECENT_DECODES,
        recent_encodes: int = 0,
    ) -> None:
        self._book = book
        self._recent_decodes = recent_decodes
        self._recent: dict[tuple[int, type[BaseModel]], tuple[bytes, BaseModel]] = {}
        self._recent_encodes = recent_encodes
        self._encoded: dict[bytes, BaseModel] = {}
        self._encoded_before: dict[bytes, BaseModel] = {}

    def encode(self, event: BaseModel) -> bytes:
        subject, record = avro_record(event)
        exact = self._recent_encodes > 0 and round_trips(record)
        try:
            body = self._book.write(subject, record)
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
            message = f"{type(event).__name__} does not fit its schema: {exc}"
            raise UnencodableEventError(message) from exc
        raw = _HEADER.pack(MAGIC_BYTE, self._book.writer_id(subject)) + body
        if exact:
            self._keep_encoded(raw, event)
        return raw

    def _keep_encoded(self, raw: bytes, event: BaseModel) -> None:
        if len(self._encoded) >= self._recent_encodes:
            self._encoded_before = self._encoded
            self._encoded = {}
        self._encoded[raw] = event

    def decode(self, raw: bytes | None, model: type[ModelT]) -> ModelT:
        key = (id(raw), model)
        recent = self._recent.get(key)
        if recent is not None and recent[0] is raw:
            return cast(ModelT, recent[1])
        decoded = self._encoded_event(raw, model) or self._decode(raw, model)
        if raw is not None and self._recent_decodes:
            if len(self._recent) >= self._recent_decodes:
                self._recent.clear()
            self._recent[key] = (raw, decoded)
        return decoded

    def _encoded_event(self, raw: bytes | None, model: type[ModelT]) -> ModelT | None:
        if raw is None:
            return None
        event = self._encoded.get(raw) or self._encoded_before.get(raw)
        return event if type(event) is model else None

    def _decode(self, raw: bytes | None, model: type[ModelT]) -> ModelT:
        contract = _contract(model)
        framed, schema_id = _framed(raw)
        record = self._read(framed, schema_id, contract.subject)
        record["payload"] = _payload_body(record, contract)
        try:
            return model.model_validate(record)
        except ValidationError as exc:
            fields = ", ".join(".".join(str(p) for p in e["loc"]) or "(root)" for e in exc.errors())
            raise ContractViolationError(f"not a valid {model.__name__}: {fields}") from exc

    def _read(self, raw: bytes, schema_id: int, subject: str) -> dict[str, Any]:
        writer = self._book.writer(schema_id, subject)
        try:
            record, end = self._book.read(raw, HEADER_BYTES, writer, subject)
        except EOFError as exc:
            raise TruncatedRecordError(f"Avro body ends early for schema id {schema_id}") from exc
        except SchemaResolutionError as exc:
            raise SchemaMismatchError(f"schema id {schema_id} cannot be read as {subject}") from exc
        except _CORRUPT_BODY_ERRORS as exc:
            raise SchemaMismatchError(f"body does not follow schema id {schema_id}: {exc}") from exc
        if end != len(raw):
            raise SchemaMismatchError(
                f"{len(raw) - end} bytes left after the body: not schema id {schema_id}"
            )
        if not isinstance(record, dict):
            raise SchemaMismatchError(f"schema id {schema_id} is not a record schema")
        return record


def avro_record(event: BaseModel) -> tuple[str, dict[str, Any]]:
    """`event` as the codec writes it: its subject, and its fields with the payload in tuple
    notation, `(record name, value)`, so the branch is the one `event_type` names."""
    contract = _contract(type(event))
    record = event.model_dump()
    record["payload"] = (contract.payload_record(record["event_type"]), record["payload"])
    return contract.subject, record


def _compiled_writer(schema: ParsedSchema) -> Callable[[Any], bytes] | None:
    try:
        return compile_writer(schema)
    except UnwritableError:
        return None


def _compiled_reader(schema: ParsedSchema) -> FieldReader | None:
    try:
        return compile_reader(schema)
    except UnreadableError:
        return None


def wire_now() -> datetime:
    """The wall clock at the precision the contracts' timestamps keep (Avro `timestamp-millis`):
    an event stamped with it is the same in the process that built it as in every process that
    reads it, and its codec can keep it for reading back (`round_trips`)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond - now.microsecond % 1000)


def round_trips(value: Any) -> bool:
    """Whether decoding `value` (a model's dump) from Avro gives it back exactly, so an event
    built from it equals the event decoded from its bytes in every field and representation.

    Called for every event encoded, so the leaves (most values) are checked in the loops."""
    kind = type(value)
    if kind is dict:
        items: Iterable[Any] = cast(dict[str, Any], value).values()
    elif kind is list or kind is tuple:
        items = cast(Iterable[Any], value)
    else:
        return _exact_leaf(value)
    for item in items:
        if type(item) in _EXACT_TYPES:
            continue
        if not round_trips(item):
            return False
    return True


def _exact_leaf(value: Any) -> bool:
    kind = type(value)
    if kind in _EXACT_TYPES or isinstance(value, Enum):
        return True
    if kind is datetime:
        at = cast(datetime, value)
        return at.tzinfo is UTC and at.microsecond % 1000 == 0
    return False


_EXACT_TYPES = frozenset({str, int, bool, bytes, UUID, date, type(None)})


def _contract(model: type[BaseModel]) -> Contract[Any]:
    try:
        return contract_for_model(model)
    except KeyError:
        raise TypeError(f"{model.__name__} is not the envelope model of any topic") from None


def _framed(raw: bytes | None) -> tuple[bytes, int]:
    """The value and the schema id in its header, once the header is known to be there."""
    if raw is None:
        raise TruncatedRecordError("record has no value")
    if len(raw) < HEADER_BYTES:
        raise TruncatedRecordError(f"{len(raw)} bytes, shorter than the {HEADER_BYTES}-byte header")
    magic, schema_id = _HEADER.unpack_from(raw)
    if magic != MAGIC_BYTE:
        raise BadMagicByteError(
            f"first byte is {raw[0]:#04x}, not the Confluent wire format's {MAGIC_BYTE:#04x}"
        )
    return raw, int(schema_id)


def _payload_body(record: Mapping[str, Any], contract: Contract[Any]) -> Any:
    """The payload value, once checked to be the record its `event_type` calls for."""
    payload = record.get("payload")
    if not isinstance(payload, tuple):
        return payload  # a one-branch union comes back bare: nothing to check
    name, body = payload
    event_type = record.get("event_type")
    if not isinstance(event_type, str) or event_type not in contract.payload_models:
        return body  # validation names the unknown event type
    if name != contract.payload_record(event_type):
        raise SchemaMismatchError(f"{event_type} carries a {name} payload")
    return body


@cache
def local_codec() -> WireCodec:
    """The codec over the project's own schema set.

    Cached rather than rebuilt because that set is part of the code, like the models: the same
    for the process's whole life. A process using a Schema Registry builds its own `WireCodec`.
    """
    return WireCodec(SchemaBook.local(SchemaSet.load()))


def encode(event: BaseModel) -> bytes:
    return local_codec().encode(event)


def decode(raw: bytes | None, contract: type[ModelT]) -> ModelT:
    return local_codec().decode(raw, contract)
