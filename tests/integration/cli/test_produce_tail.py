"""`tributary produce` then `tributary tail`, on the real Kafka: what goes in comes out."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from schemas.orders import OrderEvent
from streams.cli import run
from streams.settings import Settings
from tests.integration.api.support import topic_records
from tests.integration.cli.support import (
    cli,
    console,
    new_order_id,
    order_body,
    printed,
    produce_raw,
    wait_until,
)
from tests.integration.kafka_io import topic_catalog


async def test_a_produced_event_is_what_tail_prints(settings: Settings, tmp_path: Path) -> None:
    order_id = new_order_id()
    body = order_body(order_id)
    path = tmp_path / "order.json"
    path.write_text(json.dumps(body))

    produced = await cli(settings, "produce", "order.created", "--json", str(path))
    assert produced.code == 0, produced.stderr
    [receipt] = produced.lines
    assert receipt["topic"] == topic_catalog(settings).orders_events.name

    tailed = await cli(settings, "tail", "orders.events", "--from-beginning")
    assert tailed.code == 0, tailed.stderr
    [line] = tailed.lines
    position = (line["topic"], line["partition"], line["offset"])
    assert position == (receipt["topic"], receipt["partition"], receipt["offset"])
    assert line["key"] == order_id
    event = OrderEvent.model_validate(line["value"])
    assert str(event.event_id) == receipt["event_id"]
    assert (event.event_type, event.source, event.correlation_id) == (
        "order.created",
        "cli",
        "corr-1",
    )
    assert event.payload.model_dump() == body["order"]


async def test_json_lines_keep_each_keys_order_and_a_prefixed_name_tails_too(
    settings: Settings,
) -> None:
    first, second = new_order_id(), new_order_id()
    documents = [
        order_body(first),
        order_body(second),
        order_body(first, correlation_id="b"),
        order_body(first, correlation_id="c"),
    ]
    stdin = "\n".join(json.dumps(document) for document in documents) + "\n"
    produced = await cli(settings, "produce", "order.created", "--json", "-", stdin=stdin)
    assert produced.code == 0, produced.stderr
    assert len(produced.lines) == 4

    prefixed = f"{settings.topic_prefix}orders.events"
    tailed = await cli(settings, "tail", prefixed, "--from-beginning")
    assert tailed.code == 0, tailed.stderr
    assert len(tailed.lines) == 4
    firsts = sorted(
        (line for line in tailed.lines if line["key"] == first), key=lambda line: line["offset"]
    )
    assert [line["value"]["correlation_id"] for line in firsts] == ["corr-1", "b", "c"]
    expected_ids = [produced.lines[index]["event_id"] for index in (0, 2, 3)]
    assert [line["value"]["event_id"] for line in firsts] == expected_ids


async def test_an_invalid_event_exits_2_naming_its_fields_and_nothing_is_produced(
    settings: Settings,
) -> None:
    body = order_body(new_order_id())
    body["order"]["items"][0]["quantity"] = 0
    body["order"]["currency"] = "EURO"
    del body["occurred_at"]

    produced = await cli(
        settings, "produce", "order.created", "--json", "-", stdin=json.dumps(body)
    )

    assert produced.code == 2
    assert produced.lines == []
    for field in ("occurred_at", "order.items.0.quantity", "order.currency"):
        assert f"  {field}: " in produced.stderr
    assert await topic_records(settings, "orders.events") == []


async def test_one_invalid_line_keeps_the_valid_ones_from_being_produced(
    settings: Settings,
) -> None:
    bad = order_body(new_order_id(), occurred_at="soon")
    stdin = f"{json.dumps(order_body(new_order_id()))}\n{json.dumps(bad)}\n"
    produced = await cli(settings, "produce", "order.created", "--json", "-", stdin=stdin)
    assert produced.code == 2
    assert "document 2: occurred_at" in produced.stderr
    assert await topic_records(settings, "orders.events") == []


async def test_tail_prints_a_poison_record_with_its_error_and_goes_on(settings: Settings) -> None:
    topic = topic_catalog(settings).orders_events.name
    order_id = new_order_id()
    await produce_raw(settings, topic, order_id.encode(), b"\xffnot avro")
    stdin = json.dumps(order_body(order_id))
    valid = await cli(settings, "produce", "order.created", "--json", "-", stdin=stdin)
    assert valid.code == 0, valid.stderr

    tailed = await cli(settings, "tail", "orders.events", "--from-beginning")
    assert tailed.code == 0, tailed.stderr
    poison, good = tailed.lines
    assert poison["error"].startswith("BadMagicByteError: first byte is 0xff")
    assert "value" not in poison
    assert good["value"]["event_id"] == valid.lines[0]["event_id"]

    limited = await cli(settings, "tail", "orders.events", "--from-beginning", "--max", "1")
    assert limited.lines == [poison]


async def test_tail_follow_prints_what_is_produced_after_it_reached_the_end(
    settings: Settings,
) -> None:
    before, after = new_order_id(), new_order_id()
    stdin = json.dumps(order_body(before))
    assert (await cli(settings, "produce", "order.created", "--json", "-", stdin=stdin)).code == 0
    used = console()
    argv = ["tail", "orders.events", "--from-beginning", "--follow", "--max", "2"]
    follower = asyncio.create_task(run([*argv, "--timeout-s", "60"], settings, used))
    try:
        await wait_until(lambda: len(printed(used)) == 1, "tail to print the first record")
        stdin = json.dumps(order_body(after))
        produced = await cli(settings, "produce", "order.created", "--json", "-", stdin=stdin)
        assert produced.code == 0, produced.stderr
        async with asyncio.timeout(60):
            assert await follower == 0
    finally:
        follower.cancel()
    assert [line["key"] for line in printed(used)] == [before, after]
