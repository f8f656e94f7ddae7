"""`tributary dlq list|redrive` with dead letters in the worker's format on the real Kafka."""

from __future__ import annotations

import base64
from uuid import uuid4

from schemas import examples
from schemas.orders import OrderEvent
from streams.kafka.dead_letters import dead_letter_headers
from streams.kafka.wire import ContractViolationError, local_codec
from streams.settings import Settings
from tests.integration.api.support import topic_records
from tests.integration.cli.support import cli, new_order_id, produce_raw
from tests.integration.kafka_io import topic_catalog


def order_value(order_id: str) -> bytes:
    event = examples.event("order.created")
    assert isinstance(event, OrderEvent)
    payload = event.payload.model_copy(update={"id": order_id})
    return local_codec().encode(event.model_copy(update={"event_id": uuid4(), "payload": payload}))


async def dead_letter(
    settings: Settings, order_id: str, source_offset: int, source: str | None = None
) -> bytes:
    """A dead letter as the worker writes it, of a value that decodes now (the fix is in)."""
    catalog = topic_catalog(settings)
    source_topic = source or catalog.orders_events.name
    value = order_value(order_id)
    error = ContractViolationError("not a valid OrderEvent: payload.currency")
    headers = (("trace", b"t-1"), *dead_letter_headers(error, source_topic, 1, source_offset))
    dead_letters = catalog.dead_letters(catalog.orders_events).name
    await produce_raw(settings, dead_letters, order_id.encode(), value, headers)
    return value


async def test_list_shows_each_dead_letter_with_its_error_and_source(settings: Settings) -> None:
    order_id = new_order_id()
    await dead_letter(settings, order_id, source_offset=41)

    listed = await cli(settings, "dlq", "list", "orders.events")

    assert listed.code == 0, listed.stderr
    [line] = listed.lines
    assert line["key"] == order_id
    assert (line["error_type"], line["error_message"]) == (
        "ContractViolationError",
        "not a valid OrderEvent: payload.currency",
    )
    assert (line["source_topic"], line["source_partition"], line["source_offset"]) == (
        topic_catalog(settings).orders_events.name,
        1,
        41,
    )
    assert line["redriven"] is False
    assert "1 dead letters" in listed.stderr


async def test_tail_of_a_dead_letter_topic_prints_headers_and_the_raw_value(
    settings: Settings,
) -> None:
    order_id = new_order_id()
    value = await dead_letter(settings, order_id, source_offset=2)

    tailed = await cli(settings, "tail", "orders.events.dlq", "--from-beginning")

    assert tailed.code == 0, tailed.stderr
    [line] = tailed.lines
    assert line["key"] == order_id
    assert base64.b64decode(line["value_base64"]) == value
    assert line["headers"]["dlq.error.type"] == "ContractViolationError"
    assert line["headers"]["dlq.source.offset"] == "2"


async def test_redrive_puts_the_original_bytes_back_exactly_once(settings: Settings) -> None:
    first, second = new_order_id(), new_order_id()
    values = {
        first.encode(): await dead_letter(settings, first, source_offset=3),
        second.encode(): await dead_letter(settings, second, source_offset=4),
    }

    redriven = await cli(settings, "dlq", "redrive", "orders.events", "--all")
    assert redriven.code == 0, redriven.stderr
    assert [line["status"] for line in redriven.lines] == ["redriven", "redriven"]
    again = await cli(settings, "dlq", "redrive", "orders.events", "--all")
    assert (again.code, again.lines) == (0, [])
    assert "re-drove 0 of 0" in again.stderr

    records = await topic_records(settings, "orders.events")
    assert sorted((r.key, r.value) for r in records) == sorted(values.items())
    assert all(list(r.headers) == [("trace", b"t-1")] for r in records)
    assert all(local_codec().decode(r.value, OrderEvent) for r in records)

    listed = await cli(settings, "dlq", "list", "orders.events")
    assert [line["redriven"] for line in listed.lines] == [True, True]

    # A later dead letter is the only one the next run re-drives.
    third = new_order_id()
    await dead_letter(settings, third, source_offset=5)
    later = await cli(settings, "dlq", "redrive", "orders.events", "--all")
    assert len(later.lines) == 1
    assert len(await topic_records(settings, "orders.events")) == 3


async def test_redrive_of_chosen_offsets_sends_those_even_if_sent_before(
    settings: Settings,
) -> None:
    order_id = new_order_id()
    value = await dead_letter(settings, order_id, source_offset=8)
    [line] = (await cli(settings, "dlq", "list", "orders.events")).lines
    chosen = f"{line['dlq_partition']}:{line['dlq_offset']}"
    assert (await cli(settings, "dlq", "redrive", "orders.events", "--all")).code == 0

    once_more = await cli(settings, "dlq", "redrive", "orders.events", "--offset", chosen)

    assert once_more.code == 0, once_more.stderr
    assert [line["status"] for line in once_more.lines] == ["redriven"]
    records = await topic_records(settings, "orders.events")
    assert [(r.key, r.value) for r in records] == [(order_id.encode(), value)] * 2

    missing = await cli(settings, "dlq", "redrive", "orders.events", "--offset", "0:999")
    assert missing.code == 2
    assert "no dead letter at 0:999" in missing.stderr


async def test_a_dead_letter_from_another_topic_is_refused_not_injected(
    settings: Settings,
) -> None:
    await dead_letter(settings, new_order_id(), source_offset=1, source="elsewhere-orders.events")

    redriven = await cli(settings, "dlq", "redrive", "orders.events", "--all")

    assert redriven.code == 2
    [line] = redriven.lines
    assert line["status"] == "refused"
    assert "elsewhere-orders.events" in line["reason"]
    assert await topic_records(settings, "orders.events") == []
