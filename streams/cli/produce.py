"""`tributary produce <event_type> --json FILE|-`: validated events onto their family's topic.

For upstream integrators trying their payloads and for operators injecting a correction. The
input is what integrators already have: either a webhook body (`type`, `occurred_at`,
`correlation_id`, and the family's object such as `order`) or a whole envelope (`event_type`,
`payload`...) as a consumer sees it on the topic. One JSON document, or one per line (JSON
Lines). Every document is validated before anything is sent, so invalid input produces nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from pydantic import BaseModel, ValidationError

from schemas.contracts import BY_EVENT_TYPE, Contract, event_from_webhook
from streams.cli.cluster import Cluster
from streams.cli.errors import FieldError, InvalidEventError, TopicNotFoundError, UsageError
from streams.cli.output import Output
from streams.cli.sending import Outgoing, first_failure, send_in_key_order
from streams.errors import ServiceUnavailableError
from streams.kafka.catalog import TopicCatalog
from streams.kafka.codec import wire_codec
from streams.kafka.event_producer import EventProducer, RecordPosition
from streams.settings import KafkaProcessSettings

SOURCE = "cli"
DOCUMENT = "(document)"
# Keys that only an envelope has; a webhook body has `type` and its family's object instead.
_ENVELOPE_KEYS = ("event_type", "payload")


@dataclass(frozen=True, slots=True)
class ProducibleEvent:
    """A validated envelope and the record key it goes out with."""

    contract: Contract[Any]
    event: Any
    key: str

    @property
    def event_id(self) -> UUID:
        event_id: UUID = self.event.event_id
        return event_id


def contract_for(event_type: str) -> Contract[Any]:
    try:
        return BY_EVENT_TYPE[event_type]
    except KeyError:
        known = ", ".join(sorted(BY_EVENT_TYPE))
        raise UsageError(f"unknown event type {event_type!r}; known: {known}") from None


def parse_documents(text: str) -> list[Any]:
    """One JSON document, or JSON Lines (one document per non-blank line)."""
    try:
        return [json.loads(text)]
    except ValueError as whole_error:
        lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
        if len(lines) <= 1:
            raise InvalidEventError("the input", [FieldError("(json)", str(whole_error))]) from None
        documents, errors = [], []
        for number, line in lines:
            try:
                documents.append(json.loads(line))
            except ValueError as exc:
                errors.append(FieldError(f"line {number}", f"not JSON: {exc}"))
        if errors:
            raise InvalidEventError("the input", errors) from None
        return documents


def build_event(
    document: Any,
    event_type: str,
    *,
    now: datetime,
    new_id: Callable[[], UUID] = uuid4,
    key: str | None = None,
) -> ProducibleEvent:
    """The envelope `document` stands for, as `tributary produce` sends it.

    A webhook body becomes the envelope the API would make of it, except that the event id is
    new and the source is `cli`. A full envelope is kept as given; only what it leaves out is
    filled in (event id, `ingested_at` now, source `cli`, correlation id = event id).
    """
    contract = contract_for(event_type)
    if not isinstance(document, dict):
        message = f"must be a JSON object, not {type(document).__name__}"
        raise InvalidEventError(event_type, [FieldError(DOCUMENT, message)])
    if any(name in document for name in _ENVELOPE_KEYS):
        event = _from_envelope(contract, document, event_type, now, new_id)
    else:
        event = _from_webhook(contract, document, event_type, now, new_id)
    return ProducibleEvent(contract, event, key if key is not None else contract.key(event))


def _from_envelope(
    contract: Contract[Any],
    document: dict[str, Any],
    event_type: str,
    now: datetime,
    new_id: Callable[[], UUID],
) -> BaseModel:
    _check_type(document, "event_type", event_type)
    envelope = {"event_type": event_type, "ingested_at": now, "source": SOURCE} | document
    if envelope.get("event_id") is None:
        envelope["event_id"] = new_id()
    envelope.setdefault("correlation_id", str(envelope["event_id"]))
    return _validated(contract.event_model, envelope, event_type)


def _from_webhook(
    contract: Contract[Any],
    document: dict[str, Any],
    event_type: str,
    now: datetime,
    new_id: Callable[[], UUID],
) -> BaseModel:
    webhook = contract.webhook
    if webhook is None or event_type not in webhook.event_types:
        message = (
            f"{event_type} events do not arrive by webhook: give a whole envelope "
            "(event_type, occurred_at, payload...)"
        )
        raise InvalidEventError(event_type, [FieldError(DOCUMENT, message)])
    _check_type(document, "type", event_type)
    body: Any = _validated(webhook.body_model, {"type": event_type} | document, event_type)
    event: BaseModel = event_from_webhook(
        contract, body, event_id=new_id(), ingested_at=now, source=SOURCE
    )
    return event


def _check_type(document: dict[str, Any], field: str, event_type: str) -> None:
    given = document.get(field)
    if given is not None and given != event_type:
        message = f"is {given!r}, but the command produces {event_type!r}"
        raise InvalidEventError(event_type, [FieldError(field, message)])


def _validated(model: type[BaseModel], data: dict[str, Any], event_type: str) -> BaseModel:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [
            FieldError(".".join(str(part) for part in error["loc"]) or DOCUMENT, error["msg"])
            for error in exc.errors(include_url=False)
        ]
        raise InvalidEventError(event_type, errors) from exc


def build_events(
    documents: Sequence[Any], event_type: str, *, now: datetime, key: str | None = None
) -> list[ProducibleEvent]:
    """Every document's event, or one `InvalidEventError` naming the failing fields of all."""
    if not documents:
        raise InvalidEventError("the input", [FieldError(DOCUMENT, "no JSON document given")])
    events: list[ProducibleEvent] = []
    errors: list[FieldError] = []
    for number, document in enumerate(documents, 1):
        try:
            events.append(build_event(document, event_type, now=now, key=key))
        except InvalidEventError as exc:
            where = "" if len(documents) == 1 else f"document {number}: "
            errors.extend(FieldError(f"{where}{e.field}", e.message) for e in exc.errors)
    if errors:
        raise InvalidEventError(event_type, errors)
    return events


def outgoing(event: ProducibleEvent, topic: str, value: bytes) -> Outgoing:
    """The record, with the same headers the ingest API writes."""
    headers = (
        ("event_id", str(event.event_id).encode()),
        ("event_type", str(event.event.event_type).encode()),
        ("source", str(event.event.source).encode()),
    )
    return Outgoing(topic, event.key.encode(), value, headers)


async def produce(
    settings: KafkaProcessSettings,
    catalog: TopicCatalog,
    event_type: str,
    text: str,
    key: str | None,
    output: Output,
) -> int:
    """`settings`: the brokers, and the Schema Registry (if any) whose ids to write."""
    events = build_events(parse_documents(text), event_type, now=datetime.now(UTC), key=key)
    topic = catalog.for_topic(contract_for(event_type).topic).name
    if not await Cluster(settings.kafka).partitions(topic):
        # Checked first: producing would make the broker auto-create it with its own defaults.
        raise TopicNotFoundError(topic)
    codec = await wire_codec(settings)
    records = [outgoing(event, topic, codec.encode(event.event)) for event in events]
    async with EventProducer(settings.kafka) as producer:
        results = await send_in_key_order(producer, records)
    for event, result in zip(events, results, strict=True):
        if isinstance(result, RecordPosition):
            output.record(
                {
                    "event_id": str(event.event_id),
                    "topic": result.topic,
                    "partition": result.partition,
                    "offset": result.offset,
                }
            )
    failure = first_failure(results)
    if failure is not None:
        sent = sum(isinstance(result, RecordPosition) for result in results)
        output.note(f"{sent} of {len(records)} events produced")
        raise ServiceUnavailableError(failure.service, failure.detail) from failure
    return 0
